// A FileSystem that fails on purpose: the N-th counted call, or every N-th, throws an
// errno-style error. On the real disk the atomic write is broken into its steps (create,
// write, fsync, close, chmod, rename), each a countable call, and a failing write writes
// half its bytes first, as a full disk does.
import * as fs from "node:fs";
import type { FileInfo, FileSystem } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { type AtomicWriteOps, writeAtomically } from "../src/adapters/_atomic_write.ts";

export interface FaultPlan {
  /** Fail only this call (1-based), counted from the last `arm`. */
  at?: number;
  /** Fail every N-th call. */
  every?: number;
  /** The errno name thrown (default `EIO`). */
  code?: string;
}

export class InjectedFault extends Error {
  constructor(readonly code: string, readonly step: string, readonly path: string) {
    super(`${code}: injected fault, ${step} '${path}'`);
  }
}

/**
 * Wraps `inner` (or, with `"disk"`, node:fs step by step) and fails calls per the plan.
 * `calls` counts the calls since the last `arm()`, `faults` the failures injected.
 */
export class FaultyFileSystem implements FileSystem {
  /** Faults injected by every instance, for the suite's report. */
  static totalFaults = 0;
  calls = 0;
  faults = 0;
  #plan: FaultPlan = {};
  readonly #inner: FileSystem;
  readonly #disk: boolean;

  constructor(inner: FileSystem | "disk") {
    this.#disk = inner === "disk";
    this.#inner = inner === "disk" ? nodeFileSystem : inner;
  }

  /** Starts counting from zero with a new plan (`{}` disarms). */
  arm(plan: FaultPlan): void {
    this.#plan = plan;
    this.calls = 0;
  }

  #step(step: string, path: string): void {
    const n = ++this.calls;
    const { at, every, code = "EIO" } = this.#plan;
    if (n === at || (every !== undefined && n % every === 0)) {
      this.faults++;
      FaultyFileSystem.totalFaults++;
      throw new InjectedFault(code, step, path);
    }
  }

  readFile(path: string): Uint8Array | Promise<Uint8Array> {
    this.#step("readFile", path);
    return this.#inner.readFile(path);
  }

  writeFileAtomic(path: string, tempPath: string, data: Uint8Array, mode: number) {
    if (!this.#disk) {
      this.#step("writeFileAtomic", path);
      return this.#inner.writeFileAtomic(path, tempPath, data, mode);
    }
    return writeAtomically(this.#ops, path, tempPath, data, mode);
  }

  mkdir(path: string, mode: number): void | Promise<void> {
    this.#step("mkdir", path);
    return this.#inner.mkdir(path, mode);
  }

  remove(path: string): void | Promise<void> {
    this.#step("remove", path);
    return this.#inner.remove(path);
  }

  stat(path: string): FileInfo | null | Promise<FileInfo | null> {
    this.#step("stat", path);
    return this.#inner.stat(path);
  }

  readDir(path: string): string[] | Promise<string[]> {
    this.#step("readDir", path);
    return this.#inner.readDir(path);
  }

  /** Docker's write sequence on node:fs, every step countable. */
  readonly #ops: AtomicWriteOps<number> = {
    createExclusive: (path, mode) => {
      this.#step("open", path);
      return fs.openSync(path, "wx", mode);
    },
    writeAll: (fd, data) => {
      try {
        this.#step("write", String(fd));
      } catch (error) {
        fs.writeSync(fd, data, 0, data.length >> 1); // a full disk takes part of it
        throw error;
      }
      for (let done = 0; done < data.length;) {
        done += fs.writeSync(fd, data, done, data.length - done);
      }
    },
    sync: (fd) => {
      this.#ops.syncNow(fd);
      return Promise.resolve();
    },
    syncNow: (fd) => {
      this.#step("fsync", String(fd));
      fs.fsyncSync(fd);
    },
    close: (fd) => {
      fs.closeSync(fd); // Linux frees the descriptor even when close reports an error
      this.#step("close", String(fd));
    },
    chmod: (path, mode) => {
      this.#step("chmod", path);
      fs.chmodSync(path, mode);
    },
    rename: (from, to) => {
      this.#step("rename", from);
      fs.renameSync(from, to);
    },
    // Cleanup is not counted: it is what the tests check.
    remove: (path) => fs.unlinkSync(path),
  };
}
