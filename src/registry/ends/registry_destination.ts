/**
 * A registry repository as the destination of a transfer: what push, `copyFromDockerd`,
 * `copyFromArchive` and copy share of writing blobs to it. Cross-repository mounts tried in
 * turn (stale entries forgotten as dockerd's push forgets them), then an upload under an
 * upload claim when the metadata store offers them, each attempt reading the source again.
 * Which blobs to look for and where to mount from is the caller's rule: push follows dockerd's
 * lookup, copy mounts from its source repository first.
 *
 * @module
 */
import { type V2Metadata, V2MetadataService } from "../../v2_metadata_service.ts";
import type { UploadClaims } from "../../upload_claims.ts";
import { takeFrom, uploadOnce, UploadRate } from "../_claim.ts";
import { isRegistryError } from "../errors.ts";
import { forgetsFailedMount, hasAuthInfo, mountFailureEnds } from "../push_candidates.ts";
import { parseReference, type Reference } from "../reference.ts";
import { endpointsFor, openRepository } from "../repositories.ts";
import { told } from "../transfer/told.ts";
import type { BlobService, BlobSource, BlobWriter, RegistryConfig, Repository } from "../types.ts";

/** The repository written to, the metadata, and the credentials' part in both. */
export interface RegistryDestination {
  repo: Repository;
  target: Reference;
  service: V2MetadataService;
  /** The key of the destination's credentials, which its metadata entries are tagged with. */
  hmacKey: Uint8Array | null;
  /** Whether credentials are given (dockerd's hasAuthInfo). */
  hasAuthInfo: boolean;
  config: RegistryConfig;
  /** The metadata store's upload claims, when it offers them. */
  claims: UploadClaims | undefined;
  /** The upload rate measured so far, which bounds a wait for another's claim. */
  rate: UploadRate;
}

/**
 * Opens `target` for writing with `config` (its credentials already resolved): the repository
 * with pull and push scopes on the first endpoint, the metadata service, the upload claims.
 *
 * @param target The repository.
 * @param config The destination's credentials, HMAC key, metadata service, transport.
 * @returns The destination.
 */
export async function openRegistryDestination(
  target: Reference,
  config: RegistryConfig,
): Promise<RegistryDestination> {
  const endpoint = endpointsFor(target, config, true)[0]!;
  return {
    repo: await openRepository(target, endpoint, config, ["pull", "push"]),
    target,
    service: config.metadataService ?? new V2MetadataService(null),
    hmacKey: config.hmacKey ?? null,
    hasAuthInfo: hasAuthInfo(config.auth),
    config,
    claims: config.metadataService?.store?.claims,
    rate: new UploadRate(),
  };
}

/** A repository of the destination's registry to mount a blob from. */
export interface MountSource {
  /** The repository's full name. */
  repository: string;
  /** The digest to mount. */
  digest: string;
  /** The metadata entry that named it, forgotten when a mount shows it stale (none: copy's source). */
  entry: V2Metadata | null;
}

/**
 * What the mounts came to: the source a blob was mounted from, or the upload session the last
 * refused mount left open (the registry starts an upload instead), which the upload goes on in.
 */
export type Mounted = { mounted: MountSource } | { mounted: null; session: BlobWriter | null };

/**
 * Tries to mount from each source in turn. A refused mount forgets its entry when
 * {@linkcode forgetsFailedMount} says so (a failure to forget is ignored, as dockerd ignores
 * it); a failure that ends the blob's transfer ({@linkcode mountFailureEnds}) is thrown, the
 * session left open cancelled. Of the sessions refused mounts open, only the last is kept.
 *
 * @param dest The destination.
 * @param sources Where to mount from, best first.
 * @returns The source mounted from, or the session left open.
 */
export async function mountFrom(
  dest: RegistryDestination,
  sources: readonly MountSource[],
): Promise<Mounted> {
  const blobs = dest.repo.blobs();
  let session: BlobWriter | null = null;
  const drop = async () => {
    await session?.cancel().catch(() => {}); // dockerd ignores a failure to cancel
    session = null;
  };
  for (const source of sources) {
    const { path } = parseReference(source.repository, { defaultTag: false });
    let created: Awaited<ReturnType<BlobService["create"]>> | null = null;
    let unauthorized = false;
    try {
      created = await blobs.create({ mountFrom: { repository: path, digest: source.digest } });
    } catch (error) {
      if (mountFailureEnds(error)) {
        await drop();
        throw error;
      }
      unauthorized = isRegistryError(error, "UNAUTHORIZED");
    }
    if (created?.kind === "mounted") {
      await drop();
      return { mounted: source };
    }
    const { entry } = source;
    if (
      entry !== null &&
      await forgetsFailedMount(entry, dest.hmacKey, unauthorized, dest.hasAuthInfo)
    ) {
      await dest.service.remove(entry).catch(() => {});
    }
    if (created?.kind === "upload") {
      await drop();
      session = created.writer;
    }
  }
  return { mounted: null, session };
}

/** How a blob came to the destination: uploaded, or taken from another builder's upload. */
export type Uploaded = { transfer: "uploaded" } | { transfer: "exists" | "mounted"; from: string };

/**
 * Uploads `blob` (in `session` when a refused mount left one open), under an upload claim when
 * `claimed` and the store offers them: a builder that finds another's claim waits for it, then
 * takes the blob from where that upload went (found or mounted), uploading it itself only when
 * it is not there. `onProgress` hears the bytes sent, each retry, and a blob taken.
 *
 * @param dest The destination.
 * @param blob The digest, the size, and the bytes, read from the start at each attempt.
 * @param session The session to go on in, or `null` for a new one.
 * @param stop Ends the upload when another blob failed.
 * @param claimed Whether the upload is claimed (layers are; a configuration is not).
 * @param done What the caller makes of the blob now there (e.g. records it), before the claim
 * is marked done.
 * @returns What `done` gave, and whether another builder's claim was waited for.
 */
export async function uploadClaimed<T>(
  dest: RegistryDestination,
  blob: BlobSource,
  session: BlobWriter | null,
  stop: AbortSignal,
  claimed: boolean,
  done: (how: Uploaded) => Promise<T>,
): Promise<{ result: T; waited: boolean }> {
  const blobs = dest.repo.blobs();
  const { digest, size } = blob;
  const { onProgress } = dest.config;
  return await uploadOnce<T>({
    claims: claimed ? dest.claims : undefined,
    target: dest.target,
    config: dest.config,
    stop,
    digest,
    size,
    rate: dest.rate,
    session,
    adopt: async (repository) => {
      const taken = await takeFrom(blobs, dest.target, digest, repository);
      if (taken === null) return null;
      if (taken.transfer === "mounted") told(onProgress, "mount", blob, taken.from);
      else told(onProgress, "exists", blob);
      return await done(taken);
    },
    upload: async () => {
      await blobs.upload(blob, {
        session,
        chunkSize: dest.config.chunkSize,
        onProgress: (current) => onProgress?.({ action: "push", digest, current, total: size }),
        onRetry: (attempt, error) =>
          onProgress?.({ action: "retry", digest, current: 0, total: size, attempt, error }),
      });
      return await done({ transfer: "uploaded" });
    },
  });
}
