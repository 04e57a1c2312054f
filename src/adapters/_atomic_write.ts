// The write sequence of Docker's ioutils.AtomicWriteFile, shared by the real-disk adapters.
// Every step but fsync is a cheap synchronous call. fsync is the slow step: when other
// writes are in flight it runs off the main thread so they overlap; a write that is alone
// fsyncs on the calling thread, since handing it to a worker thread and back costs ~15-20%
// of the whole write (measured on Deno and Bun) and nothing else is waiting for the disk.

/** The primitive file operations one runtime provides, on a handle type `F`. */
export interface AtomicWriteOps<F> {
  createExclusive(path: string, mode: number): F;
  writeAll(file: F, data: Uint8Array): void;
  /** fsync off the main thread. */
  sync(file: F): Promise<void>;
  /** fsync on the calling thread. */
  syncNow(file: F): void;
  close(file: F): void;
  chmod(path: string, mode: number): void;
  rename(from: string, to: string): void;
  remove(path: string): void;
}

/** Writes in progress in this process, on any adapter. */
let writesInFlight = 0;

/** Writes `data` to `tempPath` (0600), fsyncs, closes, chmods to `mode`, renames to `path`. */
export async function writeAtomically<F>(
  ops: AtomicWriteOps<F>,
  path: string,
  tempPath: string,
  data: Uint8Array,
  mode: number,
): Promise<void> {
  writesInFlight++;
  try {
    // One turn of the microtask queue lets writes started together count themselves before
    // any file is made: each then hands its fsync to a worker thread right after its write,
    // so the disk starts on the first while the others are still being written.
    await null;
    await writeAndRename(ops, path, tempPath, data, mode);
  } finally {
    writesInFlight--;
  }
}

async function writeAndRename<F>(
  ops: AtomicWriteOps<F>,
  path: string,
  tempPath: string,
  data: Uint8Array,
  mode: number,
): Promise<void> {
  // Not cleaned up on failure: a temp file of that name is someone else's.
  const file = ops.createExclusive(tempPath, 0o600);
  let open = true;
  try {
    ops.writeAll(file, data);
    if (writesInFlight === 1) ops.syncNow(file);
    else await ops.sync(file);
    open = false;
    ops.close(file);
    ops.chmod(tempPath, mode);
    ops.rename(tempPath, path);
  } catch (error) {
    if (open) ignoreError(() => ops.close(file));
    ignoreError(() => ops.remove(tempPath));
    throw error;
  }
}

function ignoreError(fn: () => void): void {
  try {
    fn();
  } catch {
    // The original error is the one worth reporting.
  }
}
