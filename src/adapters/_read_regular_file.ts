// Reads a regular file for the Node/Bun and Deno adapters (Deno.readFileSync has no
// O_NOFOLLOW or O_NONBLOCK; Deno's node:fs has both, at the same cost). One open, one fstat,
// reads into a buffer of exactly the file's size, one close: the result owns its ArrayBuffer.
import type { ReadFileOptions } from "../file_system.ts";
import { fsError, tooBig } from "./_fs_error.ts";
import { loadNodeFs } from "./_node_fs.ts";
import { errorCode } from "../_map_error.ts";

interface ReadFs {
  openSync(path: string, flags: number): number;
  fstatSync(fd: number): { isFile(): boolean; isDirectory(): boolean; size: number };
  readSync(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: null,
  ): number;
  closeSync(fd: number): void;
  constants: Record<string, number | undefined>;
}

let fs: ReadFs | undefined;
/**
 * `O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`: a final symlink fails with ELOOP, a FIFO
 * opens at once instead of waiting for a writer, a terminal never becomes ours.
 */
let flags = 0;
/** Where a read past the size fstat gave lands: a file that grew since. */
const probe = new Uint8Array(512);

function readFs(): ReadFs {
  if (!fs) {
    fs = loadNodeFs<ReadFs>();
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
    flags = O_RDONLY! | O_NOFOLLOW! | O_NONBLOCK! | (O_NOCTTY ?? 0);
  }
  return fs;
}

function notRegular(path: string): Error {
  return fsError("EINVAL", "not a regular file (a FIFO, socket or device)", "open", path);
}

/**
 * The bytes of the regular file at `path` as a plain Uint8Array that owns its buffer:
 * {@linkcode FileSystem.readFile}'s contract, errors included.
 */
export function readRegularFile(path: string, options?: ReadFileOptions): Uint8Array {
  const fs = readFs();
  const maxBytes = options?.maxBytes ?? Infinity;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (error) {
    // open(2) of a socket, or of a device with no driver behind it, fails so.
    throw errorCode(error) === "ENXIO" ? notRegular(path) : error;
  }
  try {
    const stats = fs.fstatSync(fd);
    if (!stats.isFile()) {
      if (stats.isDirectory()) {
        throw fsError("EISDIR", "illegal operation on a directory", "read", path);
      }
      throw notRegular(path);
    }
    if (stats.size > maxBytes) throw tooBig(path, stats.size, maxBytes);
    // Files in a store are replaced by rename, never rewritten in place, so the size fstat
    // gave is the size: the buffer is allocated once, exactly, and a read into `probe`
    // confirms the end. A file that grows meanwhile (or a /proc file, which says 0) is read
    // on into a bigger buffer, within the limit.
    let buffer = new Uint8Array(stats.size);
    let length = 0;
    for (;;) {
      if (length < buffer.length) {
        const read = fs.readSync(fd, buffer, length, buffer.length - length, null);
        if (read === 0) return buffer.slice(0, length);
        length += read;
        continue;
      }
      const read = fs.readSync(fd, probe, 0, probe.length, null);
      if (read === 0) return buffer;
      if (length + read > maxBytes) throw tooBig(path, length + read, maxBytes);
      const bigger = new Uint8Array(Math.min(Math.max(2 * length, length + read), maxBytes));
      bigger.set(buffer);
      bigger.set(probe.subarray(0, read), length);
      buffer = bigger;
      length += read;
    }
  } finally {
    fs.closeSync(fd);
  }
}
