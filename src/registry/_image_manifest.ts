// The image manifest a reference names in a repository: itself, or its index's entry for one
// platform (link and the dockerd end take one image, as `docker pull` does).
import { isIndexMediaType } from "./manifest.ts";
import { imageOfIndex, selectEntries } from "./pull.ts";
import { formatReference, type Reference } from "./reference.ts";
import type { Manifest, Platform, Repository } from "./types.ts";

/**
 * The image manifest `ref` names: itself, or its index's entry for `platform`.
 *
 * @param repo The repository.
 * @param ref The reference, with a tag or digest.
 * @param platform The platform to take from an index.
 * @param doing What for, for messages: `"pull"` or `"link"`.
 * @returns The manifest.
 */
export async function imageManifest(
  repo: Repository,
  ref: Reference,
  platform: Platform,
  doing: "pull" | "link",
): Promise<Manifest> {
  const shown = formatReference(ref);
  const manifest = await repo.manifests().get(ref.digest ?? ref.tag!);
  if (!isIndexMediaType(manifest.mediaType)) return manifest;
  const [entry] = selectEntries(manifest, platform, shown);
  return await imageOfIndex(repo, entry!, doing, shown);
}
