// A transfer's progress between ends that are no registry (a registry's own requests report
// theirs): each layer's bytes counted as the destination reads them, and a layer the
// destination had no need to read (it holds it already) told as found.
import { readThrough } from "../../_relay.ts";
import type { TransferProgress } from "../types.ts";
import { takenLayer } from "./built_manifest.ts";
import type { ImageSource, SourceLayer } from "./source.ts";
import { told } from "./told.ts";

/**
 * `image` with its layers' reads told to `onProgress`: `pull` events of the bytes read (from 0
 * again when a layer is read again), or `exists` for a layer released unread.
 *
 * @param image The source's image.
 * @param onProgress The transfer's listener.
 * @returns The same image, heard.
 */
export function heard(
  image: ImageSource,
  onProgress: (event: TransferProgress) => void,
): ImageSource {
  return {
    ...image,
    async *layers(wanted, dir, signal, gzip) {
      for await (const layer of image.layers(wanted, dir, signal, gzip)) yield heardLayer(layer);
    },
  };

  function heardLayer(layer: SourceLayer): SourceLayer {
    const blob = takenLayer(layer);
    const event = (current: number) =>
      onProgress({ action: "pull", digest: blob.digest, current, total: blob.size });
    let read = false;
    return {
      diffID: layer.diffID,
      size: layer.size,
      ...(layer.blob === undefined ? {} : { blob: layer.blob }),
      ...(layer.unproven ? { unproven: true } : {}),
      async open() {
        read = true;
        let current = 0;
        event(current);
        return readThrough(await layer.open(), async (next) => {
          const result = await next();
          if (!result.done) event(current += result.value.length);
          return result;
        });
      },
      async release() {
        if (!read) told(onProgress, "exists", blob);
        await layer.release();
      },
    };
  }
}
