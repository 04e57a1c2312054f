// A last-resort cleanup for processes and files a test file started, should it end without
// stopping them: on a crash, or under `deno test --filter`, which skips after() hooks.
import process from "node:process";

/**
 * Runs `cleanUp` (synchronous) when the test process ends, unless cancelled first. Node and
 * Bun emit `exit` on process; `deno test` does not, but dispatches `unload`.
 *
 * @param cleanUp What to do.
 * @returns Cancels it (call once the orderly stop has run).
 */
export function onExit(cleanUp: () => void): () => void {
  const listener = () => {
    if (cancel()) cleanUp();
  };
  let pending = true;
  const cancel = () => {
    const was = pending;
    pending = false;
    process.off("exit", listener);
    globalThis.removeEventListener?.("unload", listener);
    return was;
  };
  process.once("exit", listener);
  globalThis.addEventListener?.("unload", listener);
  return cancel;
}
