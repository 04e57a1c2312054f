// What a source of a transfer gives: one image, its configuration's exact bytes and its layers
// with what the source knows of them. Sources that read a sequential stream (dockerd's save, an
// archive) give the layers in their own order; a destination asks only for those it lacks. The
// shape is what dockerd's push takes (`UncompressedImage`), and what the other ends add to it.
import type { GzipLayer, UncompressedImage, UncompressedLayer } from "../push_uncompressed.ts";
import type { Descriptor } from "../types.ts";

/** A layer's bytes as the source gives them, readable again until released. */
export interface SourceLayer extends UncompressedLayer {
  /** How many bytes `open` gives. */
  size: number;
  /**
   * The bytes are not yet proven to be the DiffID (a registry's or a layout's blob: only
   * inflating them tells): whoever reads them proves it before recording anything.
   */
  unproven?: true;
}

/** An image as a source gives it. */
export interface ImageSource extends UncompressedImage {
  /** The image, for messages, e.g. `registry.example.com/app:1`, `docker-archive "a.tar"`. */
  shown: string;
  /**
   * The source's own manifest, when it has one (a registry's, a layout's): its media type,
   * exact bytes and its layers' blobs in order. Without one the layers are as the source holds
   * them, uncompressed tars (or gzipped, with `blob`).
   */
  manifest?: { mediaType: string; payload: Uint8Array; layers: readonly Descriptor[] };
  /** The registry repository (full name) the image is read from, which a pull records. */
  origin?: string;
  /** As {@linkcode UncompressedImage.layers}, each layer with what the source knows of it. */
  layers(
    wanted: ReadonlySet<string>,
    dir: string,
    signal: AbortSignal,
    gzip?: GzipLayer,
  ): AsyncIterable<SourceLayer>;
}
