// The CLI on stores other than a dockerd directory (`--store` with a Deno KV path or URL or
// a Redis URL): `ls`, `diffid` and `metadata` through keys() and the service; and
// `copy-store SRC DST` between any two stores.
import { BY_DIFFID } from "../_keys.ts";
import { errorCode } from "../_map_error.ts";
import type { FileSystem } from "../file_system.ts";
import { FSMetadataStore } from "../fs_store.ts";
import type { MetadataStore } from "../metadata_store.ts";
import { type V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
import { type CliArgs, UsageError } from "./args.ts";
import { copyStore } from "./copy_store.ts";
import type { ProgressCallback } from "./scan.ts";
import {
  openStoreLocation,
  parseStoreLocation,
  redactUrl,
  type StoreLocation,
} from "./store_location.ts";
import { formatTable, shortDigest } from "./table.ts";

/** What the commands here need from the CLI. */
export interface StoreCommandContext {
  args: CliArgs;
  fs: FileSystem;
  /** Opens a dockerd directory to read from, as the other commands do. */
  openDirectory(path: string): Promise<MetadataStore>;
  print(line: string): void;
  warn(line: string): void;
  progress: ProgressCallback | undefined;
}

function printJson(context: StoreCommandContext, value: unknown): void {
  for (const line of JSON.stringify(value, null, 2).split("\n")) context.print(line);
}

/** A location as shown in output: a URL without its password. */
function shown(location: StoreLocation): string {
  return location.kind === "redis" ? redactUrl(location.url) : location.path;
}

/** A row of `ls` (HMAC: set or not) or of `metadata` (HMAC: its start), as for a directory. */
function entryRow(entry: V2Metadata, noTrunc: boolean, showHmac: boolean): string[] {
  const hmac = !showHmac
    ? entry.hmac === "" ? "no" : "yes"
    : entry.hmac === ""
    ? "-"
    : noTrunc
    ? entry.hmac
    : entry.hmac.slice(0, 12);
  return [shortDigest(entry.digest, noTrunc), entry.sourceRepository, hmac];
}

/** `ls` through keys(): every DiffID's entries, as `ls` prints a directory's. */
async function list(context: StoreCommandContext, store: MetadataStore, where: string) {
  const { json, noTrunc } = context.args;
  const service = new V2MetadataService(store);
  const keys = await store.keys!(BY_DIFFID);
  const lists: { diffID: string; entries: V2Metadata[] | null; error: string | null }[] = [];
  for (const [i, key] of keys.entries()) {
    // `sha256/<hex>` is the DiffID `sha256:<hex>` (Docker splits at the first ":").
    const diffID = key.replace("/", ":");
    try {
      lists.push({ diffID, entries: await service.getMetadata(diffID), error: null });
    } catch (error) {
      lists.push({ diffID, entries: null, error: errorCode(error) });
    }
    context.progress?.("read lists", i + 1, keys.length);
  }
  if (json) {
    printJson(context, { store: where, diffIDs: lists });
    return 0;
  }
  const rows = lists.flatMap(({ diffID, entries, error }) => {
    const shortID = shortDigest(diffID, noTrunc);
    if (entries === null) return [[shortID, `(unreadable: ${error})`, "", ""]];
    if (entries.length === 0) return [[shortID, "(empty)", "", ""]];
    return entries.map((entry, i) => [i === 0 ? shortID : "", ...entryRow(entry, noTrunc, false)]);
  });
  formatTable(["DIFFID", "DIGEST", "SOURCE REPOSITORY", "HMAC"], rows).forEach(context.print);
  return lists.some((entry) => entry.error !== null) ? 1 : 0;
}

/** `diffid` and `metadata`: one lookup through the service. */
async function lookUp(context: StoreCommandContext, store: MetadataStore) {
  const { command, argument, json, noTrunc } = context.args;
  const service = new V2MetadataService(store);
  try {
    if (command === "diffid") {
      const diffID = await service.getDiffID(argument!);
      if (json) printJson(context, { digest: argument, diffID });
      else context.print(diffID);
    } else {
      const entries = await service.getMetadata(argument!);
      if (json) printJson(context, { diffID: argument, entries });
      else {
        formatTable(
          ["DIGEST", "SOURCE REPOSITORY", "HMAC"],
          entries.map((entry) => entryRow(entry, noTrunc, true)),
        ).forEach(context.print);
      }
    }
    return 0;
  } catch (error) {
    context.warn(`error: ${error instanceof Error ? error.message : String(error)}`);
    const code = errorCode(error);
    return code === "ENOENT" || code === "EBADMSG" ? 1 : 2;
  }
}

/**
 * Runs `ls`, `diffid` or `metadata` on a store that is not a directory.
 *
 * @param context The options and output.
 * @param location The store (`--store`).
 * @returns The exit status.
 */
export async function storeLocationCommand(
  context: StoreCommandContext,
  location: StoreLocation,
): Promise<number> {
  const { command } = context.args;
  if (command !== "ls" && command !== "diffid" && command !== "metadata") {
    throw new UsageError(
      `Command "${command}" reads a dockerd directory: "--store" must name one, not ${location.kind}`,
    );
  }
  const opened = await openStoreLocation(location, context.openDirectory);
  try {
    return command === "ls"
      ? await list(context, opened.store, shown(location))
      : await lookUp(context, opened.store);
  } finally {
    await opened.close();
  }
}

/**
 * `copy-store SRC DST`: copies every entry from one store into another; exit status 1 when
 * some key could not be copied or differs in the destination.
 *
 * @param context The options (`argument`: SRC, `destination`: DST) and output.
 * @returns The exit status.
 */
export async function copyStoreCommand(context: StoreCommandContext): Promise<number> {
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
    printJson(context, { source: shown(from), destination: shown(to), namespaces: results });
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
