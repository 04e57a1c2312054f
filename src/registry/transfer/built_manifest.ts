// The manifest a destination writes for an image whose source has none (dockerd, a docker
// archive): an OCI image manifest of the configuration's exact bytes and the layers as they
// were taken, uncompressed or gzipped.
import { digestOf } from "../_digest.ts";
import { RegistryError } from "../errors.ts";
import type { Descriptor } from "../types.ts";
import type { ImageSource, SourceLayer } from "./source.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

/** A layer as taken: its blob's digest and size, and whether the blob is gzipped. */
export interface TakenLayer {
  digest: string;
  size: number;
  gzip: boolean;
}

/**
 * A source's layer as a destination takes it: its blob when the source holds it compressed,
 * else its uncompressed bytes, named by its DiffID.
 *
 * @param layer The source's layer.
 * @returns Its blob's digest, size, and whether it is gzipped.
 */
export function takenLayer(layer: SourceLayer): TakenLayer {
  const gzip = layer.blob !== undefined;
  return { digest: layer.blob?.digest ?? layer.diffID, size: layer.size, gzip };
}

/**
 * Each layer's blob and claimed DiffID, base first: the source's manifest's, or the one taken
 * for its DiffID.
 *
 * @param image The source's image.
 * @param diffIDs Its configuration's DiffIDs.
 * @param taken DiffID → the layer taken for it (every one, as {@linkcode manifestFor} checks).
 * @returns The layers.
 */
export function takenBlobs(
  image: ImageSource,
  diffIDs: readonly string[],
  taken: ReadonlyMap<string, TakenLayer>,
): { digest: string; diffID: string }[] {
  return diffIDs.map((diffID, i) => ({
    digest: image.manifest?.layers[i]?.digest ?? taken.get(diffID)!.digest,
    diffID,
  }));
}

/**
 * The OCI image manifest of `config` and `layers`.
 *
 * @param config The configuration's exact bytes.
 * @param layers The layers, base first.
 * @returns Its media type, bytes and descriptor; the configuration's descriptor.
 */
export async function builtManifest(
  config: Uint8Array,
  layers: readonly TakenLayer[],
): Promise<{ descriptor: Descriptor; payload: Uint8Array; config: Descriptor }> {
  const configBlob = { mediaType: OCI_CONFIG, digest: await digestOf(config), size: config.length };
  const payload = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configBlob,
    layers: layers.map(({ digest, size, gzip }) => ({
      mediaType: gzip ? `${OCI_LAYER}+gzip` : OCI_LAYER,
      digest,
      size,
    })),
  }));
  return {
    descriptor: { mediaType: OCI_MANIFEST, digest: await digestOf(payload), size: payload.length },
    payload,
    config: configBlob,
  };
}

/**
 * The manifest a destination writes for `image` once every layer was taken: the source's
 * exact bytes, or {@linkcode builtManifest}'s of the layers as taken.
 *
 * @param image The source's image.
 * @param diffIDs Its configuration's DiffIDs.
 * @param taken DiffID → the layer taken for it; a DiffID none was taken for is `MALFORMED`.
 * @returns The manifest's descriptor and bytes.
 */
export async function manifestFor(
  image: ImageSource,
  diffIDs: readonly string[],
  taken: ReadonlyMap<string, TakenLayer>,
): Promise<{ descriptor: Descriptor; payload: Uint8Array }> {
  const missing = diffIDs.find((diffID) => !taken.has(diffID));
  if (missing !== undefined) {
    throw new RegistryError(
      "MALFORMED",
      `Cannot copy ${image.shown}: the source gave no layer ${missing}`,
    );
  }
  if (image.manifest === undefined) {
    return await builtManifest(image.config, diffIDs.map((diffID) => taken.get(diffID)!));
  }
  const { mediaType, payload } = image.manifest;
  return {
    descriptor: { mediaType, digest: await digestOf(payload), size: payload.length },
    payload,
  };
}
