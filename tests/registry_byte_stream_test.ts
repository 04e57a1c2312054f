// A pull whose answers come as byte streams (as Deno's and browsers' fetch bodies do), on every
// runtime: the layout store's writer reads into its own buffers through every stage down to the
// body, a body cut midway resumes with Range into other memory, and every byte lands as the
// registry has it, against a real docker-registry behind the fault proxy on 127.0.0.1.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ociLayoutStore, pull, push } from "../src/registry/mod.ts";
import { type FaultProxy, startFaultProxy } from "./registry/_fault_proxy.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import {
  blobFiles,
  holdsBlob,
  layoutWithImage,
  metadata,
  QUICK_RETRY,
  removeTempDirs,
  tempDir,
} from "./registry/_engine.ts";
import type { BuiltImage } from "./registry/_image_builder.ts";
import { byteStreamFetch } from "./registry/_byte_stream_fetch.ts";

const MiB = 1 << 20;
let registry: RegistryServer;
let proxy: FaultProxy;
let image: BuiltImage;

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  const built = await layoutWithImage([3 * MiB, 700 * 1024, 5000], 11);
  image = built.image;
  await push(`${registry.host}/bytes/app:1.0`, built.store, { plainHttp: true });
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
  removeTempDirs();
});

test("a pull of byte-stream answers fills the writer's buffers, resumes a cut layer, keeps every byte", async () => {
  proxy.clear();
  const big = image.layers[0]!.digest;
  proxy.plan({
    method: "GET",
    path: new RegExp(`/blobs/${big}$`),
    fault: { kind: "cut", afterBytes: MiB + 12345 },
  });
  const { fetch, seen } = byteStreamFetch();
  const dir = tempDir();
  const { service } = await metadata();
  const result = await pull(`${proxy.host}/bytes/app:1.0`, await ociLayoutStore(dir), {
    plainHttp: true,
    retry: QUICK_RETRY,
    fetch,
    metadataService: service,
  });
  assert.equal(result.digest, image.manifest.digest);
  assert.deepEqual(result.layers.map((l) => l.status), ["recorded", "recorded", "recorded"]);
  for (const layer of image.layers) assert.ok(holdsBlob(dir, layer.digest), layer.digest);
  assert.deepEqual(blobFiles(dir).filter((name) => name.startsWith(".tmp-")), []);
  const bigGets = proxy.requests.filter((r) => r.path.endsWith(big));
  assert.deepEqual(bigGets.map((r) => [r.status, r.fault]), [[200, "cut"], [206, undefined]]);
  // The layout's writer reads 256 KiB buffers; the digest check keeps a byte of each back.
  assert.ok(seen.byobReads > 10, `${seen.byobReads} reads with a buffer`);
  assert.equal(seen.largest, 256 * 1024);
});
