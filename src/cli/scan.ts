// Walks a store with its FileSystem's readDir/stat and reads every list and digest mapping
// through FSMetadataStore, so the CLI sees exactly what the library would.
import { decodeV2MetadataList } from "../_go_json.ts";
import { BY_DIFFID, BY_DIGEST, TEMP_PREFIX } from "../_keys.ts";
import { errorCode, mapError } from "../_map_error.ts";
import type { FileInfo } from "../file_system.ts";
import type { FSMetadataStore } from "../fs_store.ts";
import type { V2Metadata } from "../v2_metadata_service.ts";

/** A file found under the root. */
export interface StoreFile {
  /** The path relative to the root, e.g. `v2metadata-by-diffid/sha256/<hex>`. */
  relative: string;
  /** The absolute path. */
  path: string;
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
}

/** One `v2metadata-by-diffid` file. */
export interface ListRecord {
  diffID: string;
  file: StoreFile;
  entries: V2Metadata[] | null;
  failure: ReadFailure | null;
}

/** One `diffid-by-digest` file. */
export interface MappingRecord {
  digest: string;
  file: StoreFile;
  diffID: string | null;
  failure: ReadFailure | null;
}

/** Everything {@linkcode scanStore} found. */
export interface ScanResult {
  lists: ListRecord[];
  mappings: MappingRecord[];
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
  return { kind, code, message: error instanceof Error ? error.message : String(error) };
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
  const { fs, root } = store;
  const files: StoreFile[] = [];
  const unreadableDirectories: ScanResult["unreadableDirectories"] = [];
  const undecodableNames: ScanResult["undecodableNames"] = [];
  const walk = async (directory: string, relative: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readDir(directory);
    } catch (error) {
      if (relative === "") throw mapError(error, "read", directory, directory);
      unreadableDirectories.push({
        path: directory,
        relative,
        failure: failureOf(mapError(error, "list", relative, directory), "unreadable"),
      });
      return;
    }
    names.sort();
    for (const name of names) {
      const path = `${directory === "/" ? "" : directory}/${name}`;
      const rel = relative === "" ? name : `${relative}/${name}`;
      let info: FileInfo | null;
      try {
        info = await fs.stat(path);
      } catch (error) {
        unreadableDirectories.push({
          path,
          relative: rel,
          failure: failureOf(mapError(error, "stat", rel, path), "unreadable"),
        });
        continue;
      }
      if (info === null) {
        if (name.includes(REPLACEMENT_CHARACTER)) undecodableNames.push({ path, relative: rel });
        continue; // else removed meanwhile
      }
      if (info.kind === "directory") {
        await walk(path, rel);
        continue;
      }
      files.push({
        relative: rel,
        path,
        kind: info.kind,
        size: info.size,
        mtimeMs: info.mtimeMs,
      });
      onProgress?.("scanning", files.length, undefined);
    }
  };
  await walk(root, "");
  return { files, unreadableDirectories, undecodableNames };
}

/**
 * Walks the store and reads every V2Metadata list in it, and every digest mapping when
 * `readMappings` (only `verify` looks at them; `mappings` is empty otherwise).
 *
 * @param store The open store.
 * @param onProgress Told how far the walk and the reads are.
 * @param readMappings Whether to read the `diffid-by-digest` files too.
 * @returns What was found, failures included.
 */
export async function scanStore(
  store: FSMetadataStore,
  onProgress: ProgressCallback | undefined,
  readMappings: boolean,
): Promise<ScanResult> {
  const { files, unreadableDirectories, undecodableNames } = await walkStore(store, onProgress);
  const result: ScanResult = {
    lists: [],
    mappings: [],
    tempFiles: [],
    strays: [],
    unreadableDirectories,
    undecodableNames,
  };
  const keyed: { namespace: string; key: string; file: StoreFile }[] = [];
  for (const file of files) {
    const segments = file.relative.split("/");
    if (segments.some((segment) => segment.startsWith(TEMP_PREFIX))) {
      result.tempFiles.push(file);
      continue;
    }
    const namespace = segments[0]!;
    if (namespace !== BY_DIFFID && (namespace !== BY_DIGEST || !readMappings)) continue;
    // Go writes a digest with an empty algorithm, ":<hex>", directly under the namespace.
    if (segments.length < 2) {
      result.strays.push(file);
      continue;
    }
    keyed.push({ namespace, key: segments.slice(1).join("/"), file });
  }
  let done = 0;
  for (const { namespace, key, file } of keyed) {
    onProgress?.("reading", ++done, keyed.length);
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
          failure = {
            kind: "corrupt",
            code: "EBADMSG",
            message: `Cannot use "${namespace}/${key}" at "${file.path}": ${
              text === "" ? "it is empty" : `"${text.slice(0, 80)}" is not a DiffID`
            }`,
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
        failure.message = `Cannot decode "${namespace}/${key}" at "${file.path}": ${
          failure.message.replace(/^Cannot [^:]*: /, "")
        }`;
      }
    }
    result.lists.push({ diffID: digestOf(key), file, entries, failure });
  }
  return result;
}
