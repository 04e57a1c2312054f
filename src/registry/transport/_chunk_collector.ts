// Bun's `fetch` hands each chunk of an answer's body over in a buffer of its own (its bodies are
// not byte streams, so the bytes cannot land in the reader's buffers as they do on Deno), and the
// chunks alive while they pass from stage to stage outlive Bun's young collections: they wait for
// a full one, which came late enough that a pull of a 2 GiB layer peaked at 127–142 MiB, 25–35 MiB
// of it dead chunks. A full collection after every 32 MiB of such bodies held it at 100–112 MiB.

/** Counts the bytes of a body read in chunks of their own, and collects when enough are dead. */
export type ChunkCounter = (bytes: number) => void;

/** When and how {@linkcode chunkCollector} collects. */
export interface ChunkCollection {
  /** Bytes counted between two collections. */
  every: number;
  /** A full, synchronous collection. */
  collect(): void;
  /** The clock, in milliseconds. */
  now(): number;
}

/** Bytes of chunked bodies between two collections on Bun. */
const COLLECT_EVERY = 32 << 20;

/** Collections take at most one part in this many of the time. */
const TIME_SHARE = 20;

/**
 * A counter that collects once `every` bytes have been counted since the last collection, but
 * never sooner after it than 19 times as long as it took: a bigger heap takes longer to collect
 * (~8 ms for a pull's own heap here, up to ~190 ms beside 3 million live objects), so
 * collections never take more than a twentieth of the time, whatever the heap.
 *
 * @param collection The threshold, the collection and the clock.
 * @returns The counter; one for every body in the process, as the garbage is the process's.
 */
export function chunkCollector({ every, collect, now }: ChunkCollection): ChunkCounter {
  let counted = 0;
  let notBefore = -Infinity;
  return (bytes) => {
    counted += bytes;
    if (counted < every) return;
    const start = now();
    if (start < notBefore) return;
    counted = 0;
    collect();
    const end = now();
    notBefore = end + (end - start) * (TIME_SHARE - 1);
  };
}

/**
 * The counter for this runtime: a full collection (`Bun.gc(true)`, looked up at each call)
 * every 32 MiB on Bun; `null` elsewhere, where nothing is forced.
 *
 * @returns The counter, or `null`.
 */
export function runtimeChunkCollector(): ChunkCounter | null {
  const bun = (globalThis as { Bun?: { gc?(force: boolean): unknown } }).Bun;
  if (typeof bun?.gc !== "function") return null;
  return chunkCollector({
    every: COLLECT_EVERY,
    collect: () => void bun.gc!(true),
    now: () => performance.now(),
  });
}
