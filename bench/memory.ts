// Heap bytes per entry: 100 000 diffid-by-digest mappings (71-byte values) in a
// FSMetadataStore on MemoryFileSystem. Prints one JSON line. Deno needs
// --v8-flags=--expose-gc, Node --expose-gc; Bun collects with Bun.gc.
import { FSMetadataStore, MemoryFileSystem } from "../mod.ts";

const ENTRIES = 100_000;
const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
const collect = () => g.Bun ? g.Bun.gc(true) : g.gc?.();
// ArrayBuffer contents live outside the JS heap ("external"): count both.
function heap(): number {
  collect();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + (external ?? 0);
}

const hex = (i: number) => i.toString(16).padStart(64, "0");
const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
const before = heap();
for (let i = 0; i < ENTRIES; i++) {
  await store.set(
    "diffid-by-digest",
    `sha256/${hex(i)}`,
    new TextEncoder().encode(`sha256:${hex(i + 1)}`),
  );
}
const after = heap();
console.log(
  JSON.stringify({ entries: ENTRIES, valueBytes: 71, bytesPerEntry: (after - before) / ENTRIES }),
);
if (store.root !== "/store") throw new Error("unreachable: keeps the store alive");
