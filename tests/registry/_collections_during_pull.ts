// Pulls an image twice in a process of its own, so that no earlier body of the test run has
// counted toward Bun's next collection: through the runtime's `fetch`, then, once the wait after
// any collection is over, through byte-stream answers. Prints one JSON line: the arguments of each
// `Bun.gc` call during each pull, or `null` where there is no `Bun.gc`.
// Usage: _collections_during_pull.ts <registry host>/<name>:<tag>
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ociLayoutStore, pull } from "../../src/registry/mod.ts";
import { byteStreamFetch } from "./_byte_stream_fetch.ts";

const [reference] = process.argv.slice(2);
const bun = (globalThis as { Bun?: { gc(force: boolean): unknown } }).Bun;
const forced: boolean[] = [];
let took = 0;
if (bun !== undefined) {
  const collect = bun.gc;
  bun.gc = (force) => {
    forced.push(force);
    const start = performance.now();
    const result = collect(force);
    took = performance.now() - start;
    return result;
  };
}

async function pullOnce(fetch?: typeof globalThis.fetch): Promise<boolean[]> {
  const dir = mkdtempSync(join(tmpdir(), "collections-"));
  try {
    await pull(reference!, await ociLayoutStore(dir), {
      plainHttp: true,
      ...(fetch === undefined ? {} : { fetch }),
    });
    return forced.splice(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const chunked = await pullOnce();
await new Promise((resolve) => setTimeout(resolve, 20 * took + 10));
const byteStreams = await pullOnce(byteStreamFetch().fetch);
console.log(JSON.stringify(bun === undefined ? null : { chunked, byteStreams }));
