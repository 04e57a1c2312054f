// Hands out copies of small byte arrays carved from a shared slab, as Node's Buffer pool
// does: in Deno every new ArrayBuffer costs ~0.5 µs, more than reading a small file, while
// a copy into a slab costs ~50 ns. Each region is handed out once, so no two results
// share bytes; a result's `.buffer` is the slab, so read it through the view.

/** Copies at most this many bytes into the slab; larger results get their own buffer. */
const MAX_POOLED = 8192;
const SLAB_BYTES = 64 * 1024;

let slab = new Uint8Array(0);
let offset = 0;

/** A fresh copy of `bytes[0, length)` that nothing else references. */
export function copyOut(bytes: Uint8Array, length: number = bytes.length): Uint8Array {
  if (length > MAX_POOLED) return bytes.slice(0, length);
  // A slab whose buffer was transferred away reads as empty: start a new one.
  if (offset + length > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    offset = 0;
  }
  slab.set(length === bytes.length ? bytes : bytes.subarray(0, length), offset);
  const copy = slab.subarray(offset, offset + length);
  offset += (length + 7) & ~7;
  return copy;
}
