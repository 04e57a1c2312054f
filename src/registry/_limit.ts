// At most `max` tasks at once, the rest waiting in order: dockerd's maxConcurrentDownloads and
// maxConcurrentUploads.

/** Layers downloaded at once when `maxConcurrentDownloads` is not set (dockerd's default). */
export const DEFAULT_CONCURRENT_DOWNLOADS = 3;

/** Layers pushed at once when `maxConcurrentUploads` is not set (dockerd's default). */
export const DEFAULT_CONCURRENT_UPLOADS = 5;

/**
 * A runner of tasks, at most `max` at a time, started in the order given.
 *
 * @param max How many may run at once (at least 1).
 * @returns Runs a task when a place is free; resolves or rejects as it does.
 */
export function limiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  const waiting: (() => void)[] = [];
  let running = 0;
  // A finished task hands its place straight to the next waiting one.
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running--;
    else next();
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= Math.max(1, max)) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
