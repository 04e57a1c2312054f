// Reading an image configuration's rootfs.diff_ids and matching them to manifest layers.
import { LIMITS, parseJson } from "./transport/limits.ts";
import { RegistryError } from "./errors.ts";
import type { Descriptor, Manifest, Repository } from "./types.ts";
import type { V2MetadataService } from "../v2_metadata_service.ts";

/** The layer DiffIDs of an image configuration (`rootfs.diff_ids`), as strings, unchecked. */
export function diffIDsOf(config: Uint8Array, what: string): string[] {
  const json = parseJson(config, `the image configuration of ${what}`) as {
    rootfs?: { diff_ids?: unknown };
  } | null;
  const ids = json?.rootfs?.diff_ids ?? [];
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")) {
    throw new RegistryError(
      "MALFORMED",
      `Cannot read the image configuration of ${what}: bad rootfs.diff_ids`,
    );
  }
  return ids as string[];
}

/** The layers with their DiffIDs; dockerd refuses a count mismatch. */
export function layersWithDiffIDs(
  layers: Descriptor[],
  diffIDs: string[],
  what: string,
): { layer: Descriptor; diffID: string }[] {
  if (layers.length !== diffIDs.length) {
    throw new RegistryError(
      "MANIFEST_INVALID",
      `Cannot use ${what}: layers from manifest don't match image configuration ` +
        `(${layers.length} layers, ${diffIDs.length} diff_ids)`,
    );
  }
  return layers.map((layer, i) => ({ layer, diffID: diffIDs[i]! }));
}

/** An image manifest's parts: its configuration, and each layer with the DiffID it is given. */
export interface ImageParts {
  config: Descriptor;
  /** The configuration's bytes. */
  configBytes: Uint8Array;
  /** The layers in manifest order, each with its `rootfs.diff_ids` entry. */
  layers: { layer: Descriptor; diffID: string }[];
}

/**
 * The configuration of an image manifest, read by `readConfig`, and its layers paired with the
 * DiffIDs it gives them (a count mismatch refused, as dockerd refuses it).
 *
 * @param manifest An image manifest.
 * @param readConfig Reads the configuration's bytes (bounded, verified) from the source.
 * @param shown The reference, for messages.
 * @returns The parts.
 */
export async function imageParts(
  manifest: Manifest,
  readConfig: (config: Descriptor) => Promise<Uint8Array>,
  shown: string,
): Promise<ImageParts> {
  const [config, ...layers] = manifest.references();
  const configBytes = await readConfig(config!);
  const what = `"${shown}"`;
  return {
    config: config!,
    configBytes,
    layers: layersWithDiffIDs(layers, diffIDsOf(configBytes, what), what),
  };
}

/**
 * Reads an image configuration from a registry repository, at most `LIMITS.config` bytes,
 * digest checked.
 *
 * @param repo The repository.
 * @returns The reader, for {@linkcode imageParts}.
 */
export function configFrom(repo: Repository): (config: Descriptor) => Promise<Uint8Array> {
  return (config) => repo.blobs().get(config.digest, { maxBytes: LIMITS.config });
}

/** Whether a layer is foreign (non-distributable: fetched from its URLs, never pushed). */
export function isForeign(layer: Descriptor): boolean {
  return (layer.urls?.length ?? 0) > 0;
}

/**
 * The DiffID the metadata knows for `digest`, or `null` (none, or a store that cannot tell).
 *
 * @param service The metadata service.
 * @param digest A layer's digest.
 * @returns Its DiffID, or `null`.
 */
export async function knownDiffID(
  service: V2MetadataService,
  digest: string,
): Promise<string | null> {
  try {
    return await service.getDiffID(digest);
  } catch {
    return null;
  }
}
