// gzip as a pull stream, one segment of the input at a time as the reader asks for more, so a
// slow reader (a file, an upload) never leaves compressed output queued.
//
// Layers are often full of bytes nothing compresses (random data, archives, images, packed
// binaries). zlib spends as long on those as on text (64 MiB of random data: 1.3–2.2 s at level
// 1 here) and at level 1 even grows them (by 5% with the zlib-ng that Deno and Bun ship). So
// each segment's bytes are weighed first: a segment whose byte entropy leaves deflate under 1%
// to gain goes into stored blocks (a copy), any other is deflated at zlib's fastest level.
// Every deflated segment ends in a sync flush, so it ends on a byte boundary with no final
// block, and the segments form one deflate stream: one gzip member, as any gzip reader expects.
// A layer's digest is this compressor's anyway (no other gzip gives the same bytes).
//
// Without node:zlib (edge runtimes), `CompressionStream` gzips the whole stream.
import { nodeBuiltin } from "../_runtime.ts";
import { concat } from "./transport/limits.ts";

interface NodeDeflate {
  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean;
  flush(kind: number, callback: () => void): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  destroy(): void;
}

interface NodeZlib {
  createDeflateRaw(options: { level: number }): NodeDeflate;
  crc32(data: Uint8Array, value?: number): number;
  constants: { Z_FULL_FLUSH: number };
}

const nodeZlib = nodeBuiltin<NodeZlib>("node:zlib", "crc32");

/** zlib's level for the segments deflated: the fastest. */
const LEVEL = 1;

/** The input weighed and compressed at once: large enough that a restarted window costs little. */
const SEGMENT = 256 << 10;

/** Stored blocks hold at most this many bytes each. */
const STORED_MAX = 0xffff;

/** Bits per byte above which deflate would save under 1% (Huffman coding's bound). */
const ENTROPY_STORED = 7.92;

/** gzip's header: deflate, no name, no time, unknown OS. */
const HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** What a flush ends with: an empty stored block's length and its complement. */
const SYNC_MARKER = new Uint8Array([0, 0, 0xff, 0xff]);

/** The last deflate block: stored, final, empty. */
const FINAL_BLOCK = new Uint8Array([1, 0, 0, 0xff, 0xff]);

/** The ways to gzip: node:zlib segment by segment, where the runtime has it, or `CompressionStream`. */
export type GzipWay = "segments" | "compression-stream";

/**
 * `source` gzipped, as the reader pulls.
 *
 * @param source The bytes to compress.
 * @param way How (default: by segments when node:zlib is present); tests force each.
 * @returns The gzip stream.
 */
export function gzipStream(
  source: ReadableStream<Uint8Array>,
  way: GzipWay = nodeZlib === null ? "compression-stream" : "segments",
): ReadableStream<Uint8Array> {
  if (way === "compression-stream" || nodeZlib === null) {
    return source.pipeThrough(
      new CompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  return segmentedGzip(source, nodeZlib);
}

function segmentedGzip(
  source: ReadableStream<Uint8Array>,
  zlib: NodeZlib,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let pending: Uint8Array | null = null;
  let crc = 0;
  let length = 0;
  /**
   * The next `SEGMENT` bytes (fewer at the end, none past it), in the source's pieces: what
   * becomes of them depends on the bytes alone, never on how the source cut them, so the same
   * layer always gives the same blob (the same digest for every builder).
   */
  async function nextSegment(): Promise<Segment> {
    const pieces: Uint8Array[] = [];
    let size = 0;
    while (size < SEGMENT) {
      let chunk = pending;
      pending = null;
      if (chunk === null) {
        const { done, value } = await reader.read();
        if (done) break;
        chunk = value;
      }
      if (size + chunk.length > SEGMENT) {
        pending = chunk.subarray(SEGMENT - size);
        chunk = chunk.subarray(0, SEGMENT - size);
      }
      crc = zlib.crc32(chunk, crc);
      pieces.push(chunk);
      size += chunk.length;
    }
    length += size;
    return { pieces, size };
  }
  const deflater = new Deflater(zlib);
  // The next segment is read while this one is compressed.
  let ahead: Promise<Segment> | null = null;
  /** The compressed form of the next segment (none while zlib holds it back), or the end. */
  async function nextOutput(): Promise<{ chunks: Uint8Array[]; done: boolean }> {
    const segment = await (ahead ?? nextSegment());
    ahead = segment.size === 0 ? null : nextSegment();
    ahead?.catch(() => {}); // awaited by the next call, or the stream is cancelled
    if (segment.size === 0) {
      const rest = await deflater.flush();
      deflater.destroy();
      return { chunks: [...rest, FINAL_BLOCK, trailer(crc, length)], done: true };
    }
    // Stored, the pieces are copied once, into the blocks; deflated, zlib takes them whole.
    const chunks = entropy(segment) > ENTROPY_STORED
      ? [...await deflater.flush(), storedBlocks(segment)]
      : await deflater.write(concat(segment.pieces, segment.size));
    return { chunks, done: false };
  }
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(HEADER);
    },
    // A pull that enqueued nothing would not be called again: it goes on until output comes.
    async pull(controller) {
      try {
        for (;;) {
          const { chunks, done } = await nextOutput();
          for (const chunk of chunks) controller.enqueue(chunk);
          if (done) return controller.close();
          if (chunks.length > 0) return;
        }
      } catch (error) {
        deflater.destroy();
        throw error;
      }
    },
    cancel(reason) {
      deflater.destroy();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** A segment of the input: its bytes as the source cut them, and their count. */
interface Segment {
  pieces: Uint8Array[];
  size: number;
}

/** The entropy sample: the first `SAMPLE` bytes of every `STRIDE`. */
const STRIDE = 16 << 10;
const SAMPLE = 4 << 10;

/** Bits per byte of a sample of the segment: the first 4 KiB of every 16 KiB. */
function entropy(segment: Segment): number {
  const counts = new Uint32Array(256);
  let sampled = 0;
  let offset = 0; // of the piece, in the segment
  for (const piece of segment.pieces) {
    const end = offset + piece.length;
    for (let start = offset - (offset % STRIDE); start < end; start += STRIDE) {
      const from = Math.max(start, offset) - offset;
      const to = Math.min(start + SAMPLE, end) - offset;
      for (let i = from; i < to; i++) counts[piece[i]!]!++;
      if (to > from) sampled += to - from;
    }
    offset = end;
  }
  let bits = 0;
  for (const count of counts) {
    if (count > 0) bits -= (count / sampled) * Math.log2(count / sampled);
  }
  return bits;
}

/** The segment as non-final stored blocks, each a 5-byte header and up to 64 KiB. */
function storedBlocks(segment: Segment): Uint8Array {
  const out = new Uint8Array(segment.size + 5 * Math.ceil(segment.size / STORED_MAX));
  let at = 0;
  let copied = 0;
  let left = 0; // bytes of the current block still to copy
  for (const piece of segment.pieces) {
    for (let offset = 0; offset < piece.length;) {
      if (left === 0) {
        left = Math.min(STORED_MAX, segment.size - copied);
        out.set([0, left & 0xff, left >> 8, ~left & 0xff, ~left >> 8 & 0xff], at);
        at += 5;
      }
      const taken = Math.min(left, piece.length - offset);
      out.set(piece.subarray(offset, offset + taken), at);
      at += taken;
      offset += taken;
      copied += taken;
      left -= taken;
    }
  }
  return out;
}

/**
 * One raw deflate stream for a member's deflated segments. Before stored blocks and at the
 * end it is flushed with Z_FULL_FLUSH: its output then ends on a byte boundary with no final
 * block, and nothing deflated later refers back across the stored bytes.
 */
class Deflater {
  readonly #zlib: NodeZlib;
  #stream: NodeDeflate | null = null;
  readonly #out: Uint8Array[] = [];
  #error: Error | null = null;
  /** Whether bytes were written since the last flush (another flush would give nothing). */
  #unflushed = false;

  constructor(zlib: NodeZlib) {
    this.#zlib = zlib;
  }

  /** Deflates `data`; returns the output ready so far. */
  async write(data: Uint8Array): Promise<Uint8Array[]> {
    const stream = this.#stream ?? this.#open();
    this.#unflushed = true;
    await new Promise<void>((resolve, reject) =>
      stream.write(data, (error) => error ? reject(error) : resolve())
    );
    return this.#out.splice(0);
  }

  /** Flushes what was written; returns the output, which ends on a byte boundary. */
  async flush(): Promise<Uint8Array[]> {
    const stream = this.#stream;
    if (stream === null || !this.#unflushed) return [];
    this.#unflushed = false;
    await new Promise<void>((resolve) => stream.flush(this.#zlib.constants.Z_FULL_FLUSH, resolve));
    if (this.#error !== null) throw this.#error;
    const out = this.#out.splice(0);
    // zlib gives a flush's output before it calls back; were it late, the bytes would be out
    // of order, so a flush not ending in its empty stored block is refused, never sent.
    if (!endsWith(out, SYNC_MARKER)) throw new Error("zlib flushed without its sync marker");
    return out;
  }

  destroy(): void {
    this.#stream?.destroy();
    this.#stream = null;
  }

  #open(): NodeDeflate {
    const stream = this.#zlib.createDeflateRaw({ level: LEVEL });
    stream.on("data", (chunk) => this.#out.push(chunk));
    stream.on("error", (error) => this.#error ??= error);
    this.#stream = stream;
    return stream;
  }
}

/** Whether the chunks, joined, end with `tail`. */
function endsWith(chunks: Uint8Array[], tail: Uint8Array): boolean {
  let missing = tail.length;
  for (let i = chunks.length - 1; i >= 0 && missing > 0; i--) {
    const chunk = chunks[i]!;
    const take = Math.min(missing, chunk.length);
    for (let j = 1; j <= take; j++) {
      if (chunk[chunk.length - j] !== tail[missing - j]) return false;
    }
    missing -= take;
  }
  return missing === 0;
}

/** gzip's trailer: the CRC-32 and the length modulo 2^32, little-endian. */
function trailer(crc: number, length: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, crc >>> 0, true);
  view.setUint32(4, length % 2 ** 32, true);
  return out;
}
