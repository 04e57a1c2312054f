// The write sequence of Docker's ioutils.AtomicWriteFile, shared by the real-disk adapters.
// Only fsync is asynchronous: it is the slow step, and running it off the main thread lets
// many writes overlap while the cheap steps stay free of promise round trips.

/** The primitive file operations one runtime provides, on a handle type `F`. */
export interface AtomicWriteOps<F> {
  createExclusive(path: string, mode: number): F;
  writeAll(file: F, data: Uint8Array): void;
  sync(file: F): Promise<void>;
  close(file: F): void;
  chmod(path: string, mode: number): void;
  rename(from: string, to: string): void;
  remove(path: string): void;
}

/** Writes `data` to `tempPath` (0600), fsyncs, closes, chmods to `mode`, renames to `path`. */
export async function writeAtomically<F>(
  ops: AtomicWriteOps<F>,
  path: string,
  tempPath: string,
  data: Uint8Array,
  mode: number,
): Promise<void> {
  const file = ops.createExclusive(tempPath, 0o600);
  let open = true;
  try {
    ops.writeAll(file, data);
    await ops.sync(file);
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
