/**
 * A {@linkcode MetadataStore} on Deno KV: one database shared by many processes and
 * machines (Deno Deploy, a self-hosted `denokv` server, or a local SQLite file), with
 * atomic read-modify-write so concurrent `V2MetadataService.add`/`remove` calls never lose
 * entries, wherever they run.
 *
 * The module uses no `Deno` global: it takes the KV handle as a parameter, typed by the few
 * methods it calls ({@linkcode Kv}), so it loads and type-checks in any runtime. On Node and
 * Bun, pass the handle of the `@deno/kv` package (`openKv(path or KV Connect URL)`; on Bun
 * with `{ encodeV8, decodeV8 }` from `node:v8`): the same SQLite files, read and written alike.
 *
 * @example
 * ```ts ignore
 * import { V2MetadataService } from "@distribution/metadata";
 * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
 *
 * // deno run --unstable-kv …; on Deno Deploy: Deno.openKv() with no path
 * const kv = await Deno.openKv("./metadata.sqlite");
 * const store = await DenoKvMetadataStore.open(kv, { prefix: ["distribution"] });
 * await new V2MetadataService(store).add("sha256:" + "a".repeat(64), {
 *   digest: "sha256:" + "b".repeat(64),
 *   sourceRepository: "docker.io/library/busybox",
 *   hmac: "",
 * });
 * ```
 *
 * @module
 */
import { AGAIN, retryUntil } from "./_backoff.ts";
import { CLAIMS, claimsOnUpdate } from "./_claims_on_update.ts";
import { keyPath, namespacePath } from "./_keys.ts";
import { errorCode, failure, mapError } from "./_map_error.ts";
import { sameBytes } from "./_bytes.ts";
import { MetadataError } from "./errors.ts";
import type { MetadataStore } from "./metadata_store.ts";
import type { UploadClaims } from "./upload_claims.ts";

/** One part of a KV key, as in `Deno.KvKeyPart` (symbols aside). */
export type KvKeyPart = Uint8Array | string | number | bigint | boolean;

/** A KV key: a list of parts, as in `Deno.KvKey`. */
export type KvKey = readonly KvKeyPart[];

/** What a KV read returns, as `Deno.KvEntryMaybe`: `versionstamp` is `null` when absent. */
export interface KvEntry {
  /** The value, or `null` when absent. */
  readonly value: unknown;
  /** The version of the value, or `null` when absent. */
  readonly versionstamp: string | null;
}

/** The part of `Deno.AtomicOperation` the store uses. */
export interface KvAtomicOperation {
  /**
   * Makes the commit fail unless `key` is still at `versionstamp` (`null`: absent).
   *
   * @param checks The keys and the versions they must have.
   * @returns The same operation.
   */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): this;
  /**
   * Queues a write.
   *
   * @param key The key.
   * @param value The value.
   * @returns The same operation.
   */
  set(key: KvKey, value: unknown): this;
  /**
   * Queues a delete.
   *
   * @param key The key.
   * @returns The same operation.
   */
  delete(key: KvKey): this;
  /**
   * Applies every queued mutation, or none when a check fails.
   *
   * @returns `ok: false` when a check failed.
   */
  commit(): Promise<{ ok: boolean }>;
}

/**
 * The part of `Deno.Kv` the store uses; a `Deno.Kv` from `Deno.openKv()` fits, and so does
 * any client with the same methods.
 */
export interface Kv {
  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry.
   */
  get(key: KvKey): Promise<KvEntry>;
  /**
   * Reads up to 10 keys in one consistent snapshot.
   *
   * @param keys The keys.
   * @returns The entries, in the order of `keys`.
   */
  getMany(keys: KvKey[]): Promise<KvEntry[]>;
  /**
   * Starts an atomic operation.
   *
   * @returns The operation.
   */
  atomic(): KvAtomicOperation;
  /**
   * Optional: lists the entries whose keys start with `selector.prefix`, in key order, as
   * `Deno.Kv.list` does. Needed only by {@linkcode DenoKvMetadataStore.keys}.
   *
   * @param selector The key prefix.
   * @returns The entries.
   */
  list?(selector: { prefix: KvKey }): AsyncIterable<{ readonly key: readonly unknown[] }>;
}

/** Options for {@linkcode DenoKvMetadataStore.open}. */
export interface DenoKvMetadataStoreOptions {
  /** Key parts in front of every key the store writes, e.g. `["distribution"]`. Default `[]`. */
  prefix?: KvKey;
  /**
   * How long one call keeps retrying while the database is locked or another writer keeps
   * winning the race for a key, in milliseconds, before failing with `EBUSY`. Default 60000.
   */
  busyTimeoutMs?: number;
  /**
   * Offer {@linkcode DenoKvMetadataStore.claims} (default `true`); `false` makes `push` and
   * `copy` upload without telling other builders.
   */
  claims?: boolean;
}

/** Deno KV's largest value, in bytes (a `Uint8Array` is stored as its raw bytes). */
const KV_VALUE_MAX = 65_536;
/**
 * A larger value is split into this many 64 KiB entries at most: the head and its chunks fit
 * in one `getMany` (10 keys) and one atomic commit (800 KiB of mutations).
 */
const MAX_CHUNKS = 9;
/** The largest value the store holds: 576 KiB. */
const MAX_VALUE_BYTES = MAX_CHUNKS * KV_VALUE_MAX;
/** Deno KV's longest key for a write, in encoded bytes. */
const KV_KEY_MAX = 2048;
/** The encoded size of the number part that addresses a chunk. */
const CHUNK_PART_BYTES = 9;

const encoder = new TextEncoder();

/** What the head entry of a value split into chunks holds. */
interface ChunkedHead {
  chunks: number;
  size: number;
}

function isChunkedHead(value: unknown): value is ChunkedHead {
  const head = value as Partial<ChunkedHead> | null;
  return typeof head === "object" && head !== null && Number.isInteger(head.chunks) &&
    Number.isInteger(head.size);
}

/** One value as read, with the version to check when writing it back. */
interface Current {
  value: Uint8Array | null;
  versionstamp: string | null;
  /** How many chunk entries the value has (0 when it is held by the head alone). */
  chunks: number;
}

/** What is being attempted, for error messages, and until when to retry. */
interface Attempt {
  action: string;
  what: string;
  path: string;
  deadline: number;
}

/** The size of a key part in Deno KV's key encoding (tag, bytes with 0x00 escaped, 0x00). */
function partBytes(part: KvKeyPart): number {
  if (typeof part === "string" || part instanceof Uint8Array) {
    const bytes = typeof part === "string" ? encoder.encode(part) : part;
    return bytes.reduce((total, byte) => total + (byte === 0 ? 2 : 1), 2);
  }
  // A bigint: a tag, a length byte and its bytes (an upper bound); a number: tag + 8 bytes.
  if (typeof part === "bigint") {
    return 2 + Math.ceil((part < 0n ? -part : part).toString(16).length / 2);
  }
  return typeof part === "number" ? 9 : 1;
}

/** The failure of `attempt`: `Cannot <action> "<what>" at "<path>": <reason>`. */
function fail(attempt: Attempt, code: string, reason: string, cause?: unknown): MetadataError {
  return failure(code, attempt.action, attempt.what, attempt.path, reason, cause);
}

function isLocked(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /database is locked|database table is locked|SQLITE_BUSY/i.test(message);
}

/** The errno name for what Deno KV threw. */
function kvErrorCode(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/key too large/i.test(message)) return "ENAMETOOLONG";
  if (/value too large|mutation size too large/i.test(message)) return "EFBIG";
  return errorCode(error);
}

/** Calls `call` again while it fails with "database is locked", until `deadline`. */
function whileLocked<T>(
  call: () => Promise<T>,
  deadline: number,
  failure: (error: unknown) => unknown,
): Promise<T> {
  let locked: unknown;
  return retryUntil(deadline, () => failure(locked), async () => {
    try {
      return await call();
    } catch (error) {
      if (!isLocked(error)) throw failure(error);
      locked = error;
      return AGAIN;
    }
  });
}

/**
 * Calls `call` (typically `() => Deno.openKv(path)`) again while it fails with SQLite's
 * "database is locked", with backoff, for up to `busyTimeoutMs`. Opening a local SQLite
 * file that another process is opening or writing can answer so; the store's own calls
 * retry the same way by themselves.
 *
 * @example
 * ```ts ignore
 * import { DenoKvMetadataStore, retryWhileLocked } from "@distribution/metadata/kv";
 *
 * const kv = await retryWhileLocked(() => Deno.openKv("/shared/metadata.sqlite"));
 * const store = await DenoKvMetadataStore.open(kv);
 * ```
 *
 * @param call What to call, e.g. `() => Deno.openKv(path)`.
 * @param options How long to keep trying, in milliseconds (default 60000).
 * @returns What `call` resolved to; its last error once the time is up or on any other error.
 */
export function retryWhileLocked<T>(
  call: () => Promise<T>,
  options: { busyTimeoutMs?: number } = {},
): Promise<T> {
  return whileLocked(call, Date.now() + (options.busyTimeoutMs ?? 60_000), (error) => error);
}

/**
 * A {@linkcode MetadataStore} on Deno KV (`Deno.openKv()`): Deno Deploy's database, a
 * self-hosted `denokv` server, or a local SQLite file shared by several processes.
 *
 * Keys are checked and cleaned exactly as {@linkcode FSMetadataStore} does (`..`, NUL, `\`,
 * `.tmp-` and empty keys are `EINVAL`); the cleaned path `ns/a/b` becomes the KV key
 * `[...prefix, "ns", "a/b"]`. Values up to 64 KiB take one entry; larger ones, up to
 * 576 KiB, are split over several entries written in one atomic commit; larger still is
 * `EFBIG`. Every write checks the versionstamp it read, and {@linkcode
 * DenoKvMetadataStore.update} makes `V2MetadataService.add`/`remove` atomic across processes
 * and machines. A locked SQLite database ("database is locked") is retried with backoff.
 *
 * @example
 * ```ts ignore
 * import { V2MetadataService } from "@distribution/metadata";
 * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
 *
 * const kv = await Deno.openKv(); // needs --unstable-kv outside Deno Deploy
 * const service = new V2MetadataService(await DenoKvMetadataStore.open(kv));
 * await service.getMetadata("sha256:" + "a".repeat(64)).catch((error) => error.code); // "ENOENT"
 * ```
 */
export class DenoKvMetadataStore implements MetadataStore {
  /** The KV database the store uses. */
  readonly kv: Kv;
  /** The key parts in front of every key. */
  readonly prefix: KvKey;
  readonly #busyTimeoutMs: number;
  /**
   * Upload claims (see {@linkcode UploadClaims}), unless opened with `claims: false`: each
   * is the entry `[...prefix, ".tmp-claims", key]`, taken, renewed and released by an atomic
   * commit that checks its versionstamp. A claim runs out by the writer's clock (a fleet's
   * machines must roughly agree on the time); `keys()` never lists claims.
   */
  readonly claims?: UploadClaims;

  private constructor(kv: Kv, prefix: KvKey, busyTimeoutMs: number, claims: boolean) {
    this.kv = kv;
    this.prefix = prefix;
    this.#busyTimeoutMs = busyTimeoutMs;
    if (claims) {
      const begin = (action: string, key: string): [KvKey, Attempt] => [
        [...prefix, CLAIMS, key],
        { action, what: key, path: `${CLAIMS}/${key}`, deadline: Date.now() + busyTimeoutMs },
      ];
      this.claims = claimsOnUpdate(
        (key, fn) => this.#transact(...begin("claim", key), fn),
        async (key) => (await this.#read(...begin("get claim", key))).value,
      );
    }
  }

  /**
   * Opens the store on a KV database. Nothing is read or written yet; the caller keeps
   * ownership of `kv` (and closes it).
   *
   * @example
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv("/tmp/metadata.sqlite"), {
   *   prefix: ["distribution"],
   * });
   * ```
   *
   * @param kv The database, e.g. `await Deno.openKv(path)`.
   * @param options The key prefix and how long to ride out a locked database.
   * @returns The store.
   */
  static open(kv: Kv, options: DenoKvMetadataStoreOptions = {}): Promise<DenoKvMetadataStore> {
    const prefix = [...options.prefix ?? []];
    const busyTimeoutMs = options.busyTimeoutMs ?? 60_000;
    if (!(busyTimeoutMs >= 0)) {
      return Promise.reject(
        new MetadataError("EINVAL", `Cannot open the KV store: busyTimeoutMs is ${busyTimeoutMs}`),
      );
    }
    return Promise.resolve(
      new DenoKvMetadataStore(kv, Object.freeze(prefix), busyTimeoutMs, options.claims ?? true),
    );
  }

  /**
   * Reads the value of a key.
   *
   * @example
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv(":memory:"));
   * await store.set("ns", "key", new Uint8Array([1]));
   * const value = await store.get("ns", "key"); // Uint8Array [1]
   * ```
   *
   * @param namespace The kind of mapping, e.g. `diffid-by-digest`.
   * @param key The key, e.g. `sha256/<hex>`.
   * @returns The stored bytes; `ENOENT` when absent.
   */
  async get(namespace: string, key: string): Promise<Uint8Array> {
    const [attempt, kvKey] = this.#begin("get", namespace, key);
    const current = await this.#read(kvKey, attempt);
    if (current.value === null) throw mapError(null, "get", attempt.what, attempt.path, "ENOENT");
    return current.value;
  }

  /**
   * Writes the value of a key, replacing any old one, in one atomic commit.
   *
   * @example
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv(":memory:"));
   * await store.set("ns", "nested/key", new TextEncoder().encode("value"));
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   * @param value The bytes to store (may be empty; at most 576 KiB, else `EFBIG`).
   */
  async set(namespace: string, key: string, value: Uint8Array): Promise<void> {
    const [attempt, kvKey] = this.#begin("set", namespace, key);
    const bytes = value.slice();
    this.#checkSize(bytes, attempt);
    await this.#transact(kvKey, attempt, () => bytes);
  }

  /**
   * Removes a key; `ENOENT` when absent.
   *
   * @example
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv(":memory:"));
   * await store.set("ns", "key", new Uint8Array());
   * await store.delete("ns", "key");
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   */
  async delete(namespace: string, key: string): Promise<void> {
    const [attempt, kvKey] = this.#begin("delete", namespace, key);
    await this.#transact(kvKey, attempt, (old) => {
      if (old === null) throw mapError(null, "delete", attempt.what, attempt.path, "ENOENT");
      return null;
    });
  }

  /**
   * Atomic read-modify-write of one key: reads the value and its versionstamp, calls `fn`,
   * and commits the result only if no other writer changed the key meanwhile; otherwise
   * reads again and calls `fn` again. `null` from `fn` deletes the key (nothing happens
   * when it is already absent); bytes equal to the old value write nothing.
   *
   * @example Append to a value without losing concurrent appends
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv(":memory:"));
   * await Promise.all([1, 2, 3].map((n) =>
   *   store.update("ns", "log", (old) => new Uint8Array([...old ?? [], n]))
   * ));
   * (await store.get("ns", "log")).length; // 3
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   * @param fn Computes the new value (or `null`) from the old (`null` when absent); may run
   * more than once, and may throw to abort.
   */
  async update(
    namespace: string,
    key: string,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void> {
    const [attempt, kvKey] = this.#begin("update", namespace, key);
    await this.#transact(kvKey, attempt, (old) => {
      const next = fn(old === null ? null : old.slice());
      if (next === null) return null;
      const bytes = next.slice();
      this.#checkSize(bytes, attempt);
      return bytes;
    });
  }

  /**
   * Lists the keys of a namespace, sorted, as `get` takes them (`sha256/<hex>`); the
   * chunks of split values are not keys. Needs {@linkcode Kv.list} (`Deno.Kv` and
   * `@deno/kv` have it), else `ENOTSUP`.
   *
   * @example
   * ```ts ignore
   * import { DenoKvMetadataStore } from "@distribution/metadata/kv";
   *
   * const store = await DenoKvMetadataStore.open(await Deno.openKv(":memory:"));
   * await store.set("v1id", "registry,1", new Uint8Array());
   * await store.keys("v1id"); // ["registry,1"]
   * ```
   *
   * @param namespace The namespace, e.g. `v2metadata-by-diffid`.
   * @returns The keys, sorted.
   */
  async keys(namespace: string): Promise<string[]> {
    const path = namespacePath(namespace);
    const attempt = {
      action: "list",
      what: namespace,
      path,
      deadline: Date.now() + this.#busyTimeoutMs,
    };
    const kv = this.kv;
    if (!kv.list) {
      throw new MetadataError(
        "ENOTSUP",
        `Cannot list "${namespace}": the KV database has no list()`,
        { path },
      );
    }
    // The first segment is the namespace part of every KV key; a nested namespace's other
    // segments begin the second part.
    const slash = path.indexOf("/");
    const head = slash < 0 ? path : path.slice(0, slash);
    const nested = slash < 0 ? "" : path.slice(slash + 1) + "/";
    const depth = this.prefix.length + 2;
    return await this.#call(attempt, async () => {
      const keys: string[] = [];
      for await (const { key } of kv.list!({ prefix: [...this.prefix, head] })) {
        const rest = key[depth - 1];
        if (key.length !== depth || typeof rest !== "string" || !rest.startsWith(nested)) continue;
        keys.push(rest.slice(nested.length));
      }
      return keys.sort();
    });
  }

  /** Checks and cleans the key; the context of the call and the KV key of its value. */
  #begin(action: string, namespace: string, key: string): [Attempt, KvKey] {
    const path = keyPath(namespace, key);
    const slash = path.indexOf("/");
    const parts = slash < 0 ? [path] : [path.slice(0, slash), path.slice(slash + 1)];
    const kvKey = [...this.prefix, ...parts];
    const what = `${namespace}/${key}`;
    let size = CHUNK_PART_BYTES;
    for (const part of kvKey) size += partBytes(part);
    if (size > KV_KEY_MAX) {
      const reason = `its KV key would be longer than ${KV_KEY_MAX} bytes`;
      throw new MetadataError("ENAMETOOLONG", `Cannot ${action} "${what}": ${reason}`, {
        path,
        reason,
      });
    }
    return [{ action, what, path, deadline: Date.now() + this.#busyTimeoutMs }, kvKey];
  }

  #checkSize(value: Uint8Array, attempt: Attempt): void {
    if (value.length <= MAX_VALUE_BYTES) return;
    const reason = `the value is ${value.length} bytes, more than the ${MAX_VALUE_BYTES} a ` +
      `Deno KV store holds (${MAX_CHUNKS} entries of 64 KiB)`;
    throw new MetadataError("EFBIG", `Cannot ${attempt.action} "${attempt.what}": ${reason}`, {
      path: attempt.path,
      reason,
    });
  }

  /** Runs one KV call, riding out a locked database until the deadline. */
  #call<T>(attempt: Attempt, call: () => Promise<T>): Promise<T> {
    return whileLocked(call, attempt.deadline, (error) => {
      if (!isLocked(error)) {
        return mapError(error, attempt.action, attempt.what, attempt.path, kvErrorCode(error));
      }
      return this.#busy(attempt, error);
    });
  }

  #busy(attempt: Attempt, cause?: unknown): MetadataError {
    return fail(
      attempt,
      "EBUSY",
      `the KV database stayed busy for ${this.#busyTimeoutMs} ms`,
      cause,
    );
  }

  /** Reads a value (joining its chunks) and the versionstamp of its head entry. */
  #read(kvKey: KvKey, attempt: Attempt): Promise<Current> {
    return retryUntil(attempt.deadline, () => this.#busy(attempt), async () => {
      const head = await this.#call(attempt, () => this.kv.get(kvKey));
      if (head.versionstamp === null) return { value: null, versionstamp: null, chunks: 0 };
      if (head.value instanceof Uint8Array) {
        // A copy the caller owns: @deno/kv on Node and Bun hands out Buffers, views of a
        // shared pool whose `.buffer` holds other values.
        return { value: new Uint8Array(head.value), versionstamp: head.versionstamp, chunks: 0 };
      }
      if (!isChunkedHead(head.value) || head.value.chunks > MAX_CHUNKS) {
        throw fail(attempt, "EBADMSG", "the KV entry is not a value this store wrote");
      }
      const { chunks, size } = head.value;
      const keys = [kvKey, ...Array.from({ length: chunks }, (_, i) => [...kvKey, i])];
      const [again, ...parts] = await this.#call(attempt, () => this.kv.getMany(keys));
      // Every write of the chunks rewrites the head too: the same versionstamp in this
      // snapshot means the chunks belong to the head read above.
      if (again?.versionstamp === head.versionstamp) {
        const value = new Uint8Array(size);
        let offset = 0;
        for (const part of parts) {
          if (!(part.value instanceof Uint8Array) || offset + part.value.length > size) break;
          value.set(part.value, offset);
          offset += part.value.length;
        }
        if (offset !== size) {
          throw fail(attempt, "EBADMSG", "a chunk of the value is missing from the KV database");
        }
        return { value, versionstamp: head.versionstamp, chunks };
      }
      return AGAIN;
    });
  }

  /**
   * Reads the value, asks `next` for the new one, and commits it if the head entry still
   * has the versionstamp read; repeats until a commit succeeds.
   */
  #transact(
    kvKey: KvKey,
    attempt: Attempt,
    next: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void> {
    return retryUntil(attempt.deadline, () => this.#busy(attempt), async () => {
      const current = await this.#read(kvKey, attempt);
      const value = next(current.value);
      if (value === null && current.value === null) return;
      if (value !== null && current.value !== null && sameBytes(value, current.value)) return;
      const { ok } = await this.#call(attempt, () => {
        const operation = this.kv.atomic().check({
          key: kvKey,
          versionstamp: current.versionstamp,
        });
        this.#queueWrite(operation, kvKey, value, current.chunks);
        return operation.commit();
      });
      return ok ? undefined : AGAIN;
    });
  }

  /** Queues the mutations that replace a value of `oldChunks` chunks by `value`. */
  #queueWrite(
    operation: KvAtomicOperation,
    kvKey: KvKey,
    value: Uint8Array | null,
    oldChunks: number,
  ): void {
    let chunks = 0;
    if (value === null) operation.delete(kvKey);
    else if (value.length <= KV_VALUE_MAX) operation.set(kvKey, value);
    else {
      chunks = Math.ceil(value.length / KV_VALUE_MAX);
      operation.set(kvKey, { chunks, size: value.length } satisfies ChunkedHead);
      for (let i = 0; i < chunks; i++) {
        operation.set([...kvKey, i], value.slice(i * KV_VALUE_MAX, (i + 1) * KV_VALUE_MAX));
      }
    }
    for (let i = chunks; i < oldChunks; i++) operation.delete([...kvKey, i]);
  }
}
