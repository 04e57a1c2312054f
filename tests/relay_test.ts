// Byte streams relayed from a source to a reader (src/_relay.ts): a reader's BYOB reads reach the
// source, so the bytes land in the reader's buffers; a reader reading the usual way gets chunks
// of its own; the digest check holds back a byte of a reader's buffer, not a chunk; the file
// writer reads a byte stream into two buffers of its own, never one still being written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { relaySource, relayStream } from "../src/_relay.ts";
import { verifying } from "../src/registry/_verify.ts";
import { RegistryError } from "../src/registry/errors.ts";
import { concat } from "../src/registry/transport/limits.ts";
import { type StreamWriteOps, writeStreamAtomically } from "../src/adapters/_stream_file.ts";

/** Deterministic bytes: `length` of them, from `seed`. */
function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * A byte stream of `data` handing out at most `step` bytes per read; `seen` logs each BYOB
 * request's length (`0` for a read without one). With `moveAt`, the read at that offset answers
 * in new memory of the same shape, as a source does whose failed read kept the buffer.
 */
function byteSource(data: Uint8Array, step: number, options: { moveAt?: number } = {}) {
  const seen: number[] = [];
  let offset = 0;
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest;
      seen.push(request?.view?.byteLength ?? 0);
      if (offset >= data.length) {
        controller.close();
        request?.respond(0);
        return;
      }
      const length = Math.min(step, data.length - offset, request?.view?.byteLength ?? step);
      const part = data.subarray(offset, offset + length);
      if (request === null) controller.enqueue(part.slice());
      else {
        const view = request.view as Uint8Array;
        const moved = offset === options.moveAt;
        const target = moved
          ? new Uint8Array(new ArrayBuffer(view.buffer.byteLength), view.byteOffset, view.length)
          : view;
        target.set(part);
        request.respondWithNewView(target.subarray(0, length));
      }
      offset += length;
    },
  });
  return { stream, seen };
}

/** Reads `stream` with a BYOB reader into one buffer of `size`, reused; the bytes read, joined. */
async function readReusing(stream: ReadableStream<Uint8Array>, size: number) {
  const reader = stream.getReader({ mode: "byob" });
  const parts: Uint8Array[] = [];
  let buffer = new ArrayBuffer(size);
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    parts.push(value.slice());
    buffer = value.buffer as ArrayBuffer;
  }
  return concat(parts);
}

/** A relay that only passes the bytes on. */
function passThrough(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const source = relaySource(stream);
  return relayStream(source.byob, {
    pull: (into) => source.read(into),
    cancel: (reason) => source.cancel(reason),
  });
}

test("a relay of a byte stream is one: a reader's BYOB reads reach the source with its buffer", async () => {
  const data = bytes(10_000);
  const { stream, seen } = byteSource(data, 3000);
  const relayed = passThrough(passThrough(stream));
  assert.deepEqual(await readReusing(relayed, 1000), data);
  assert.ok(seen.length > 10 && seen.every((length) => length === 1000), seen.join());
});

test("a relay of a byte stream read the usual way hands out chunks of the reader's own", async () => {
  const data = bytes(200_000);
  const kept: Uint8Array[] = [];
  for await (const chunk of passThrough(byteSource(data, 30_000).stream)) kept.push(chunk);
  assert.ok(kept.length >= 7);
  assert.equal(new Set(kept.map((chunk) => chunk.buffer)).size, kept.length);
  assert.deepEqual(concat(kept), data);
});

test("a relay of a default stream stays one; reads into a buffer copy, keeping the rest", async () => {
  const chunks = [bytes(10, 1), bytes(3, 2)];
  const source = relaySource(
    new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
    }),
  );
  assert.equal(source.byob, false);
  const lengths: number[] = [];
  const got: Uint8Array[] = [];
  for (;;) {
    const result = await source.read(new Uint8Array(4));
    if (result.done) break;
    lengths.push(result.value.length);
    got.push(result.value.slice());
  }
  assert.deepEqual(lengths, [4, 4, 2, 3]);
  assert.deepEqual(concat(got), concat([bytes(10, 1), bytes(3, 2)]));
});

test("verifying a byte stream into one reused buffer: every byte, and the digest checked", async () => {
  const data = bytes(100_000);
  const { stream, seen } = byteSource(data, 7000);
  const read = await readReusing(verifying(stream, sha256(data), "blob"), 4096);
  assert.deepEqual(read, data);
  // The held-back byte goes in front: the source is asked for one byte less.
  assert.ok(seen.includes(4095), seen.join());
});

test("verifying a byte stream that fails its digest: the reader never has the last byte", async () => {
  const data = bytes(50_000);
  const reader = verifying(byteSource(data, 5000).stream, sha256(bytes(1)), "blob")
    .getReader({ mode: "byob" });
  let received = 0;
  let buffer = new ArrayBuffer(8192);
  await assert.rejects(async () => {
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      received += value.length;
      buffer = value.buffer as ArrayBuffer;
    }
  }, (error) => error instanceof RegistryError && error.code === "DIGEST_INVALID");
  assert.equal(received, data.length - 1);
});

test("verifying stops a byte stream past its limit with TOO_LARGE", async () => {
  const data = bytes(20_000);
  await assert.rejects(
    readReusing(verifying(byteSource(data, 3000).stream, sha256(data), "blob", 10_000), 4096),
    (error) => error instanceof RegistryError && error.code === "TOO_LARGE",
  );
});

test("verifying keeps the held byte when a read answers in other memory", async () => {
  const data = bytes(30_000);
  for (const moveAt of [0, 4096, 8191]) {
    const { stream } = byteSource(data, 5000, { moveAt });
    const read = await readReusing(verifying(stream, sha256(data), "blob"), 4096);
    assert.deepEqual(read, data, `moved at ${moveAt}`);
  }
});

test("the file writer reads a byte stream into two buffers, never one still being written", async () => {
  const data = bytes(3_000_000);
  const { stream, seen } = byteSource(data, 100_000);
  const file: Uint8Array[] = [];
  const ops: StreamWriteOps<string> = {
    createExclusive: () => "F",
    async writeAll(_file, chunk) {
      const before = chunk.slice();
      // A slow disk: the next read runs meanwhile, and must land elsewhere.
      await new Promise((resolve) => setTimeout(resolve, 2));
      assert.deepEqual(chunk, before, "a chunk changed while it was written");
      file.push(before);
    },
    writeBack: () => Promise.resolve(),
    sync: () => Promise.resolve(),
    close: () => {},
    chmod: () => {},
    rename: () => {},
    remove: () => {},
  };
  const written = await writeStreamAtomically(ops, "/f", "/f.tmp", stream, 0o644);
  assert.equal(written, data.length);
  assert.deepEqual(concat(file), data);
  assert.ok(seen.every((length) => length === 256 << 10), seen.join());
});
