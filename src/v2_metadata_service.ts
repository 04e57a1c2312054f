/**
 * Docker's `V2MetadataService`: which registry blobs a layer came from, and where.
 *
 * @module
 */
import { sameBytes } from "./_bytes.ts";
import { decodeV2MetadataList, encodeV2MetadataList } from "./_go_json.ts";
import { withKeyLock } from "./_key_lock.ts";
import { readModifyWrite } from "./_read_modify_write.ts";
import { BY_DIFFID, BY_DIGEST, digestKey, keyPath, MAX_ENTRIES } from "./_keys.ts";
import { MetadataError } from "./errors.ts";
import { computeV2MetadataHMAC } from "./hmac.ts";
import type { MetadataStore } from "./metadata_store.ts";
import type { V2Metadata } from "./v2_metadata.ts";

export type { V2Metadata };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sameEntry(a: V2Metadata, b: V2Metadata): boolean {
  return a.digest === b.digest && a.sourceRepository === b.sourceRepository && a.hmac === b.hmac;
}

/** Go's Add/Remove read a corrupt list as empty (an unreadable one fails, see #update). */
function listOrEmpty(bytes: Uint8Array | null): V2Metadata[] {
  if (bytes === null) return [];
  try {
    return decodeV2MetadataList(bytes);
  } catch {
    return [];
  }
}

/**
 * The list rules, in one place: `entries` recorded into the encoded list `old` (`null` when
 * absent; a corrupt one counts as empty), each appended after dropping its equals, the newest
 * 50 kept. An entry the list already holds moves to the end with `"move"` (what `add` does:
 * the newest sighting is preferred) or keeps its place with `"keep"` (a merge: entries
 * are only added).
 *
 * @param old The list as stored.
 * @param entries The entries to record, oldest first.
 * @param listed What happens to an entry the list holds already.
 * @returns The encoded list, or `old` itself when it would not change.
 */
export function recordEntries(
  old: Uint8Array | null,
  entries: readonly V2Metadata[],
  listed: "move" | "keep",
): Uint8Array {
  let list = listOrEmpty(old);
  let recorded = 0;
  for (const entry of entries) {
    if (listed === "keep" && list.some((other) => sameEntry(other, entry))) continue;
    list = list.filter((other) => !sameEntry(other, entry));
    list.push(entry);
    recorded++;
  }
  if (old !== null && recorded === 0) return old;
  const bytes = encodeV2MetadataList(list.slice(-MAX_ENTRIES));
  return old !== null && sameBytes(old, bytes) ? old : bytes;
}

/** A copy with exactly the three string fields, or `EINVAL`. */
function entryOf(metadata: V2Metadata): V2Metadata {
  const { digest, sourceRepository, hmac } = metadata ?? {};
  if (
    typeof digest !== "string" || typeof sourceRepository !== "string" || typeof hmac !== "string"
  ) {
    throw new MetadataError(
      "EINVAL",
      "Cannot use metadata: digest, sourceRepository and hmac must be strings",
    );
  }
  return { digest, sourceRepository, hmac };
}

function noStorage(): MetadataError {
  return new MetadataError("ENODEV", "no metadata storage");
}

/**
 * Maps layer DiffIDs to the registry blobs they were pulled from or pushed to, and blob
 * digests back to DiffIDs, in the namespaces and formats dockerd uses
 * (`v2metadata-by-diffid/<alg>/<hex>`, `diffid-by-digest/<alg>/<hex>`).
 *
 * Unlike Go, `add` and `remove` on one DiffID never lose each other's updates: they run
 * through the store's atomic `update` when it has one, else one at a time per key.
 *
 * @example
 * ```ts
 * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
 * import { deepEqual } from "node:assert/strict";
 *
 * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
 * const service = new V2MetadataService(store);
 * const diffID = "sha256:" + "a".repeat(64);
 * const entry = { digest: "sha256:" + "b".repeat(64), sourceRepository: "docker.io/library/busybox", hmac: "" };
 * await service.add(diffID, entry);
 * deepEqual(await service.getMetadata(diffID), [entry]);
 * deepEqual(await service.getDiffID(entry.digest), diffID);
 * ```
 */
export class V2MetadataService {
  readonly #store: MetadataStore | null;

  /**
   * Creates the service.
   *
   * @param store Where to keep the mappings; `null` makes add/remove no-ops and lookups fail.
   */
  constructor(store: MetadataStore | null) {
    this.#store = store;
  }

  /**
   * The entries recorded for a layer, oldest first.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * await service.getMetadata("sha256:" + "a".repeat(64)).catch((error) => error.code); // "ENOENT"
   * ```
   *
   * @param diffID The layer's DiffID, `<alg>:<hex>`.
   * @returns The decoded list; `ENOENT` when none, `EBADMSG` when the file is corrupt.
   */
  async getMetadata(diffID: string): Promise<V2Metadata[]> {
    if (!this.#store) throw noStorage();
    return decodeV2MetadataList(await this.#store.get(BY_DIFFID, digestKey(diffID)));
  }

  /**
   * The DiffID of the layer a blob digest was last recorded for.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * await service.add("sha256:1", { digest: "sha256:2", sourceRepository: "r", hmac: "" });
   * await service.getDiffID("sha256:2"); // "sha256:1"
   * ```
   *
   * @param digest The blob digest, `<alg>:<hex>`.
   * @returns The DiffID text as stored; `ENOENT` when unknown.
   */
  async getDiffID(digest: string): Promise<string> {
    if (!this.#store) throw noStorage();
    return decoder.decode(await this.#store.get(BY_DIGEST, digestKey(digest)));
  }

  /**
   * Records that layer `diffID` is blob `metadata.digest` in `metadata.sourceRepository`:
   * an equal entry moves to the end, the list keeps its newest 50, and the digest maps back
   * to `diffID`. Writes are skipped when nothing would change on disk.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * await service.add("sha256:1", { digest: "sha256:2", sourceRepository: "docker.io/library/busybox", hmac: "" });
   * ```
   *
   * @param diffID The layer's DiffID.
   * @param metadata Where the layer was seen.
   */
  async add(diffID: string, metadata: V2Metadata): Promise<void> {
    if (!this.#store) return;
    const store = this.#store;
    const entry = entryOf(metadata);
    const listKey = digestKey(diffID);
    const mappingKey = digestKey(entry.digest);
    // Refuse a digest the mapping could not be stored under before the list is written.
    keyPath(BY_DIGEST, mappingKey);
    let listChanged = true;
    await this.#update(listKey, (old) => {
      const bytes = recordEntries(old, [entry], "move");
      listChanged = bytes !== old; // the same array: the store need not compare again
      return bytes;
    });
    const diffIDBytes = encoder.encode(diffID);
    if (!listChanged && await this.#holds(BY_DIGEST, mappingKey, diffIDBytes)) return;
    await store.set(BY_DIGEST, mappingKey, diffIDBytes);
  }

  /**
   * {@linkcode V2MetadataService.add} with `hmac` set to the HMAC of the entry under
   * `hmacKey` (or `""` without a key), as dockerd records pulls and pushes.
   *
   * @example
   * ```ts
   * import { computeV2MetadataHMACKey, FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * const key = await computeV2MetadataHMACKey({ username: "ci", password: "secret" });
   * await service.tagAndAdd("sha256:1", key, { digest: "sha256:2", sourceRepository: "r", hmac: "" });
   * ```
   *
   * @param diffID The layer's DiffID.
   * @param hmacKey The key from {@linkcode computeV2MetadataHMACKey}, or `null`.
   * @param metadata Where the layer was seen; its `hmac` is replaced.
   */
  async tagAndAdd(
    diffID: string,
    hmacKey: Uint8Array | null,
    metadata: V2Metadata,
  ): Promise<void> {
    const entry = entryOf(metadata);
    entry.hmac = await computeV2MetadataHMAC(hmacKey, entry);
    await this.add(diffID, entry);
  }

  /**
   * Forgets an entry: finds its layer through the digest mapping, drops every equal entry
   * and deletes the list when none are left. The digest mapping stays, as in dockerd.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * const entry = { digest: "sha256:2", sourceRepository: "r", hmac: "" };
   * await service.add("sha256:1", entry);
   * await service.remove(entry);
   * ```
   *
   * @param metadata The entry to forget (all three fields must match).
   */
  async remove(metadata: V2Metadata): Promise<void> {
    if (!this.#store) return;
    const entry = entryOf(metadata);
    const diffID = await this.getDiffID(entry.digest);
    const listKey = digestKey(diffID);
    await this.#update(listKey, (old) => {
      const list = listOrEmpty(old).filter((other) => !sameEntry(other, entry));
      if (list.length > 0) return encodeV2MetadataList(list);
      if (old === null) {
        throw new MetadataError(
          "ENOENT",
          `Cannot remove from "${BY_DIFFID}/${listKey}": it does not exist`,
        );
      }
      return null;
    });
  }

  /** Whether `namespace/key` holds exactly `value`. */
  async #holds(namespace: string, key: string, value: Uint8Array): Promise<boolean> {
    try {
      return sameBytes(await this.#store!.get(namespace, key), value);
    } catch {
      return false;
    }
  }

  /** Read-modify-write of one list: the store's own `update`, else get/set under a lock. */
  #update(key: string, fn: (old: Uint8Array | null) => Uint8Array | null): Promise<void> {
    const store = this.#store!;
    if (store.update) return store.update(BY_DIFFID, key, fn);
    return withKeyLock(
      store,
      `${BY_DIFFID}/${key}`,
      () => readModifyWrite(store, BY_DIFFID, key, fn),
    );
  }
}
