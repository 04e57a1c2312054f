// Bun's full collections during a pull: a collection once enough bytes of answers read in chunks
// of their own have passed, never more than a twentieth of the time, none for byte-stream
// answers (with a real docker-registry on 127.0.0.1) and none on any other runtime.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ociLayoutStore, pull, push } from "../src/registry/mod.ts";
import {
  chunkCollector,
  runtimeChunkCollector,
} from "../src/registry/transport/_chunk_collector.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { holdsBlob, layoutWithImage, removeTempDirs, tempDir } from "./registry/_engine.ts";
import type { BuiltImage } from "./registry/_image_builder.ts";
import { byteStreamFetch } from "./registry/_byte_stream_fetch.ts";
import { runtimeName } from "./_runtime.ts";

const MiB = 1 << 20;

/** A collector on a clock the test moves; each collection takes `cost` ms of it. */
function manualCollector(every: number, cost: number) {
  const clock = { now: 0, collections: [] as number[] };
  const count = chunkCollector({
    every,
    collect() {
      clock.collections.push(clock.now);
      clock.now += cost;
    },
    now: () => clock.now,
  });
  return { clock, count };
}

test("a collection once `every` bytes are counted, then the count starts again", () => {
  const { clock, count } = manualCollector(MiB, 0);
  for (let i = 0; i < 15; i++) count(64 * 1024);
  assert.deepEqual(clock.collections, []);
  count(64 * 1024);
  assert.deepEqual(clock.collections, [0]);
  count(MiB - 1);
  assert.equal(clock.collections.length, 1);
  count(1);
  assert.equal(clock.collections.length, 2);
});

test("the next collection waits 19 times as long as the last took, bytes counted meanwhile", () => {
  const { clock, count } = manualCollector(MiB, 10);
  count(MiB); // collects from 0 to 10 ms: none before 200 ms
  clock.now = 199;
  count(3 * MiB);
  assert.deepEqual(clock.collections, [0]);
  clock.now = 200;
  count(1); // the bytes counted while waiting are enough
  assert.deepEqual(clock.collections, [0, 200]);
  clock.now = 1000;
  count(MiB - 1);
  assert.deepEqual(clock.collections, [0, 200], "the count started again at the collection");
});

let registry: RegistryServer;
let image: BuiltImage;

before(async () => {
  registry = await startRegistry();
  const built = await layoutWithImage([40 * MiB], 7);
  image = built.image;
  await push(`${registry.host}/chunks/app:1.0`, built.store, { plainHttp: true });
});

after(async () => {
  await registry?.stop();
  removeTempDirs();
});

/** Pulls the image into a new layout and checks its layer landed. */
async function pullImage(fetch?: typeof globalThis.fetch): Promise<void> {
  const dir = tempDir();
  const result = await pull(`${registry.host}/chunks/app:1.0`, await ociLayoutStore(dir), {
    plainHttp: true,
    ...(fetch === undefined ? {} : { fetch }),
  });
  assert.equal(result.digest, image.manifest.digest);
  assert.ok(holdsBlob(dir, image.layers[0]!.digest));
}

test("a 40 MiB pull brings Bun a full collection, byte-stream answers none; other runtimes none", async () => {
  const bun = (globalThis as { Bun?: { gc(force: boolean): unknown } }).Bun;
  if (runtimeName !== "bun") {
    assert.equal(bun, undefined);
    assert.equal(runtimeChunkCollector(), null);
    await pullImage();
    return;
  }
  const collect = bun!.gc;
  const forced: boolean[] = [];
  let took = 0;
  bun!.gc = (force) => {
    forced.push(force);
    const start = performance.now();
    const result = collect(force);
    took = performance.now() - start;
    return result;
  };
  try {
    await pullImage(); // the first bodies of this process: nothing holds the collection back
    assert.deepEqual(forced, [true]);
    forced.length = 0;
    // Past the wait after that collection, so only the kind of body can keep the next away.
    await new Promise((resolve) => setTimeout(resolve, 20 * took + 10));
    await pullImage(byteStreamFetch().fetch);
    assert.deepEqual(forced, []);
  } finally {
    bun!.gc = collect;
  }
});
