// An OCI image layout's image as the source of a transfer into dockerd or an archive: its
// manifest (from an index, one platform's), configuration and layers read from the layout,
// each checked against its digest and size as it passes.
import { readVerified } from "../_digest.ts";
import { selectEntries } from "../_image_manifest.ts";
import { verifyingSized } from "../_verify.ts";
import { RegistryError } from "../errors.ts";
import { isIndexMediaType, parseManifest } from "../manifest.ts";
import { manifestSource } from "../transfer/manifest_source.ts";
import type { OpenSource } from "../transfer/transfer.ts";
import { LIMITS } from "../transport/limits.ts";
import type { ContentStore, Descriptor, Manifest, Platform } from "../types.ts";

/** The manifest `descriptor` names in `store`, bounded and checked against its digest. */
async function manifestOf(store: ContentStore, descriptor: Descriptor): Promise<Manifest> {
  const what = `manifest "${descriptor.digest}"`;
  const payload = await readVerified(store, descriptor.digest, what, LIMITS.manifest);
  return parseManifest(payload, descriptor.mediaType);
}

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
  return async () => {
    let manifest = await manifestOf(store, descriptor);
    if (isIndexMediaType(manifest.mediaType)) {
      manifest = await manifestOf(store, selectEntries(manifest, platform, shown)[0]!);
      if (isIndexMediaType(manifest.mediaType)) {
        throw new RegistryError(
          "UNSUPPORTED",
          `Cannot copy "${shown}": its index names an index, not an image manifest`,
        );
      }
    }
    return await manifestSource(manifest, {
      config: ({ digest }) =>
        readVerified(store, digest, `configuration "${digest}"`, LIMITS.config),
      open: async ({ digest, size }, signal) => {
        const blob = await store.open(digest, { maxBytes: size, verify: false });
        return verifyingSized(blob, digest, size, `blob "${digest}" of "${shown}"`, signal);
      },
    }, shown);
  };
}
