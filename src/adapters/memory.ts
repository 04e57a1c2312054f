/**
 * An in-memory {@linkcode FileSystem}: no runtime APIs, so it runs anywhere JavaScript does
 * (edge workers, browsers, tests).
 *
 * @module
 */
import type { FileInfo, FileSystem, ReadFileOptions, ReadStreamResult } from "../file_system.ts";
import { fsError, tooBig } from "./_fs_error.ts";

type Entry =
  | { kind: "file"; mode: number; data: Uint8Array }
  | { kind: "directory"; mode: number; children: Set<string> };

const encoder = new TextEncoder();
const NAME_MAX = 255;

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * `path` as an absolute path without `//`, `.` or `..` segments or a trailing `/`. Clean
 * paths (all the store makes, temp names such as `.tmp-x` included) are returned as they are
 * after a few substring checks, cheaper than a regular expression on every call.
 */
function clean(path: string): string {
  if (
    path[0] === "/" && !path.includes("//") && !path.includes("/./") &&
    !path.includes("/../") && !path.endsWith("/.") && !path.endsWith("/..") &&
    (path.length === 1 || !path.endsWith("/"))
  ) return path;
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return "/" + segments.join("/");
}

/**
 * A {@linkcode FileSystem} kept in a `Map`: files keep their bytes and modes, new
 * directories get `mode & ~umask` as on a real disk, and failures carry the errno name a
 * real filesystem would give (`ENOENT`, `ENOTDIR`, `EISDIR`, `EEXIST`, `ENOTEMPTY`,
 * `ENAMETOOLONG`, `EFBIG`). Writes are atomic by construction; symlinks, FIFOs and devices
 * do not exist here.
 *
 * @example
 * ```ts
 * import { FSMetadataStore, MemoryFileSystem } from "@distribution/metadata";
 * import { equal } from "node:assert/strict";
 *
 * const fs = new MemoryFileSystem();
 * const store = await FSMetadataStore.open("/store", { fs });
 * await store.set("v1id", "key", new TextEncoder().encode("value"));
 * equal((await fs.stat("/store/v1id/key"))?.mode, 0o644);
 * ```
 */
export class MemoryFileSystem implements FileSystem {
  readonly #entries = new Map<string, Entry>([
    ["/", { kind: "directory", mode: 0o755, children: new Set() }],
  ]);
  readonly #umask: number;

  /**
   * Creates an empty filesystem holding only `/`.
   *
   * @param options `umask` applied to new directories (default `0o022`, as dockerd runs).
   */
  constructor(options: { umask?: number } = {}) {
    this.#umask = options.umask ?? 0o022;
  }

  /**
   * Reads a whole file.
   *
   * @param path An absolute path.
   * @param options `maxBytes`: refuse a bigger file with `EFBIG`.
   * @returns A copy of the file's bytes in an ArrayBuffer of its own.
   */
  readFile(path: string, options?: ReadFileOptions): Uint8Array {
    path = clean(path);
    const entry = this.#entries.get(path);
    if (entry?.kind === "file") {
      const { data } = entry;
      const maxBytes = options?.maxBytes;
      if (maxBytes !== undefined && data.length > maxBytes) {
        throw tooBig(path, data.length, maxBytes);
      }
      return data.slice();
    }
    if (entry) throw fsError("EISDIR", "illegal operation on a directory", "read", path);
    throw this.#missing(path, "open");
  }

  /**
   * Replaces `path` with `data` at `mode` in one step (`tempPath` is only checked).
   *
   * @param path An absolute path whose parent directory exists.
   * @param tempPath The temp file name a disk would use; `EEXIST` when it exists.
   * @param data The new contents (copied).
   * @param mode The file's permission bits.
   */
  writeFileAtomic(path: string, tempPath: string, data: Uint8Array, mode: number): void {
    path = clean(path);
    tempPath = clean(tempPath);
    this.#directory(parentOf(path), "open");
    if (this.#entries.has(tempPath)) {
      throw fsError("EEXIST", "file already exists", "open", tempPath);
    }
    this.#checkName(tempPath, "open");
    if (this.#entries.get(path)?.kind === "directory") {
      throw fsError("EISDIR", "illegal operation on a directory", "rename", path);
    }
    this.#add(path, { kind: "file", mode: mode & 0o7777, data: data.slice() });
  }

  /**
   * Creates `path` and missing ancestors with `mode & ~umask`.
   *
   * @param path An absolute path.
   * @param mode The permission bits before the umask.
   */
  mkdir(path: string, mode: number): void {
    path = clean(path);
    const entry = this.#entries.get(path);
    if (entry?.kind === "directory") return;
    if (entry) throw fsError("EEXIST", "file already exists", "mkdir", path);
    const parent = parentOf(path);
    if (this.#entries.get(parent)?.kind !== "directory") this.mkdir(parent, mode);
    this.#checkName(path, "mkdir");
    this.#add(path, { kind: "directory", mode: mode & ~this.#umask & 0o7777, children: new Set() });
  }

  /**
   * Removes a file or an empty directory.
   *
   * @param path An absolute path.
   */
  remove(path: string): void {
    path = clean(path);
    const entry = this.#entries.get(path);
    if (!entry) throw this.#missing(path, "unlink");
    if (entry.kind === "directory" && entry.children.size > 0) {
      throw fsError("ENOTEMPTY", "directory not empty", "rmdir", path);
    }
    if (path === "/") throw fsError("EBUSY", "resource busy or locked", "rmdir", path);
    this.#entries.delete(path);
    (this.#entries.get(parentOf(path)) as { children: Set<string> }).children.delete(nameOf(path));
  }

  /**
   * Describes an entry.
   *
   * @param path An absolute path.
   * @returns Its kind, mode and size, or `null` when it does not exist.
   */
  stat(path: string): FileInfo | null {
    path = clean(path);
    const entry = this.#entries.get(path);
    if (!entry) {
      const error = this.#missing(path, "lstat");
      if ((error as { code?: string }).code === "ENOENT") return null;
      throw error;
    }
    const size = entry.kind === "file" ? entry.data.length : 4096;
    return { kind: entry.kind, mode: entry.mode, size };
  }

  /**
   * Lists a directory's names in creation order.
   *
   * @param path An absolute path.
   * @returns The names of its entries.
   */
  readDir(path: string): string[] {
    return [...this.#directory(clean(path), "scandir").children];
  }

  /**
   * Creates an empty file with `mode & ~umask`; `EEXIST` when `path` exists.
   *
   * @param path An absolute path whose parent directory exists.
   * @param mode The permission bits before the umask.
   */
  createExclusive(path: string, mode: number): void {
    path = clean(path);
    this.#directory(parentOf(path), "open");
    if (this.#entries.has(path)) throw fsError("EEXIST", "file already exists", "open", path);
    this.#checkName(path, "open");
    this.#add(path, { kind: "file", mode: mode & ~this.#umask & 0o7777, data: new Uint8Array() });
  }

  /**
   * A file as a stream of 1 MiB slices of a copy of its bytes.
   *
   * @param path An absolute path.
   * @param options `maxBytes`: refuse a bigger file with `EFBIG`.
   * @returns Its size and its bytes.
   */
  openRead(path: string, options?: ReadFileOptions): ReadStreamResult {
    const data = this.readFile(path, options);
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= data.length) return controller.close();
        controller.enqueue(data.subarray(offset, offset += 1 << 20));
      },
    }, { highWaterMark: 0 });
    return { size: data.length, stream };
  }

  /**
   * Collects a stream, then replaces `path` with it as {@linkcode MemoryFileSystem.writeFileAtomic}
   * does; a stream that fails leaves `path` as it was.
   *
   * @param path An absolute path whose parent directory exists.
   * @param tempPath The temp file name a disk would use; `EEXIST` when it exists.
   * @param data The new contents.
   * @param mode The file's permission bits.
   * @returns The number of bytes written.
   */
  async writeFileStream(
    path: string,
    tempPath: string,
    data: ReadableStream<Uint8Array>,
    mode: number,
  ): Promise<number> {
    const chunks: Uint8Array[] = [];
    let length = 0;
    for await (const chunk of data) {
      chunks.push(chunk.slice());
      length += chunk.length;
    }
    const whole = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      whole.set(chunk, offset);
      offset += chunk.length;
    }
    this.writeFileAtomic(path, tempPath, whole, mode);
    return length;
  }

  #add(path: string, entry: Entry): void {
    const parent = this.#entries.get(parentOf(path)) as { children: Set<string> };
    parent.children.add(nameOf(path));
    this.#entries.set(path, entry);
  }

  #directory(path: string, syscall: string): { children: Set<string> } {
    const entry = this.#entries.get(path);
    if (entry?.kind === "directory") return entry;
    if (entry) throw fsError("ENOTDIR", "not a directory", syscall, path);
    throw this.#missing(path, syscall);
  }

  /** The error for a missing path: ENOTDIR when an ancestor is a file, else ENOENT. */
  #missing(path: string, syscall: string): Error {
    for (let dir = parentOf(path);; dir = parentOf(dir)) {
      const entry = this.#entries.get(dir);
      if (entry?.kind === "file") return fsError("ENOTDIR", "not a directory", syscall, path);
      if (entry || dir === "/") {
        return fsError("ENOENT", "no such file or directory", syscall, path);
      }
    }
  }

  #checkName(path: string, syscall: string): void {
    const name = nameOf(path);
    if (name.length > NAME_MAX / 3 && encoder.encode(name).length > NAME_MAX) {
      throw fsError("ENAMETOOLONG", "name too long", syscall, path);
    }
  }
}
