/**
 * Docker's `FSMetadataStore`: one file per key under a root directory.
 *
 * @module
 */
import { keyPath } from "./_keys.ts";
import { mapError } from "./_map_error.ts";
import { runtimeFileSystem } from "./_runtime_file_system.ts";
import { MetadataError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";
import type { MetadataStore } from "./metadata_store.ts";

/** Modes Docker uses: the root, other directories, and value files. */
const ROOT_MODE = 0o700;
const DIRECTORY_MODE = 0o755;
const FILE_MODE = 0o644;
/** Go's os.CreateTemp retries this often when a random temp name is taken. */
const TEMP_NAME_ATTEMPTS = 10_000;

const random = new Uint32Array(1);
/** Go's CreateTemp suffix: a random uint32 in decimal. */
function randomDigits(): string {
  crypto.getRandomValues(random);
  return String(random[0]);
}

/** Options for {@linkcode FSMetadataStore.open}. */
export interface FSMetadataStoreOptions {
  /** The filesystem to use; defaults to the running runtime's (Deno, Node or Bun). */
  fs?: FileSystem;
}

/**
 * The store dockerd keeps in `<data-root>/image/<driver>/distribution`: the value of
 * `(namespace, key)` is the file `root/namespace/key`, written atomically (temp file, fsync,
 * chmod 0644, rename) exactly as Docker's Go code does, so both can share one directory.
 * Keys that could leave the root or touch temp files are refused with `EINVAL`.
 *
 * @example
 * ```ts
 * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
 * import { deepEqual } from "node:assert/strict";
 *
 * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
 * await store.set("v1id", "registry,key", new TextEncoder().encode("sha256:1"));
 * deepEqual(await store.get("v1id", "registry,key"), new TextEncoder().encode("sha256:1"));
 * ```
 */
export class FSMetadataStore implements MetadataStore {
  /** The root directory, as given to {@linkcode FSMetadataStore.open}. */
  readonly root: string;
  /** The filesystem the store runs on. */
  readonly fs: FileSystem;

  private constructor(root: string, fs: FileSystem) {
    this.root = root;
    this.fs = fs;
  }

  /**
   * Opens the store at `root`, creating it and missing parents with mode 0700.
   *
   * @example
   * ```ts ignore
   * import { FSMetadataStore } from "@distribution/metadata";
   *
   * const store = await FSMetadataStore.open("/var/lib/docker/image/overlay2/distribution");
   * ```
   *
   * @param root The store's directory.
   * @param options The filesystem to use (default: the running runtime's).
   * @returns The open store.
   */
  static async open(root: string, options: FSMetadataStoreOptions = {}): Promise<FSMetadataStore> {
    const fs = options.fs ?? runtimeFileSystem();
    const cleanRoot = root.length > 1 ? root.replace(/\/+$/, "") || "/" : root;
    try {
      await fs.mkdir(cleanRoot, ROOT_MODE);
    } catch (error) {
      // Go's MkdirAll reports a file in the way as ENOTDIR.
      const code = (error as { code?: unknown })?.code === "EEXIST" ? "ENOTDIR" : undefined;
      throw mapError(error, "open", cleanRoot, cleanRoot, code);
    }
    return new FSMetadataStore(cleanRoot, fs);
  }

  /**
   * Reads the value of a key.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
   * await store.set("ns", "key", new Uint8Array([1]));
   * const value = await store.get("ns", "key");
   * ```
   *
   * @param namespace The kind of mapping, e.g. `diffid-by-digest`.
   * @param key The key, e.g. `sha256/<hex>`.
   * @returns The file's bytes; `ENOENT` when absent, `EISDIR` for a directory.
   */
  async get(namespace: string, key: string): Promise<Uint8Array> {
    const path = this.#path(namespace, key);
    try {
      return await this.fs.readFile(path);
    } catch (error) {
      throw mapError(error, "get", `${namespace}/${key}`, path);
    }
  }

  /**
   * Writes the value of a key atomically: missing directories are created with mode 0755,
   * the file gets mode 0644. A directory at the path is `EEXIST`; a symlink or device is
   * refused with `EINVAL`, as dockerd v28 does.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
   * await store.set("ns", "nested/key", new TextEncoder().encode("value"));
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key; `/` nests directories.
   * @param value The bytes to store (may be empty).
   */
  async set(namespace: string, key: string, value: Uint8Array): Promise<void> {
    const path = this.#path(namespace, key);
    const what = `${namespace}/${key}`;
    const slash = path.lastIndexOf("/");
    const directory = path.slice(0, slash);
    const tempPrefix = `${directory}/.tmp-${path.slice(slash + 1)}`;
    try {
      const existing = await this.fs.stat(path);
      if (existing === null) await this.fs.mkdir(directory, DIRECTORY_MODE);
      else if (existing.kind === "directory") throw mapError(null, "set", what, path, "EEXIST");
      else if (existing.kind !== "file") {
        throw new MetadataError(
          "EINVAL",
          `Cannot set "${what}" at "${path}": it is a ${existing.kind}, not a regular file`,
          { path },
        );
      }
      for (let attempt = 1;; attempt++) {
        try {
          return await this.fs.writeFileAtomic(path, tempPrefix + randomDigits(), value, FILE_MODE);
        } catch (error) {
          if ((error as { code?: unknown })?.code !== "EEXIST" || attempt === TEMP_NAME_ATTEMPTS) {
            throw error;
          }
        }
      }
    } catch (error) {
      // rename(2) onto a directory says EISDIR; Go's os.Rename checks first and says EEXIST.
      const code = (error as { code?: unknown })?.code === "EISDIR" ? "EEXIST" : undefined;
      throw mapError(error, "set", what, path, code);
    }
  }

  /**
   * Removes a key's file (or an empty directory at its path, as Go's `os.Remove` does).
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
   * await store.set("ns", "key", new Uint8Array());
   * await store.delete("ns", "key");
   * ```
   *
   * @param namespace The kind of mapping.
   * @param key The key.
   */
  async delete(namespace: string, key: string): Promise<void> {
    const path = this.#path(namespace, key);
    try {
      await this.fs.remove(path);
    } catch (error) {
      throw mapError(error, "delete", `${namespace}/${key}`, path);
    }
  }

  #path(namespace: string, key: string): string {
    return `${this.root === "/" ? "" : this.root}/${keyPath(namespace, key)}`;
  }
}
