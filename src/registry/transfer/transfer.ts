// The one way an image moves between ends: a source opened in a temporary directory of the
// transfer's own, handed to a destination, the directory removed whatever happens.
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { inTempDir } from "../_spool.ts";
import type { ImageDestination } from "./destination.ts";
import type { ImageSource } from "./source.ts";

/** Opens a source: where it may spool, what stops it. */
export type OpenSource = (work: { dir: string; signal: AbortSignal }) => Promise<ImageSource>;

/** Where the temporary directory is made, and what stops the transfer. */
export interface TransferOptions {
  /** The file system of the temporary directory (default: the runtime's). */
  fs?: FileSystem | undefined;
  /** Where the temporary directory is made (default: the runtime's temporary directory). */
  tempDir?: string | undefined;
  /** Stops the transfer. */
  signal?: AbortSignal | undefined;
}

/**
 * Moves one image from a source to a destination.
 *
 * @param open Opens the source.
 * @param destination Takes the image.
 * @param options Temporary directory, file system, signal.
 * @returns What the destination tells.
 */
export async function transferImage<R>(
  open: OpenSource,
  destination: ImageDestination<R>,
  options: TransferOptions = {},
): Promise<R> {
  const fs = options.fs ?? runtimeFileSystem();
  const signal = options.signal ?? new AbortController().signal;
  return await inTempDir(fs, options.tempDir, "distribution-transfer", async (dir) => {
    const image = await open({ dir, signal });
    return await destination.put(image, dir, signal);
  });
}
