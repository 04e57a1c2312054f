// The lock-file protocol of FSMetadataStore's `lock: true`: `.tmp-<name>.lock`, created
// exclusively next to the value it guards, held while the value is read and rewritten; a
// lock left by a killed process is broken once stale, by one waiter at a time.
import { errorCode, mapError } from "./_map_error.ts";
import { MetadataError } from "./errors.ts";
import type { FileInfo, FileSystem } from "./file_system.ts";

/** The suffix of a lock file, `.tmp-<final name>.lock`, next to the value it guards. */
export const LOCK_SUFFIX = ".lock";
/**
 * The suffix of the file a waiter holds while it breaks a stale lock. No key's lock file
 * ends so, since those end in `.lock`.
 */
const BREAK_SUFFIX = ".break";
const LOCK_MODE = 0o600;
/** The longest pause between two attempts to take a held lock. */
const LOCK_MAX_DELAY_MS = 25;

/** How a store opened with `lock: true` takes its lock files. */
export interface LockSettings {
  createExclusive: (path: string, mode: number) => void | Promise<void>;
  /** A lock file last modified this long ago belongs to a killed process. */
  staleMs: number;
  /** How long to wait for a held lock before `EBUSY`. */
  timeoutMs: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The lock files of one store. */
export class LockFiles {
  readonly #fs: FileSystem;
  readonly #settings: LockSettings;

  constructor(fs: FileSystem, settings: LockSettings) {
    this.#fs = fs;
    this.#settings = settings;
  }

  /**
   * Runs `fn` holding the lock file `lockPath` (for `what`, in messages); the lock is
   * removed after, also when `fn` throws.
   */
  async hold<T>(lockPath: string, what: string, fn: () => Promise<T>): Promise<T> {
    await this.#take(lockPath, what);
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      await this.#remove(lockPath, what, "unlock").catch(() => {});
      throw error;
    }
    await this.#remove(lockPath, what, "unlock");
    return result;
  }

  /** Creates `lockPath` exclusively, breaking a stale one, waiting at most the timeout. */
  async #take(lockPath: string, what: string): Promise<void> {
    const { createExclusive, timeoutMs } = this.#settings;
    const start = Date.now();
    for (let delay = 1;; delay = Math.min(delay * 2, LOCK_MAX_DELAY_MS)) {
      try {
        return await createExclusive(lockPath, LOCK_MODE);
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw mapError(error, "lock", what, lockPath);
      }
      const info = await this.#info(lockPath, what);
      if (info === null) continue; // Released meanwhile: try again at once.
      if (info.kind !== "file") {
        throw new MetadataError(
          "EINVAL",
          `Cannot lock "${what}" at "${lockPath}": it is a ${info.kind}, not a lock file`,
          { path: lockPath },
        );
      }
      const now = Date.now();
      // Its holder was killed: break it, then try again at once.
      if (this.#isStale(info) && await this.#breakStale(lockPath, what)) continue;
      if (now - start >= timeoutMs) {
        throw new MetadataError(
          "EBUSY",
          `Cannot lock "${what}": "${lockPath}" is still held after ${now - start} ms`,
          { path: lockPath },
        );
      }
      await sleep(delay * (0.5 + Math.random()));
    }
  }

  async #info(path: string, what: string): Promise<FileInfo | null> {
    try {
      return await this.#fs.stat(path);
    } catch (error) {
      throw mapError(error, "lock", what, path);
    }
  }

  #isStale(info: FileInfo): boolean {
    return info.mtimeMs !== undefined && Date.now() - info.mtimeMs >= this.#settings.staleMs;
  }

  /**
   * Removes the lock at `lockPath` if it is still stale, holding `<lockPath>.break` while it
   * looks and removes, so that waiters break a lock one at a time: a waiter that saw the
   * stale lock must not remove the fresh one another waiter has taken since. Returns `false`
   * when another waiter is breaking it (or left a breaker of its own, removed once stale).
   */
  async #breakStale(lockPath: string, what: string): Promise<boolean> {
    const breakPath = lockPath + BREAK_SUFFIX;
    try {
      await this.#settings.createExclusive(breakPath, LOCK_MODE);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw mapError(error, "lock", what, breakPath);
      const breaker = await this.#info(breakPath, what);
      // Held for two calls, so a stale one was left by a killed waiter.
      if (breaker && this.#isStale(breaker)) await this.#remove(breakPath, what);
      return false;
    }
    try {
      const info = await this.#info(lockPath, what);
      if (info?.kind === "file" && this.#isStale(info)) await this.#remove(lockPath, what);
    } finally {
      await this.#remove(breakPath, what);
    }
    return true;
  }

  /**
   * Removes a lock file. One already gone is fine: broken as stale meanwhile, by a waiter
   * or by recover().
   */
  async #remove(path: string, what: string, action = "lock"): Promise<void> {
    try {
      await this.#fs.remove(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw mapError(error, action, what, path);
    }
  }
}
