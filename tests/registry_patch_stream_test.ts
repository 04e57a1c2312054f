// Uploads in PATCH chunks stream each chunk from the source's own chunks, against the real
// docker-registry: the bytes arrive whole (the registry checks the digest), and a source that
// turns out shorter or longer than the size it was checked at is refused before the upload is
// committed (SIZE_INVALID, the blob unknown to the registry).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { getRepositories, RegistryError } from "../src/registry/mod.ts";
import { noise } from "./registry/_image_builder.ts";
import { startRegistry } from "./registry/_registry_server.ts";

const CHUNK = 64 * 1024;

/** A stream of `data` in pieces of `piece` bytes (not aligned with the PATCH chunks). */
function pieces(data: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close();
      controller.enqueue(data.slice(offset, offset + piece));
      offset += piece;
    },
  });
}

test("PATCH chunks streamed from the source: the exact bytes, a changed size refused", async () => {
  const registry = await startRegistry();
  try {
    const [repo] = await getRepositories(`${registry.host}/team/patched`, { plainHttp: true });
    const data = noise(5 * CHUNK + 1234, 7);
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    const source = (bytes: Uint8Array) => ({
      digest,
      size: data.length,
      open: () => Promise.resolve(pieces(bytes, 10_000)),
    });

    const shorter = repo!.blobs().upload(source(data.subarray(0, data.length - 1)), {
      chunkSize: CHUNK,
    });
    await assert.rejects(shorter, (error: unknown) => {
      assert.ok(error instanceof RegistryError, String(error));
      assert.equal(error.code, "SIZE_INVALID");
      assert.match(error.message, /ended after \d+ of/);
      return true;
    });
    const longer = new Uint8Array(data.length + 1);
    longer.set(data);
    await assert.rejects(
      repo!.blobs().upload(source(longer), { chunkSize: CHUNK }),
      (error: unknown) => error instanceof RegistryError && error.code === "SIZE_INVALID",
    );
    await assert.rejects(
      repo!.blobs().stat(digest),
      (error: unknown) => error instanceof RegistryError && error.code === "BLOB_UNKNOWN",
    );

    const uploaded = await repo!.blobs().upload(source(data), { chunkSize: CHUNK });
    assert.equal(uploaded.digest, digest);
    assert.equal(uploaded.size, data.length);
    assert.deepEqual(await repo!.blobs().get(digest), data);
  } finally {
    await registry.stop();
  }
});
