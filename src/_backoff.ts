// The retry-until-deadline loop of the stores that write optimistically (Deno KV, Redis):
// an attempt that lost a race (or met a locked database) is tried again after a pause,
// until a deadline.

/** Full-jitter exponential backoff: up to 2 ms, 4 ms, … capped at 250 ms, after `attempt`. */
function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(250, 2 ** Math.min(attempt + 1, 8));
  return new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * ceiling));
}

/** What an attempt of {@linkcode retryUntil} returns to be tried again. */
export const AGAIN: unique symbol = Symbol("again");

/**
 * Runs `attempt` until it returns something other than {@linkcode AGAIN}, with backoff
 * between tries; once `deadline` (a `Date.now()` time) has passed, throws what `busy`
 * returns instead of trying again. What `attempt` throws ends the loop.
 */
export async function retryUntil<T>(
  deadline: number,
  busy: () => unknown,
  attempt: () => Promise<T | typeof AGAIN>,
): Promise<T> {
  for (let tries = 0;; tries++) {
    const result = await attempt();
    if (result !== AGAIN) return result;
    if (Date.now() >= deadline) throw busy();
    await backoff(tries);
  }
}
