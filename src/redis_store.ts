/**
 * A {@linkcode MetadataStore} on Redis, for a fleet of builders sharing one store: every
 * value is a Redis string under a key prefix, and `update` is a compare-and-set Lua script,
 * so concurrent `V2MetadataService.add`/`remove` calls on any number of machines never lose
 * entries.
 *
 * The module imports no Redis client: it takes the client the caller already has, typed by
 * the one method it calls ({@linkcode RedisClient}, which a node-redis 5 client has).
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { V2MetadataService } from "@distribution/metadata";
 * import { RedisMetadataStore } from "@distribution/metadata/redis";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const store = await RedisMetadataStore.open(client, { prefix: "distribution:" });
 * await new V2MetadataService(store).add("sha256:" + "a".repeat(64), {
 *   digest: "sha256:" + "b".repeat(64),
 *   sourceRepository: "docker.io/library/busybox",
 *   hmac: "",
 * });
 * ```
 *
 * @module
 */
import { backoff } from "./_backoff.ts";
import { sameBytes } from "./_bytes.ts";
import { keyPath, namespacePath } from "./_keys.ts";
import { errorCode, mapError } from "./_map_error.ts";
import { MetadataError } from "./errors.ts";
import type { MetadataStore } from "./metadata_store.ts";
import { nodeBuiltin } from "./_builtin.ts";

/**
 * The part of a Redis client the store uses: node-redis 5's `sendCommand`. Arguments are
 * strings and Node `Buffer`s; with the `typeMapping` the store passes (RESP type 36, bulk
 * strings, to `Buffer`) bulk replies come back as bytes. An ioredis client fits through
 * `{ sendCommand: ([command, ...args]) => ioredis.callBuffer(command, ...args) }`.
 */
export interface RedisClient {
  /**
   * Sends one command and resolves to its reply.
   *
   * @param args The command and its arguments.
   * @param options How to decode the reply.
   * @returns The reply: bytes for bulk strings, numbers, arrays, `null`.
   */
  sendCommand(
    args: ReadonlyArray<string | Uint8Array>,
    options?: { typeMapping?: Record<number, unknown> },
  ): Promise<unknown>;
}

/** Options for {@linkcode RedisMetadataStore.open}. */
export interface RedisMetadataStoreOptions {
  /**
   * Put in front of every key, e.g. `distribution:` (default none): the value of
   * `(namespace, key)` is the Redis string `<prefix><namespace>/<key>`, cleaned.
   */
  prefix?: string;
  /**
   * How long one Redis command may take, in milliseconds (default 10000), before the call
   * fails with `ETIMEDOUT`: a client whose server is down queues commands until it
   * reconnects, which may be never.
   */
  timeoutMs?: number;
  /**
   * How long `update` keeps retrying while other writers keep changing the key first, in
   * milliseconds (default 60000), before failing with `EBUSY`.
   */
  busyTimeoutMs?: number;
  /**
   * The largest value the store reads or writes, in bytes (default 1 MiB; dockerd's largest,
   * 50 entries with 255-character names, is about 22 KiB): a larger one is `EFBIG`, refused
   * by the server before it is sent, so a hostile value cannot exhaust the reader's memory.
   */
  maxValueBytes?: number;
  /**
   * The most keys `keys()` collects from one namespace (default 1,000,000, about 100 MB of
   * key strings) before failing with `E2BIG`: a server whose SCAN never ends (or a namespace
   * grown by mistake) cannot exhaust the caller's memory.
   */
  maxKeys?: number;
  /**
   * How long `keys()` may scan in all, in milliseconds (default 60000), before failing with
   * `ETIMEDOUT`. A SCAN cursor the server returns twice fails at once with `ELOOP`.
   */
  scanTimeoutMs?: number;
}

/**
 * Writes ARGV[4] (or deletes, when ARGV[3] is "del") only if the key still holds what the
 * caller read: absent when ARGV[1] is "1", else exactly ARGV[2]. Returns 1 when written.
 */
const COMPARE_AND_SET = `local old = redis.call("GET", KEYS[1])
if (ARGV[1] == "1") ~= (old == false) then return 0 end
if old and old ~= ARGV[2] then return 0 end
if ARGV[3] == "del" then redis.call("DEL", KEYS[1]) else redis.call("SET", KEYS[1], ARGV[4]) end
return 1`;

/**
 * GET, unless the value is longer than ARGV[1] bytes: then its length, as an integer. A key
 * holding another type fails with WRONGTYPE.
 */
const GET_AT_MOST = `local size = redis.call("STRLEN", KEYS[1])
if size > tonumber(ARGV[1]) then return size end
return redis.call("GET", KEYS[1])`;

/** The limits among the options. */
type Limits = Omit<RedisMetadataStoreOptions, "prefix">;

/** RESP's bulk string type (`$`), which node-redis decodes to the type mapped here. */
const BULK_STRING = 36;
/** SCAN's batch size hint. */
const SCAN_COUNT = "1000";

const decoder = new TextDecoder();
/** Keys must be UTF-8 to be handed out as strings: a lossy decoding would name another key. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** What is being attempted, for error messages, and until when `update` retries. */
interface Attempt {
  action: string;
  what: string;
  path: string;
  deadline: number;
}

type BufferConstructor = { from(buffer: ArrayBufferLike, offset: number, length: number): unknown };
let nodeBuffer: BufferConstructor | undefined;

/** Node's `Buffer` (Node, Bun and Deno have it), which Redis clients want for bytes. */
function bufferClass(): BufferConstructor {
  nodeBuffer ??= nodeBuiltin<{ Buffer: BufferConstructor }>("node:buffer", "Buffer")?.Buffer;
  if (!nodeBuffer) {
    throw new MetadataError("ENOSYS", "Cannot use Redis here: node:buffer is not available");
  }
  return nodeBuffer;
}

/** Bytes as a `Buffer` over the same memory (no copy). */
function asBuffer(bytes: Uint8Array): Uint8Array {
  return bufferClass().from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as Uint8Array;
}

/** `*`, `?`, `[`, `]` and `\` escaped for a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** Bytes as text for a message: printable ASCII as is, every other byte as `\xNN`. */
function showBytes(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) {
    text += byte >= 0x20 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}

/**
 * A {@linkcode MetadataStore} on Redis: the value of `(namespace, key)` is the Redis string
 * `<prefix><namespace>/<key>` (the path cleaned and checked exactly as
 * {@linkcode FSMetadataStore} does, so `..`, NUL, `\`, `.tmp-` and empty keys are `EINVAL`).
 * `update` reads the value, computes the new one, and writes it with a Lua script only if
 * the key still holds what was read, so concurrent writers on any machine never lose each
 * other's changes. A value over `maxValueBytes` (1 MiB) is `EFBIG`, on reads before the
 * server sends it. Every command fails with `ETIMEDOUT` after `timeoutMs`; other failures
 * of the client keep its errno (`ECONNREFUSED`, …) or are `EIO`, with the client's message.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { RedisMetadataStore } from "@distribution/metadata/redis";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const store = await RedisMetadataStore.open(client, { prefix: "ci:" });
 * await store.set("v1id", "registry,abc", new TextEncoder().encode("sha256:1"));
 * ```
 */
export class RedisMetadataStore implements MetadataStore {
  /** The client the store sends its commands through. */
  readonly client: RedisClient;
  /** What every key starts with. */
  readonly prefix: string;
  readonly #timeoutMs: number;
  readonly #busyTimeoutMs: number;
  readonly #maxValueBytes: number;
  readonly #maxKeys: number;
  readonly #scanTimeoutMs: number;

  private constructor(client: RedisClient, prefix: string, limits: Required<Limits>) {
    this.client = client;
    this.prefix = prefix;
    this.#timeoutMs = limits.timeoutMs;
    this.#busyTimeoutMs = limits.busyTimeoutMs;
    this.#maxValueBytes = limits.maxValueBytes;
    this.#maxKeys = limits.maxKeys;
    this.#scanTimeoutMs = limits.scanTimeoutMs;
  }

  /**
   * Opens the store on a connected client. Nothing is sent yet; the caller keeps ownership
   * of the client (and closes it).
   *
   * @example
   * ```ts ignore
   * import { createClient } from "redis";
   * import { RedisMetadataStore } from "@distribution/metadata/redis";
   *
   * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
   * const store = await RedisMetadataStore.open(client, { prefix: "ci:", timeoutMs: 2000 });
   * ```
   *
   * @param client A connected client, e.g. node-redis's `await createClient().connect()`.
   * @param options The key prefix and the time limits.
   * @returns The store.
   */
  static open(
    client: RedisClient,
    options: RedisMetadataStoreOptions = {},
  ): Promise<RedisMetadataStore> {
    const limits: Required<Limits> = {
      timeoutMs: options.timeoutMs ?? 10_000,
      busyTimeoutMs: options.busyTimeoutMs ?? 60_000,
      maxValueBytes: options.maxValueBytes ?? 1024 * 1024,
      maxKeys: options.maxKeys ?? 1_000_000,
      scanTimeoutMs: options.scanTimeoutMs ?? 60_000,
    };
    for (const [name, value] of Object.entries(limits)) {
      if (!(value >= 0)) {
        return Promise.reject(
          new MetadataError("EINVAL", `Cannot open the Redis store: ${name} is ${value}`),
        );
      }
    }
    return Promise.resolve(new RedisMetadataStore(client, options.prefix ?? "", limits));
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
   * @returns The stored bytes; `ENOENT` when absent, `EFBIG` over `maxValueBytes`.
   */
  async get(namespace: string, key: string): Promise<Uint8Array> {
    const attempt = this.#begin("get", namespace, key);
    const value = await this.#read(attempt);
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
   * @param value The bytes to store (may be empty; at most `maxValueBytes`, else `EFBIG`).
   */
  async set(namespace: string, key: string, value: Uint8Array): Promise<void> {
    const attempt = this.#begin("set", namespace, key);
    this.#checkSize(value.length, attempt);
    await this.#send(attempt, ["SET", attempt.path, asBuffer(value)]);
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
    const removed = await this.#send(attempt, ["DEL", attempt.path]);
    if (removed === 0) throw mapError(null, "delete", attempt.what, attempt.path, "ENOENT");
  }

  /**
   * Atomic read-modify-write of one key: reads the value, calls `fn`, and writes the result
   * only if the key still holds what was read (a Lua compare-and-set); otherwise reads
   * again and calls `fn` again, with backoff, for up to `busyTimeoutMs` (then `EBUSY`).
   * `null` from `fn` deletes the key; bytes equal to the old value write nothing.
   *
   * @example Append without losing concurrent appends
   * ```ts ignore
   * await Promise.all([1, 2, 3].map((n) =>
   *   store.update("ns", "log", (old) => new Uint8Array([...old ?? [], n]))
   * ));
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
    const attempt = this.#begin("update", namespace, key);
    for (let tries = 0;; tries++) {
      const old = await this.#read(attempt);
      const next = fn(old === null ? null : old.slice());
      if (next === null ? old === null : old !== null && sameBytes(old, next)) return;
      if (next !== null) this.#checkSize(next.length, attempt);
      const written = await this.#send(attempt, [
        "EVAL",
        COMPARE_AND_SET,
        "1",
        attempt.path,
        old === null ? "1" : "0",
        asBuffer(old ?? new Uint8Array()),
        next === null ? "del" : "set",
        asBuffer(next ?? new Uint8Array()),
      ]);
      if (written === 1) return;
      if (Date.now() >= attempt.deadline) {
        throw new MetadataError(
          "EBUSY",
          `Cannot update "${attempt.what}" at "${attempt.path}": other writers kept changing ` +
            `it for ${this.#busyTimeoutMs} ms`,
          { path: attempt.path },
        );
      }
      await backoff(tries);
    }
  }

  /**
   * Lists the keys of a namespace (SCAN over `<prefix><namespace>/*`), sorted, as `get`
   * takes them. The scan is bounded: more than `maxKeys` keys is `E2BIG`, a cursor the server
   * returns twice `ELOOP`, a scan longer than `scanTimeoutMs` `ETIMEDOUT`; a key that is not
   * UTF-8 (no string names it) is `EILSEQ`, its bytes shown as `\xNN` in the message.
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
    const attempt: Attempt = {
      action: "list",
      what: namespace,
      path: base,
      deadline: Date.now() + this.#scanTimeoutMs,
    };
    const fail = (code: string, why: string) =>
      new MetadataError(code, `Cannot list "${namespace}" at "${base}": ${why}`, { path: base });
    const pattern = globEscape(base) + "*";
    const keys = new Set<string>();
    const cursors = new Set<string>();
    let cursor = "0";
    do {
      const reply = await this.#send(attempt, [
        "SCAN",
        cursor,
        "MATCH",
        pattern,
        "COUNT",
        SCAN_COUNT,
      ]);
      const [next, batch] = Array.isArray(reply) ? reply : [];
      if (!(next instanceof Uint8Array) || !Array.isArray(batch)) throw this.#unexpected(attempt);
      // SCAN may return a key more than once.
      for (const key of batch) {
        if (!(key instanceof Uint8Array)) throw this.#unexpected(attempt);
        let text: string;
        try {
          text = strictDecoder.decode(key);
        } catch {
          throw fail("EILSEQ", `the key "${showBytes(key)}" is not UTF-8`);
        }
        keys.add(text.slice(base.length));
      }
      if (keys.size > this.#maxKeys) {
        throw fail("E2BIG", `more than ${this.#maxKeys} keys (the store's maxKeys)`);
      }
      cursor = decoder.decode(next);
      if (cursor !== "0" && cursors.has(cursor)) {
        throw fail("ELOOP", `the server returned the SCAN cursor ${cursor} twice`);
      }
      cursors.add(cursor);
      if (cursor !== "0" && Date.now() > attempt.deadline) {
        throw fail("ETIMEDOUT", `the scan took longer than ${this.#scanTimeoutMs} ms`);
      }
    } while (cursor !== "0");
    return [...keys].sort();
  }

  /** Checks and cleans the key; the context of the call. */
  #begin(action: string, namespace: string, key: string): Attempt {
    const path = this.prefix + keyPath(namespace, key);
    return {
      action,
      what: `${namespace}/${key}`,
      path,
      deadline: Date.now() + this.#busyTimeoutMs,
    };
  }

  #checkSize(size: number, attempt: Attempt): void {
    if (size <= this.#maxValueBytes) return;
    throw new MetadataError(
      "EFBIG",
      `Cannot ${attempt.action} "${attempt.what}" at "${attempt.path}": the value is ${size} ` +
        `bytes, more than the store's maxValueBytes (${this.#maxValueBytes})`,
      { path: attempt.path },
    );
  }

  /** GETs the value, if not over `maxValueBytes`; `null` when absent. */
  async #read(attempt: Attempt): Promise<Uint8Array | null> {
    const reply = await this.#send(attempt, [
      "EVAL",
      GET_AT_MOST,
      "1",
      attempt.path,
      String(this.#maxValueBytes),
    ]);
    if (reply === null) return null;
    if (typeof reply === "number") this.#checkSize(reply, attempt);
    if (!(reply instanceof Uint8Array)) throw this.#unexpected(attempt);
    // A copy the caller owns: the client's Buffer may be a view of its read buffer.
    return new Uint8Array(reply);
  }

  #unexpected(attempt: Attempt): MetadataError {
    return new MetadataError(
      "EBADMSG",
      `Cannot ${attempt.action} "${attempt.what}" at "${attempt.path}": unexpected reply from ` +
        "Redis (is the client a node-redis 5 client, or one that decodes bulk strings to bytes?)",
      { path: attempt.path },
    );
  }

  /** Sends one command, failing with `ETIMEDOUT` when no reply comes in `timeoutMs`. */
  async #send(attempt: Attempt, args: (string | Uint8Array)[]): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = this.client.sendCommand(args, {
      typeMapping: { [BULK_STRING]: bufferClass() },
    });
    // A late failure after the timeout has nobody to report to.
    reply.catch(() => {});
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new MetadataError(
            "ETIMEDOUT",
            `Cannot ${attempt.action} "${attempt.what}" at "${attempt.path}": Redis did not ` +
              `answer in ${this.#timeoutMs} ms`,
            { path: attempt.path },
          ),
        );
      }, this.#timeoutMs);
    });
    try {
      return await Promise.race([reply, timeout]);
    } catch (error) {
      if (error instanceof MetadataError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      // A key holding a list, hash, … is not a value of this store.
      const code = message.startsWith("WRONGTYPE") ? "EBADMSG" : errorCode(error);
      throw new MetadataError(
        code,
        `Cannot ${attempt.action} "${attempt.what}" at "${attempt.path}": ${message}`,
        { path: attempt.path, cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}
