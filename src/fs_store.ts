/**
 * Docker's `FSMetadataStore`: one file per key under a root directory.
 *
 * @module
 */
import { CLAIMS } from "./_claims_on_update.ts";
import { fsClaims } from "./_fs_claims.ts";
import { withKeyLock } from "./_key_lock.ts";
import { LOCK_SUFFIX, LockFiles, type LockSettings } from "./_lock_file.ts";
import { walkTree } from "./_walk.ts";
import { keyPath, namespacePath, TEMP_PREFIX } from "./_keys.ts";
import { errorCode, failure, mapError } from "./_map_error.ts";
import { readModifyWrite } from "./_read_modify_write.ts";
import { runtimeFileSystem } from "./_runtime_file_system.ts";
import { MetadataError } from "./errors.ts";
import type { FileSystem, ReadFileOptions } from "./file_system.ts";
import type { MetadataStore } from "./metadata_store.ts";
import type { UploadClaims } from "./upload_claims.ts";

/** Modes Docker uses: the root, other directories, and value files. */
const ROOT_MODE = 0o700;
const DIRECTORY_MODE = 0o755;
const FILE_MODE = 0o644;
/** Go's os.CreateTemp retries this often when a random temp name is taken. */
const TEMP_NAME_ATTEMPTS = 10_000;
/**
 * Temp files of Docker's atomic writer (and ours), `.tmp-<final name><random digits>`, and
 * our lock files, `.tmp-<final name>.lock` and `.tmp-<final name>.lock.break`.
 */
const TEMP_NAME = /^\.tmp-.+(?:[0-9]|\.lock(?:\.break)?)$/s;
/** Defaults of {@linkcode FSMetadataStoreOptions}. */
const LOCK_STALE_MS = 10_000;
const LOCK_TIMEOUT_MS = 30_000;
/** How old a temp file must be before {@linkcode FSMetadataStore.recover} removes it. */
const RECOVER_AFTER_MS = 60_000;

/** `<directory>/.tmp-<name>` for the value at `path`: how its temp and lock files begin. */
function tempPrefixOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return `${path.slice(0, slash)}/${TEMP_PREFIX}${path.slice(slash + 1)}`;
}

const random = new Uint32Array(1);
/** Go's CreateTemp suffix: a random uint32 in decimal. */
function randomDigits(): string {
  crypto.getRandomValues(random);
  return String(random[0]);
}

/**
 * What a failed read of a value file says beyond its errno: a symlink, FIFO, socket or device
 * is `EINVAL`, refused by the FileSystem (see {@linkcode FileSystem.readFile}).
 */
const GET_REASONS: Record<string, [code: string, reason: string]> = {
  ELOOP: ["EINVAL", "it is a symlink, not a regular file"],
  EINVAL: ["EINVAL", "it is a FIFO, socket or device, not a regular file"],
};

/** Options for {@linkcode FSMetadataStore.recover}. */
export interface RecoverOptions {
  /**
   * Only remove temp files last modified at least this long ago (default 60 000 ms), so a
   * write still in progress in another process is left alone. Pass `0` when no other
   * process (dockerd included) can be writing. A file whose age the FileSystem cannot tell
   * counts as old.
   */
  olderThanMs?: number;
}

/** Options for {@linkcode FSMetadataStore.open}. */
export interface FSMetadataStoreOptions {
  /** The filesystem to use; defaults to the running runtime's (Deno, Node or Bun). */
  fs?: FileSystem;
  /**
   * Give the store {@linkcode FSMetadataStore.update}, which holds a lock file,
   * `.tmp-<name>.lock` next to the value, while it reads and rewrites a key, so that
   * `V2MetadataService.add`/`remove` in several processes (Deno, Bun and Node alike) on
   * one root never lose each other's entries. Default `false`: no lock files, every write
   * exactly as dockerd makes it.
   *
   * dockerd itself never takes this lock: it only orders the processes that use this
   * library with `lock: true`. Needs {@linkcode FileSystem.createExclusive} (all the ready
   * adapters have it); without it `open` fails with `ENOTSUP`.
   */
  lock?: boolean;
  /**
   * With `lock`: a lock file last modified at least this long ago (default 10 000 ms) is
   * taken to belong to a killed process and is removed, by one waiter at a time (each holds
   * `.tmp-<name>.lock.break` meanwhile). Keep it well above the time one write can take: a
   * holder stalled for longer loses its lock. A lock whose age the FileSystem cannot tell is
   * never broken.
   */
  lockStaleMs?: number;
  /**
   * With `lock`: how long to wait for a held lock (default 30 000 ms) before failing with
   * `EBUSY`.
   */
  lockTimeoutMs?: number;
  /**
   * The largest value `get` reads, in bytes: a bigger file is refused with `EFBIG` by its
   * size, before it is read (see {@linkcode ReadFileOptions.maxBytes}). Default: no limit,
   * as in dockerd. Values dockerd writes stay under 16 KiB (a 50-entry list); set a limit
   * when the store may hold files planted by someone else.
   */
  maxValueBytes?: number;
  /**
   * With `lock`: offer {@linkcode FSMetadataStore.claims} (default `true`); `false` makes
   * `push` and `copy` upload without telling other processes.
   */
  claims?: boolean;
}

/** `value`, refused with `EINVAL` unless it is a number >= 0. */
function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) {
    throw new MetadataError("EINVAL", `Cannot open the store: ${name} must be >= 0, not ${value}`);
  }
  return value;
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
  /**
   * Atomic read-modify-write of one key across processes, present only when the store was
   * opened with `lock: true` (see {@linkcode FSMetadataStoreOptions.lock}); the services
   * use it when present. It takes the key's lock file (breaking one older than
   * `lockStaleMs`, failing with `EBUSY` after `lockTimeoutMs`), reads the value (`null`
   * when absent), writes what `fn` returns (`null` deletes; bytes equal to the old value
   * are not rewritten) and removes the lock file, also when `fn` or the write throws.
   *
   * @example Count in one key, safely from several processes
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   * import { deepEqual } from "node:assert/strict";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem(), lock: true });
   * const increment = (old: Uint8Array | null) => new Uint8Array([(old?.[0] ?? 0) + 1]);
   * await Promise.all([1, 2, 3].map(() => store.update!("ns", "count", increment)));
   * deepEqual(await store.get("ns", "count"), new Uint8Array([3]));
   * ```
   */
  readonly update?: (
    namespace: string,
    key: string,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ) => Promise<void>;
  /**
   * Upload claims (see {@linkcode UploadClaims}), present when the store was opened with
   * `lock: true` and not `claims: false`: claim files under `<root>/.tmp-claims/`, created at
   * the first claim, each written under its lock file as `update` writes a value. dockerd
   * never lists the directory, and `keys()`, `recover()` and the CLI's listings pass over
   * `.tmp-` names. A claim runs out by the writer's clock.
   */
  readonly claims?: UploadClaims;
  readonly #locks: LockFiles | undefined;
  /** What `get` passes to {@linkcode FileSystem.readFile}: made once. */
  readonly #readOptions: ReadFileOptions | undefined;

  private constructor(
    root: string,
    fs: FileSystem,
    lock: LockSettings | undefined,
    maxValueBytes: number | undefined,
    claims: UploadClaims | undefined,
  ) {
    this.root = root;
    this.fs = fs;
    if (claims) this.claims = claims;
    if (lock) this.#locks = new LockFiles(fs, lock);
    if (maxValueBytes !== undefined) this.#readOptions = { maxBytes: maxValueBytes };
    if (lock) this.update = (namespace, key, fn) => this.#update(namespace, key, fn);
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
   * @example Several processes adding to the same lists
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V2MetadataService } from "@distribution/metadata";
   *
   * // On disk: FSMetadataStore.open(root, { lock: true }) in every process
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem(), lock: true });
   * const service = new V2MetadataService(store); // add/remove now go through store.update
   * ```
   *
   * @param root The store's directory.
   * @param options The filesystem to use (default: the running runtime's), and whether to
   * lock keys across processes (default: no).
   * @returns The open store.
   */
  static async open(root: string, options: FSMetadataStoreOptions = {}): Promise<FSMetadataStore> {
    const fs = options.fs ?? runtimeFileSystem();
    let lock: LockSettings | undefined;
    if (options.lock) {
      if (typeof fs.createExclusive !== "function") {
        throw new MetadataError(
          "ENOTSUP",
          `Cannot open "${root}" with lock: true: the FileSystem has no createExclusive()`,
          { path: root },
        );
      }
      lock = {
        createExclusive: fs.createExclusive.bind(fs),
        staleMs: nonNegative("lockStaleMs", options.lockStaleMs ?? LOCK_STALE_MS),
        timeoutMs: nonNegative("lockTimeoutMs", options.lockTimeoutMs ?? LOCK_TIMEOUT_MS),
      };
    }
    const cleanRoot = root.length > 1 ? root.replace(/\/+$/, "") || "/" : root;
    try {
      // Only a missing root is created: opening an existing store needs no write access.
      if ((await fs.stat(cleanRoot))?.kind !== "directory") await fs.mkdir(cleanRoot, ROOT_MODE);
    } catch (error) {
      // Go's MkdirAll reports a file in the way as ENOTDIR.
      const code = errorCode(error) === "EEXIST" ? "ENOTDIR" : undefined;
      throw mapError(error, "open", cleanRoot, cleanRoot, code);
    }
    const maxValueBytes = options.maxValueBytes === undefined
      ? undefined
      : nonNegative("maxValueBytes", options.maxValueBytes);
    const claims = lock && options.claims !== false
      ? fsClaims(() =>
        FSMetadataStore.open(`${cleanRoot === "/" ? "" : cleanRoot}/${CLAIMS}`, {
          ...options,
          fs,
          claims: false,
        })
      )
      : undefined;
    return new FSMetadataStore(cleanRoot, fs, lock, maxValueBytes, claims);
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
   * Unlike Go, a symlink as the value file is not followed but refused with `EINVAL` (as
   * `set` refuses to write onto one), so a link planted in the store cannot make `get` read
   * a file outside it. Symlinked directories are followed, as Go does.
   *
   * Only a regular file is read: a FIFO, socket or device is refused with `EINVAL` at once
   * (never waiting on it), and a file over `maxValueBytes` with `EFBIG` before it is read.
   *
   * @param namespace The kind of mapping, e.g. `diffid-by-digest`.
   * @param key The key, e.g. `sha256/<hex>`.
   * @returns The file's bytes, in an ArrayBuffer of their own that nothing else references;
   * `ENOENT` when absent, `EISDIR` for a directory, `EINVAL` for a symlink, FIFO, socket or
   * device, `EFBIG` over `maxValueBytes`.
   */
  get(namespace: string, key: string): Promise<Uint8Array> {
    // Not `async`: with a synchronous FileSystem (every ready adapter) this saves a promise
    // round trip, a sizeable share of a small read.
    let path: string;
    try {
      path = this.#path(namespace, key);
    } catch (error) {
      return Promise.reject(error);
    }
    try {
      const value = this.fs.readFile(path, this.#readOptions);
      if (value instanceof Uint8Array) return this.#checkSize(value, namespace, key, path);
      return value.then(
        (bytes) => this.#checkSize(bytes, namespace, key, path),
        (error) => this.#getFailed(error, namespace, key, path),
      );
    } catch (error) {
      return this.#getFailed(error, namespace, key, path);
    }
  }

  /** `value`, or `EFBIG` from a FileSystem that read past the limit it was given. */
  #checkSize(value: Uint8Array, namespace: string, key: string, path: string) {
    const maxBytes = this.#readOptions?.maxBytes;
    if (maxBytes === undefined || value.length <= maxBytes) return Promise.resolve(value);
    return this.#getFailed({ code: "EFBIG" }, namespace, key, path);
  }

  /** A failed read of `path`, as a MetadataError naming it. */
  #getFailed(error: unknown, namespace: string, key: string, path: string): Promise<never> {
    const what = `${namespace}/${key}`;
    const code = errorCode(error);
    let known = GET_REASONS[code];
    if (code === "EFBIG") {
      known = ["EFBIG", `it is over the store's maxValueBytes, ${this.#readOptions?.maxBytes}`];
    }
    return Promise.reject(
      known
        ? failure(known[0], "get", what, path, known[1], error)
        : mapError(error, "get", what, path),
    );
  }

  /**
   * Writes the value of a key atomically: missing directories are created with mode 0755,
   * the file gets mode 0644. A directory at the path is `EEXIST`; a symlink or device is
   * refused with `EINVAL`, as dockerd v28 does.
   *
   * Durable before it resolves: temp file, fsync, chmod, rename, as Docker's atomic writer.
   * On the disk adapters a write that is alone in the process fsyncs on the calling thread
   * (briefly blocking it, as `get` does for its read); writes started together fsync on
   * worker threads so they overlap.
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
    const directory = path.slice(0, path.lastIndexOf("/"));
    try {
      const existing = await this.fs.stat(path);
      if (existing === null) await this.fs.mkdir(directory, DIRECTORY_MODE);
      else if (existing.kind === "directory") throw mapError(null, "set", what, path, "EEXIST");
      else if (existing.kind !== "file") {
        throw failure("EINVAL", "set", what, path, `it is a ${existing.kind}, not a regular file`);
      }
      for (let attempt = 1;; attempt++) {
        try {
          const tempPath = tempPrefixOf(path) + randomDigits();
          return await this.fs.writeFileAtomic(path, tempPath, value, FILE_MODE);
        } catch (error) {
          if (errorCode(error) !== "EEXIST" || attempt === TEMP_NAME_ATTEMPTS) {
            throw error;
          }
        }
      }
    } catch (error) {
      // rename(2) onto a directory says EISDIR; Go's os.Rename checks first and says EEXIST.
      const code = errorCode(error) === "EISDIR" ? "EEXIST" : undefined;
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

  /**
   * Removes the temp files a killed writer left behind: regular files named like Docker's
   * atomic-write temp files, `.tmp-<name><digits>`, or like the lock files of
   * {@linkcode FSMetadataStoreOptions.lock}, `.tmp-<name>.lock` and
   * `.tmp-<name>.lock.break`, anywhere under the root, and nothing else. Such files are never
   * values: keys with a `.tmp-` segment are refused, so `get` cannot return one, and a write
   * only becomes visible by its final rename.
   *
   * It is not done on {@linkcode FSMetadataStore.open}, because dockerd (or another
   * process) may be writing in the same directory at that moment; removing its temp file
   * would make that write fail. By default only files untouched for a minute are removed.
   * Call it at startup, or after a crash, when you know no write is in progress; symlinks
   * and directories are never followed or removed.
   *
   * @example Clean up after a crash
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   * import { deepEqual } from "node:assert/strict";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
   * deepEqual(await store.recover({ olderThanMs: 0 }), []);
   * ```
   *
   * @param options `olderThanMs`: the minimum age of a temp file to remove (default 60 s).
   * @returns The paths of the files removed.
   */
  async recover(options: RecoverOptions = {}): Promise<string[]> {
    const cutoff = Date.now() - (options.olderThanMs ?? RECOVER_AFTER_MS);
    const removed: string[] = [];
    const fs = this.fs;
    await walkTree(fs, this.root, {
      async visit({ path, name, info }) {
        if (info?.kind !== "file" || !TEMP_NAME.test(name)) return;
        if (info.mtimeMs !== undefined && info.mtimeMs > cutoff) return;
        try {
          await fs.remove(path);
          removed.push(path);
        } catch (error) {
          // Renamed or removed by its writer meanwhile: nothing left to do.
          if (errorCode(error) !== "ENOENT") throw mapError(error, "recover", path, path);
        }
      },
      failed(error, path, relative) {
        // A directory removed meanwhile is fine; the root itself must be readable.
        if (relative !== "" && errorCode(error) === "ENOENT") return;
        throw mapError(error, "recover", path, path);
      },
    });
    return removed;
  }

  /**
   * Lists the keys of a namespace: every regular file under `root/namespace`, as the key
   * `get` takes (`sha256/<hex>`), sorted. Temp and lock files (`.tmp-…`), symlinks and names
   * no key can address (with a backslash) are left out; a missing namespace lists nothing.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
   * import { deepEqual } from "node:assert/strict";
   *
   * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
   * await store.set("diffid-by-digest", "sha256/b", new Uint8Array());
   * await store.set("diffid-by-digest", "sha256/a", new Uint8Array());
   * deepEqual(await store.keys("diffid-by-digest"), ["sha256/a", "sha256/b"]);
   * ```
   *
   * @param namespace The namespace, e.g. `v2metadata-by-diffid`.
   * @returns The keys, sorted.
   */
  async keys(namespace: string): Promise<string[]> {
    const base = `${this.root === "/" ? "" : this.root}/${namespacePath(namespace)}`;
    const keys: string[] = [];
    await walkTree(this.fs, base, {
      // Temp and lock files, and names no key can address.
      skip: (name) => name.startsWith(TEMP_PREFIX) || name.includes("\\"),
      visit({ relative, info }) {
        if (info?.kind === "file") keys.push(relative);
      },
      failed(error, path, _relative, during) {
        // An absent namespace (or a directory removed meanwhile) has no keys.
        if (during === "list" && errorCode(error) === "ENOENT") return;
        throw mapError(error, "list", namespace, path);
      },
    });
    return keys.sort();
  }

  /** {@linkcode FSMetadataStore.update}: in turn inside this process, then under the file lock. */
  #update(
    namespace: string,
    key: string,
    fn: (old: Uint8Array | null) => Uint8Array | null,
  ): Promise<void> {
    let path: string;
    try {
      path = this.#path(namespace, key);
    } catch (error) {
      return Promise.reject(error);
    }
    // Taken synchronously, so calls in one process keep their order and never poll.
    return withKeyLock(this, path, async () => {
      const what = `${namespace}/${key}`;
      const lockPath = tempPrefixOf(path) + LOCK_SUFFIX;
      try {
        await this.fs.mkdir(path.slice(0, path.lastIndexOf("/")), DIRECTORY_MODE);
      } catch (error) {
        throw mapError(error, "update", what, path);
      }
      await this.#locks!.hold(lockPath, what, () => readModifyWrite(this, namespace, key, fn));
    });
  }

  #path(namespace: string, key: string): string {
    return `${this.root === "/" ? "" : this.root}/${keyPath(namespace, key)}`;
  }
}
