/**
 * The key/value interface the services need, with any backend behind it.
 *
 * @module
 */
import type { UploadClaims } from "./upload_claims.ts";

export type { Claim, UploadClaims } from "./upload_claims.ts";

/**
 * A key/value store addressed by `(namespace, key)`, as Docker's `metadata.Store`.
 * Failures are {@linkcode MetadataError}s; a missing key is `ENOENT`.
 *
 * @example A store kept in a Map (no atomic `update`: the services lock per key instead)
 * ```ts
 * import { MetadataError, type MetadataStore, V1IDService } from "@distribution/metadata";
 *
 * const values = new Map<string, Uint8Array>();
 * const mapStore: MetadataStore = {
 *   get(namespace, key) {
 *     const value = values.get(`${namespace}/${key}`);
 *     if (!value) return Promise.reject(new MetadataError("ENOENT", `No "${key}"`));
 *     return Promise.resolve(value);
 *   },
 *   set(namespace, key, value) {
 *     values.set(`${namespace}/${key}`, value);
 *     return Promise.resolve();
 *   },
 *   delete(namespace, key) {
 *     if (!values.delete(`${namespace}/${key}`)) {
 *       return Promise.reject(new MetadataError("ENOENT", `No "${key}"`));
 *     }
 *     return Promise.resolve();
 *   },
 * };
 * await new V1IDService(mapStore).set("a".repeat(64), "registry", "sha256:1");
 * ```
 */
export interface MetadataStore {
  /**
   * Reads a value.
   *
   * @param namespace The kind of mapping, e.g. `v2metadata-by-diffid`.
   * @param key The key inside the namespace, e.g. `sha256/<hex>`.
   * @returns The stored bytes; `ENOENT` when absent.
   */
  get(namespace: string, key: string): Promise<Uint8Array>;
  /**
   * Writes a value, replacing any old one.
   *
   * @param namespace The kind of mapping.
   * @param key The key inside the namespace.
   * @param value The bytes to store (may be empty).
   */
  set(namespace: string, key: string, value: Uint8Array): Promise<void>;
  /**
   * Removes a value; `ENOENT` when absent.
   *
   * @param namespace The kind of mapping.
   * @param key The key inside the namespace.
   */
  delete(namespace: string, key: string): Promise<void>;
  /**
   * Optional atomic read-modify-write of one key: `fn` gets the old value (`null` when
   * absent) and returns the new one (`null` deletes). A store that offers it makes
   * `V2MetadataService.add`/`remove` safe across processes; without it the service uses
   * get/set under a per-key lock inside the process. `fn` may run more than once and may
   * throw to abort; returning bytes equal to the old value may skip the write.
   *
   * @param namespace The kind of mapping.
   * @param key The key inside the namespace.
   * @param fn Computes the new value from the old.
   */
  update?(
    namespace: string,
    key: string,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void>;
  /**
   * Optional listing of one namespace, as unstorage's `getKeys`: every key that `get`
   * answers, in the cleaned form `get` takes (e.g. `sha256/<hex>`), sorted by UTF-16 code
   * unit. An empty or absent namespace lists nothing. Lets tools inspect and copy any store
   * (`copy-store` in the CLI).
   *
   * @param namespace The kind of mapping, e.g. `v2metadata-by-diffid`.
   * @returns The keys, sorted.
   */
  keys?(namespace: string): Promise<string[]>;
  /**
   * Optional upload claims (see {@linkcode UploadClaims}): present on stores that can create
   * a key atomically across processes, unless opened with `claims: false`. `push` and `copy`
   * claim each layer before uploading it, so builders sharing the store upload it once.
   */
  readonly claims?: UploadClaims;
}
