// Streamed file I/O for the disk adapters (Deno, Node, Bun all through node:fs), for blobs too
// big to hold whole: FileSystem.openRead and FileSystem.writeFileStream. Reading keeps
// readFile's refusals (O_NOFOLLOW | O_NONBLOCK, then fstat: a regular file or nothing); writing
// keeps writeFileAtomic's sequence (exclusive 0600 temp file, fsync, chmod, rename) and removes
// the temp file when the stream fails or is abandoned.
import type { ReadFileOptions, ReadStreamResult } from "../file_system.ts";
import { errorCode } from "../_map_error.ts";
import { fsError, tooBig } from "./_fs_error.ts";
import { loadNodeFs } from "./_node_fs.ts";

type Callback<T> = (error: Error | null, value: T) => void;

/** node:fs's read and write: `length` bytes at `offset` of `buffer`, at `position` in the file. */
type PositionalIo = (
  fd: number,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
  callback: Callback<number>,
) => void;

interface StreamFs {
  openSync(path: string, flags: number | string, mode?: number): number;
  fstatSync(fd: number): { isFile(): boolean; isDirectory(): boolean; size: number };
  read: PositionalIo;
  write: PositionalIo;
  fsync(fd: number, callback: (error: Error | null) => void): void;
  closeSync(fd: number): void;
  chmodSync(path: string, mode: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  constants: Record<string, number | undefined>;
}

/**
 * The size of each read: large enough to keep hashing and sockets busy, small for memory. Deno
 * reads 64 KiB: its `fetch` streaming a request body of 256 KiB chunks held ~45 MiB more (a bare
 * `PUT` of a 512 MiB file peaked at 110 MiB against 65, a push of the 821 MiB benchmark image at
 * 133–155 against 99–112) and was no faster. Bun's push peaks at 76–79 MiB with either size.
 */
const READ_CHUNK = (globalThis as { Deno?: unknown }).Deno === undefined ? 256 << 10 : 64 << 10;

const fs = () => loadNodeFs<StreamFs>();

function call<T>(fn: (callback: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((error, value) => error ? reject(error) : resolve(value))
  );
}

function closeQuietly(fd: number): void {
  try {
    fs().closeSync(fd);
  } catch {
    // already closed, or the error that led here is the one worth reporting
  }
}

/**
 * Opens a regular file as a stream of its bytes: {@linkcode FileSystem.openRead}'s contract.
 *
 * @param path The file.
 * @param options `maxBytes`: a bigger file is `EFBIG` before a byte is read.
 * @returns Its size when opened, and a stream of its bytes (reads of 256 KiB, 64 KiB on Deno).
 */
export function openReadStream(path: string, options?: ReadFileOptions): ReadStreamResult {
  const nodeFs = fs();
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = nodeFs.constants;
  let fd: number;
  try {
    fd = nodeFs.openSync(path, O_RDONLY! | O_NOFOLLOW! | O_NONBLOCK! | (O_NOCTTY ?? 0));
  } catch (error) {
    throw errorCode(error) === "ENXIO" ? notRegular(path) : error;
  }
  let size: number;
  try {
    const stats = nodeFs.fstatSync(fd);
    if (stats.isDirectory()) {
      throw fsError("EISDIR", "illegal operation on a directory", "read", path);
    }
    if (!stats.isFile()) throw notRegular(path);
    size = stats.size;
    const maxBytes = options?.maxBytes ?? Infinity;
    if (size > maxBytes) throw tooBig(path, size, maxBytes);
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
  let position = 0;
  let open = true;
  const close = () => {
    if (open) closeQuietly(fd);
    open = false;
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A fresh buffer per read: the consumer may keep the chunk (a socket, a queue).
      const buffer = new Uint8Array(READ_CHUNK);
      let read: number;
      try {
        read = await call<number>((done) =>
          nodeFs.read(fd, buffer, 0, buffer.length, position, done)
        );
      } catch (error) {
        close();
        controller.error(error);
        return;
      }
      if (read === 0) {
        close();
        controller.close();
        return;
      }
      position += read;
      controller.enqueue(read === buffer.length ? buffer : buffer.subarray(0, read));
    },
    cancel: close,
  }, { highWaterMark: 0 });
  return { size, stream };
}

/**
 * Writes a stream to `tempPath` (created exclusively, mode 0600), fsyncs, chmods to `mode` and
 * renames it over `path`: {@linkcode FileSystem.writeFileStream}'s contract.
 *
 * @param path The final name.
 * @param tempPath The temp file's name, in the same directory.
 * @param data The bytes; an error from it removes the temp file and is rethrown.
 * @param mode The final permission bits.
 * @returns The number of bytes written.
 */
export async function writeFileStream(
  path: string,
  tempPath: string,
  data: ReadableStream<Uint8Array>,
  mode: number,
): Promise<number> {
  const nodeFs = fs();
  let fd: number;
  try {
    // Not cleaned up on failure: a temp file of that name is someone else's.
    fd = nodeFs.openSync(tempPath, "wx", 0o600);
  } catch (error) {
    await data.cancel(error).catch(() => {});
    throw error;
  }
  let open = true;
  let written = 0;
  const reader = data.getReader();
  const writeAll = async (chunk: Uint8Array, position: number) => {
    for (let offset = 0; offset < chunk.length;) {
      offset += await call<number>((done) =>
        nodeFs.write(fd, chunk, offset, chunk.length - offset, position + offset, done)
      );
    }
  };
  // One write in flight while the next chunk is read: the disk and the source overlap.
  let writing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      await writing;
      if (done) break;
      writing = writeAll(value, written);
      writing.catch(() => {}); // awaited on the next turn
      written += value.length;
    }
    await call<void>((done) => nodeFs.fsync(fd, (error) => done(error, undefined)));
    open = false;
    nodeFs.closeSync(fd);
    nodeFs.chmodSync(tempPath, mode);
    nodeFs.renameSync(tempPath, path);
    return written;
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    if (open) closeQuietly(fd);
    try {
      nodeFs.unlinkSync(tempPath);
    } catch {
      // gone already; the original error is the one worth reporting
    }
    throw error;
  }
}

function notRegular(path: string): Error {
  return fsError("EINVAL", "not a regular file (a FIFO, socket or device)", "open", path);
}
