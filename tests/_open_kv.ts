// Opens a Deno KV database on the running runtime: Deno.openKv on Deno, the @deno/kv npm
// package on Node and Bun (on Bun with node:v8's serializers, which @deno/kv asks for there).
import type { Kv } from "../src/kv_store.ts";
import { retryWhileLocked } from "../src/kv_store.ts";

/** A Deno KV database and how to close it. */
export type ClosableKv = Kv & { close(): void };

/** Opens the SQLite file at `path` (or, on Node and Bun, a KV Connect URL). */
export async function openKv(path: string): Promise<ClosableKv> {
  if ("Deno" in globalThis) return await retryWhileLocked(() => Deno.openKv(path));
  const { openKv } = await import("@deno/kv");
  const options = "Bun" in globalThis
    ? await import("node:v8").then((v8) => ({ encodeV8: v8.serialize, decodeV8: v8.deserialize }))
    : {};
  return await retryWhileLocked(() => openKv(path, options));
}
