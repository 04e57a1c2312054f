// The walk of what a reference names, written once for pull and copy: an image manifest, or
// the images an index gives for the platforms asked for, each moved in index order, then the
// index itself.
import { digestOf } from "../_digest.ts";
import { imageOfIndex, selectEntries } from "../_image_manifest.ts";
import { isIndexMediaType } from "../manifest.ts";
import { hostPlatform } from "../platform.ts";
import { formatReference, type Reference } from "../reference.ts";
import type { Descriptor, Manifest, Platform, Repository } from "../types.ts";

/** What a transfer of several images returns: the index, each image's layers, each image. */
export interface Moved<L> extends Descriptor {
  /** Each layer, in manifest order (of every image, for an index). */
  layers: L[];
  /** When the name became an index (`platform` a list or `"all"`): each image, in index order. */
  manifests?: Moved<L>[];
}

/** Where the images go: the destination's side of the walk. */
export interface ImageWalk<R> {
  /**
   * Before anything moves: the digest of what the name will be (the image, or the index).
   *
   * @param digest That digest.
   */
  named?(digest: string): void;
  /**
   * Moves one image.
   *
   * @param manifest The image manifest.
   * @param digest Its digest.
   * @param named Whether the name becomes this image (not one image of several).
   */
  image(manifest: Manifest, digest: string, named: boolean): Promise<R>;
  /**
   * Takes the index once its images moved.
   *
   * @param manifest The index.
   * @param digest Its digest.
   * @param named Whether the name becomes the index (several images).
   */
  index(manifest: Manifest, digest: string, named: boolean): Promise<void>;
}

/**
 * Moves what `ref` names in `repo`: an image manifest, or an index's images for `selection`
 * (one platform, by default this machine's, a list, or `"all"`), each image then the index.
 *
 * @param repo The source repository.
 * @param ref The reference, with a tag or digest.
 * @param selection The platforms to take from an index.
 * @param doing `"pull"` or `"copy"`, for messages.
 * @param walk What the destination does with each image and with the index.
 * @returns The image's result; for several images, the index's descriptor with every layer and
 * each image's result.
 */
export async function eachImage<L, R extends Moved<L>>(
  repo: Repository,
  ref: Reference,
  selection: Platform | Platform[] | "all" | undefined,
  doing: "pull" | "copy",
  walk: ImageWalk<R>,
): Promise<R | Moved<L>> {
  const shown = formatReference(ref);
  const manifest = await repo.manifests().get(ref.digest ?? ref.tag!);
  const digest = ref.digest ?? await digestOf(manifest.payload);
  if (!isIndexMediaType(manifest.mediaType)) {
    walk.named?.(digest);
    return await walk.image(manifest, digest, true);
  }
  const platforms = selection ?? hostPlatform();
  const one = platforms !== "all" && !Array.isArray(platforms);
  const entries = selectEntries(manifest, platforms, shown);
  walk.named?.(one ? entries[0]!.digest : digest);
  const images: R[] = [];
  for (const entry of entries) {
    const child = await imageOfIndex(repo.manifests(), entry, doing, shown);
    images.push(await walk.image(child, entry.digest, one));
  }
  await walk.index(manifest, digest, !one);
  if (one) return images[0]!;
  return {
    mediaType: manifest.mediaType,
    digest,
    size: manifest.payload.length,
    layers: images.flatMap((image) => image.layers),
    manifests: images,
  };
}
