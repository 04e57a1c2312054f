// The transfer engine under faults, through the fault-injecting proxy in front of a real
// docker-registry on 127.0.0.1: bodies cut after N bytes (downloads resume with Range, uploads
// start again in a new session), bursts of 503 and 429 (with Retry-After), a stall, and the
// typed error after the last attempt, with nothing partial left in the layout and nothing
// recorded for a layer that did not arrive; then cancellation.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  ociLayoutStore,
  pull,
  push,
  type RegistryConfig,
  RegistryError,
} from "../src/registry/mod.ts";
import { type FaultProxy, startFaultProxy } from "./registry/_fault_proxy.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import {
  blobFiles,
  holdsBlob,
  layoutWithImage,
  metadata,
  progressLog,
  QUICK_RETRY,
  removeTempDirs,
  tempDir,
} from "./registry/_engine.ts";
import type { BuiltImage } from "./registry/_image_builder.ts";

const MiB = 1 << 20;
let registry: RegistryServer;
let proxy: FaultProxy;
let source: { dir: string; image: BuiltImage };

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  const { dir, store, image } = await layoutWithImage([3 * MiB, 256 * 1024, 64 * 1024], 7);
  source = { dir, image };
  // The image goes in straight, not through the proxy.
  await push(`${registry.host}/faults/app:1.0`, store, { plainHttp: true });
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
  removeTempDirs();
});

/** Clears the proxy's rules; the returned function counts the requests made since. */
function fresh(): (filter?: { method?: string; path?: RegExp }) => typeof proxy.requests {
  proxy.clear();
  const mark = proxy.requests.length;
  return (filter = {}) =>
    proxy.requests.slice(mark).filter((r) =>
      (filter.method === undefined || r.method === filter.method) &&
      (filter.path === undefined || filter.path.test(r.path))
    );
}

function config(extra: RegistryConfig = {}): RegistryConfig {
  return { plainHttp: true, retry: QUICK_RETRY, ...extra };
}

const big = () => source.image.layers[0]!.digest;
const blobPath = (digest: string) => new RegExp(`/blobs/${digest}$`);

function rejectsWith(error: unknown, code: string, status?: number): RegistryError {
  assert.ok(error instanceof RegistryError, `not a RegistryError: ${error}`);
  assert.equal(error.code, code, error.message);
  if (status !== undefined) assert.equal(error.status, status);
  return error;
}

test("pull resumes a cut layer with Range, rides out 503s, a 429 and a stall; digests hold", async () => {
  const seen = fresh();
  proxy.plan(
    { method: "GET", path: blobPath(big()), fault: { kind: "cut", afterBytes: MiB } },
    { method: "GET", path: /\/manifests\//, times: 2, fault: { kind: "status", status: 503 } },
    {
      method: "GET",
      path: blobPath(source.image.layers[1]!.digest),
      fault: { kind: "status", status: 429, retryAfter: "0" },
    },
    {
      method: "GET",
      path: blobPath(source.image.layers[2]!.digest),
      fault: { kind: "stall", ms: 5_000 },
    },
  );
  const dir = tempDir();
  const { service } = await metadata();
  const { events, onProgress } = progressLog();
  const result = await pull(`${proxy.host}/faults/app:1.0`, await ociLayoutStore(dir), {
    ...config({ idleTimeout: 1_500 }),
    metadataService: service,
    onProgress,
  });
  assert.equal(result.digest, source.image.manifest.digest);
  assert.deepEqual(result.layers.map((l) => l.status), ["recorded", "recorded", "recorded"]);
  for (const layer of source.image.layers) assert.ok(holdsBlob(dir, layer.digest));
  assert.deepEqual(blobFiles(dir).filter((name) => name.startsWith(".tmp-")), []);
  // The cut layer came back as a 206 from where it stopped, not from its start.
  const bigGets = seen({ method: "GET", path: blobPath(big()) });
  assert.deepEqual(bigGets.map((r) => [r.status, r.fault]), [[200, "cut"], [206, undefined]]);
  const retried = new Set(events.filter((e) => e.action === "retry").map((e) => e.digest));
  assert.ok(retried.has(big()) && retried.has(source.image.layers[2]!.digest), [...retried].join());
  const last = events.filter((e) => e.action === "pull" && e.digest === big()).at(-1);
  assert.equal(last?.current, source.image.layers[0]!.size);
  for (const [i, layer] of source.image.layers.entries()) {
    assert.equal(await service.getDiffID(layer.digest), source.image.diffIDs[i]);
  }
});

test("pull honours Retry-After on a 429", async () => {
  const seen = fresh();
  proxy.plan({
    method: "GET",
    path: /\/manifests\//,
    fault: { kind: "status", status: 429, retryAfter: "1" },
  });
  const started = performance.now();
  await pull(`${proxy.host}/faults/app:1.0`, await ociLayoutStore(tempDir()), config());
  assert.ok(performance.now() - started >= 950, "waited less than Retry-After");
  assert.deepEqual(
    seen({ path: /\/manifests\// }).map((r) => r.status).slice(0, 2),
    [429, 200],
  );
});

test("pull gives up after the last attempt with a typed error; nothing partial, nothing recorded", async () => {
  const seen = fresh();
  proxy.plan({
    method: "GET",
    path: blobPath(big()),
    times: Infinity,
    fault: { kind: "status", status: 503 },
  });
  const dir = tempDir();
  const { service, root } = await metadata();
  const error = await pull(`${proxy.host}/faults/app:1.0`, await ociLayoutStore(dir), {
    ...config(),
    metadataService: service,
  }).then(() => null, (e) => e);
  rejectsWith(error, "UNKNOWN", 503);
  assert.equal(seen({ method: "GET", path: blobPath(big()) }).length, QUICK_RETRY.attempts);
  assert.equal(holdsBlob(dir, big()), false);
  assert.deepEqual(blobFiles(dir).filter((name) => name.startsWith(".tmp-")), []);
  assert.equal(await service.getDiffID(big()).catch(() => null), null);
  assert.equal(
    existsSync(join(root, "v2metadata-by-diffid", source.image.diffIDs[0]!.slice(7))),
    false,
  );
});

test("a download cut again and again without progress ends with TRUNCATED, the temp file gone", async () => {
  const seen = fresh();
  // Every GET of the layer is cut at the same byte: the resumed ones bring nothing new.
  proxy.plan({
    method: "GET",
    path: blobPath(big()),
    times: Infinity,
    fault: { kind: "cut", afterBytes: 0 },
  });
  const dir = tempDir();
  const error = await pull(`${proxy.host}/faults/app:1.0`, await ociLayoutStore(dir), config())
    .then(() => null, (e) => e);
  rejectsWith(error, "TRUNCATED");
  assert.ok(seen({ method: "GET", path: blobPath(big()) }).length <= QUICK_RETRY.attempts);
  assert.equal(holdsBlob(dir, big()), false);
  assert.deepEqual(blobFiles(dir).filter((name) => name.startsWith(".tmp-")), []);
});

test("push restarts a cut upload in a new session and rides out 503s; the registry has every blob", async () => {
  const seen = fresh();
  proxy.plan(
    {
      method: "PUT",
      path: /\/blobs\/uploads\//,
      fault: { kind: "cut", afterBytes: 512 * 1024, direction: "request" },
    },
    {
      method: "POST",
      path: /\/blobs\/uploads\/$/,
      times: 2,
      fault: { kind: "status", status: 503 },
    },
  );
  const { store } = await layoutWithImage([2 * MiB, 128 * 1024], 11);
  const { service } = await metadata();
  const { events, onProgress } = progressLog();
  const pushed = await push(`${proxy.host}/faults/pushed:1.0`, store, {
    ...config(),
    metadataService: service,
    onProgress,
    maxConcurrentUploads: 1,
  });
  const manifest = await fetch(`${registry.url}/v2/faults/pushed/manifests/${pushed.digest}`, {
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  assert.equal(manifest.status, 200);
  const { layers } = await manifest.json() as { layers: { digest: string }[] };
  for (const { digest } of layers) {
    const blob = await fetch(`${registry.url}/v2/faults/pushed/blobs/${digest}`);
    assert.equal(blob.status, 200);
    const actual = "sha256:" +
      createHash("sha256").update(new Uint8Array(await blob.arrayBuffer())).digest("hex");
    assert.equal(actual, digest);
  }
  assert.ok(events.some((e) => e.action === "retry"), "no retry event");
  // The cut session was cancelled (DELETE), and a new one started.
  assert.ok(seen({ method: "DELETE", path: /\/blobs\/uploads\// }).length >= 1);
});

test("push in PATCH chunks restarts after a cut chunk", async () => {
  const seen = fresh();
  proxy.plan({
    method: "PATCH",
    path: /\/blobs\/uploads\//,
    skip: 1,
    fault: { kind: "cut", afterBytes: 1000, direction: "request" },
  });
  const { store, image } = await layoutWithImage([MiB], 13);
  const pushed = await push(`${proxy.host}/faults/chunked:1.0`, store, {
    ...config(),
    chunkSize: 256 * 1024,
  });
  assert.equal(pushed.digest, image.manifest.digest);
  const head = await fetch(`${registry.url}/v2/faults/chunked/blobs/${image.layers[0]!.digest}`, {
    method: "HEAD",
  });
  assert.equal(head.status, 200);
  assert.ok(seen({ method: "PATCH" }).length > 4);
});

test("push gives up after the last attempt with a typed error; no manifest, nothing recorded", async () => {
  const seen = fresh();
  proxy.plan({
    method: "PUT",
    path: /\/blobs\/uploads\//,
    times: Infinity,
    fault: { kind: "status", status: 502 },
  });
  const { store, image } = await layoutWithImage([64 * 1024], 17);
  const { service } = await metadata();
  const error = await push(`${proxy.host}/faults/refused:1.0`, store, {
    ...config(),
    metadataService: service,
  }).then(() => null, (e) => e);
  rejectsWith(error, "UNKNOWN", 502);
  assert.equal(seen({ method: "PUT", path: /\/blobs\/uploads\// }).length, QUICK_RETRY.attempts);
  assert.equal(seen({ method: "PUT", path: /\/manifests\// }).length, 0);
  assert.deepEqual(await service.getMetadata(image.diffIDs[0]!).catch(() => []), []);
});

test("signal aborts a stalled pull promptly: ABORTED, no partial blob, nothing recorded", async () => {
  fresh();
  proxy.plan({ method: "GET", path: blobPath(big()), fault: { kind: "stall", ms: 20_000 } });
  const dir = tempDir();
  const { service } = await metadata();
  const controller = new AbortController();
  const { onProgress } = progressLog();
  setTimeout(() => controller.abort(), 400);
  const started = performance.now();
  const error = await pull(`${proxy.host}/faults/app:1.0`, await ociLayoutStore(dir), {
    ...config(),
    metadataService: service,
    signal: controller.signal,
    onProgress,
  }).then(() => null, (e) => e);
  rejectsWith(error, "ABORTED");
  assert.ok(performance.now() - started < 3_000, "abort was not prompt");
  assert.equal(holdsBlob(dir, big()), false);
  assert.deepEqual(blobFiles(dir).filter((name) => name.startsWith(".tmp-")), []);
  assert.equal(await service.getDiffID(big()).catch(() => null), null);
});

test("signal aborts a push mid-upload: ABORTED, its upload session cancelled, no manifest", async () => {
  const seen = fresh();
  const { store } = await layoutWithImage([4 * MiB], 19);
  const controller = new AbortController();
  let aborted = false;
  const error = await push(`${proxy.host}/faults/aborted:1.0`, store, {
    ...config(),
    signal: controller.signal,
    onProgress: (event) => {
      if (event.action === "push" && event.current > 0 && !aborted) {
        aborted = true;
        controller.abort();
      }
    },
  }).then(() => null, (e) => e);
  rejectsWith(error, "ABORTED");
  assert.ok(aborted);
  assert.ok(seen({ method: "DELETE", path: /\/blobs\/uploads\// }).length >= 1, "no DELETE");
  assert.equal(seen({ method: "PUT", path: /\/manifests\// }).length, 0);
});
