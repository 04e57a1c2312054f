// Streams that pass bytes on after looking at them (counting, hashing, inflating), built so the
// bytes can land straight in the final reader's buffers. When the source is a byte stream (Deno's
// and browsers' fetch bodies are), a relay is one too and forwards its reader's BYOB reads to
// it: a reader that reuses two buffers (the layout store's file writer) then has a whole pull
// allocate no chunk at all, where a fresh chunk per read left Deno with tens of MiB of dead
// buffers between collections. A reader that reads the usual way still gets chunks of its own.

/** The size of the chunks a byte-stream relay allocates for a reader that brings no buffer. */
const RELAY_CHUNK = 64 << 10;

/**
 * What a relay hands on: the next bytes, or the end (with the reader's buffer when a BYOB read
 * detached the one it gave).
 */
export type Relayed =
  | { done: false; value: Uint8Array }
  | { done: true; value?: Uint8Array | undefined };

/**
 * Reads a stream either way: into a buffer given (a BYOB read when the stream is a byte stream,
 * else a copy of its chunk, the rest kept for the next read) or as its own chunks.
 */
export interface RelaySource {
  /** Whether reads into a buffer cost no copy (the stream is a byte stream). */
  readonly byob: boolean;
  /**
   * The next bytes. With `into`, they are read into its memory, at its offset: `into` itself
   * may be detached (a BYOB read transfers its buffer), the result views that memory, or memory
   * of the same shape that took its place (a relay whose read failed and was retried). Only the
   * bytes read are defined there: write nothing into `into` before the read.
   */
  read(into?: Uint8Array): Promise<Relayed>;
  /** Cancels the stream. */
  cancel(reason?: unknown): Promise<void>;
}

/**
 * A BYOB reader of `stream`, or `null` when it is not a byte stream.
 *
 * @param stream A stream nobody reads yet.
 * @returns The reader, or `null` (the stream is left unlocked).
 */
export function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return null;
  }
}

/**
 * `stream` as a {@linkcode RelaySource}.
 *
 * @param stream A stream nobody reads yet.
 * @returns The source, which locks `stream`.
 */
export function relaySource(stream: ReadableStream<Uint8Array>): RelaySource {
  const byob = byobReader(stream);
  if (byob !== null) {
    return {
      byob: true,
      read: (into = new Uint8Array(RELAY_CHUNK)) => byob.read(into) as Promise<Relayed>,
      cancel: (reason) => byob.cancel(reason),
    };
  }
  const reader = stream.getReader();
  let rest: Uint8Array | null = null;
  return {
    byob: false,
    async read(into) {
      if (into === undefined) {
        if (rest === null) return await reader.read();
        const value = rest;
        rest = null;
        return { done: false, value };
      }
      if (rest === null) {
        const result = await reader.read();
        if (result.done) return { done: true, value: into.subarray(0, 0) };
        rest = result.value;
      }
      const length = Math.min(rest.length, into.length);
      into.set(rest.subarray(0, length));
      rest = length < rest.length ? rest.subarray(length) : null;
      return { done: false, value: into.subarray(0, length) };
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

/** How a relay gets its bytes. */
export interface Relay {
  /**
   * The next bytes to hand on, or the end. With `into` (a byte stream's reader's buffer), they
   * must be in its memory from its offset on, as {@linkcode RelaySource.read} leaves them.
   */
  pull(into: Uint8Array | undefined): Promise<Relayed>;
  /** The reader cancelled. */
  cancel(reason: unknown): Promise<void>;
  /** The stream's controller, for errors that come between reads. */
  start?(controller: { error(reason: unknown): void }): void;
}

/**
 * A stream of what `relay` pulls: a byte stream handing its reader's buffers to `relay.pull`
 * when `byob`, else a default stream of the chunks it returns. Either way it pulls only when
 * read (no queue of its own).
 *
 * @param byob Whether to forward BYOB reads (the relay's source takes them without a copy).
 * @param relay Where the bytes come from.
 * @returns The stream.
 */
export function relayStream(byob: boolean, relay: Relay): ReadableStream<Uint8Array> {
  const cancel = (reason: unknown) => relay.cancel(reason);
  if (!byob) {
    return new ReadableStream<Uint8Array>({
      start: (controller) => relay.start?.(controller),
      async pull(controller) {
        const { done, value } = await relay.pull(undefined);
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel,
    }, { highWaterMark: 0 });
  }
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: RELAY_CHUNK,
    start: (controller) => relay.start?.(controller),
    async pull(controller) {
      const request = controller.byobRequest!;
      const { done, value } = await relay.pull(request.view as Uint8Array);
      if (!done) return request.respondWithNewView(value);
      controller.close();
      // A BYOB reader's read resolves only once its buffer is handed back.
      if (value === undefined) request.respond(0);
      else request.respondWithNewView(value.subarray(0, 0));
    },
    cancel,
  }, { highWaterMark: 0 });
}

/**
 * Where a reader's buffer sits, to read into its memory again after a BYOB read detached it (the
 * memory comes back in the read's result), or into new memory of the same shape after a read
 * that failed kept it (a byte stream then takes a buffer of the same length in its place).
 */
export class ReadTarget {
  readonly #bufferLength: number;
  readonly #byteOffset: number;
  readonly #length: number;

  /** @param into A reader's buffer, before anything reads into it. */
  constructor(into: Uint8Array) {
    this.#bufferLength = into.buffer.byteLength;
    this.#byteOffset = into.byteOffset;
    this.#length = into.length;
  }

  /**
   * The whole buffer again.
   *
   * @param read What a read into it returned (its memory), or nothing when the read failed.
   * @returns A view of the buffer's full length from its offset.
   */
  again(read?: Uint8Array): Uint8Array {
    const buffer = read?.buffer ?? new ArrayBuffer(this.#bufferLength);
    return new Uint8Array(buffer, this.#byteOffset, this.#length);
  }
}

/**
 * `body` as it is read, each read through `step`, which may look at it or fail it instead (a
 * relay of its chunks as they are: no copy).
 *
 * @param body A stream nobody reads yet.
 * @param step Runs each read (`read`), and gives what it gave or fails.
 * @returns The stream, which pulls `body` only when read.
 */
export function readThrough(
  body: ReadableStream<Uint8Array>,
  step: (read: () => Promise<Relayed>) => Promise<Relayed>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return relayStream(false, {
    pull: () => step(() => reader.read()),
    cancel: (reason) => reader.cancel(reason),
  });
}
