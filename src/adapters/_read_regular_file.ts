// Reads a regular file for the Node/Bun and Deno adapters, FileSystem.readFile's contract:
// opened with O_NOFOLLOW | O_NONBLOCK (Deno.readFileSync has neither; Deno's node:fs has
// both), so neither a symlink nor a FIFO is ever followed or waited on, and checked before a
// byte is read. The result is a buffer of exactly the file's size: it owns its ArrayBuffer.
import type { ReadFileOptions } from "../file_system.ts";
import { errorCode } from "../_map_error.ts";
import { fsError, tooBig } from "./_fs_error.ts";
import { loadNodeFs } from "./_node_fs.ts";

interface ReadFs {
  openSync(path: string, flags: number): number;
  fstatSync(fd: number): { isFile(): boolean; isDirectory(): boolean; size: number };
  readSync(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): number;
  closeSync(fd: number): void;
  constants: Record<string, number | undefined>;
}

/** What the check needs to know of a file. */
interface Kind {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  size: number;
}

let fs: ReadFs | undefined;
/**
 * `O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`: a final symlink fails with ELOOP, a FIFO
 * opens at once instead of waiting for a writer, a terminal never becomes ours.
 */
let flags = 0;
/**
 * Deno's own lstat, where the runtime has one: Deno's node:fs builds its fstat result so
 * slowly (~45 µs, four times a whole small read) that checking the path first and reading
 * with pread is the cheaper safe way there (see readRegularFile).
 */
let lstat: ((path: string) => Kind) | undefined;

function readFs(): ReadFs {
  if (!fs) {
    fs = loadNodeFs<ReadFs>();
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
    flags = O_RDONLY! | O_NOFOLLOW! | O_NONBLOCK! | (O_NOCTTY ?? 0);
    const deno = (globalThis as { Deno?: { lstatSync(path: string): Kind } }).Deno;
    if (deno) lstat = (path) => deno.lstatSync(path);
  }
  return fs;
}

function notRegular(path: string): Error {
  return fsError("EINVAL", "not a regular file (a FIFO, socket or device)", "open", path);
}

/** The size of a regular file within the limit; any other file is refused. */
function checkedSize(path: string, kind: Kind, maxBytes: number): number {
  if (!kind.isFile) {
    if (kind.isDirectory) throw fsError("EISDIR", "illegal operation on a directory", "read", path);
    if (kind.isSymlink) throw fsError("ELOOP", "too many symbolic links encountered", "open", path);
    throw notRegular(path);
  }
  if (kind.size > maxBytes) throw tooBig(path, kind.size, maxBytes);
  return kind.size;
}

/**
 * The bytes of the regular file at `path` as a plain Uint8Array that owns its buffer:
 * {@linkcode FileSystem.readFile}'s contract, errors included.
 *
 * On Node and Bun the open file is fstat-ed. On Deno the path is lstat-ed just before the
 * open, and every read is a pread: a FIFO or socket swapped in between fails the pread
 * (ESPIPE) or the open (ENXIO) and is refused all the same, and a file replaced by a bigger
 * one (a rename) shows more bytes than the size checked, so the open file is fstat-ed after
 * all. So is an empty file on every runtime: procfs files say 0 and are read to their end.
 */
export function readRegularFile(path: string, options?: ReadFileOptions): Uint8Array {
  const fs = readFs();
  const maxBytes = options?.maxBytes ?? Infinity;
  const checked = lstat ? checkedSize(path, lstat(path), maxBytes) : 0;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (error) {
    // open(2) of a socket, or of a device with no driver behind it, fails so.
    throw errorCode(error) === "ENXIO" ? notRegular(path) : error;
  }
  try {
    const bytes = checked > 0 ? readChecked(fs, fd, path, checked) : null;
    if (bytes) return bytes;
    const stats = fs.fstatSync(fd);
    const size = checkedSize(path, {
      isFile: stats.isFile(),
      isDirectory: stats.isDirectory(),
      isSymlink: false, // O_NOFOLLOW: never opened
      size: stats.size,
    }, maxBytes);
    return size > 0 ? readSize(fs, fd, path, size) : readToEnd(fs, fd, path, maxBytes);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The first `size` bytes: all of a file not written meanwhile. Files in a store are replaced
 * by rename, never rewritten in place, so the size checked is the size, the buffer is
 * allocated once and no read past the end is needed to confirm it.
 */
function readSize(fs: ReadFs, fd: number, path: string, size: number): Uint8Array {
  const buffer = new Uint8Array(size);
  const length = readInto(fs, fd, path, buffer, size, size);
  return length < size ? buffer.slice(0, length) : buffer;
}

/** Where files smaller than it are read on Deno, before they are copied out. */
const scratch = new Uint8Array(64 * 1024);

/**
 * The bytes of a file whose path said `size` before it was opened, or null if it holds more
 * (a bigger file renamed in since). A small file is asked for one byte more than `size`, so
 * the same read says it, and copied out of the scratch buffer into a buffer of its own (the
 * copy costs less than a second read); a big one gets a read of one byte past it.
 */
function readChecked(fs: ReadFs, fd: number, path: string, size: number): Uint8Array | null {
  if (size >= scratch.length) {
    const bytes = readSize(fs, fd, path, size);
    return pread(fs, fd, path, scratch, 0, 1, size) === 0 ? bytes : null;
  }
  const length = readInto(fs, fd, path, scratch, size, size + 1);
  return length > size ? null : scratch.slice(0, length);
}

/**
 * preads from the start of the file into `buffer` until it holds at least `size` bytes or
 * the file ends, asking for up to `wanted`; returns how many it holds.
 */
function readInto(
  fs: ReadFs,
  fd: number,
  path: string,
  buffer: Uint8Array,
  size: number,
  wanted: number,
): number {
  let length = 0;
  while (length < size) {
    const read = pread(fs, fd, path, buffer, length, wanted - length, length);
    if (read === 0) break; // truncated meanwhile
    length += read;
  }
  return length;
}

/**
 * pread of `length` bytes from `position` into `buffer` at `offset`; ESPIPE (a FIFO or
 * socket) is refused as not a regular file.
 */
function pread(
  fs: ReadFs,
  fd: number,
  path: string,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): number {
  try {
    return fs.readSync(fd, buffer, offset, length, position);
  } catch (error) {
    throw errorCode(error) === "ESPIPE" ? notRegular(path) : error;
  }
}

/** A file whose size said 0, read until its end within the limit (procfs files say 0). */
function readToEnd(fs: ReadFs, fd: number, path: string, maxBytes: number): Uint8Array {
  let buffer = new Uint8Array(4096);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      const bigger = new Uint8Array(length * 2);
      bigger.set(buffer);
      buffer = bigger;
    }
    const read = pread(fs, fd, path, buffer, length, buffer.length - length, length);
    if (read === 0) return buffer.slice(0, length);
    length += read;
    if (length > maxBytes) throw tooBig(path, length, maxBytes);
  }
}
