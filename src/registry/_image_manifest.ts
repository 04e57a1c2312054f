// From an index to image manifests: the entries for the platforms asked for, the image manifest
// an entry names, and the one image a reference names for one platform (link and the dockerd,
// archive and layout ends take one image, as `docker pull` does).
import { isIndexMediaType } from "./manifest.ts";
import { RegistryError } from "./errors.ts";
import type { Descriptor, Manifest, Platform } from "./types.ts";

/** Where manifests are read, by tag or digest: a repository's `manifests()`, a layout. */
export interface ManifestReader {
  /** The manifest, bounded and checked. */
  get(reference: string): Promise<Manifest>;
}

/**
 * The image manifest `reference` names: itself, or its index's entry for `platform`.
 *
 * @param manifests Where it is read.
 * @param reference A tag or digest.
 * @param platform The platform to take from an index.
 * @param doing What for, for messages.
 * @param shown The image, for messages.
 * @returns The manifest.
 */
export async function imageManifest(
  manifests: ManifestReader,
  reference: string,
  platform: Platform,
  doing: "pull" | "copy" | "link",
  shown: string,
): Promise<Manifest> {
  const manifest = await manifests.get(reference);
  if (!isIndexMediaType(manifest.mediaType)) return manifest;
  const [entry] = selectEntries(manifest, platform, shown);
  return await imageOfIndex(manifests, entry!, doing, shown);
}

function pickPlatform(index: Manifest, platform: Platform, ref: string): Descriptor {
  const entries = index.references();
  const found = entries.find((d) =>
    d.platform?.os === platform.os && d.platform.architecture === platform.architecture &&
    (platform.variant === undefined || d.platform.variant === platform.variant)
  );
  if (found === undefined) {
    const wanted = [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
    throw new RegistryError(
      "MANIFEST_UNKNOWN",
      `Cannot pull "${ref}": no matching manifest for ${wanted} in the manifest list entries`,
      { url: ref },
    );
  }
  return found;
}

/**
 * The image manifest an index entry names; another index is `UNSUPPORTED`, as dockerd pulls
 * only image manifests from a list (this also ends an index naming itself).
 *
 * @param manifests Where the index was read.
 * @param entry The entry.
 * @param doing `"pull"` or `"copy"`, for the message.
 * @param shown The reference, for messages.
 * @returns The manifest.
 */
export async function imageOfIndex(
  manifests: ManifestReader,
  entry: Descriptor,
  doing: "pull" | "copy" | "link",
  shown: string,
): Promise<Manifest> {
  const child = await manifests.get(entry.digest);
  if (isIndexMediaType(child.mediaType)) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot ${doing} "${shown}": index entry "${entry.digest}" is an index, not an image manifest`,
      { url: shown },
    );
  }
  return child;
}

/**
 * The index entries to pull (or copy) for `selection`: one, each of a list, or every one.
 *
 * @param index The image index.
 * @param selection One platform, a list, or `"all"`.
 * @param shown The reference, for messages.
 * @returns The entries, each digest once; `MANIFEST_UNKNOWN` when a platform has none.
 */
export function selectEntries(
  index: Manifest,
  selection: Platform | Platform[] | "all",
  shown: string,
): Descriptor[] {
  if (selection === "all") return index.references();
  const wanted = Array.isArray(selection) ? selection : [selection];
  const entries = wanted.map((platform) => pickPlatform(index, platform, shown));
  return entries.filter((entry, i) => entries.findIndex((e) => e.digest === entry.digest) === i);
}
