// Bun's full collections during a pull: a collection once enough bytes of answers read in chunks
// of their own have passed, never more than a twentieth of the time, none for byte-stream
// answers (pulls from a real docker-registry on 127.0.0.1, in a process of their own) and none
// on any other runtime.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { push } from "../src/registry/mod.ts";
import {
  chunkCollector,
  runtimeChunkCollector,
} from "../src/registry/transport/_chunk_collector.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { layoutWithImage, removeTempDirs } from "./registry/_engine.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

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

before(async () => {
  registry = await startRegistry();
  const built = await layoutWithImage([40 * MiB], 7);
  await push(`${registry.host}/chunks/app:1.0`, built.store, { plainHttp: true });
});

after(async () => {
  await registry?.stop();
  removeTempDirs();
});

/** Runs `_collections_during_pull.ts` on this runtime against the pushed image. */
async function collectionsDuringPull(): Promise<
  { chunked: boolean[]; byteStreams: boolean[] } | null
> {
  const [command, args] = runtimeCommand(
    fileURLToPath(new URL("./registry/_collections_during_pull.ts", import.meta.url)),
    [`${registry.host}/chunks/app:1.0`],
  );
  const { stdout } = await promisify(execFile)(command, args, { timeout: 120_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

test("a 40 MiB pull brings Bun one full collection, byte-stream answers none; other runtimes none", async () => {
  const collections = await collectionsDuringPull();
  if (runtimeName === "bun") {
    assert.deepEqual(collections, { chunked: [true], byteStreams: [] });
  } else {
    assert.equal(collections, null);
    assert.equal(runtimeChunkCollector(), null);
  }
});
