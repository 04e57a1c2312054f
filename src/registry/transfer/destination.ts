// What a destination of a transfer takes: an image from any source, reading only the layers it
// lacks, in the source's order.
import type { ImageSource } from "./source.ts";

/** Where a transfer puts an image, and what it tells of it (`R`). */
export interface ImageDestination<R> {
  /**
   * Takes the image.
   *
   * @param image The source's image.
   * @param dir A temporary directory of the transfer's own, for spool files.
   * @param signal Stops the transfer.
   * @returns What it did.
   */
  put(image: ImageSource, dir: string, signal: AbortSignal): Promise<R>;
}
