// The DiffID sink pull feeds each layer's chunks into: the sha256 of the uncompressed bytes for
// gzip at any level and in any chunking (output crossing the inflater's buffer many times), as
// is for an uncompressed tar, and null for what cannot be proved: a cut or corrupt gzip, bytes
// after the end that are not another member, a compression this cannot open. Every case runs
// every way of inflating this runtime has: node:zlib's native handle (private API, the default
// where found) and the public ones, node:zlib's stream and `DecompressionStream`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { diffIDSink, type GunzipWay, gunzipWays } from "../src/registry/_diff_id.ts";
import { noise } from "./registry/_image_builder.ts";
import { runtimeName } from "./_runtime.ts";

function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const WAYS = gunzipWays();

/** The DiffID of `data` written in pieces of `piece` bytes, each write waited for. */
async function diffIDOf(
  data: Uint8Array,
  piece: number,
  way: GunzipWay,
): Promise<string | null> {
  const sink = diffIDSink(way);
  for (let offset = 0; offset < data.length; offset += piece) {
    await sink.write(data.subarray(offset, offset + piece));
  }
  return await sink.close();
}

// Half noise, half text: stored blocks at level 0, real deflate (3x and more) at 6 and 9.
const tar = concat(noise(1_500_000, 3), new TextEncoder().encode("layer ".repeat(400_000)));

test("Node, Deno and Bun have node:zlib's native handle and both public ways", () => {
  assert.deepEqual(WAYS, ["zlib-handle", "zlib-stream", "decompression-stream"]);
});

test("gzip'd layers at levels 0, 1, 6 and 9, in any chunking, give the tar's sha256 every way", async () => {
  for (const way of WAYS) {
    for (const level of [0, 1, 6, 9]) {
      const gz = gzipSync(tar, { level });
      // The handle's output buffer is the one to cross in every way; the streams own theirs.
      const pieces = way === "zlib-handle" ? [4093, 65_536, 1 << 20, gz.length] : [4093, gz.length];
      for (const piece of pieces) {
        const what = `${way}, level ${level}, pieces of ${piece}`;
        assert.equal(await diffIDOf(gz, piece, way), sha256(tar), what);
      }
    }
  }
  // Byte by byte once, at level 9 where the handle's 256 KiB output buffer fills most: 300 kB of
  // noise (stored blocks) and all the text inflate to 2.7 MB, crossing it 10 times in 0.3
  // million writes (the whole tar took 1.6 million, proving nothing more).
  const tail = tar.subarray(1_200_000);
  const gz = gzipSync(tail, { level: 9 });
  assert.equal(await diffIDOf(gz, 1, "zlib-handle"), sha256(tail), "zlib-handle, pieces of 1");
});

test("an uncompressed tar is hashed as it is, an empty layer too", async () => {
  for (const way of WAYS) {
    assert.equal(await diffIDOf(tar, 10_000, way), sha256(tar), way);
    assert.equal(await diffIDOf(new Uint8Array(0), 65_536, way), sha256(new Uint8Array(0)), way);
  }
});

test("gzip members one after another are one layer, every way", async () => {
  const a = tar.subarray(0, 700_000);
  const b = tar.subarray(700_000);
  const gz = concat(gzipSync(a), gzipSync(b, { level: 0 }));
  for (const way of WAYS) {
    // Deno's DecompressionStream fails on a second member ("failed to write whole buffer"): no
    // DiffID, never a wrong one. Deno inflates with node:zlib, which has no such limit.
    const expected = runtimeName === "deno" && way === "decompression-stream" ? null : sha256(tar);
    assert.equal(await diffIDOf(gz, 5000, way), expected, way);
  }
});

test("a cut, corrupt or trailed gzip, or zstd, bzip2 and xz, have no DiffID, every way", async () => {
  const gz = gzipSync(tar);
  const corrupt = gz.slice();
  corrupt[gz.length >> 1] = corrupt[gz.length >> 1]! ^ 0xff;
  const cases: [string, Uint8Array][] = [
    ["cut before its trailer", gz.subarray(0, gz.length - 4)],
    ["cut after its header", gz.subarray(0, 10)],
    ["corrupt in the middle", corrupt],
    ["followed by garbage", concat(gz, new TextEncoder().encode("not gzip"))],
    ["zstd", concat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]), tar.subarray(0, 1000))],
    ["bzip2", concat(new TextEncoder().encode("BZh9"), tar.subarray(0, 1000))],
    ["xz", concat(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), tar.subarray(0, 1000))],
  ];
  for (const way of WAYS) {
    for (const [what, data] of cases) {
      assert.equal(await diffIDOf(data, 3000, way), null, `${way}: ${what}`);
    }
  }
});

test("an aborted sink takes no more and many sinks at once keep their own state, every way", async () => {
  for (const way of WAYS) {
    const aborted = diffIDSink(way);
    await aborted.write(gzipSync(tar).subarray(0, 100_000));
    aborted.abort();
    await aborted.write(tar.subarray(0, 10)); // ignored, no throw

    const layers = [0, 1, 2, 3].map((i) => tar.subarray(i * 100_000));
    const sinks = layers.map(() => diffIDSink(way));
    const zipped = layers.map((layer) => gzipSync(layer));
    for (let offset = 0; offset < zipped[0]!.length; offset += 7000) {
      for (const [i, sink] of sinks.entries()) {
        await sink.write(zipped[i]!.subarray(offset, offset + 7000));
      }
    }
    const ids = await Promise.all(sinks.map((sink) => sink.close()));
    assert.deepEqual(ids, layers.map(sha256), way);
  }
});
