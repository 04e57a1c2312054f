/**
 * One measured transfer with the library's public API, run as its own process so its wall
 * time and peak RSS are the operation's alone:
 *
 *     <runtime> bench/registry/transfer.ts push|pull <ref> <layout dir> <metadata dir>
 *     <runtime> bench/registry/transfer.ts fetch <dir> <blob url>...
 *     <runtime> bench/registry/transfer.ts noop
 *
 * `push` pushes the layout's image to `ref`, `pull` pulls `ref` into the layout, both recording
 * in the FSMetadataStore at the metadata dir (a later push to another repository reads it to
 * mount). Prints one JSON line: the manifest digest, the milliseconds the call took and the
 * blobs each progress action named. `fetch` is the runtime's floor for a pull: each URL with a
 * bare `fetch` to a file of `dir` (`0`, `1`, …), 3 at a time as pull goes, nothing checked,
 * printing the milliseconds and the bytes of each file. `noop` loads the same modules and
 * prints `{}`, for the runtime's start-up time.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { FSMetadataStore, V2MetadataService } from "../../mod.ts";
import { ociLayoutStore, pull, push, type TransferProgress } from "../../src/registry/mod.ts";

/** Writes the body of `url` to `path` as it arrives and hashes it, the plainest way. */
async function fetchToFile(url: string, path: string): Promise<{ size: number; digest: string }> {
  const response = await fetch(url);
  if (!response.ok || response.body === null) throw new Error(`${url}: ${response.status}`);
  const file = await open(path, "w");
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of response.body) {
      hash.update(chunk);
      await file.write(chunk);
      size += chunk.length;
    }
  } finally {
    await file.close();
  }
  return { size, digest: `sha256:${hash.digest("hex")}` };
}

const [operation, ref, layoutDir, metadataDir] = process.argv.slice(2);
if (operation === "noop") {
  console.log("{}");
} else if (operation === "fetch" && ref !== undefined) {
  const urls = process.argv.slice(4);
  const blobs: { size: number; digest: string }[] = [];
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    for (let i = next++; i < urls.length; i = next++) {
      blobs[i] = await fetchToFile(urls[i]!, join(ref, String(i)));
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  console.log(JSON.stringify({ ms: performance.now() - start, blobs }));
} else if ((operation === "push" || operation === "pull") && metadataDir !== undefined) {
  const actions: Record<string, Set<string>> = {};
  const onProgress = (event: TransferProgress) => {
    (actions[event.action] ??= new Set()).add(event.digest);
  };
  const config = {
    plainHttp: true,
    metadataService: new V2MetadataService(await FSMetadataStore.open(metadataDir)),
    onProgress,
  };
  const store = await ociLayoutStore(layoutDir!);
  const start = performance.now();
  const descriptor = await (operation === "push" ? push : pull)(ref!, store, config);
  const ms = performance.now() - start;
  const counts = Object.fromEntries(Object.entries(actions).map(([k, v]) => [k, v.size]));
  console.log(JSON.stringify({ digest: descriptor.digest, ms, actions: counts }));
} else {
  console.error(
    "usage: transfer.ts push|pull <ref> <layout dir> <metadata dir> | fetch <dir> <url>... | noop",
  );
  process.exit(2);
}
