// The one way an image moves between ends: a source opened in a temporary directory of the
// transfer's own, handed to a destination, the directory removed whatever happens.
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { inTempDir } from "../_spool.ts";
import type { TransferProgress } from "../types.ts";
import type { ImageDestination } from "./destination.ts";
import { heard } from "./heard.ts";
import type { ImageSource } from "./source.ts";

/** Opens a source: where it may spool, what stops it. */
export type OpenSource = (work: { dir: string; signal: AbortSignal }) => Promise<ImageSource>;

/** Where the temporary directory is made, what stops the transfer, and who hears it. */
export interface TransferOptions {
  /** The file system of the temporary directory (default: the runtime's). */
  fs?: FileSystem | undefined;
  /** Where the temporary directory is made (default: the runtime's temporary directory). */
  tempDir?: string | undefined;
  /** Stops the transfer. */
  signal?: AbortSignal | undefined;
  /**
   * Hears each layer's bytes as the destination reads them (`pull`), and each layer it had no
   * need to read (`exists`). For ends that are no registry: a registry's requests report their
   * own bytes to the `onProgress` of its configuration.
   */
  onProgress?: ((event: TransferProgress) => void) | undefined;
}

/**
 * Moves one image from a source to a destination.
 *
 * @param open Opens the source.
 * @param destination Takes the image.
 * @param options Temporary directory, file system, signal, progress.
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
    const { onProgress } = options;
    return await destination.put(
      onProgress === undefined ? image : heard(image, onProgress),
      dir,
      signal,
    );
  });
}
