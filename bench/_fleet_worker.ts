// One writer process of bench/fleet.ts: opens the store at LOCATION as the CLI does (a
// directory with lock: true, a Deno KV file, a Redis URL), prints "ready", waits for a line
// on stdin, then adds entries for DURATION_MS, to one DiffID ("one") or each to a DiffID of
// its own ("disjoint"), one add at a time, and prints {"adds": n} as JSON.
import process from "node:process";
import { createInterface } from "node:readline";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { openStoreLocation, parseStoreLocation } from "../src/cli/store_location.ts";
import { runtimeFileSystem } from "../src/_runtime_file_system.ts";

const [location, mode, worker, durationMs] = process.argv.slice(2);
const fs = runtimeFileSystem();
const opened = await openStoreLocation(
  await parseStoreLocation(location!, fs, false),
  (path) => FSMetadataStore.open(path, { fs, lock: true }),
);
const service = new V2MetadataService(opened.store);
const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
const base = (Number(worker) + 1) * 1e9;

process.stdout.write("ready\n");
await new Promise((resolve) => createInterface({ input: process.stdin }).once("line", resolve));
const end = performance.now() + Number(durationMs);
let adds = 0;
while (performance.now() < end) {
  const diffID = mode === "one" ? digest(1) : digest(base + 5e8 + adds);
  await service.add(diffID, {
    digest: digest(base + adds),
    sourceRepository: `registry.example.com/builder/${worker}`,
    hmac: "",
  });
  adds++;
}
process.stdout.write(JSON.stringify({ adds }) + "\n");
await opened.close();
process.exit(0);
