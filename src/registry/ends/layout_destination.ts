// An OCI image layout as the destination of a transfer from dockerd or an archive: each layer
// stored as the source gives it (dockerd's uncompressed; each blob checked against its digest as
// it lands), the configuration's exact bytes, and the source's manifest or, when it has none,
// an OCI image manifest of the layers as stored; the image tagged. A registry's image goes into
// a layout by `pull`, which records the pull.
import { digestOf } from "../_digest.ts";
import { diffIDsOf } from "../_image.ts";
import {
  manifestFor,
  takenBlobs,
  type TakenLayer,
  takenLayer,
} from "../transfer/built_manifest.ts";
import type { ImageDestination } from "../transfer/destination.ts";
import { Proving } from "../transfer/proving.ts";
import type { ContentStore } from "../types.ts";
import type { ArchiveCopyResult } from "./_image_archive.ts";

/**
 * The layout `store` as a destination, the image tagged `name`.
 *
 * @param store The layout, e.g. an `ociLayoutStore`.
 * @param name The name the image is tagged with, e.g. `1`.
 * @returns The destination.
 */
export function layoutDestination(
  store: ContentStore,
  name: string,
): ImageDestination<ArchiveCopyResult> {
  return {
    async put(image, dir, signal) {
      const diffIDs = diffIDsOf(image.config, image.shown);
      const taken = new Map<string, TakenLayer>();
      const proving = new Proving();
      try {
        for await (const layer of image.layers(new Set(diffIDs), dir, signal)) {
          try {
            const took = takenLayer(layer);
            taken.set(layer.diffID, took);
            const { digest } = took;
            if (!layer.unproven && await store.has(digest)) continue;
            const bytes = await proving.open(digest, layer, signal);
            await store.write(digest, bytes, { maxBytes: layer.size });
          } finally {
            await layer.release();
          }
        }
      } catch (error) {
        proving.abort();
        throw error;
      }
      const manifest = await manifestFor(image, diffIDs, taken);
      const imageID = await digestOf(image.config);
      await store.put(imageID, image.config);
      await store.put(manifest.descriptor.digest, manifest.payload);
      await store.tag(name, manifest.descriptor);
      return {
        ...manifest.descriptor,
        imageID,
        layers: await proving.settle(takenBlobs(image, diffIDs, taken), undefined, undefined),
      };
    },
  };
}
