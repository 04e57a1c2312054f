// Finds every list and digest mapping of a store and reads each through the store, so the
// CLI sees exactly what the library would: a directory by walking it with its FileSystem's
// readDir/stat (which also finds temp files, strays and undecodable names), any other store
// through keys().
import { decodeV2MetadataList } from "../_go_json.ts";
import { BY_DIFFID, BY_DIGEST, TEMP_PREFIX } from "../_keys.ts";
import { CLAIMS } from "../_claims_on_update.ts";
import { errorCode, mapError } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { FileInfo } from "../file_system.ts";
import { walkTree } from "../_walk.ts";
import { FSMetadataStore } from "../fs_store.ts";
import type { MetadataStore } from "../metadata_store.ts";
import type { V2Metadata } from "../v2_metadata_service.ts";

/** Where a value is kept. */
export interface KeyLocation {
  /** The path relative to the root, e.g. `v2metadata-by-diffid/sha256/<hex>`. */
  relative: string;
  /** The absolute path of a directory's file; in any other store, `relative`. */
  path: string;
}

/** A file found under the root. */
export interface StoreFile extends KeyLocation {
  kind: FileInfo["kind"];
  size: number;
  mtimeMs: number | undefined;
}

/** Why a file could not be used. */
export interface ReadFailure {
  /** `unreadable`: the file could not be read; `corrupt`: it is not what dockerd writes. */
  kind: "unreadable" | "corrupt";
  /** The errno name, e.g. `EACCES`, or `EBADMSG` for a corrupt file. */
  code: string;
  message: string;
  /** Why, without what or where: the message's last part. */
  reason: string;
}

/** One `v2metadata-by-diffid` file. */
export interface ListRecord {
  diffID: string;
  file: KeyLocation;
  entries: V2Metadata[] | null;
  failure: ReadFailure | null;
}

/** One `diffid-by-digest` file. */
export interface MappingRecord {
  digest: string;
  file: KeyLocation;
  diffID: string | null;
  failure: ReadFailure | null;
}

/** Everything {@linkcode scanStore} found. */
export interface ScanResult {
  lists: ListRecord[];
  mappings: MappingRecord[];
  // The rest is found in a directory only.
  /** Files named like Docker's atomic-write temp files (`.tmp-…`), anywhere. */
  tempFiles: StoreFile[];
  /** Files in the two namespaces that are no key (`<alg>/<encoded>`). */
  strays: StoreFile[];
  /** Directories that could not be listed. */
  unreadableDirectories: { path: string; relative: string; failure: ReadFailure }[];
  /**
   * Entries whose name is not UTF-8: the runtime hands the name out with U+FFFD in place
   * of the bad bytes, a name no file has, so they cannot be looked at, only reported.
   */
  undecodableNames: { path: string; relative: string }[];
}

/** Called while scanning: `phase` is what is being done, `done` of `total` items. */
export type ProgressCallback = (phase: string, done: number, total: number | undefined) => void;

const decoder = new TextDecoder();
/** What a runtime puts in a file name for bytes that are not UTF-8. */
const REPLACEMENT_CHARACTER = "\uFFFD";

function failureOf(error: unknown, kind: ReadFailure["kind"]): ReadFailure {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return { kind, code, message, reason: error instanceof MetadataError ? error.reason : message };
}

/**
 * `sha256/<hex>` → `sha256:<hex>`: Docker's key derivation undone (first `/` only). A key
 * without `/` came from a digest with an empty algorithm, `:<hex>`, whose empty segment
 * path cleaning dropped.
 */
function digestOf(key: string): string {
  return key.includes("/") ? key.replace("/", ":") : `:${key}`;
}

/**
 * Lists every file under the store's root (symlinks are reported, never followed), and the
 * names that are not UTF-8.
 *
 * @param store The open store.
 * @param onProgress Told how many files were found so far.
 * @returns The files, the directories that could not be listed, the undecodable names.
 */
export async function walkStore(
  store: FSMetadataStore,
  onProgress?: ProgressCallback,
): Promise<
  Pick<ScanResult, "unreadableDirectories" | "undecodableNames"> & { files: StoreFile[] }
> {
  const files: StoreFile[] = [];
  const unreadableDirectories: ScanResult["unreadableDirectories"] = [];
  const undecodableNames: ScanResult["undecodableNames"] = [];
  await walkTree(store.fs, store.root, {
    visit({ path, relative, name, info }) {
      if (info === null) {
        if (name.includes(REPLACEMENT_CHARACTER)) undecodableNames.push({ path, relative });
        return; // else removed meanwhile
      }
      files.push({ relative, path, kind: info.kind, size: info.size, mtimeMs: info.mtimeMs });
      onProgress?.("scanning", files.length, undefined);
    },
    failed(error, path, relative, during) {
      if (relative === "") throw mapError(error, "read", path, path);
      const failure = failureOf(
        mapError(error, during, relative, path),
        "unreadable",
      );
      unreadableDirectories.push({ path, relative, failure });
    },
  });
  return { files, unreadableDirectories, undecodableNames };
}

/** A key to read, and where its value is. */
interface FoundKey {
  namespace: string;
  key: string;
  file: KeyLocation;
}

/** The keys of a directory store, found by walking it, and what else the walk found. */
async function directoryKeys(
  store: FSMetadataStore,
  onProgress: ProgressCallback | undefined,
  readMappings: boolean,
): Promise<{ keys: FoundKey[]; rest: Omit<ScanResult, "lists" | "mappings"> }> {
  const { files, unreadableDirectories, undecodableNames } = await walkStore(store, onProgress);
  const rest = {
    tempFiles: [] as StoreFile[],
    strays: [] as StoreFile[],
    unreadableDirectories,
    undecodableNames,
  };
  const keys: FoundKey[] = [];
  for (const file of files) {
    const segments = file.relative.split("/");
    // Upload claims of builders pushing now: neither metadata nor a write left unfinished.
    if (segments[0] === CLAIMS) continue;
    if (segments.some((segment) => segment.startsWith(TEMP_PREFIX))) {
      rest.tempFiles.push(file);
      continue;
    }
    const namespace = segments[0]!;
    if (namespace !== BY_DIFFID && (namespace !== BY_DIGEST || !readMappings)) continue;
    // Go writes a digest with an empty algorithm, ":<hex>", directly under the namespace.
    if (segments.length < 2) {
      rest.strays.push(file);
      continue;
    }
    keys.push({ namespace, key: segments.slice(1).join("/"), file });
  }
  return { keys, rest };
}

/** The keys of any other store, listed by its keys(). */
async function listedKeys(store: MetadataStore, readMappings: boolean): Promise<FoundKey[]> {
  if (store.keys === undefined) {
    throw new MetadataError("ENOTSUP", "Cannot scan the store: it cannot list its keys");
  }
  const found: FoundKey[] = [];
  for (const namespace of readMappings ? [BY_DIFFID, BY_DIGEST] : [BY_DIFFID]) {
    for (const key of (await store.keys(namespace)).sort()) {
      const relative = `${namespace}/${key}`;
      found.push({ namespace, key, file: { relative, path: relative } });
    }
  }
  return found;
}

/** ` at "<path>"` for a directory's file, nothing where the path is the key. */
function at(file: KeyLocation): string {
  return file.path === file.relative ? "" : ` at "${file.path}"`;
}

/**
 * Finds every V2Metadata list in the store and reads it, and every digest mapping when
 * `readMappings` (only `verify` looks at them; `mappings` is empty otherwise). A directory
 * is walked; any other store is listed through keys().
 *
 * @param store The open store: an {@linkcode FSMetadataStore}, or a store with keys().
 * @param onProgress Told how far the walk and the reads are.
 * @param readMappings Whether to read the `diffid-by-digest` values too.
 * @returns What was found, failures included.
 */
export async function scanStore(
  store: MetadataStore,
  onProgress: ProgressCallback | undefined,
  readMappings: boolean,
): Promise<ScanResult> {
  const { keys, rest } = store instanceof FSMetadataStore
    ? await directoryKeys(store, onProgress, readMappings)
    : {
      keys: await listedKeys(store, readMappings),
      rest: { tempFiles: [], strays: [], unreadableDirectories: [], undecodableNames: [] },
    };
  const result: ScanResult = { lists: [], mappings: [], ...rest };
  let done = 0;
  for (const { namespace, key, file } of keys) {
    onProgress?.("reading", ++done, keys.length);
    let bytes: Uint8Array | null = null;
    let failure: ReadFailure | null = null;
    try {
      bytes = await store.get(namespace, key);
    } catch (error) {
      failure = failureOf(error, "unreadable");
    }
    if (namespace === BY_DIGEST) {
      let diffID: string | null = null;
      if (bytes !== null) {
        const text = decoder.decode(bytes);
        if (text.includes(":")) diffID = text; // the service reads any such DiffID
        else {
          const reason = text === "" ? "it is empty" : `"${text.slice(0, 80)}" is not a DiffID`;
          failure = {
            kind: "corrupt",
            code: "EBADMSG",
            message: `Cannot use "${namespace}/${key}"${at(file)}: ${reason}`,
            reason,
          };
        }
      }
      result.mappings.push({ digest: digestOf(key), file, diffID, failure });
      continue;
    }
    let entries: V2Metadata[] | null = null;
    if (bytes !== null) {
      try {
        entries = decodeV2MetadataList(bytes);
      } catch (error) {
        failure = failureOf(error, "corrupt");
        failure.message = `Cannot decode "${namespace}/${key}"${at(file)}: ${failure.reason}`;
      }
    }
    result.lists.push({ diffID: digestOf(key), file, entries, failure });
  }
  return result;
}
