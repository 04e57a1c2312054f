// The read-modify-write of one key that every store's `update` and the services share.
import { sameBytes } from "./_bytes.ts";
import { errorCode } from "./_map_error.ts";
import type { MetadataStore } from "./metadata_store.ts";

/**
 * Reads `namespace/key` (`null` when absent), writes what `fn` returns (`null` deletes) and
 * skips a write that would change nothing: `null` for an absent key leaves it absent, as every
 * store's own `update` does. The caller holds whatever lock makes it atomic.
 *
 * A directory in the way reads as corrupt (empty), as in Go, and the write then fails with
 * EEXIST. Other read failures (EIO, EACCES, a symlink) are passed on: Go reads them as an
 * empty list and overwrites every entry with one.
 */
export async function readModifyWrite(
  store: MetadataStore,
  namespace: string,
  key: string,
  fn: (old: Uint8Array | null) => Uint8Array | null,
): Promise<void> {
  let old: Uint8Array | null;
  try {
    old = await store.get(namespace, key);
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT") old = null;
    else if (code === "EISDIR") old = new Uint8Array();
    else throw error;
  }
  const next = fn(old);
  if (next === null) {
    if (old !== null) await store.delete(namespace, key);
  } else if (old === null || !sameBytes(old, next)) await store.set(namespace, key, next);
}
