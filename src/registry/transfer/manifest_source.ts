// An image that has a manifest (a registry's, a layout's) as a transfer's source: its
// configuration, its manifest's exact bytes, and each layer's blob read when taken, one per
// digest, checked against its digest and size as it passes. Its DiffIDs are the configuration's claims until the destination inflates the bytes.
import { imageParts } from "../_image.ts";
import { verifyingSized } from "../_verify.ts";
import type { Descriptor, Manifest } from "../types.ts";
import type { ImageSource } from "./source.ts";

/** Where the image's blobs are read from. */
export interface BlobReader {
  /** The configuration's bytes, bounded and checked against its digest. */
  config(descriptor: Descriptor): Promise<Uint8Array>;
  /** A layer's blob as stored, at most `layer.size` bytes read (checked here as it passes). */
  open(layer: Descriptor): Promise<ReadableStream<Uint8Array>>;
}

/**
 * The image manifest `manifest` as a source.
 *
 * @param manifest The image manifest.
 * @param blobs Where its blobs are read from.
 * @param shown The image, for messages.
 * @param origin The registry repository (full name) it is read from, if it is a registry's.
 * @returns The source's image.
 */
export async function manifestSource(
  manifest: Manifest,
  blobs: BlobReader,
  shown: string,
  origin?: string,
): Promise<ImageSource> {
  const { configBytes, layers } = await imageParts(manifest, (c) => blobs.config(c), shown);
  return {
    shown,
    config: configBytes,
    manifest: {
      mediaType: manifest.mediaType,
      payload: manifest.payload,
      layers: layers.map(({ layer }) => layer),
    },
    ...(origin === undefined ? {} : { origin }),
    async *layers(wanted, _, signal) {
      const given = new Set<string>();
      for (const { layer, diffID } of layers) {
        if (!wanted.has(diffID) || given.has(layer.digest)) continue;
        given.add(layer.digest);
        yield {
          diffID,
          size: layer.size,
          blob: layer,
          unproven: true,
          open: async () =>
            verifyingSized(
              await blobs.open(layer),
              layer.digest,
              layer.size,
              `layer "${layer.digest}" of "${shown}"`,
              signal,
            ),
          release: () => Promise.resolve(),
        };
      }
    },
  };
}
