// What a layer's bytes proved of the DiffID its image configuration claims, and the record
// dockerd writes for a layer a repository has: the one rule pull, copy and the archive ends
// share for what may become metadata.
import type { V2MetadataService } from "../../v2_metadata_service.ts";
import { isDigest } from "../_digest.ts";

/** The verdict on a claimed DiffID: `recorded` only when the bytes gave exactly it. */
export type Proven =
  | { status: "recorded" | "invalid" | "unverifiable" }
  | { status: "mismatch"; actualDiffID: string };

/**
 * Whether the DiffID `actual` the bytes gave proves the `claimed` one: `invalid` when the
 * claim is no digest (it would become a metadata key), `unverifiable` when the bytes gave
 * none (a compression this runtime cannot open, corrupt gzip), `mismatch` when they gave
 * another, else `recorded` (to be recorded by the caller). A configuration claiming another
 * image's DiffID would otherwise make every later push of that image mount this layer.
 *
 * @param claimed The configuration's `rootfs.diff_ids` entry.
 * @param actual The DiffID computed from the layer's bytes, `null` when it could not be.
 * @returns The verdict, as a `PulledLayer` status.
 */
export function proven(claimed: string, actual: string | null): Proven {
  if (!isDigest(claimed)) return { status: "invalid" };
  if (actual === null) return { status: "unverifiable" };
  if (actual !== claimed) return { status: "mismatch", actualDiffID: actual };
  return { status: "recorded" };
}

/**
 * Records that `repository` (its full name) has the layer `digest` of `diffID`, under `hmacKey`,
 * as dockerd records a layer it pulled from, found in, mounted into or pushed to a repository.
 *
 * @param service The metadata service.
 * @param hmacKey The key of the credentials used with that repository's registry.
 * @param diffID The layer's DiffID.
 * @param digest The blob's digest in that repository.
 * @param repository The repository's full name.
 */
export async function recordLayer(
  service: V2MetadataService,
  hmacKey: Uint8Array | null,
  diffID: string,
  digest: string,
  repository: string,
): Promise<void> {
  await service.tagAndAdd(diffID, hmacKey, { digest, sourceRepository: repository, hmac: "" });
}
