/**
 * `pull`: a manifest, its configuration and its layers from a registry into a content store,
 * recording each layer's source in the distribution metadata as dockerd does.
 *
 * @module
 */
import { V2MetadataService } from "../v2_metadata_service.ts";
import { digestOf } from "./_digest.ts";
import { diffIDsOf, isForeign, layersWithDiffIDs } from "./_image.ts";
import { ErrManifestUnknown, RegistryError } from "./errors.ts";
import { isIndexMediaType } from "./manifest.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import { getRepositories } from "./repositories.ts";
import type {
  ContentStore,
  Descriptor,
  Manifest,
  Platform,
  RegistryConfig,
  Repository,
} from "./types.ts";

/** The platform pulled from an index when none is configured. */
export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

/** Codes that let dockerd fall back to the next endpoint (shouldV2Fallback). */
const FALLBACK_CODES = new Set(["UNAUTHORIZED", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "UNREACHABLE"]);

function descriptorOf(manifest: Manifest, digest: string): Descriptor {
  return { mediaType: manifest.mediaType, digest, size: manifest.payload.length };
}

function pickPlatform(index: Manifest, platform: Platform, ref: string): Descriptor {
  const entries = index.references();
  const found = entries.find((d) =>
    d.platform?.os === platform.os && d.platform.architecture === platform.architecture &&
    (platform.variant === undefined || d.platform.variant === platform.variant)
  );
  if (found === undefined) {
    const wanted = [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
    throw new ErrManifestUnknown(
      `Cannot pull "${ref}": no matching manifest for ${wanted} in the manifest list entries`,
    );
  }
  return found;
}

async function fetchBlob(
  repo: Repository,
  store: ContentStore,
  descriptor: Descriptor,
): Promise<Uint8Array> {
  if (await store.has(descriptor.digest)) return store.get(descriptor.digest);
  const data = await repo.blobs().get(descriptor.digest);
  await store.put(descriptor.digest, data);
  return data;
}

async function pullFrom(
  repo: Repository,
  ref: Reference,
  store: ContentStore,
  config: RegistryConfig,
): Promise<Descriptor> {
  const shown = formatReference(ref);
  const reference = ref.digest ?? ref.tag!;
  let manifest = await repo.manifests().get(reference);
  let digest = ref.digest ?? await digestOf(manifest.payload);
  if (isIndexMediaType(manifest.mediaType)) {
    await store.put(digest, manifest.payload);
    const chosen = pickPlatform(manifest, config.platform ?? DEFAULT_PLATFORM, shown);
    manifest = await repo.manifests().get(chosen.digest);
    digest = chosen.digest;
  }
  const [configDescriptor, ...layers] = manifest.references();
  const configBytes = await fetchBlob(repo, store, configDescriptor!);
  const pairs = layersWithDiffIDs(layers, diffIDsOf(configBytes, `"${shown}"`), `"${shown}"`);
  const service = config.metadataService ?? new V2MetadataService(null);
  for (const { layer, diffID } of pairs) {
    if (isForeign(layer) && !(await store.has(layer.digest))) {
      config.onProgress?.({ action: "skip", digest: layer.digest, current: 0, total: layer.size });
      continue;
    }
    const present = await store.has(layer.digest);
    // dockerd: a layer it already has (known DiffID for this blob) is "Already exists" and
    // records nothing; a downloaded layer is recorded once registered.
    if (present && await knownDiffID(service, layer.digest) === diffID) {
      config.onProgress?.({
        action: "exists",
        digest: layer.digest,
        current: layer.size,
        total: layer.size,
      });
      continue;
    }
    await fetchBlob(repo, store, layer);
    await service.tagAndAdd(diffID, config.hmacKey ?? null, {
      digest: layer.digest,
      sourceRepository: ref.name,
      hmac: "",
    });
  }
  await store.put(digest, manifest.payload);
  const descriptor = descriptorOf(manifest, digest);
  await store.tag(ref.tag ?? shown, descriptor);
  return descriptor;
}

async function knownDiffID(service: V2MetadataService, digest: string): Promise<string | null> {
  try {
    return await service.getDiffID(digest);
  } catch {
    return null;
  }
}

/**
 * Pulls an image into a content store, as `docker pull` does: the manifest (from an index,
 * the configured platform's), the configuration and every layer (digests verified while
 * streaming; blobs already in the store are not fetched again), then tags it in the store
 * under the reference's tag. For each layer it calls
 * `metadataService.tagAndAdd(diffID, hmacKey, {digest, sourceRepository, hmac: ""})` with the
 * DiffID from the configuration's `rootfs.diff_ids` and the repository's full name. For Docker
 * Hub references the mirrors are tried first.
 *
 * @param ref A Docker reference, e.g. `127.0.0.1:5000/team/app:1.0` or `busybox`.
 * @param store Where the blobs go, e.g. {@linkcode ociLayoutStore}.
 * @param config Credentials, metadata service, HMAC key, mirrors, transport, progress.
 * @returns The descriptor of the image manifest stored.
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore, V2MetadataService } from "@distribution/metadata";
 * import { ociLayoutStore, pull } from "@distribution/metadata/registry";
 *
 * const metadataService = new V2MetadataService(await FSMetadataStore.open("/tmp/dist"));
 * const store = await ociLayoutStore("/tmp/busybox");
 * const manifest = await pull("busybox", store, { metadataService });
 * console.log(manifest.digest);
 * ```
 */
export async function pull(
  ref: string,
  store: ContentStore,
  config: RegistryConfig = {},
): Promise<Descriptor> {
  const parsed = parseReference(ref);
  const repositories = await getRepositories(ref, config);
  for (const [i, repo] of repositories.entries()) {
    try {
      return await pullFrom(repo, parsed, store, config);
    } catch (error) {
      const more = i < repositories.length - 1;
      const fallback = repo.mirror ||
        (error instanceof RegistryError && FALLBACK_CODES.has(error.code));
      if (!more || !fallback) throw error;
    }
  }
  throw new Error("unreachable: getRepositories returns at least one repository");
}
