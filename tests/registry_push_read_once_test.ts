// push reads each layer from the store once, checking it as it is sent: a store-read counter
// (a ContentStore wrapper) sees every layer's bytes exactly once on a successful push, once more
// per retried attempt; a layer whose bytes are not its name's (one byte flipped, in its first or
// last read) or not its stat's size fails before its upload can complete: against the real
// docker-registry nothing is stored under the digest and the session is cancelled, and against
// a registry that stores whatever it is sent without checking, nothing is committed either (the
// last bytes were never sent).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type ContentStore,
  getRepositories,
  push,
  RegistryError,
  type RegistryErrorCode,
} from "../src/registry/mod.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { startFaultProxy } from "./registry/_fault_proxy.ts";
import { type HostileServer, startHostile } from "./registry/_hostile_server.ts";
import { layoutWithImage, metadata, QUICK_RETRY, removeTempDirs } from "./registry/_engine.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The layout store's smallest read size (src/adapters/_stream_file.ts: 32 KiB on Deno). */
const READ = 32 * KiB;
/** Layers of several reads, one read, and less than one. */
const SIZES = [MiB + 3 * KiB, 300 * KiB, 5 * KiB];

let registry: RegistryServer;

before(async () => {
  registry = await startRegistry({ accessLog: true });
});

after(async () => {
  await registry?.stop();
  removeTempDirs();
});

/** A store that counts, per digest, how often it was opened and how many bytes were read. */
function countingStore(
  store: ContentStore,
  stat: ContentStore["stat"] = store.stat?.bind(store),
): { store: ContentStore; opens: Map<string, number>; bytes: Map<string, number> } {
  const opens = new Map<string, number>();
  const bytes = new Map<string, number>();
  const add = (map: Map<string, number>, digest: string, n: number) =>
    map.set(digest, (map.get(digest) ?? 0) + n);
  const counted: ContentStore = {
    has: (digest) => store.has(digest),
    get: async (digest, options) => {
      const data = await store.get(digest, options);
      add(bytes, digest, data.length);
      return data;
    },
    put: (digest, data) => store.put(digest, data),
    open: async (digest, options) => {
      add(opens, digest, 1);
      return (await store.open(digest, options)).pipeThrough(
        new TransformStream({
          transform(chunk, controller) {
            add(bytes, digest, chunk.length);
            controller.enqueue(chunk);
          },
        }),
      );
    },
    write: (digest, data, options) => store.write(digest, data, options),
    resolve: (name) => store.resolve(name),
    tag: (name, descriptor) => store.tag(name, descriptor),
    ...(stat === undefined ? {} : { stat }),
  };
  return { store: counted, opens, bytes };
}

/** The registry's storage file for a blob (present once the blob is committed). */
function storedBlob(digest: string): string {
  const hex = digest.slice("sha256:".length);
  return join(registry.storage, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

/**
 * The upload sessions a push to `repository` opened, and those it cancelled, by the registry's
 * access log. (docker-registry 2.8 answers the DELETE of a session whose last request it got
 * only part of with 404 BLOB_UPLOAD_INVALID and keeps that part until its upload purge: the
 * handler closes the upload before cancelling it, so the cancel fails. It never commits it.)
 */
async function sessions(repository: string): Promise<{ opened: number; cancelled: number }> {
  const requests = (await registry.requests()).filter((r) =>
    r.url.startsWith(`/v2/${repository}/blobs/uploads/`)
  );
  assert.ok(!requests.some((r) => r.method === "PUT" && r.status === 201), "an upload completed");
  return {
    opened: requests.filter((r) => r.method === "POST" && r.status === 202).length,
    cancelled: requests.filter((r) => r.method === "DELETE").length,
  };
}

async function assertUnknown(repository: string, digest: string): Promise<void> {
  const [repo] = await getRepositories(`${registry.host}/${repository}`, { plainHttp: true });
  await assert.rejects(
    repo!.blobs().stat(digest),
    (error: unknown) => error instanceof RegistryError && error.code === "BLOB_UNKNOWN",
  );
  assert.equal(existsSync(storedBlob(digest)), false, `${digest} stored by the registry`);
}

function assertRefused(code: RegistryErrorCode, digest: string) {
  return (error: unknown) => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(digest), error.message);
    assert.match(error.message, /in the content store/);
    return true;
  };
}

/** Flips one bit of the file at `offset` (same size, other bytes). */
function flipByte(path: string, offset: number): void {
  const data = readFileSync(path);
  data[offset]! ^= 0x01;
  writeFileSync(path, data);
}

const paths = [
  { name: "one streamed PUT", chunkSize: 0 },
  { name: "PATCH chunks", chunkSize: 128 * KiB },
];

for (const { name, chunkSize } of paths) {
  test(`${name}: a successful push reads each layer once, and the registry has its bytes`, async () => {
    const { store, image } = await layoutWithImage(SIZES, 3 + chunkSize);
    const counted = countingStore(store);
    const repository = `team/once-${chunkSize}`;
    const { service } = await metadata();
    await push(`${registry.host}/${repository}:1.0`, counted.store, {
      plainHttp: true,
      chunkSize,
      metadataService: service,
    });
    const [repo] = await getRepositories(`${registry.host}/${repository}`, { plainHttp: true });
    for (const layer of image.layers) {
      assert.equal(counted.opens.get(layer.digest), 1, `opens of ${layer.digest}`);
      assert.equal(counted.bytes.get(layer.digest), layer.size, `bytes read of ${layer.digest}`);
      const data = readFileSync(storedBlob(layer.digest));
      assert.equal(data.length, layer.size);
      assert.equal((await repo!.blobs().stat(layer.digest)).size, layer.size);
    }
  });

  for (const where of ["first", "last"] as const) {
    test(`${name}: a layer with one byte flipped in its ${where} read is refused, nothing stored, the session cancelled`, async () => {
      const { dir, store, image } = await layoutWithImage(SIZES, where === "first" ? 5 : 6);
      const layer = image.layers[0]!;
      const offset = where === "first" ? 7 : layer.size - 5;
      assert.ok(where === "first" ? offset < READ : offset >= layer.size - (layer.size % READ));
      flipByte(join(dir, "blobs/sha256", layer.digest.slice(7)), offset);
      const counted = countingStore(store);
      const repository = `team/flipped-${where}-${chunkSize}`;
      const { service, root } = await metadata();
      await assert.rejects(
        push(`${registry.host}/${repository}:1.0`, counted.store, {
          plainHttp: true,
          chunkSize,
          metadataService: service,
          maxConcurrentUploads: 1,
        }),
        assertRefused("DIGEST_INVALID", layer.digest),
      );
      assert.equal(counted.opens.get(layer.digest), 1, "a corrupt layer is not retried");
      await assertUnknown(repository, layer.digest);
      assert.deepEqual(await sessions(repository), { opened: 1, cancelled: 1 });
      assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
    });
  }
}

test("the layout store's stat: a blob's size, ENOENT when absent, EINVAL for a symlink", async () => {
  const { dir, store, image } = await layoutWithImage([5 * KiB], 7);
  const layer = image.layers[0]!;
  assert.deepEqual(await store.stat(layer.digest), { size: layer.size });
  const absent = `sha256:${"0".repeat(64)}`;
  await assert.rejects(store.stat(absent), (error: unknown) => {
    assert.equal((error as { code?: string }).code, "ENOENT");
    assert.ok(String(error).includes(absent), String(error));
    return true;
  });
  const linked = `sha256:${"1".repeat(64)}`;
  symlinkSync(
    join(dir, "blobs/sha256", layer.digest.slice(7)),
    join(dir, "blobs/sha256", "1".repeat(64)),
  );
  await assert.rejects(
    store.stat(linked),
    (error: unknown) => (error as { code?: string }).code === "EINVAL",
  );
});

test("a layer whose size is not its stat's is SIZE_INVALID, nothing stored", async () => {
  const { store, image } = await layoutWithImage(SIZES, 8);
  const layer = image.layers[1]!;
  for (const delta of [-1, 1]) {
    const counted = countingStore(store, async (digest) => {
      const { size } = await store.stat!(digest);
      return { size: digest === layer.digest ? size + delta : size };
    });
    const repository = `team/resized${delta}`;
    await assert.rejects(
      push(`${registry.host}/${repository}:1.0`, counted.store, { plainHttp: true }),
      assertRefused("SIZE_INVALID", layer.digest),
    );
    await assertUnknown(repository, layer.digest);
  }
});

test("a retried upload reads its layer again from the start, and only that one", async () => {
  const proxy = await startFaultProxy(registry.url);
  try {
    const { store, image } = await layoutWithImage(SIZES, 9);
    const big = image.layers[0]!;
    // Only the upload of the big layer goes past 512 KiB: it alone is cut.
    proxy.plan({
      method: "PUT",
      path: /\/blobs\/uploads\//,
      fault: { kind: "cut", afterBytes: 512 * KiB, direction: "request" },
    });
    const counted = countingStore(store);
    await push(`${proxy.host}/team/retried:1.0`, counted.store, {
      plainHttp: true,
      chunkSize: 0,
      retry: QUICK_RETRY,
      maxConcurrentUploads: 1,
    });
    assert.equal(proxy.count({ method: "PUT", path: /\/blobs\/uploads\// }), SIZES.length + 2);
    for (const layer of image.layers) {
      const times = layer.digest === big.digest ? 2 : 1;
      assert.equal(counted.opens.get(layer.digest), times, `opens of ${layer.digest}`);
    }
    assert.equal(readFileSync(storedBlob(big.digest)).length, big.size);
  } finally {
    await proxy.stop();
  }
});

/**
 * A registry that commits whatever an upload sends under the digest it names, without checking
 * it, and remembers cancelled sessions.
 */
async function startTrusting(): Promise<{ server: HostileServer; cancelled: string[] }> {
  const server = await startHostile();
  const sessions = new Map<string, Uint8Array[]>();
  const cancelled: string[] = [];
  let next = 0;
  server.handler = (req, answer) => {
    const m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(req.url.pathname);
    if (m === null) return false;
    if (req.method === "POST") {
      sessions.set(`t${next}`, []);
      answer.send(202, { location: `/v2/${m[1]}/blobs/uploads/t${next++}` });
      return true;
    }
    const parts = sessions.get(m[2]!);
    if (parts === undefined) return false;
    if (req.method === "DELETE") {
      cancelled.push(m[2]!);
      sessions.delete(m[2]!);
      answer.send(204);
      return true;
    }
    parts.push(req.body);
    if (req.method === "PATCH") {
      answer.send(202, { location: req.url.pathname });
      return true;
    }
    const digest = req.url.searchParams.get("digest")!;
    server.blobs.set(digest, new Uint8Array(Buffer.concat(parts)));
    answer.send(201, { "docker-content-digest": digest });
    return true;
  };
  return { server, cancelled };
}

for (const { name, chunkSize } of paths) {
  test(`${name}: a registry that checks nothing is never sent a corrupt layer whole`, async () => {
    const { server, cancelled } = await startTrusting();
    try {
      const { dir, store, image } = await layoutWithImage(SIZES, 10);
      const layer = image.layers[0]!;
      flipByte(join(dir, "blobs/sha256", layer.digest.slice(7)), 1);
      await assert.rejects(
        push(`${server.host}/team/app:1.0`, store, {
          plainHttp: true,
          chunkSize,
          maxConcurrentUploads: 1,
        }),
        assertRefused("DIGEST_INVALID", layer.digest),
      );
      assert.equal(server.blobs.has(layer.digest), false, "committed unchecked");
      const uploaded = server.log.filter((r) => r.url.pathname.includes("/blobs/uploads/"));
      const sent = uploaded.reduce((n, r) => n + r.body.length, 0);
      assert.ok(sent < layer.size, `${sent} of ${layer.size} bytes arrived`);
      assert.equal(cancelled.length, 1);
    } finally {
      await server.close();
    }
  });
}
