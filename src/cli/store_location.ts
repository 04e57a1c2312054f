// Turns the CLI's `--store` and `copy-store` arguments into a store: a dockerd directory,
// a Deno KV database (SQLite file or KV Connect URL) or a Redis server. The Deno KV and
// Redis clients are loaded when first used (Deno.openKv, or the @deno/kv and redis packages),
// so the CLI needs neither unless asked to use one.
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";
import { DenoKvMetadataStore, type Kv, retryWhileLocked } from "../kv_store.ts";
import type { MetadataStore } from "../metadata_store.ts";
import { type RedisClient, RedisMetadataStore } from "../redis_store.ts";
import { denoNamespace, nodeBuiltin, runtimeName } from "../_runtime.ts";

/** Where a store is, as the command line names it. */
export type StoreLocation =
  | { kind: "directory"; path: string }
  | { kind: "deno-kv"; path: string }
  | { kind: "redis"; url: string; prefix: string };

/** An open store and how to let go of it. */
export interface OpenStore {
  store: MetadataStore;
  /** Closes the connection or database (nothing for a directory). */
  close(): Promise<void>;
}

/** File names that mean "a Deno KV (SQLite) database" for a path that does not exist yet. */
const KV_FILE = /\.(?:sqlite3?|db|kv)$/;

/** `url` with its password replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.href;
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/**
 * A location as output shows it: the path, or the URL without its password.
 *
 * @param location The location.
 * @returns The text, e.g. `redis://ci:***@127.0.0.1:6379`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { showStoreLocation } from "./store_location.ts";
 *
 * const url = "redis://ci:s3cret@127.0.0.1:6379";
 * equal(showStoreLocation({ kind: "redis", url, prefix: "" }), "redis://ci:***@127.0.0.1:6379");
 * ```
 */
export function showStoreLocation(location: StoreLocation): string {
  return location.kind === "redis" ? redactUrl(location.url) : location.path;
}

/**
 * Reads a location: `redis://…` or `rediss://…` (a `?prefix=` parameter sets the key
 * prefix), `http(s)://…` (a KV Connect endpoint), `kv:<path>`, or a path: an existing
 * directory is a dockerd store, an existing file a Deno KV database; a new path ending in
 * `.sqlite`, `.sqlite3`, `.db` or `.kv` is a Deno KV database, any other a directory.
 *
 * @param text The argument, e.g. `/var/lib/docker/image/overlay2/distribution`.
 * @param fs The filesystem paths are looked up on.
 * @param mustExist Whether a path that does not exist is `ENOENT` (a store to read from).
 * @returns The location.
 */
export async function parseStoreLocation(
  text: string,
  fs: FileSystem,
  mustExist: boolean,
): Promise<StoreLocation> {
  if (/^rediss?:\/\//i.test(text)) {
    const url = new URL(text);
    const prefix = url.searchParams.get("prefix") ?? "";
    url.searchParams.delete("prefix");
    return { kind: "redis", url: url.href, prefix };
  }
  if (/^https?:\/\//i.test(text)) return { kind: "deno-kv", path: text };
  if (text.startsWith("kv:")) return { kind: "deno-kv", path: text.slice(3) };
  let kind;
  try {
    kind = (await fs.stat(text))?.kind;
  } catch (error) {
    throw new MetadataError(errorCode(error), `Cannot use store "${text}": ${error}`, {
      path: text,
      cause: error,
    });
  }
  if (kind === "directory") return { kind: "directory", path: text };
  if (kind === "file") return { kind: "deno-kv", path: text };
  if (kind === undefined) {
    if (mustExist) {
      throw new MetadataError("ENOENT", `Cannot use store "${text}": no such file or directory`, {
        path: text,
      });
    }
    return KV_FILE.test(text) ? { kind: "deno-kv", path: text } : { kind: "directory", path: text };
  }
  throw new MetadataError("EINVAL", `Cannot use store "${text}": it is a ${kind}`, { path: text });
}

/**
 * A package loaded when first needed, by `load` (an `import()` of its bare name, which
 * `deno publish` rewrites to an `npm:` specifier, so the CLI from JSR brings the package along);
 * `ENOSYS` naming the package when it is not installed.
 */
async function importPackage<T>(
  name: string,
  what: string,
  load: () => Promise<unknown>,
): Promise<T> {
  try {
    return await load() as T;
  } catch (error) {
    throw new MetadataError(
      "ENOSYS",
      `Cannot open ${what}: the "${name}" package is not installed (npm install ${name})`,
      { cause: error },
    );
  }
}

type ClosableKv = Kv & { close(): void };

/** Deno.openKv on Deno (needs --unstable-kv), @deno/kv on Node and Bun. */
async function openDenoKv(path: string): Promise<ClosableKv> {
  const deno = denoNamespace<{ openKv?(path: string): Promise<ClosableKv> }>();
  if (deno) {
    if (typeof deno.openKv !== "function") {
      throw new MetadataError(
        "ENOSYS",
        `Cannot open Deno KV "${path}": run deno with --unstable-kv`,
      );
    }
    return await retryWhileLocked(() => deno.openKv!(path));
  }
  const { openKv } = await importPackage<{
    openKv(path: string, options: Record<string, unknown>): Promise<ClosableKv>;
  }>("@deno/kv", `Deno KV "${path}"`, () => import("@deno/kv"));
  // @deno/kv refuses to run on Bun unless given value serializers: Bun's own node:v8.
  const v8 = runtimeName() === "bun"
    ? nodeBuiltin<{ serialize: unknown; deserialize: unknown }>("node:v8", "serialize")
    : null;
  const options = v8 ? { encodeV8: v8.serialize, decodeV8: v8.deserialize } : {};
  return await retryWhileLocked(() => openKv(path, options));
}

/** The node-redis client the CLI connects with. */
interface NodeRedisClient extends RedisClient {
  on(event: "error", listener: (error: unknown) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

/** Connects with node-redis, failing at once (no retries) when the server cannot be reached. */
async function connectRedis(url: string): Promise<NodeRedisClient> {
  const shown = redactUrl(url);
  const { createClient } = await importPackage<{
    createClient(options: Record<string, unknown>): NodeRedisClient;
  }>("redis", `Redis at "${shown}"`, () => import("redis"));
  const client = createClient({
    url,
    socket: { reconnectStrategy: false, connectTimeout: 5_000 },
  });
  // Failures reach the commands; without a listener node-redis would throw them at large.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new MetadataError(
      errorCode(error),
      `Cannot connect to Redis at "${shown}": ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
  return client;
}

/**
 * Opens the store at a location.
 *
 * @param location Where the store is.
 * @param openDirectory How to open a directory (read-only for a source, writable for a
 * destination).
 * @returns The store and how to close it.
 */
export async function openStoreLocation(
  location: StoreLocation,
  openDirectory: (path: string) => Promise<MetadataStore>,
): Promise<OpenStore> {
  switch (location.kind) {
    case "directory":
      return { store: await openDirectory(location.path), close: () => Promise.resolve() };
    case "deno-kv": {
      const kv = await openDenoKv(location.path);
      return {
        store: await DenoKvMetadataStore.open(kv),
        close: () => Promise.resolve(kv.close()),
      };
    }
    case "redis": {
      const client = await connectRedis(location.url);
      return {
        store: await RedisMetadataStore.open(client, { prefix: location.prefix }),
        close: () => client.close(),
      };
    }
  }
}
