// The gzip a layer is pushed in: whatever mix of bytes goes in, one gzip member comes out that
// node:zlib, DecompressionStream and GNU gzip inflate to exactly the input; bytes nothing
// compresses are stored (5 bytes per 64 KiB block), others deflated; a source that fails
// fails the stream, and cancelling the stream cancels the source.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipStream, type GzipWay } from "../src/registry/_gzip.ts";
import { chunked, noise, sha256 } from "./registry/_image_builder.ts";

const dir = mkdtempSync(join(tmpdir(), "gzip-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const WAYS: GzipWay[] = ["segments", "compression-stream"];
const encoder = new TextEncoder();
const text = (length: number) =>
  encoder.encode("layer of words, compressed over and over again; ".repeat(length / 49 + 1))
    .subarray(0, length);

async function gzipped(data: Uint8Array, way: GzipWay, chunk = 100_000): Promise<Uint8Array> {
  return new Uint8Array(await new Response(gzipStream(chunked(data, chunk), way)).arrayBuffer());
}

/**
 * `data` in a file of a temporary directory removed at exit: Deno's `execFileSync` writes all
 * of `input` before it reads, which deadlocks once gzip's output fills the pipe.
 */
function inFile(data: Uint8Array): string {
  const file = join(dir, `${crypto.randomUUID()}.gz`);
  writeFileSync(file, data);
  return file;
}

async function inflatedByWeb(gz: Uint8Array): Promise<Uint8Array> {
  const stream = chunked(gz, 65_536).pipeThrough(
    new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const mixed = () =>
  Buffer.concat([
    text(300_000),
    noise(600_000, 1),
    text(300_000), // the same words again, after stored bytes: no reference may reach back
    new Uint8Array(0),
    noise(100, 2),
    text(1_000),
    noise(1_200_000, 3),
    text(800_000),
  ]);

test("gzipStream: a mix of text and noise inflates to its input, through node:zlib, DecompressionStream and GNU gzip", async () => {
  const input = mixed();
  for (const way of WAYS) {
    for (const chunk of [4_000, 100_000, 4_000_000]) {
      const gz = await gzipped(input, way, chunk);
      assert.equal(sha256(gunzipSync(gz)), sha256(input), `${way}, ${chunk}-byte chunks`);
      assert.equal(sha256(await inflatedByWeb(gz)), sha256(input), `${way}: DecompressionStream`);
      const byGzip = execFileSync("gzip", ["-dc", inFile(gz)], { maxBuffer: 64 << 20 });
      assert.equal(sha256(byGzip), sha256(input), `${way}: gzip -dc`);
    }
  }
});

test("gzipStream by segments: the same bytes give the same blob however the source cuts them", async () => {
  const input = mixed();
  const blobs = new Set<string>();
  for (const chunk of [1_000, 65_536, 100_003, 4_000_000]) {
    blobs.add(sha256(await gzipped(input, "segments", chunk)));
  }
  assert.equal(blobs.size, 1, [...blobs].join(" "));
});

test("gzipStream by segments: one member, the header and the final empty block as gzip has them", async () => {
  const gz = await gzipped(mixed(), "segments");
  assert.deepEqual([...gz.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
  assert.deepEqual([...gz.subarray(-13, -8)], [1, 0, 0, 0xff, 0xff]);
  const view = new DataView(gz.buffer, gz.byteOffset, gz.length);
  assert.equal(view.getUint32(gz.length - 4, true), mixed().length);
  assert.doesNotThrow(() => execFileSync("gzip", ["-t", inFile(gz)]));
});

test("gzipStream by segments: noise is stored, 5 bytes a 64 KiB block; text is deflated", async () => {
  const size = 4 << 20;
  const stored = await gzipped(noise(size, 7), "segments");
  // header, per segment of 256 KiB its blocks (4 of 65535 bytes and one of 4), final block, trailer
  assert.equal(stored.length, 10 + size + 5 * 5 * (size / (256 << 10)) + 5 + 8);
  const deflated = await gzipped(text(size), "segments");
  assert.ok(deflated.length < size / 50, `${deflated.length} bytes`);
  const empty = await gzipped(new Uint8Array(0), "segments");
  assert.equal(gunzipSync(empty).length, 0);
});

test("gzipStream: a source that fails fails the stream; cancelling the stream cancels the source", async () => {
  for (const way of WAYS) {
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(text(300_000));
        controller.error(new Error("disk gone"));
      },
    });
    await assert.rejects(new Response(gzipStream(broken, way)).arrayBuffer(), /disk gone/, way);

    let cancelled: unknown = null;
    let given = 0;
    // Noise, which any gzip passes on at once, then nothing more until cancelled.
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (given++ < 64) controller.enqueue(noise(64 << 10, given));
        else return new Promise(() => {});
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const reader = gzipStream(endless, way).getReader();
    await reader.read();
    await reader.read();
    await reader.cancel("enough");
    // A pipe (CompressionStream's) passes the cancel on a few ticks later.
    for (let tick = 0; cancelled === null && tick < 100; tick++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(cancelled, "enough", way);
  }
});
