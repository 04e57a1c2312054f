/**
 * A {@linkcode MetadataStore} on a Cloudflare Durable Object's transactional storage
 * (`ctx.storage`): one object holds a fleet's metadata at the edge, and `update` runs in a
 * storage transaction, so concurrent requests adding to one DiffID never lose entries.
 *
 * The module imports nothing from `cloudflare:workers`: it takes the storage as a parameter,
 * typed by the few methods it calls ({@linkcode DurableObjectStorageLike}).
 *
 * @example A Durable Object serving V2MetadataService over RPC
 * ```ts ignore
 * import { DurableObject } from "cloudflare:workers";
 * import { type V2Metadata, V2MetadataService } from "@distribution/metadata";
 * import { DurableObjectMetadataStore } from "@distribution/metadata/durable-object";
 *
 * export class Metadata extends DurableObject {
 *   #service = DurableObjectMetadataStore.open(this.ctx.storage).then((store) =>
 *     new V2MetadataService(store)
 *   );
 *   async add(diffID: string, metadata: V2Metadata): Promise<void> {
 *     await (await this.#service).add(diffID, metadata);
 *   }
 *   async getMetadata(diffID: string): Promise<V2Metadata[]> {
 *     return await (await this.#service).getMetadata(diffID);
 *   }
 * }
 * ```
 *
 * @module
 */
import { sameBytes } from "./_bytes.ts";
import { CLAIMS, claimsOnUpdate } from "./_claims_on_update.ts";
import { keyPath, namespacePath } from "./_keys.ts";
import { failure, mapError } from "./_map_error.ts";
import { MetadataError } from "./errors.ts";
import type { MetadataStore } from "./metadata_store.ts";
import type { UploadClaims } from "./upload_claims.ts";

/** The part of a storage transaction (`DurableObjectTransaction`) the store uses. */
export interface DurableObjectTransactionLike {
  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The value, or `undefined` when absent.
   */
  get(key: string): Promise<unknown>;
  /**
   * Writes one key.
   *
   * @param key The key.
   * @param value The value (structured-cloned).
   */
  put(key: string, value: unknown): Promise<void>;
  /**
   * Removes one key.
   *
   * @param key The key.
   * @returns Whether it existed.
   */
  delete(key: string): Promise<boolean>;
}

/**
 * The part of `DurableObjectStorage` (`ctx.storage` of a Durable Object) the store uses;
 * both the key-value and the SQLite storage backends have it.
 */
export interface DurableObjectStorageLike extends DurableObjectTransactionLike {
  /**
   * Lists entries in key order.
   *
   * @param options The key prefix, the key to start at, and how many at most.
   * @returns The entries.
   */
  list(options: { prefix: string; start?: string; limit?: number }): Promise<Map<string, unknown>>;
  /**
   * Runs `closure` in a transaction: its writes apply together, or not at all when it
   * throws.
   *
   * @param closure The work, on the transaction.
   * @returns What `closure` resolved to.
   */
  transaction<T>(closure: (txn: DurableObjectTransactionLike) => Promise<T>): Promise<T>;
}

/** Options for {@linkcode DurableObjectMetadataStore.open}. */
export interface DurableObjectMetadataStoreOptions {
  /** Put in front of every storage key, e.g. `distribution:` (default none). */
  prefix?: string;
  /**
   * Offer {@linkcode DurableObjectMetadataStore.claims} (default `true`); `false` makes
   * `push` and `copy` upload without telling other builders.
   */
  claims?: boolean;
}

/** The largest value of the key-value storage backend: 128 KiB. */
const MAX_VALUE_BYTES = 131_072;
/** The longest storage key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 2048;
/** How many keys `keys()` reads per `list` call. */
const LIST_PAGE = 1000;

const encoder = new TextEncoder();

/** What is being attempted, for error messages. */
interface Attempt {
  action: string;
  what: string;
  path: string;
}

/**
 * A {@linkcode MetadataStore} on a Durable Object's storage: the value of
 * `(namespace, key)` is the storage key `<prefix><namespace>/<key>` (the path cleaned and
 * checked exactly as {@linkcode FSMetadataStore} does, so `..`, NUL, `\`, `.tmp-` and empty
 * keys are `EINVAL`), holding the bytes as a `Uint8Array`. `update` runs in
 * `storage.transaction()`. Values over 128 KiB are `EFBIG`, keys over 2 KiB `ENAMETOOLONG`
 * (the key-value backend's limits).
 *
 * @example
 * ```ts ignore
 * import { DurableObjectMetadataStore } from "@distribution/metadata/durable-object";
 *
 * // Inside a Durable Object: this.ctx.storage
 * const store = await DurableObjectMetadataStore.open(this.ctx.storage, { prefix: "ci:" });
 * await store.set("v1id", "registry,abc", new TextEncoder().encode("sha256:1"));
 * ```
 */
export class DurableObjectMetadataStore implements MetadataStore {
  /** The storage the store uses. */
  readonly storage: DurableObjectStorageLike;
  /** What every storage key starts with. */
  readonly prefix: string;
  /**
   * Upload claims (see {@linkcode UploadClaims}), unless opened with `claims: false`: each
   * is the storage key `<prefix>.tmp-claims/<key>`, taken, renewed and released in a storage
   * transaction, and run out by the object's clock. `keys()` never lists claims.
   */
  readonly claims?: UploadClaims;

  private constructor(storage: DurableObjectStorageLike, prefix: string, claims: boolean) {
    this.storage = storage;
    this.prefix = prefix;
    if (!claims) return;
    const attempt = (action: string, key: string): Attempt => {
      const path = `${prefix}${CLAIMS}/${key}`;
      return { action, what: key, path };
    };
    this.claims = claimsOnUpdate(
      (key, fn) => this.#transact(attempt("claim", key), fn),
      (key) => this.#read(this.storage, attempt("get claim", key)),
    );
  }

  /**
   * Opens the store on a Durable Object's storage. Nothing is read or written yet.
   *
   * @example
   * ```ts ignore
   * const store = await DurableObjectMetadataStore.open(this.ctx.storage);
   * ```
   *
   * @param storage The object's `ctx.storage`.
   * @param options The key prefix.
   * @returns The store.
   */
  static open(
    storage: DurableObjectStorageLike,
    options: DurableObjectMetadataStoreOptions = {},
  ): Promise<DurableObjectMetadataStore> {
    return Promise.resolve(
      new DurableObjectMetadataStore(storage, options.prefix ?? "", options.claims ?? true),
    );
  }

  /**
   * Reads the value of a key.
   *
   * @example
   * ```ts ignore
   * const value = await store.get("diffid-by-digest", "sha256/" + "b".repeat(64));
   * ```
   *
   * @param namespace The kind of mapping, e.g. `diffid-by-digest`.
   * @param key The key, e.g. `sha256/<hex>`.
   * @returns The stored bytes; `ENOENT` when absent.
   */
  async get(namespace: string, key: string): Promise<Uint8Array> {
    const attempt = this.#begin("get", namespace, key);
    const value = await this.#read(this.storage, attempt);
    if (value === null) throw mapError(null, "get", attempt.what, attempt.path, "ENOENT");
    return value;
  }

  /**
   * Writes the value of a key, replacing any old one.
   *
   * @example
   * ```ts ignore
   * await store.set("v1id", "registry,abc", new TextEncoder().encode("sha256:1"));
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   * @param value The bytes to store (may be empty; at most 128 KiB, else `EFBIG`).
   */
  async set(namespace: string, key: string, value: Uint8Array): Promise<void> {
    const attempt = this.#begin("set", namespace, key);
    const bytes = this.#checkSize(value.slice(), attempt);
    await this.#call(attempt, () => this.storage.put(attempt.path, bytes));
  }

  /**
   * Removes a key; `ENOENT` when absent.
   *
   * @example
   * ```ts ignore
   * await store.delete("v1id", "registry,abc");
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   */
  async delete(namespace: string, key: string): Promise<void> {
    const attempt = this.#begin("delete", namespace, key);
    const existed = await this.#call(attempt, () => this.storage.delete(attempt.path));
    if (!existed) throw mapError(null, "delete", attempt.what, attempt.path, "ENOENT");
  }

  /**
   * Atomic read-modify-write of one key in a storage transaction: reads the value (`null`
   * when absent), writes what `fn` returns (`null` deletes; bytes equal to the old value
   * write nothing). When `fn` throws nothing is written.
   *
   * @example
   * ```ts ignore
   * await store.update("ns", "log", (old) => new Uint8Array([...old ?? [], 1]));
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   * @param fn Computes the new value (or `null`) from the old (`null` when absent).
   */
  async update(
    namespace: string,
    key: string,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void> {
    await this.#transact(this.#begin("update", namespace, key), fn);
  }

  /**
   * Lists the keys of a namespace, sorted, as `get` takes them.
   *
   * @example
   * ```ts ignore
   * const diffIDKeys = await store.keys("v2metadata-by-diffid"); // ["sha256/…", …]
   * ```
   *
   * @param namespace The namespace, e.g. `v2metadata-by-diffid`.
   * @returns The keys, sorted.
   */
  async keys(namespace: string): Promise<string[]> {
    const base = `${this.prefix}${namespacePath(namespace)}/`;
    const attempt = { action: "list", what: namespace, path: base };
    const keys: string[] = [];
    let start: string | undefined;
    for (;;) {
      const page = await this.#call(attempt, () =>
        this.storage.list({
          prefix: base,
          limit: LIST_PAGE,
          ...(start === undefined ? {} : { start }),
        }));
      for (const key of page.keys()) if (key !== start) keys.push(key.slice(base.length));
      if (page.size < LIST_PAGE) break;
      start = [...page.keys()].at(-1);
    }
    return keys.sort();
  }

  /** {@linkcode DurableObjectMetadataStore.update} of the storage key `attempt.path`. */
  async #transact(
    attempt: Attempt,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void> {
    await this.storage.transaction(async (txn) => {
      const old = await this.#read(txn, attempt);
      const next = fn(old === null ? null : old.slice());
      if (next === null) {
        if (old !== null) await this.#call(attempt, () => txn.delete(attempt.path));
        return;
      }
      if (old !== null && sameBytes(old, next)) return;
      const bytes = this.#checkSize(next.slice(), attempt);
      await this.#call(attempt, () => txn.put(attempt.path, bytes));
    });
  }

  /** Checks and cleans the key; the context of the call. */
  #begin(action: string, namespace: string, key: string): Attempt {
    const path = this.prefix + keyPath(namespace, key);
    const what = `${namespace}/${key}`;
    if (path.length * 3 > MAX_KEY_BYTES && encoder.encode(path).length > MAX_KEY_BYTES) {
      const reason = `its storage key would be longer than ${MAX_KEY_BYTES} bytes`;
      throw new MetadataError("ENAMETOOLONG", `Cannot ${action} "${what}": ${reason}`, {
        path,
        reason,
      });
    }
    return { action, what, path };
  }

  #checkSize(value: Uint8Array, attempt: Attempt): Uint8Array {
    if (value.length <= MAX_VALUE_BYTES) return value;
    const reason = `the value is ${value.length} bytes, more than the ${MAX_VALUE_BYTES} a ` +
      "Durable Object value holds";
    throw new MetadataError("EFBIG", `Cannot ${attempt.action} "${attempt.what}": ${reason}`, {
      path: attempt.path,
      reason,
    });
  }

  /** Reads a value as bytes the caller owns; `null` when absent. */
  async #read(from: DurableObjectTransactionLike, attempt: Attempt): Promise<Uint8Array | null> {
    const value = await this.#call(attempt, () => from.get(attempt.path));
    if (value === undefined) return null;
    if (!(value instanceof Uint8Array)) {
      throw failure(
        "EBADMSG",
        attempt.action,
        attempt.what,
        attempt.path,
        "the stored value is not bytes this store wrote",
      );
    }
    return new Uint8Array(value);
  }

  /** Runs one storage call, turning its failure into a MetadataError. */
  async #call<T>(attempt: Attempt, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw mapError(error, attempt.action, attempt.what, attempt.path);
    }
  }
}
