/**
 * The small filesystem abstraction {@linkcode FSMetadataStore} runs on.
 *
 * @module
 */

/** What {@linkcode FileSystem.stat} reports about a path (without following a final symlink). */
export interface FileInfo {
  /** The kind of the entry itself: a symlink is reported as `"symlink"`. */
  kind: "file" | "directory" | "symlink" | "other";
  /** The permission bits, e.g. `0o644`. */
  mode: number;
  /** The size in bytes. */
  size: number;
  /** The last modification time in ms since the epoch, when the filesystem knows it. */
  mtimeMs?: number | undefined;
}

/** Options of {@linkcode FileSystem.writeFileStream}. */
export interface WriteStreamOptions {
  /** Whether the file must survive a crash once written: fsynced (default `true`). */
  durable?: boolean;
}

/** Options for {@linkcode FileSystem.readFile}. */
export interface ReadFileOptions {
  /**
   * The largest file to read, in bytes. A bigger one is refused with `EFBIG` by the size
   * `fstat` reports, before any of it is read, so a huge file costs neither time nor memory.
   * Default: no limit.
   */
  maxBytes?: number | undefined;
}

/** What {@linkcode FileSystem.openRead} gives: the file's size when opened, and its bytes. */
export interface ReadStreamResult {
  /** The size `fstat` reported when the file was opened. */
  size: number;
  /** The bytes, read as the consumer pulls them; cancelling it closes the file. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * Only the operations the store needs. Paths are absolute and use `/`.
 *
 * Implementations throw errors that carry the errno name in a `code` property (`ENOENT`,
 * `EISDIR`, …) or a runtime error the library knows how to map (Deno's `Deno.errors.*`);
 * the store turns them into {@linkcode MetadataError}. A method may answer synchronously
 * when that is faster (small reads are ~20x cheaper synchronously); callers always `await`.
 *
 * Ready implementations: `denoFileSystem` (`./deno`), `nodeFileSystem` (`./node`, also
 * `bunFileSystem` at `./bun`) and {@linkcode MemoryFileSystem}.
 *
 * @example A FileSystem that logs every write of another one
 * ```ts
 * import { type FileSystem, MemoryFileSystem } from "@distribution/metadata";
 *
 * function logWrites(inner: FileSystem): FileSystem {
 *   return {
 *     readFile: (path, options) => inner.readFile(path, options),
 *     writeFileAtomic: (path, tempPath, data, mode) => {
 *       console.log("write", path);
 *       return inner.writeFileAtomic(path, tempPath, data, mode);
 *     },
 *     mkdir: (path, mode) => inner.mkdir(path, mode),
 *     remove: (path) => inner.remove(path),
 *     stat: (path) => inner.stat(path),
 *     readDir: (path) => inner.readDir(path),
 *   };
 * }
 * const fs = logWrites(new MemoryFileSystem());
 * ```
 */
export interface FileSystem {
  /**
   * Reads a whole regular file, and refuses anything else without blocking:
   * - a symlink as the final component is `ELOOP` (open with `O_NOFOLLOW`), so a value can
   *   never be read from outside the store through a link; symlinked directories above it
   *   are followed;
   * - a directory is `EISDIR`;
   * - a FIFO, socket or device is `EINVAL`, in bounded time: the file is opened with
   *   `O_NONBLOCK` (opening a FIFO would otherwise wait for a writer, freezing the whole
   *   event loop) and refused by what `fstat` says it is, before any read (the disk
   *   adapters on Deno check with `lstat` just before the open and read with `pread`,
   *   which a FIFO swapped in meanwhile fails);
   * - a file over `options.maxBytes` is `EFBIG`, by its size, before any read.
   *
   * The bytes read are as many as the file's size says: all of a file that is replaced by
   * rename rather than rewritten in place, as every file of a store is. A file whose size
   * says 0 (procfs) is read to its end.
   *
   * Each error carries the errno name in `code` and the path in `path` and its message.
   *
   * The result belongs to the caller alone: a plain `Uint8Array` whose `buffer` holds
   * exactly the file's bytes (`byteOffset` 0, `byteLength` equal to `length`) and that
   * nothing else references, so sending, hashing or transferring `result.buffer` exposes or
   * empties nothing else.
   */
  readFile(path: string, options?: ReadFileOptions): Uint8Array | Promise<Uint8Array>;
  /**
   * Replaces `path` atomically, as Docker's `ioutils.AtomicWriteFile` does: create
   * `tempPath` exclusively with mode 0600, write all of `data`, fsync, close, chmod to
   * exactly `mode` (no umask), rename over `path`. On any failure `tempPath` is removed
   * and the error rethrown; with `tempPath` taken the error's code is `EEXIST`.
   * Renaming onto a directory fails with `EEXIST`, as Go's `os.Rename` does.
   */
  writeFileAtomic(
    path: string,
    tempPath: string,
    data: Uint8Array,
    mode: number,
  ): void | Promise<void>;
  /** Creates `path` and missing ancestors with `mode` (less the umask), like `mkdir -p`. */
  mkdir(path: string, mode: number): void | Promise<void>;
  /** Removes a file, symlink or empty directory, like Go's `os.Remove`. */
  remove(path: string): void | Promise<void>;
  /** Describes `path` without following a final symlink; `null` when it does not exist. */
  stat(path: string): FileInfo | null | Promise<FileInfo | null>;
  /** Lists the names in a directory. */
  readDir(path: string): string[] | Promise<string[]>;
  /**
   * Optional: creates an empty file at `path` with `mode` (less the umask) and closes it,
   * failing with `EEXIST` when anything, a symlink included, is already there
   * (`O_CREAT | O_EXCL`). Needed only by `FSMetadataStore.open(root, { lock: true })`,
   * which uses it as a lock file.
   */
  createExclusive?(path: string, mode: number): void | Promise<void>;
  /**
   * Optional: a regular file as a stream, for files too big to hold in memory (the OCI layout
   * store's blobs). Refuses what {@linkcode FileSystem.readFile} refuses, with the same codes,
   * before a byte is read (`maxBytes` by the size `fstat` reports). The file stays open until
   * the stream ends, fails or is cancelled.
   */
  openRead?(path: string, options?: ReadFileOptions): ReadStreamResult | Promise<ReadStreamResult>;
  /**
   * Optional: {@linkcode FileSystem.writeFileAtomic} for a stream: `tempPath` created
   * exclusively (mode 0600), every chunk written as it arrives, fsync, chmod to `mode`, rename
   * over `path`. When the stream errors (e.g. a digest check at its end) or a write fails,
   * `tempPath` is removed and the error rethrown: `path` never holds a partial file.
   * With `options.durable` `false` nothing is fsynced: for a scratch file that no one needs
   * after a crash (a spool file in the temporary directory, removed once used). Resolves to
   * the number of bytes written.
   */
  writeFileStream?(
    path: string,
    tempPath: string,
    data: ReadableStream<Uint8Array>,
    mode: number,
    options?: WriteStreamOptions,
  ): Promise<number>;
}
