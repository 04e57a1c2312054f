// The transfer engine's streams and concurrency: the OCI layout store writes a blob under its
// name only once the stream proved it (wrong digest, too many bytes, a cancelled or failing
// source leave nothing, temp file included), reads refuse FIFOs and symlinks and withhold the
// last chunk of a blob that fails its check; against a real docker-registry, pull and push
// keep to maxConcurrentDownloads and maxConcurrentUploads, and report per-blob progress.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryFileSystem } from "../mod.ts";
import { ociLayoutStore, pull, push } from "../src/registry/mod.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { noise, sha256 } from "./registry/_image_builder.ts";
import {
  blobFiles,
  holdsBlob,
  layoutWithImage,
  metadata,
  progressLog,
  removeTempDirs,
  tempDir,
} from "./registry/_engine.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
let registry: RegistryServer;

before(async () => {
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  removeTempDirs();
});

/** A stream of `data` in chunks of `size`, optionally failing after `failAfter` chunks. */
function chunked(data: Uint8Array, size: number, failAfter = Infinity): ReadableStream<Uint8Array> {
  let offset = 0;
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent++ >= failAfter) return controller.error(new Error("source failed"));
      if (offset >= data.length) return controller.close();
      controller.enqueue(data.slice(offset, offset += size));
    },
  });
}

async function code(promise: Promise<unknown>): Promise<string> {
  return await promise.then(() => "resolved", (error) => String(error?.code ?? error?.message));
}

for (const where of ["disk", "memory"] as const) {
  const open = () =>
    where === "disk"
      ? ociLayoutStore(tempDir())
      : ociLayoutStore("/layout", { fs: new MemoryFileSystem() });
  const names = (store: { dir: string }, fs?: MemoryFileSystem) =>
    fs ? fs.readDir(`${store.dir}/blobs/sha256`) : blobFiles(store.dir);

  test(`${where}: write lands a blob only once its stream proved it`, async () => {
    const fs = where === "memory" ? new MemoryFileSystem() : undefined;
    const store = fs ? await ociLayoutStore("/layout", { fs }) : await open();
    const data = noise(3 * MiB + 17, 1);
    const digest = sha256(data);
    const wrong = sha256(data.subarray(1));
    assert.equal(await code(store.write(wrong, chunked(data, 64 * KiB))), "DIGEST_INVALID");
    assert.equal(
      await code(store.write(digest, chunked(data, 64 * KiB), { maxBytes: MiB })),
      "TOO_LARGE",
    );
    assert.equal(await code(store.write(digest, chunked(data, 64 * KiB, 5))), "source failed");
    const controller = new AbortController();
    let chunks = 0;
    const cancelled = chunked(data, 64 * KiB).pipeThrough(
      new TransformStream({
        transform(chunk, c) {
          if (++chunks === 3) controller.abort(new Error("cancelled"));
          c.enqueue(chunk);
        },
      }),
      { signal: controller.signal },
    );
    assert.notEqual(await code(store.write(digest, cancelled)), "resolved");
    assert.deepEqual(await names(store, fs), [], "a failed write left a file");
    await store.write(digest, chunked(data, 64 * KiB));
    assert.deepEqual(await names(store, fs), [digest.slice(7)]);
    assert.deepEqual(await store.get(digest), data);
    // Present: left alone, the stream cancelled.
    let pulled = 0;
    await store.write(
      digest,
      new ReadableStream({
        pull: (c) => void (pulled++, c.enqueue(new Uint8Array(1))),
      }, { highWaterMark: 0 }),
    );
    assert.equal(pulled, 0);
  });

  test(`${where}: open streams a blob and withholds the last chunk of one that fails its check`, async () => {
    const fs = where === "memory" ? new MemoryFileSystem() : undefined;
    const store = fs ? await ociLayoutStore("/layout", { fs }) : await open();
    const data = noise(MiB + 5, 2);
    const digest = sha256(data);
    await store.write(digest, chunked(data, 100 * KiB));
    assert.deepEqual(
      new Uint8Array(await new Response(await store.open(digest)).arrayBuffer()),
      data,
    );
    // The same bytes planted under another name: chunks, but never the last, then DIGEST_INVALID.
    const other = sha256(new Uint8Array([1]));
    const path = `${store.dir}/blobs/sha256/${other.slice(7)}`;
    if (fs) fs.writeFileAtomic(path, `${path}.tmp`, data, 0o644);
    else writeFileSync(path, data);
    const reader = (await store.open(other)).getReader();
    let received = 0;
    const failure = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return null;
        received += value.length;
      }
    })().catch((error) => error);
    assert.equal(failure?.code, "DIGEST_INVALID");
    assert.ok(received > 0 && received < data.length, `received ${received} bytes`);
    const raw = await new Response(await store.open(other, { verify: false })).arrayBuffer();
    assert.equal(raw.byteLength, data.length);
  });
}

test("disk: open refuses a FIFO (EINVAL) and a symlink (ELOOP) before reading", async () => {
  const store = await ociLayoutStore(tempDir());
  const fifo = sha256(new Uint8Array([1]));
  const link = sha256(new Uint8Array([2]));
  const dir = join(store.dir, "blobs", "sha256");
  spawnSync("mkdir", ["-p", dir]);
  assert.equal(spawnSync("mkfifo", [join(dir, fifo.slice(7))]).status, 0);
  symlinkSync("/etc/hostname", join(dir, link.slice(7)));
  assert.equal(await code(store.open(fifo)), "EINVAL");
  assert.equal(await code(store.open(link)), "ELOOP");
  assert.equal(await code(store.open(sha256(new Uint8Array([3])))), "ENOENT");
  assert.equal(await code(store.open(fifo, { maxBytes: 1 })), "EINVAL");
});

/**
 * The real fetch, with every matching request held 500 ms before it goes out (so the requests
 * a transfer starts together overlap whatever the machine's load), counting how many were in
 * flight at once.
 */
function slowBlobRequests(methods: string[]): { fetch: typeof fetch; most: () => number } {
  let open = 0;
  let most = 0;
  const slow: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!/\/blobs\/(sha256:|uploads\/.)/.test(url) || !methods.includes(init?.method ?? "GET")) {
      return await fetch(input, init);
    }
    most = Math.max(most, ++open);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return await fetch(input, init);
    } finally {
      open--;
    }
  };
  return { fetch: slow, most: () => most };
}

test("pull and push keep to maxConcurrentDownloads and maxConcurrentUploads", async () => {
  const sizes = [MiB, MiB, MiB, MiB, MiB, MiB];
  const { store, image } = await layoutWithImage(sizes, 3);
  const uploads = slowBlobRequests(["PUT", "PATCH"]);
  await push(`${registry.host}/conc/app:1.0`, store, {
    plainHttp: true,
    maxConcurrentUploads: 2,
    fetch: uploads.fetch,
  });
  assert.equal(uploads.most(), 2);
  const downloads = slowBlobRequests(["GET"]);
  const dir = tempDir();
  const { service } = await metadata();
  const pulled = progressLog();
  const result = await pull(`${registry.host}/conc/app:1.0`, await ociLayoutStore(dir), {
    plainHttp: true,
    maxConcurrentDownloads: 3,
    metadataService: service,
    onProgress: pulled.onProgress,
    fetch: downloads.fetch,
  });
  assert.equal(downloads.most(), 3);
  for (const layer of image.layers) assert.ok(holdsBlob(dir, layer.digest));
  assert.equal(readdirSync(join(dir, "blobs", "sha256")).length, image.layers.length + 2);
  // Recorded in manifest order, whatever order the downloads finished in.
  assert.deepEqual(result.layers.map((l) => l.digest), image.layers.map((l) => l.digest));
  for (const [i, layer] of image.layers.entries()) {
    assert.equal(await service.getDiffID(layer.digest), image.diffIDs[i]);
  }
  // Every byte reported, and a second pull finds every layer already there.
  for (const layer of image.layers) {
    const last = pulled.events.filter((e) => e.action === "pull" && e.digest === layer.digest).at(
      -1,
    );
    assert.deepEqual([last?.current, last?.total], [layer.size, layer.size]);
  }
  const again = progressLog();
  await pull(`${registry.host}/conc/app:1.0`, await ociLayoutStore(dir), {
    plainHttp: true,
    metadataService: service,
    onProgress: again.onProgress,
  });
  assert.deepEqual(
    again.events.map((e) => e.action).sort(),
    image.layers.map(() => "exists"),
  );
});
