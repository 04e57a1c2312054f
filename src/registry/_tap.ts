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
