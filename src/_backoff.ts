// The pause between two attempts of an optimistic write that lost a race (or met a locked
// database), shared by the stores that retry: Deno KV and Redis.

/** Full-jitter exponential backoff: up to 2 ms, 4 ms, … capped at 250 ms, after `attempt`. */
export function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(250, 2 ** Math.min(attempt + 1, 8));
  return new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * ceiling));
}
