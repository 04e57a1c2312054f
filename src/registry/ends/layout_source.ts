// An OCI image layout's image as the source of a transfer into dockerd or an archive: its
// manifest (from an index, one platform's), configuration and layers read from the layout,
// each checked against its digest and size as it passes.
import { readVerified } from "../_digest.ts";
import { imageManifest } from "../_image_manifest.ts";
import { parseManifest } from "../manifest.ts";
import { manifestSource } from "../transfer/manifest_source.ts";
import type { OpenSource } from "../transfer/transfer.ts";
import { LIMITS } from "../transport/limits.ts";
import type { ContentStore, Descriptor, Platform } from "../types.ts";

/**
 * The image `descriptor` names in a layout (from an index, `platform`'s) as a transfer's
 * source.
 *
 * @param store The layout.
 * @param descriptor The manifest, e.g. what `store.resolve` gives for a tag.
 * @param platform The platform to take from an index.
 * @param shown The image, for messages.
 * @returns The source, for `transferImage`.
 */
export function layoutSource(
  store: ContentStore,
  descriptor: Descriptor,
  platform: Platform,
  shown: string,
): OpenSource {
  // A manifest read is bounded and checked against its digest; its bytes tell its media type.
  const manifests = {
    get: async (digest: string) =>
      parseManifest(await readVerified(store, digest, `manifest "${digest}"`, LIMITS.manifest)),
  };
  return async () => {
    const manifest = await imageManifest(manifests, descriptor.digest, platform, "copy", shown);
    return await manifestSource(manifest, {
      config: ({ digest }) =>
        readVerified(store, digest, `configuration "${digest}"`, LIMITS.config),
      open: ({ digest, size }) => store.open(digest, { maxBytes: size, verify: false }),
    }, shown);
  };
}
