// `node:fs` for the Node/Bun adapter and the no-follow reader, looked up when first used, so
// importing an adapter costs nothing in a runtime that never calls it.

let cached: unknown;

/** `node:fs` from `process.getBuiltinModule`, typed as the part the caller uses. */
export function loadNodeFs<T>(): T {
  if (cached === undefined) {
    const process = (globalThis as {
      process?: { getBuiltinModule?(id: string): unknown };
    }).process;
    cached = process?.getBuiltinModule?.("node:fs");
    if (!cached) throw new Error("node:fs is not available: process.getBuiltinModule is missing");
  }
  return cached as T;
}
