// The child process of crash_test.ts: writes operations START, START+1, … into the store at
// ROOT, one at a time and forever, and acknowledges each finished one with its number on
// stdout (a synchronous write, so an acknowledgement is never lost in a buffer).
import { writeSync } from "node:fs";
import process from "node:process";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { DIFF_ID, entryOf, LIST_SLOT, NAMESPACE, slotKey, SLOTS, valueOf } from "./_crash_plan.ts";

const [root, start] = process.argv.slice(-2) as [string, string];
// The runtime's own adapter: denoFileSystem on Deno, node:fs on Node and Bun.
const store = await FSMetadataStore.open(root);
const service = new V2MetadataService(store);
for (let i = Number(start);; i++) {
  const slot = i % SLOTS;
  if (slot === LIST_SLOT) await service.add(DIFF_ID, entryOf(i));
  else await store.set(NAMESPACE, slotKey(slot), valueOf(i));
  writeSync(1, `${i}\n`);
}
