// A layer's DiffID (the sha256 of its uncompressed tar) from the chunks of the layer as they
// pass on their way to disk or to another registry (`feeding`): handed over one by one, with
// backpressure, and no stream of its own in between (a tee or a second stream cost Deno a second
// and ~40 MiB on the image), and inflated without a buffer per chunk where node:zlib has
// its native handle (Node, Deno, Bun). That handle is not public API: it is used only where it is
// found, and tests/registry_diff_id_test.ts runs every other way this runtime has, to the same
// DiffIDs (docs/performance-registry.md has what each costs).
import { concat } from "./transport/limits.ts";
import { createHasher } from "./_verify.ts";
import { nodeBuiltin, runtimeName } from "../_runtime.ts";
import { type Relayed, relaySource, relayStream } from "../_relay.ts";

/** Takes a layer's chunks in order and tells its DiffID. */
export interface DiffIDSink {
  /**
   * The next chunk; wait for the promise, if any, before the next (never rejects). The sink is
   * done with the chunk's bytes when it returns: the caller may overwrite them.
   */
  write(chunk: Uint8Array): Promise<void> | void;
  /**
   * The DiffID once every chunk is written, or `null` when it cannot be computed: a compression
   * this runtime cannot open, or a corrupt stream.
   */
  close(): Promise<string | null>;
  /** Stops (the layer failed); `close` is not called afterwards. */
  abort(): void;
}

/** Where the uncompressed bytes go, for one way of inflating them. */
interface Inflater {
  write(chunk: Uint8Array): Promise<void> | void;
  end(): Promise<void>;
  destroy(): void;
}

/**
 * The native half of a node:zlib stream (`_handle`), as Node's and Deno's zlib.js drive it for
 * their *Sync functions: `writeSync` inflates from `input` into `output` and leaves in the
 * stream's `_writeState` the output room and the input bytes left; a corrupt stream calls
 * `onerror` instead. Not public API: where it is missing, the stream's own API is used.
 */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inputOffset: number,
    inputLength: number,
    output: Uint8Array,
    outputOffset: number,
    outputLength: number,
  ): void;
  onerror: (message: string) => void;
}

interface NodeGunzip {
  _handle?: ZlibHandle;
  _writeState?: Uint32Array;
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "drain", listener: () => void): unknown;
}

/** Bytes node:zlib inflates per call: its stream's 16 KiB default made Node's pull 20% slower. */
const GUNZIP_CHUNK = 256 << 10;

/**
 * node:zlib's gunzip: Node's `DecompressionStream` (20 and 22) reads its input without
 * backpressure, so a 256 MiB layer cost 360 MiB there; its zlib stream waits for `drain`.
 * Deno's inflates 64 MiB in 60 ms against 390 ms for its `DecompressionStream`.
 */
const nodeGunzip: (() => NodeGunzip) | null = (() => {
  const zlib = nodeBuiltin<{ createGunzip(options: { chunkSize: number }): NodeGunzip }>(
    "node:zlib",
    "createGunzip",
  );
  return zlib === null ? null : () => zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
})();

const Z_NO_FLUSH = 0;
const Z_FINISH = 4;
const EMPTY = new Uint8Array(0);

/**
 * A way to inflate gzip: node:zlib's native handle (`zlib-handle`, private), its stream
 * (`zlib-stream`) or `DecompressionStream` (`decompression-stream`).
 */
export type GunzipWay = "zlib-handle" | "zlib-stream" | "decompression-stream";

/** Whether `gunzip` has the native handle {@linkcode handleInflater} drives. */
function hasHandle(gunzip: NodeGunzip): boolean {
  return typeof gunzip._handle?.writeSync === "function" &&
    gunzip._writeState instanceof Uint32Array;
}

/**
 * The ways to inflate gzip this runtime has.
 *
 * @returns Them, the private one first when there.
 */
export function gunzipWays(): GunzipWay[] {
  const ways: GunzipWay[] = [];
  if (nodeGunzip !== null) {
    const probe = nodeGunzip();
    if (hasHandle(probe)) ways.push("zlib-handle");
    probe.destroy();
    ways.push("zlib-stream");
  }
  if (typeof DecompressionStream === "function") ways.push("decompression-stream");
  return ways;
}

let bestWay: GunzipWay | undefined;

/**
 * The way a sink inflates unless told: the native handle where found, else the stream, but on
 * Bun `DecompressionStream`, which pulled faster there than its node:zlib stream.
 */
function defaultGunzipWay(): GunzipWay {
  if (bestWay !== undefined) return bestWay;
  const ways = gunzipWays();
  const preferred: GunzipWay[] = runtimeName() === "bun"
    ? ["zlib-handle", "decompression-stream", "zlib-stream"]
    : ["zlib-handle", "zlib-stream", "decompression-stream"];
  return bestWay = preferred.find((way) => ways.includes(way)) ?? "decompression-stream";
}

/**
 * gzip inflated by node:zlib's native handle (see {@linkcode hasHandle}), synchronously, into one
 * output buffer reused for the whole layer and hashed in place. Through the stream API each
 * inflated chunk was a new buffer: on Deno that garbage outgrew what its collector frees young
 * (~50 MiB more at the peak of the pull) and the stream's bookkeeping cost ~0.8 s of its
 * CPU.
 */
function handleInflater(gunzip: NodeGunzip, update: (chunk: Uint8Array) => void): Inflater {
  const handle = gunzip._handle!;
  const state = gunzip._writeState!;
  const output = new Uint8Array(GUNZIP_CHUNK);
  let error: Error | null = null;
  // In place of the stream's own handler, which would emit an `error` nobody listens to.
  handle.onerror = (message) => {
    error = new Error(message);
  };
  const inflate = (flush: number, input: Uint8Array) => {
    for (let offset = 0;;) {
      const length = input.length - offset;
      handle.writeSync(flush, input, offset, length, output, 0, output.length);
      if (error !== null) throw error;
      const room = state[0]!;
      if (room < output.length) update(output.subarray(0, output.length - room));
      offset += length - state[1]!;
      if (room > 0) return; // zlib stopped for want of input, not of room
    }
  };
  return {
    write: (chunk) => inflate(Z_NO_FLUSH, chunk),
    end() {
      try {
        inflate(Z_FINISH, EMPTY); // a stream cut short is an error here
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      } finally {
        gunzip.destroy();
      }
    },
    destroy: () => gunzip.destroy(),
  };
}

/**
 * gzip inflated by node:zlib's stream into `update`, `drain` by `drain`; `fail` hears a corrupt
 * stream.
 */
function streamInflater(
  gunzip: NodeGunzip,
  update: (chunk: Uint8Array) => void,
  fail: () => void,
): Inflater {
  let wake: (() => void) | null = null;
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on("end", resolve);
    gunzip.on("error", (error) => {
      wake?.();
      fail();
      reject(error);
    });
  });
  done.catch(() => {}); // read by end()
  gunzip.on("data", update);
  return {
    write(chunk: Uint8Array): Promise<void> | void {
      if (gunzip.write(chunk.slice())) return; // queued: a copy, as the caller's may change
      return new Promise<void>((resolve) => {
        wake = resolve;
        gunzip.once("drain", resolve);
      });
    },
    end: () => {
      gunzip.end();
      return done;
    },
    destroy: () => gunzip.destroy(),
  };
}

/** gzip inflated by `DecompressionStream` into `update`, `ready` by `ready`; `fail` as above. */
function webInflater(update: (chunk: Uint8Array) => void, fail: () => void): Inflater {
  const gunzip = new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>;
  const writer = gunzip.writable.getWriter();
  const reader = gunzip.readable.getReader();
  const done = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      update(value);
    }
  })();
  done.catch(fail);
  return {
    async write(chunk) {
      await writer.ready;
      // Queued, so a copy (the caller's may change); its failure fails `done`.
      writer.write(chunk.slice()).catch(() => {});
    },
    async end() {
      await writer.close();
      await done;
    },
    destroy() {
      writer.abort().catch(() => {});
      reader.cancel().catch(() => {});
    },
  };
}

/** The first bytes of compressed streams this cannot open (zstd, bzip2, xz). */
const UNREADABLE_MAGIC = [[0x28, 0xb5, 0x2f, 0xfd], [0x42, 0x5a, 0x68], [0xfd, 0x37, 0x7a, 0x58]];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return magic.every((byte, i) => head[i] === byte);
}

/** gzip inflated `way` into `update`; `fail` hears a corrupt stream. */
function gunzipInflater(
  way: GunzipWay,
  update: (chunk: Uint8Array) => void,
  fail: () => void,
): Inflater {
  if (way === "decompression-stream" || nodeGunzip === null) return webInflater(update, fail);
  const gunzip = nodeGunzip();
  return way === "zlib-handle" && hasHandle(gunzip)
    ? handleInflater(gunzip, update)
    : streamInflater(gunzip, update, fail);
}

/**
 * A DiffID computed from the chunks written to it. gzip (sniffed from the first bytes, as
 * dockerd does, not trusted from the media type) is inflated with node:zlib (Node, Deno, Bun) or
 * `DecompressionStream`; anything else not compressed is hashed as is.
 *
 * @param way How to inflate gzip, one of {@linkcode gunzipWays}; the fastest this runtime has
 * unless told.
 * @returns The sink.
 */
export function diffIDSink(way: GunzipWay = defaultGunzipWay()): DiffIDSink {
  const hasher = createHasher("sha256")!;
  const update = (chunk: Uint8Array) => hasher.update(chunk);
  const head: Uint8Array[] = [];
  let headLength = 0;
  // Until 4 bytes are in, the kind is unknown; `null` once it cannot be computed.
  let inflater: Inflater | null | undefined;
  let failed = false;

  const fail = () => {
    failed = true;
    inflater?.destroy();
    inflater = null;
  };
  const start = (first: Uint8Array): Promise<void> | void => {
    if (UNREADABLE_MAGIC.some((magic) => startsWith(first, magic))) return fail();
    if (!startsWith(first, [0x1f, 0x8b])) {
      inflater = { write: update, end: () => Promise.resolve(), destroy: () => {} };
    } else {
      inflater = gunzipInflater(way, update, fail);
    }
    return send(first);
  };
  const send = (chunk: Uint8Array): Promise<void> | void => {
    try {
      const wait = inflater!.write(chunk);
      if (wait !== undefined) return wait.catch(fail);
    } catch {
      fail();
    }
  };

  return {
    write(chunk) {
      if (failed || chunk.length === 0) return;
      if (inflater !== undefined) return inflater === null ? undefined : send(chunk);
      head.push(chunk.slice());
      headLength += chunk.length;
      if (headLength >= 4) return start(concat(head, headLength));
    },
    async close() {
      if (!failed && inflater === undefined) await start(concat(head, headLength));
      if (failed || inflater === null || inflater === undefined) return null;
      try {
        await inflater.end();
      } catch {
        return null;
      }
      return failed ? null : `sha256:${hasher.hex()}`;
    },
    abort: fail,
  };
}

/**
 * `stream`, its every chunk also going into `diffID` when there is one: the DiffID takes the
 * bytes before they are handed on (a byte stream's reader may reuse its buffer at once), and the
 * next ones are read only when it is done with them, so neither side queues. `stop` cancels
 * `stream` and fails the one returned.
 *
 * @param stream A layer's bytes, nobody reading them yet.
 * @param diffID Where the bytes also go, or `null`.
 * @param stop Ends the stream.
 * @returns The same bytes, a byte stream when `stream` is one.
 */
export function feeding(
  stream: ReadableStream<Uint8Array>,
  diffID: DiffIDSink | null,
  stop: AbortSignal,
): ReadableStream<Uint8Array> {
  const source = relaySource(stream);
  const stopped = () => source.cancel(stop.reason).catch(() => {});
  stop.addEventListener("abort", stopped, { once: true });
  const settle = () => stop.removeEventListener("abort", stopped);
  return relayStream(source.byob, {
    async pull(into) {
      let result: Relayed;
      try {
        stop.throwIfAborted();
        result = await source.read(into);
        stop.throwIfAborted();
      } catch (error) {
        settle();
        source.cancel(error).catch(() => {});
        throw error;
      }
      if (result.done) settle();
      else await diffID?.write(result.value);
      return result;
    },
    cancel(reason) {
      settle();
      return source.cancel(reason);
    },
  });
}
