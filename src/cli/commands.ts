// The CLI's commands. Each reads the store (never writes), prints through `CommandContext`
// and returns the exit status. A store is a dockerd directory or any store with keys()
// (Deno KV, Redis); see scan.ts for what only a directory can show.
import { BY_DIFFID, BY_DIGEST, digestKey, keyPath, MAX_ENTRIES } from "../_keys.ts";
import { errorCode } from "../_map_error.ts";
import type { MetadataError } from "../errors.ts";
import { checkV2MetadataHMAC, computeV2MetadataHMACKey } from "../hmac.ts";
import type { MetadataStore } from "../metadata_store.ts";
import { orderByLikenessAndAge } from "../registry/push_candidates.ts";
import { type V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
import { formatReference, parseReference, type Reference } from "../registry/reference.ts";
import { type CliArgs, UsageError } from "./args.ts";
import type { CredentialResolver } from "./auth.ts";
import {
  type ListRecord,
  type ProgressCallback,
  type ReadFailure,
  type ScanResult,
  scanStore,
} from "./scan.ts";
import { formatTable, shortDigest } from "./table.ts";

/** What a command needs: the store, the options, and where to print. */
export interface CommandContext {
  store: MetadataStore;
  /** The store as output names it (JSON's `root`): a directory, a file, a redacted URL. */
  where: string;
  args: CliArgs;
  /** Prints one line of the result on stdout. */
  print(line: string): void;
  /** Prints a warning or error on stderr. */
  warn(line: string): void;
  progress: ProgressCallback | undefined;
  /** For `check`: the credentials per registry host. */
  credentials?: CredentialResolver;
}

function printJson(context: CommandContext, value: unknown): void {
  for (const line of JSON.stringify(value, null, 2).split("\n")) context.print(line);
}

function entryJson(entry: V2Metadata): Record<string, unknown> {
  return {
    digest: entry.digest,
    sourceRepository: entry.sourceRepository,
    hmac: entry.hmac,
    hmacSet: entry.hmac !== "",
  };
}

/** Exit status of a failed lookup: 1 when the answer is "none" or "corrupt", else 2. */
function lookupFailure(context: CommandContext, error: unknown): number {
  context.warn(`error: ${error instanceof Error ? error.message : String(error)}`);
  const code = errorCode(error);
  return code === "ENOENT" || code === "EBADMSG" ? 1 : 2;
}

function failureLabel(failure: ReadFailure): string {
  return `(${failure.kind}: ${failure.code})`;
}

/** Tells on stderr what `ls` and `check` had to leave out, for `verify` to detail. */
function warnSkipped(context: CommandContext, scan: ScanResult): void {
  const failed = scan.lists.filter((list) => list.failure !== null).length;
  if (failed > 0) {
    context.warn(`warning: ${failed} list(s) could not be read; run "verify" for details`);
  }
  if (scan.undecodableNames.length > 0) {
    context.warn(
      `warning: ${scan.undecodableNames.length} name(s) are not UTF-8 and were skipped; run "verify" for details`,
    );
  }
}

/**
 * `ls`: every DiffID with its digests, source repositories and whether the HMAC is set.
 *
 * @param context The store, options and output.
 * @returns The exit status.
 */
export async function listCommand(context: CommandContext): Promise<number> {
  const scan = await scanStore(context.store, context.progress, false);
  const { lists } = scan;
  const { json, noTrunc } = context.args;
  if (json) {
    printJson(context, {
      root: context.where,
      diffIDs: lists.map((list) => ({
        diffID: list.diffID,
        path: list.file.path,
        entries: list.entries?.map(entryJson) ?? null,
        error: list.failure && {
          kind: list.failure.kind,
          code: list.failure.code,
          message: list.failure.message,
        },
      })),
    });
  } else {
    const rows: string[][] = [];
    for (const list of lists) {
      const diffID = shortDigest(list.diffID, noTrunc);
      if (list.entries === null) {
        rows.push([diffID, failureLabel(list.failure!), "", ""]);
      } else if (list.entries.length === 0) rows.push([diffID, "(empty)", "", ""]);
      list.entries?.forEach((entry, i) =>
        rows.push([
          i === 0 ? diffID : "",
          shortDigest(entry.digest, noTrunc),
          entry.sourceRepository,
          entry.hmac === "" ? "no" : "yes",
        ])
      );
    }
    formatTable(["DIFFID", "DIGEST", "SOURCE REPOSITORY", "HMAC"], rows).forEach(context.print);
  }
  warnSkipped(context, scan);
  return 0;
}

/**
 * `diffid <digest>`: the DiffID a blob digest maps to.
 *
 * @param context The store, options and output.
 * @returns The exit status.
 */
export async function diffIDCommand(context: CommandContext): Promise<number> {
  const digest = context.args.argument!;
  let diffID: string;
  try {
    diffID = await new V2MetadataService(context.store).getDiffID(digest);
  } catch (error) {
    if (errorCode(error) === "ENOENT") context.warn(`No DiffID is recorded for "${digest}"`);
    return lookupFailure(context, error);
  }
  if (context.args.json) printJson(context, { digest, diffID });
  else context.print(diffID);
  return 0;
}

/**
 * `metadata <diffID>`: the entries recorded for a layer, oldest first.
 *
 * @param context The store, options and output.
 * @returns The exit status.
 */
export async function metadataCommand(context: CommandContext): Promise<number> {
  const diffID = context.args.argument!;
  let entries: V2Metadata[];
  try {
    entries = await new V2MetadataService(context.store).getMetadata(diffID);
  } catch (error) {
    if (errorCode(error) === "ENOENT") context.warn(`No metadata is recorded for "${diffID}"`);
    return lookupFailure(context, error);
  }
  if (context.args.json) {
    printJson(context, { diffID, entries: entries.map(entryJson) });
    return 0;
  }
  formatTable(
    ["DIGEST", "SOURCE REPOSITORY", "HMAC"],
    entries.map((entry) => [
      shortDigest(entry.digest, context.args.noTrunc),
      entry.sourceRepository,
      entry.hmac === "" ? "-" : context.args.noTrunc ? entry.hmac : entry.hmac.slice(0, 12),
    ]),
  ).forEach(context.print);
  return 0;
}

/** How dockerd would treat an entry on push, for `check`. */
type Verdict =
  | "preferred"
  | "candidate"
  | "other-credentials"
  | "target"
  | "other-registry"
  | "not-canonical";

/**
 * A recorded source repository read by the registry's reference rules: its registry (`null`
 * when it is no Docker name at all), and whether dockerd's push can use it. Push reads it with
 * Go's `reference.ParseNamed`, which takes only a canonical name: `docker.io/library/busybox`,
 * never `busybox`.
 */
function sourceRegistry(repository: string): { registry: string | null; canonical: boolean } {
  let reference: Reference;
  try {
    reference = parseReference(repository, { defaultTag: false });
  } catch {
    return { registry: null, canonical: false };
  }
  return { registry: reference.domain, canonical: formatReference(reference) === repository };
}

/** `--target`, read as a Docker name (`app:1.0` → `docker.io/library/app`). */
function targetReference(text: string): Reference {
  try {
    return parseReference(text, { defaultTag: false });
  } catch (error) {
    throw new UsageError(`Cannot use "--target": ${(error as Error).message}`);
  }
}

/** One row of `check`. */
interface CheckedEntry {
  diffID: string;
  entry: V2Metadata;
  registry: string;
  credentials: string;
  hmacMatches: boolean;
  verdict: Verdict;
  /** With `--target`: the position in dockerd's mount order (1 is tried first). */
  order: number | null;
}

/**
 * `check`: per entry, whether its HMAC matches the credentials dockerd would use for the
 * entry's registry, and what dockerd would do with it on push. With `--target`, mount
 * candidates are numbered in dockerd's order (youngest first, then HMAC match first, then
 * more leading path components shared with the target).
 *
 * @param context The store, options, output and credentials.
 * @returns The exit status.
 */
export async function checkCommand(context: CommandContext): Promise<number> {
  const scan = await scanStore(context.store, context.progress, false);
  const { lists } = scan;
  const resolve = context.credentials!;
  const targetRef = context.args.target === undefined
    ? undefined
    : targetReference(context.args.target);
  const target = targetRef?.name;
  const keys = new Map<string, Promise<{ key: Uint8Array | null; source: string }>>();
  const keyFor = (registry: string) => {
    let key = keys.get(registry);
    if (!key) {
      key = resolve(registry).then(async ({ auth, source }) => ({
        // dockerd always hashes the AuthConfig it got; no credentials is the empty one.
        key: await computeV2MetadataHMACKey(auth ?? {}),
        source,
      }));
      keys.set(registry, key);
    }
    return key;
  };
  const rows: CheckedEntry[] = [];
  for (const list of lists) {
    if (list.entries === null) continue;
    // All of a list at once: a WebCrypto call's cost is its thread round trip, which
    // calls in flight together share.
    const checked = await Promise.all(list.entries.map(async (entry): Promise<CheckedEntry> => {
      const { registry, canonical } = sourceRegistry(entry.sourceRepository);
      const key = registry === null ? { key: null, source: "-" } : await keyFor(registry);
      const hmacMatches = key.key !== null && await checkV2MetadataHMAC(entry, key.key);
      let verdict: Verdict = hmacMatches
        ? "preferred"
        : entry.hmac === ""
        ? "candidate"
        : "other-credentials";
      if (!canonical) verdict = "not-canonical";
      else if (targetRef !== undefined) {
        if (registry !== targetRef.domain) verdict = "other-registry";
        else if (entry.sourceRepository === target) verdict = "target";
      }
      return {
        diffID: list.diffID,
        entry,
        registry: registry ?? "-",
        credentials: key.source,
        hmacMatches,
        verdict,
        order: null,
      };
    }));
    if (target !== undefined) {
      const candidates = orderByLikenessAndAge(
        target,
        checked.filter((row) =>
          row.verdict !== "target" && row.verdict !== "other-registry" &&
          row.verdict !== "not-canonical"
        ),
      );
      candidates.forEach((row, i) => row.order = i + 1);
      const rest = checked.filter((row) => row.order === null);
      checked.splice(0, checked.length, ...candidates, ...rest);
    }
    rows.push(...checked);
  }
  if (context.args.json) {
    printJson(context, {
      root: context.where,
      target: target ?? null,
      entries: rows.map((row) => ({
        diffID: row.diffID,
        ...entryJson(row.entry),
        registry: row.registry,
        credentials: row.credentials,
        hmacMatches: row.hmacMatches,
        verdict: row.verdict,
        order: row.order,
      })),
    });
  } else printCheckTable(context, rows, target !== undefined);
  warnSkipped(context, scan);
  return 0;
}

function printCheckTable(context: CommandContext, rows: CheckedEntry[], ordered: boolean): void {
  const { noTrunc } = context.args;
  let previous = "";
  const headers = ["DIFFID", "DIGEST", "SOURCE REPOSITORY", "CREDENTIALS", "HMAC", "VERDICT"];
  if (ordered) headers.push("ORDER");
  formatTable(
    headers,
    rows.map((row) => {
      const cells = [
        row.diffID === previous ? "" : shortDigest(row.diffID, noTrunc),
        shortDigest(row.entry.digest, noTrunc),
        row.entry.sourceRepository,
        row.credentials,
        row.hmacMatches ? "match" : row.entry.hmac === "" ? "untagged" : "other",
        row.verdict,
      ];
      if (ordered) cells.push(row.order === null ? "-" : String(row.order));
      previous = row.diffID;
      return cells;
    }),
  ).forEach(context.print);
}

/** One finding of `verify`. */
export interface Problem {
  kind:
    | "unreadable-list"
    | "corrupt-list"
    | "long-list"
    | "unreadable-mapping"
    | "corrupt-mapping"
    | "missing-list"
    | "temp-file"
    | "stray-file"
    | "unreadable-directory"
    | "undecodable-name";
  /** The path relative to the root. */
  relative: string;
  path: string;
  /** The whole story, paths included. */
  message: string;
  /** The short reason the table shows next to the relative path. */
  detail: string;
}

/**
 * `verify`: unreadable or corrupt lists and mappings, digests whose DiffID has no list,
 * lists longer than dockerd's 50; in a directory also stray and temp files, unreadable
 * directories and names that are not UTF-8. Exit status 1 when anything is found.
 *
 * @param context The store, options and output.
 * @returns The exit status.
 */
export async function verifyCommand(context: CommandContext): Promise<number> {
  const scan = await scanStore(context.store, context.progress, true);
  const root = context.where;
  const problems: Problem[] = [];
  const add = (
    kind: Problem["kind"],
    { path, relative }: { path: string; relative: string },
    message: string,
    detail: string = message,
  ) => problems.push({ kind, relative, path, message, detail });
  const short = (digest: string) => shortDigest(digest, context.args.noTrunc);
  for (const directory of scan.unreadableDirectories) {
    add("unreadable-directory", directory, directory.failure.message, directory.failure.reason);
  }
  for (const entry of scan.undecodableNames) {
    const reason = "the name is not UTF-8 (shown with U+FFFD for the bad bytes)";
    add("undecodable-name", entry, `Cannot read "${entry.path}": ${reason}`, reason);
  }
  const listPaths = new Map<string, ListRecord>();
  for (const list of scan.lists) {
    listPaths.set(list.file.relative, list);
    if (list.failure) {
      add(`${list.failure.kind}-list`, list.file, list.failure.message, list.failure.reason);
    } else if (list.entries!.length > MAX_ENTRIES) {
      add(
        "long-list",
        list.file,
        `${list.entries!.length} entries for "${list.diffID}", dockerd keeps ${MAX_ENTRIES}`,
        `${list.entries!.length} entries, dockerd keeps ${MAX_ENTRIES}`,
      );
    }
  }
  for (const mapping of scan.mappings) {
    if (mapping.failure) {
      const { kind, message, reason } = mapping.failure;
      add(`${kind}-mapping`, mapping.file, message, reason);
      continue;
    }
    let listPath: string;
    try {
      listPath = keyPath(BY_DIFFID, digestKey(mapping.diffID!));
    } catch (error) {
      const { message, reason } = error as MetadataError;
      add("corrupt-mapping", mapping.file, message, reason);
      continue;
    }
    if (!listPaths.has(listPath)) {
      add(
        "missing-list",
        mapping.file,
        `"${mapping.digest}" maps to "${mapping.diffID}", which has no list at "${listPath}"`,
        `maps to ${short(mapping.diffID!)}, which has no list`,
      );
    }
  }
  for (const file of scan.tempFiles) {
    const modified = file.mtimeMs === undefined
      ? ""
      : `, modified ${new Date(file.mtimeMs).toISOString()}`;
    add(
      "temp-file",
      file,
      `temp file of an unfinished write (${file.size} B${modified}); remove it when no write is running`,
    );
  }
  for (const file of scan.strays) {
    add("stray-file", file, `not a "${BY_DIFFID}" or "${BY_DIGEST}" key (<alg>/<encoded>)`);
  }
  const summary = `Checked ${scan.lists.length} list(s) and ${scan.mappings.length} mapping(s): ${
    problems.length === 0 ? "no problems" : `${problems.length} problem(s)`
  }`;
  if (context.args.json) {
    printJson(context, {
      root,
      lists: scan.lists.length,
      mappings: scan.mappings.length,
      ok: problems.length === 0,
      problems,
    });
  } else {
    if (problems.length > 0) {
      formatTable(
        ["PROBLEM", "PATH", "DETAIL"],
        problems.map((problem) => [problem.kind, problem.relative, problem.detail]),
      ).forEach(context.print);
    }
    context.print(summary);
  }
  return problems.length === 0 ? 0 : 1;
}
