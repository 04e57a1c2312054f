/**
 * One measured transfer with the library's public API, run as its own process so its wall
 * time and peak RSS are the operation's alone:
 *
 *     <runtime> bench/registry/transfer.ts push|pull <ref> <layout dir> <metadata dir>
 *     <runtime> bench/registry/transfer.ts noop
 *
 * `push` pushes the layout's image to `ref`, `pull` pulls `ref` into the layout, both recording
 * in the FSMetadataStore at the metadata dir (a later push to another repository reads it to
 * mount). Prints one JSON line: the manifest digest, the milliseconds the call took and the
 * blobs each progress action named. `noop` loads the same modules and prints `{}`, for the
 * runtime's start-up time.
 *
 * @module
 */
import process from "node:process";
import { FSMetadataStore, V2MetadataService } from "../../mod.ts";
import { ociLayoutStore, pull, push, type TransferProgress } from "../../src/registry/mod.ts";

const [operation, ref, layoutDir, metadataDir] = process.argv.slice(2);
if (operation === "noop") {
  console.log("{}");
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
  console.error("usage: transfer.ts push|pull <ref> <layout dir> <metadata dir> | noop");
  process.exit(2);
}
