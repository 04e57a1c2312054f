// A registry's image as the source of a transfer into dockerd or an archive: one platform's
// image manifest, its configuration, and each layer's blob streamed from the registry's `GET`
// when taken, digest and size checked as it passes.
import { configFrom } from "../_image.ts";
import { imageManifest } from "../_image_manifest.ts";
import { formatReference, type Reference } from "../reference.ts";
import { manifestSource } from "../transfer/manifest_source.ts";
import type { OpenSource } from "../transfer/transfer.ts";
import type { Platform, Repository } from "../types.ts";

/**
 * The image `ref` names in `repo` (from an index, `platform`'s) as a transfer's source.
 *
 * @param repo The repository.
 * @param ref The reference, with a tag or digest.
 * @param platform The platform to take from an index.
 * @returns The source, for `transferImage`.
 */
export function registrySource(repo: Repository, ref: Reference, platform: Platform): OpenSource {
  return async () => {
    const shown = formatReference(ref);
    const reference = ref.digest ?? ref.tag!;
    const manifest = await imageManifest(repo.manifests(), reference, platform, "pull", shown);
    const blobs = {
      config: configFrom(repo),
      open: ({ digest, size }: { digest: string; size: number }) =>
        repo.blobs().open(digest, { maxBytes: size, verify: false }),
    };
    return await manifestSource(manifest, blobs, shown, ref.name);
  };
}
