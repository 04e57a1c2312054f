// `copy-store SRC DST`: copies every entry of one store into another (e.g. a dockerd
// directory into the fleet's Redis), so that it can be run again at any time: a key the
// destination lacks is copied byte for byte, a DiffID's list the destination has already
// gains only the entries it is missing, a mapping it has is left alone. A second run writes
// nothing; an interrupted one is finished by running it again.
import { sameBytes } from "../_bytes.ts";
import { decodeV2MetadataList } from "../_go_json.ts";
import { BY_DIFFID, BY_DIGEST, digestKey } from "../_keys.ts";
import { errorCode } from "../_map_error.ts";
import { readModifyWrite } from "../_read_modify_write.ts";
import { MetadataError } from "../errors.ts";
import type { MetadataStore } from "../metadata_store.ts";
import { recordEntries } from "../v2_metadata_service.ts";
import type { ProgressCallback } from "./scan.ts";

/** The namespaces copied, lists before the mappings that point at them (as `add` writes). */
export const COPIED_NAMESPACES: readonly string[] = [BY_DIFFID, BY_DIGEST, "v1id"];

/** Keys copied at the same time: Redis and remote KV answer in a round trip each. */
const IN_FLIGHT = 16;

/** What happened to one namespace's keys. */
export interface NamespaceCopy {
  namespace: string;
  /** Keys in the source. */
  keys: number;
  /** Keys the destination lacked, now written with the source's bytes. */
  copied: number;
  /** Lists the destination had, which gained the source's missing entries. */
  merged: number;
  /** Keys the destination already held as the source does (or, for lists, a superset). */
  unchanged: number;
  /** Keys removed from the source between listing and reading (a live store). */
  gone: number;
  /** Values the destination holds differently; left as they are. */
  conflicts: string[];
  /** Keys that could not be read from the source or written, with why. */
  failures: { key: string; code: string; message: string }[];
}

const decoder = new TextDecoder();

/**
 * `EINVAL` for a list or mapping key that is no `<alg>/<encoded>`: written by a digest with
 * nothing after its `:` (Go accepts `sha256:`), it would make `sha256` a file in the
 * destination, where no `sha256:` key could be written again.
 */
function checkDigestKey(namespace: string, key: string): void {
  if (key.includes("/")) return;
  throw new MetadataError(
    "EINVAL",
    `Cannot copy "${namespace}/${key}": the key is not <alg>/<encoded>; copied, it would ` +
      `block every "${key}:" digest in the destination`,
    { path: `${namespace}/${key}` },
  );
}

/** The destination's read-modify-write: its own atomic `update`, else get and set. */
function update(
  store: MetadataStore,
  namespace: string,
  key: string,
  fn: (old: Uint8Array | null) => Uint8Array | null,
): Promise<void> {
  return store.update
    ? store.update(namespace, key, fn)
    : readModifyWrite(store, namespace, key, fn);
}

/** Copies one key; its outcome. */
async function copyKey(
  source: MetadataStore,
  destination: MetadataStore,
  namespace: string,
  key: string,
): Promise<"copied" | "merged" | "unchanged" | "conflict" | "gone"> {
  if (namespace === BY_DIFFID || namespace === BY_DIGEST) checkDigestKey(namespace, key);
  let bytes: Uint8Array;
  try {
    bytes = await source.get(namespace, key);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return "gone";
    throw error;
  }
  if (namespace === BY_DIGEST) digestKey(decoder.decode(bytes));
  let outcome: "copied" | "merged" | "unchanged" | "conflict" = "unchanged";
  if (namespace === BY_DIFFID) {
    // A corrupt source list is reported, not copied.
    const entries = decodeV2MetadataList(bytes);
    for (const { digest } of entries) digestKey(digest);
    await update(destination, namespace, key, (old) => {
      if (old === null) {
        outcome = "copied";
        return bytes;
      }
      const merged = recordEntries(old, entries, "keep");
      outcome = merged === old ? "unchanged" : "merged";
      return merged;
    });
  } else {
    await update(destination, namespace, key, (old) => {
      if (old === null) {
        outcome = "copied";
        return bytes;
      }
      outcome = sameBytes(old, bytes) ? "unchanged" : "conflict";
      return old;
    });
  }
  return outcome;
}

/**
 * Copies every key of {@linkcode COPIED_NAMESPACES} from `source` to `destination`.
 *
 * @param source The store read; it needs `keys()`.
 * @param destination The store written, atomically per key when it has `update`.
 * @param progress Called as keys are done, per namespace.
 * @returns What happened, per namespace.
 */
export async function copyStore(
  source: MetadataStore,
  destination: MetadataStore,
  progress?: ProgressCallback,
): Promise<NamespaceCopy[]> {
  if (!source.keys) {
    throw new MetadataError("ENOTSUP", "Cannot copy the store: the source cannot list its keys");
  }
  // Every namespace is listed before anything is written: a source that cannot be listed
  // whole (a key that is not UTF-8, a scan that never ends) leaves the destination as it was.
  const listed: string[][] = [];
  for (const namespace of COPIED_NAMESPACES) listed.push(await source.keys(namespace));
  const results: NamespaceCopy[] = [];
  for (const [index, namespace] of COPIED_NAMESPACES.entries()) {
    const keys = listed[index]!;
    const result: NamespaceCopy = {
      namespace,
      keys: keys.length,
      copied: 0,
      merged: 0,
      unchanged: 0,
      gone: 0,
      conflicts: [],
      failures: [],
    };
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        try {
          const outcome = await copyKey(source, destination, namespace, key);
          if (outcome === "conflict") result.conflicts.push(key);
          else result[outcome]++;
        } catch (error) {
          if (!(error instanceof MetadataError)) throw error;
          result.failures.push({ key, code: errorCode(error), message: error.message });
        }
        progress?.(`copy ${namespace}`, ++done, keys.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, keys.length) }, worker));
    result.conflicts.sort();
    result.failures.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    results.push(result);
  }
  return results;
}
