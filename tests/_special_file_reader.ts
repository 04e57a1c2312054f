// Run by hostile_input_test.ts in a process of its own, so that a read that blocks (a FIFO
// opened without O_NONBLOCK waits for a writer, freezing the event loop) times out there
// instead of hanging the test run. `_special_file_reader.ts <adapter> <root> <diffID> <key>…`
// reads each key of namespace "ns" and the list of <diffID> through FSMetadataStore, and
// prints one JSON line: for each read, its error's code, message and path, or "read".
import { FSMetadataStore, MetadataError, V2MetadataService } from "../mod.ts";
import { denoFileSystem } from "../src/adapters/deno.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import process from "node:process";

const [adapter, root, diffID, ...keys] = process.argv.slice(2);
const fs = adapter === "deno" ? denoFileSystem : nodeFileSystem;
const store = await FSMetadataStore.open(root!, { fs });
const service = new V2MetadataService(store);

async function outcome(read: () => Promise<unknown>) {
  try {
    await read();
    return "read";
  } catch (error) {
    if (!(error instanceof MetadataError)) return `not a MetadataError: ${error}`;
    return { code: error.code, message: error.message, path: error.path };
  }
}

const results: Record<string, unknown> = {};
for (const key of keys) results[key] = await outcome(() => store.get("ns", key));
results.getMetadata = await outcome(() => service.getMetadata(diffID!));
results.getDiffID = await outcome(() => service.getDiffID(diffID!));
console.log(JSON.stringify(results));
