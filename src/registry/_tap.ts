// A second reader of a stream without a second buffer: each chunk that passes is also handed to
// a consumer (pull computes a layer's DiffID so while the layer streams to disk), and the
// stream moves at the pace of the slower of the two, so neither side queues without bound
// (ReadableStream.tee would queue for the slower branch).

/** A pass-through stream, the consumer's result, and a way to end the consumer's input early. */
export interface Tap<T> {
  /** Pipe the stream through this. */
  stream: TransformStream<Uint8Array, Uint8Array>;
  /** What the consumer made of the bytes. */
  result: Promise<T>;
  /** Fails the consumer's input (when the main stream fails, which the tap cannot see). */
  abort(reason: unknown): void;
}

/**
 * Tees a stream into `consume` with backpressure from both sides. A consumer that stops
 * reading (cancels) just stops receiving.
 *
 * @param consume Reads its own stream of the same chunks.
 * @returns The tap.
 */
export function tap<T>(consume: (stream: ReadableStream<Uint8Array>) => Promise<T>): Tap<T> {
  const copy = new TransformStream<Uint8Array, Uint8Array>();
  const writer = copy.writable.getWriter();
  const result = consume(copy.readable);
  let open = true;
  const stop = () => {
    open = false;
  };
  return {
    stream: new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        controller.enqueue(chunk);
        if (!open) return;
        try {
          await writer.ready;
          writer.write(chunk).catch(stop);
        } catch {
          stop();
        }
      },
      async flush() {
        if (open) await writer.close().catch(stop);
      },
    }),
    result,
    abort(reason) {
      if (open) writer.abort(reason).catch(stop);
      stop();
    },
  };
}

/**
 * Gathers small chunks (a socket's 16–64 KiB) into chunks of `size` bytes, so every stage
 * after it (hashing, decompressing, writing) runs a few times per MiB instead of dozens. Each
 * chunk is a new buffer: whoever receives it may keep it.
 *
 * @param size The size of the chunks passed on (the last one may be shorter).
 * @returns The stream.
 */
export function coalesce(size: number): TransformStream<Uint8Array, Uint8Array> {
  let buffer = new Uint8Array(size);
  let length = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (length === 0 && chunk.length >= size) return controller.enqueue(chunk);
      for (let offset = 0; offset < chunk.length;) {
        const taken = Math.min(size - length, chunk.length - offset);
        buffer.set(chunk.subarray(offset, offset + taken), length);
        length += taken;
        offset += taken;
        if (length === size) {
          controller.enqueue(buffer);
          buffer = new Uint8Array(size);
          length = 0;
        }
      }
    },
    flush(controller) {
      if (length > 0) controller.enqueue(buffer.subarray(0, length));
    },
  });
}
