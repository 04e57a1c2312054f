/**
 * The {@linkcode FileSystem} on `node:fs`, for Node.js and Bun (which implements `node:fs`
 * natively). The module is taken from `process.getBuiltinModule` when first used, so
 * importing this file costs nothing in runtimes that never call it.
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore } from "@distribution/metadata";
 * import { nodeFileSystem } from "@distribution/metadata/node";
 *
 * const store = await FSMetadataStore.open("/var/lib/docker/image/overlay2/distribution", {
 *   fs: nodeFileSystem,
 * });
 * ```
 *
 * @module
 */
import type { FileInfo, FileSystem } from "../file_system.ts";
import { type AtomicWriteOps, writeAtomically } from "./_atomic_write.ts";
import { errorCode } from "../_map_error.ts";
import { loadNodeFs } from "./_node_fs.ts";
import { readRegularFile } from "./_read_regular_file.ts";
import { openReadStream, writeFileStream } from "./_stream_file.ts";

interface NodeStats {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  mode: number;
  size: number;
  mtimeMs: number;
}

/** The part of `node:fs` the adapter uses. */
interface NodeFs {
  openSync(path: string, flags: string, mode: number): number;
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number;
  fsync(fd: number, callback: (error: Error | null) => void): void;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  chmodSync(path: string, mode: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  rmdirSync(path: string): void;
  mkdirSync(path: string, options: { recursive?: boolean; mode: number }): unknown;
  lstatSync(path: string, options: { throwIfNoEntry: false }): NodeStats | undefined;
  readdirSync(path: string): string[];
}

const nodeFs = () => loadNodeFs<NodeFs>();

const ops: AtomicWriteOps<number> = {
  createExclusive: (path, mode) => nodeFs().openSync(path, "wx", mode),
  writeAll(fd, data) {
    const fs = nodeFs();
    for (let done = 0; done < data.length;) {
      done += fs.writeSync(fd, data, done, data.length - done);
    }
  },
  sync: (fd) =>
    new Promise((resolve, reject) =>
      nodeFs().fsync(fd, (error) => error ? reject(error) : resolve())
    ),
  syncNow: (fd) => nodeFs().fsyncSync(fd),
  close: (fd) => nodeFs().closeSync(fd),
  chmod: (path, mode) => nodeFs().chmodSync(path, mode),
  rename: (from, to) => nodeFs().renameSync(from, to),
  remove: (path) => nodeFs().unlinkSync(path),
};

function kindOf(stats: NodeStats): FileInfo["kind"] {
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "directory";
  return stats.isSymbolicLink() ? "symlink" : "other";
}

/** `mkdir -p` one level at a time: each missing directory from the top down. */
function mkdirEach(path: string, mode: number): void {
  const fs = nodeFs();
  if (fs.lstatSync(path, { throwIfNoEntry: false })) return;
  const slash = path.lastIndexOf("/");
  const parent = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  if (parent !== path) mkdirEach(parent, mode);
  fs.mkdirSync(path, { mode });
}

/**
 * A {@linkcode FileSystem} on `node:fs` (Node.js 20.16+ and Bun).
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore } from "@distribution/metadata";
 * import { nodeFileSystem } from "@distribution/metadata/node";
 *
 * const store = await FSMetadataStore.open("./store", { fs: nodeFileSystem });
 * ```
 */
export const nodeFileSystem: FileSystem = {
  // O_NOFOLLOW | O_NONBLOCK, then fstat: only a regular file is read, see FileSystem.readFile.
  readFile: readRegularFile,
  writeFileAtomic: (path, tempPath, data, mode) => writeAtomically(ops, path, tempPath, data, mode),
  mkdir(path, mode) {
    try {
      nodeFs().mkdirSync(path, { recursive: true, mode });
    } catch (error) {
      // Node 20's recursive mkdir says ENOENT for any failure under an existing directory
      // (EROFS, EACCES, ENOSPC); creating one level at a time surfaces the real cause.
      if (errorCode(error) !== "ENOENT") throw error;
      mkdirEach(path, mode);
    }
  },
  remove(path) {
    // Go's os.Remove: unlink, else rmdir; the rmdir error wins unless it is ENOTDIR.
    const fs = nodeFs();
    try {
      fs.unlinkSync(path);
    } catch (unlinkError) {
      try {
        fs.rmdirSync(path);
      } catch (rmdirError) {
        throw errorCode(rmdirError) === "ENOTDIR" ? unlinkError : rmdirError;
      }
    }
  },
  stat(path) {
    const stats = nodeFs().lstatSync(path, { throwIfNoEntry: false });
    return stats
      ? { kind: kindOf(stats), mode: stats.mode & 0o7777, size: stats.size, mtimeMs: stats.mtimeMs }
      : null;
  },
  readDir: (path) => nodeFs().readdirSync(path),
  createExclusive: (path, mode) => nodeFs().closeSync(ops.createExclusive(path, mode)),
  // node:fs on every runtime: O_NOFOLLOW | O_NONBLOCK, async reads and writes of 1 MiB.
  openRead: openReadStream,
  writeFileStream,
};
