// Streamed file I/O for the disk adapters, for blobs too big to hold whole: FileSystem.openRead
// and FileSystem.writeFileStream, through node:fs on Deno, Node and Bun. Reading keeps readFile's
// refusals (O_NOFOLLOW | O_NONBLOCK, then fstat: a regular file or nothing); writing keeps
// writeFileAtomic's sequence (exclusive 0600 temp file, fsync, chmod, rename), starting the disk
// on what came every 32 MiB (neither for a scratch file), and removes the temp file when the
// stream fails or is abandoned.
import type { ReadFileOptions, ReadStreamResult, WriteStreamOptions } from "../file_system.ts";
import { errorCode } from "../_map_error.ts";
import { fsError, tooBig } from "./_fs_error.ts";
import type { AtomicWriteOps } from "./_atomic_write.ts";
import { loadNodeFs } from "./_node_fs.ts";
import { byobReader } from "../_relay.ts";

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
  fdatasync(fd: number, callback: (error: Error | null) => void): void;
  closeSync(fd: number): void;
  chmodSync(path: string, mode: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  constants: Record<string, number | undefined>;
}

/**
 * The size of each read: large enough to keep hashing and sockets busy, small for memory. Deno
 * reads 32 KiB: its `fetch` holds more of a streamed request body the larger its chunks, once per
 * upload under way (256 KiB against 64 KiB: a bare `PUT` of a 512 MiB file peaked at 110 MiB
 * against 65; 64 KiB against 32 KiB: a push of the benchmark image with a 2 GiB layer peaked at
 * 104–146 MiB against 90–94, of the 821 MiB one at 102–111 against 90–91, 4% slower). Bun's push
 * peaks at 76–79 MiB with 64 or 256 KiB.
 */
const READ_CHUNK = (globalThis as { Deno?: unknown }).Deno === undefined ? 256 << 10 : 32 << 10;

/** Each of the two buffers a byte stream is read into when written to a file. */
const WRITE_BUFFER = 256 << 10;

const fs = () => loadNodeFs<StreamFs>();

/**
 * Bytes written between write-backs: the kernel holds a pull's writes in memory until the
 * fsync at the end of each blob (its own write-back waits 30 s), so the disk then writes a whole
 * blob while the pull waits; started every 32 MiB it writes while the bytes still arrive (the
 * issue's 821 MiB pull: Deno 5.5 -> 4.4 s, Node 5.4 -> 4.6 s; every 8 MiB was no better).
 */
const WRITE_BACK_EVERY = 32 << 20;

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
 * @returns Its size when opened, and a stream of its bytes (reads of 256 KiB, 32 KiB on Deno).
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
  // The read in flight: a cancel waits for it, so the descriptor is never closed (and its
  // number reused by another file) under it.
  let reading: Promise<number> | null = null;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A fresh buffer per read: the consumer may keep the chunk (a socket, a queue).
      const buffer = new Uint8Array(READ_CHUNK);
      let read: number;
      try {
        reading = call<number>((done) => nodeFs.read(fd, buffer, 0, buffer.length, position, done));
        read = await reading;
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
    async cancel() {
      await reading?.catch(() => {});
      close();
    },
  }, { highWaterMark: 0 });
  return { size, stream };
}

/**
 * The file operations a streamed write needs, on a handle type `F`: the atomic write's
 * (createExclusive fails with `EEXIST` on anything already there, a symlink included), and
 * an asynchronous write.
 */
export interface StreamWriteOps<F>
  extends
    Pick<AtomicWriteOps<F>, "createExclusive" | "sync" | "close" | "chmod" | "rename" | "remove"> {
  /**
   * Writes all of `chunk` at `position`, where the previous write ended (writes come one at a
   * time, in order).
   */
  writeAll(file: F, chunk: Uint8Array, position: number): Promise<void>;
  /**
   * Has the disk write what was written so far (an fdatasync) without holding up the writes
   * that follow; its error fails the write.
   */
  writeBack(file: F): Promise<void>;
}

/** node:fs's descriptors, on every runtime. */
const nodeStreamWriteOps: StreamWriteOps<number> = {
  createExclusive: (path, mode) => fs().openSync(path, "wx", mode),
  async writeAll(fd, chunk, position) {
    for (let offset = 0; offset < chunk.length;) {
      offset += await call<number>((done) =>
        fs().write(fd, chunk, offset, chunk.length - offset, position + offset, done)
      );
    }
  },
  sync: (fd) => call<void>((done) => fs().fsync(fd, (error) => done(error, undefined))),
  // libuv's thread pool runs it beside the writes to the same descriptor.
  writeBack: (fd) => call<void>((done) => fs().fdatasync(fd, (error) => done(error, undefined))),
  close: (fd) => fs().closeSync(fd),
  chmod: (path, mode) => fs().chmodSync(path, mode),
  rename: (from, to) => fs().renameSync(from, to),
  remove: (path) => fs().unlinkSync(path),
};

/**
 * Writes a stream to `tempPath` (created exclusively, mode 0600), fsyncs, chmods to `mode` and
 * renames it over `path`, with `ops`: {@linkcode FileSystem.writeFileStream}'s contract.
 *
 * @param ops The runtime's file operations.
 * @param path The final name.
 * @param tempPath The temp file's name, in the same directory.
 * @param data The bytes; an error from it removes the temp file and is rethrown.
 * @param mode The final permission bits.
 * @param options `durable: false`: no write-back and no fsync (a scratch file).
 * @returns The number of bytes written.
 */
export async function writeStreamAtomically<F>(
  ops: StreamWriteOps<F>,
  path: string,
  tempPath: string,
  data: ReadableStream<Uint8Array>,
  mode: number,
  options?: WriteStreamOptions,
): Promise<number> {
  const durable = options?.durable ?? true;
  let file: F;
  try {
    // Not cleaned up on failure: a temp file of that name is someone else's.
    file = ops.createExclusive(tempPath, 0o600);
  } catch (error) {
    await data.cancel(error).catch(() => {});
    throw error;
  }
  let open = true;
  let written = 0;
  const byob = byobReader(data);
  const reader = byob ?? data.getReader();
  // A byte stream fills two buffers of ours in turn: the next bytes land in one while the other
  // is written, and no read allocates.
  let buffers: Uint8Array[] = byob === null
    ? []
    : [new Uint8Array(WRITE_BUFFER), new Uint8Array(WRITE_BUFFER)];
  const read = (): Promise<ReadableStreamReadResult<Uint8Array>> =>
    byob === null
      ? (reader as ReadableStreamDefaultReader<Uint8Array>).read()
      : byob.read(buffers[0]!);
  // One write in flight while the next chunk is read: the disk and the source overlap.
  let writing: Promise<void> = Promise.resolve();
  // At most one write-back in flight; awaited before the final fsync, which reports its error.
  let writingBack: Promise<void> | null = null;
  let failedBack: unknown = null;
  let writtenBack = 0;
  try {
    for (;;) {
      const { done, value } = await read();
      await writing;
      if (failedBack !== null) throw failedBack;
      if (done) break;
      // The one just written is free for the next read; the one just read is written next.
      if (byob !== null) buffers = [buffers[1]!, new Uint8Array(value.buffer)];
      writing = ops.writeAll(file, value, written);
      writing.catch(() => {}); // awaited on the next turn
      written += value.length;
      if (durable && writingBack === null && written - writtenBack >= WRITE_BACK_EVERY) {
        writtenBack = written;
        writingBack = ops.writeBack(file).then(
          () => void (writingBack = null),
          (error) => void (failedBack = error),
        );
      }
    }
    await writingBack;
    if (failedBack !== null) throw failedBack;
    if (durable) await ops.sync(file);
    open = false;
    ops.close(file);
    ops.chmod(tempPath, mode);
    ops.rename(tempPath, path);
    return written;
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    // Neither a write nor a write-back may still be in flight when the descriptor is closed:
    // the next file opened may reuse its number, and the write would land there.
    await Promise.allSettled([writing, writingBack]);
    if (open) ignoreError(() => ops.close(file));
    // Gone already or not: the original error is the one worth reporting.
    ignoreError(() => ops.remove(tempPath));
    throw error;
  }
}

/**
 * {@linkcode writeStreamAtomically} through node:fs (Node, Bun, Deno): {@linkcode
 * FileSystem.writeFileStream}'s contract.
 *
 * @param path The final name.
 * @param tempPath The temp file's name, in the same directory.
 * @param data The bytes; an error from it removes the temp file and is rethrown.
 * @param mode The final permission bits.
 * @param options `durable: false`: no fsync (a scratch file).
 * @returns The number of bytes written.
 */
export function writeFileStream(
  path: string,
  tempPath: string,
  data: ReadableStream<Uint8Array>,
  mode: number,
  options?: WriteStreamOptions,
): Promise<number> {
  return writeStreamAtomically(nodeStreamWriteOps, path, tempPath, data, mode, options);
}

function ignoreError(fn: () => void): void {
  try {
    fn();
  } catch {
    // The original error is the one worth reporting.
  }
}

function notRegular(path: string): Error {
  return fsError("EINVAL", "not a regular file (a FIFO, socket or device)", "open", path);
}
