// `copy-store SRC DST`: the CLI's copy between any two stores (dockerd directories, Deno KV
// databases, Redis servers).
import type { FileSystem } from "../file_system.ts";
import { FSMetadataStore } from "../fs_store.ts";
import type { MetadataStore } from "../metadata_store.ts";
import type { CliArgs } from "./args.ts";
import { copyStore } from "./copy_store.ts";
import type { ProgressCallback } from "./scan.ts";
import { openStoreLocation, parseStoreLocation, showStoreLocation } from "./store_location.ts";

/** What `copy-store` needs from the CLI. */
export interface CopyStoreContext {
  args: CliArgs;
  fs: FileSystem;
  /** Opens a dockerd directory to read from, as the other commands do. */
  openDirectory(path: string): Promise<MetadataStore>;
  print(line: string): void;
  warn(line: string): void;
  progress: ProgressCallback | undefined;
}

function printJson(context: CopyStoreContext, value: unknown): void {
  for (const line of JSON.stringify(value, null, 2).split("\n")) context.print(line);
}

/**
 * `copy-store SRC DST`: copies every entry from one store into another; exit status 1 when
 * some key could not be copied or differs in the destination.
 *
 * @param context The options (`argument`: SRC, `destination`: DST) and output.
 * @returns The exit status.
 */
export async function copyStoreCommand(context: CopyStoreContext): Promise<number> {
  const { fs, args } = context;
  const from = await parseStoreLocation(args.argument!, fs, true);
  const to = await parseStoreLocation(args.destination!, fs, false);
  const source = await openStoreLocation(from, context.openDirectory);
  let results;
  try {
    // A directory destination is created if missing, and locked per key while written.
    const destination = await openStoreLocation(
      to,
      (path) => FSMetadataStore.open(path, { fs, lock: true }),
    );
    try {
      results = await copyStore(source.store, destination.store, context.progress);
    } finally {
      await destination.close();
    }
  } finally {
    await source.close();
  }
  if (args.json) {
    printJson(context, {
      source: showStoreLocation(from),
      destination: showStoreLocation(to),
      namespaces: results,
    });
  } else {
    for (
      const { namespace, keys, copied, merged, unchanged, gone, conflicts, failures } of results
    ) {
      context.print(
        `${namespace}: ${keys} keys, ${copied} copied, ${merged} merged, ${unchanged} unchanged` +
          (gone ? `, ${gone} gone from the source meanwhile` : "") +
          (conflicts.length ? `, ${conflicts.length} conflicting` : "") +
          (failures.length ? `, ${failures.length} failed` : ""),
      );
    }
  }
  for (const { namespace, conflicts, failures } of results) {
    for (const key of conflicts) {
      context.warn(`conflict: "${namespace}/${key}" holds another value in the destination (kept)`);
    }
    for (const failure of failures) context.warn(`error: ${failure.message}`);
  }
  return results.some((r) => r.conflicts.length > 0 || r.failures.length > 0) ? 1 : 0;
}
