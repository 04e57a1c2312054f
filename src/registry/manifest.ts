/**
 * Manifest media types and parsing: Docker schema 2 manifests and lists, OCI manifests and
 * indexes; schema 1 is refused with dockerd's deprecation error.
 *
 * @module
 */
import { ErrSchema1Deprecated, ErrUnsupported } from "./errors.ts";
import type { Descriptor, Manifest } from "./types.ts";

/** Docker image manifest, schema 2. */
export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list. */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST =
  "application/vnd.docker.distribution.manifest.list.v2+json";
/** OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** Docker image configuration. */
export const MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** OCI image configuration. */
export const MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker gzip layer. */
export const MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** OCI gzip layer. */
export const MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

const SCHEMA1_TYPES = new Set([
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);
const INDEX_TYPES = new Set([MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX]);
const IMAGE_TYPES = new Set([MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_MANIFEST]);

/** The `Accept` header of manifest requests: every type understood, schema 1 included to detect it. */
export const MANIFEST_ACCEPT: string = [
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST,
  ...SCHEMA1_TYPES,
].join(", ");

/**
 * Whether a media type is an image index (OCI index or Docker manifest list).
 *
 * @param mediaType The media type.
 * @returns `true` for an index.
 *
 * @example
 * ```ts
 * import { isIndexMediaType } from "@distribution/metadata/registry";
 * console.log(isIndexMediaType("application/vnd.oci.image.index.v1+json")); // true
 * ```
 */
export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

function descriptorOf(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    d === null || typeof d !== "object" || typeof d.digest !== "string" ||
    typeof d.size !== "number"
  ) {
    throw new ErrUnsupported(`Cannot parse manifest: ${where} is not a descriptor`);
  }
  return { ...d, mediaType: typeof d.mediaType === "string" ? d.mediaType : "" } as Descriptor;
}

/**
 * Parses a manifest payload. The media type is the `Content-Type` it came with, or the
 * payload's own `mediaType`; schema 1 throws {@linkcode ErrSchema1Deprecated}.
 *
 * @param payload The exact bytes.
 * @param contentType The media type it was served with (empty: use the payload's).
 * @param ref The reference, for the schema 1 error message.
 * @returns The manifest.
 *
 * @example
 * ```ts
 * import { parseManifest } from "@distribution/metadata/registry";
 *
 * const payload = new TextEncoder().encode(JSON.stringify({
 *   schemaVersion: 2,
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   config: { mediaType: "application/vnd.oci.image.config.v1+json", size: 2, digest: "sha256:" + "0".repeat(64) },
 *   layers: [],
 * }));
 * console.log(parseManifest(payload).references().length); // 1
 * ```
 */
export function parseManifest(
  payload: Uint8Array,
  contentType = "",
  ref: string | null = null,
): Manifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(payload));
  } catch (cause) {
    throw new ErrUnsupported("Cannot parse manifest: not JSON", { cause });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ErrUnsupported("Cannot parse manifest: not a JSON object");
  }
  const declared = typeof json.mediaType === "string" ? json.mediaType : "";
  let mediaType = contentType.split(";")[0]!.trim();
  if (mediaType === "" || mediaType === "application/json" || mediaType === "text/plain") {
    mediaType = declared;
  }
  if (SCHEMA1_TYPES.has(mediaType) || json.schemaVersion === 1) throw new ErrSchema1Deprecated(ref);
  if (mediaType === "") {
    // OCI allows omitting mediaType: tell an index from a manifest by its fields.
    mediaType = Array.isArray(json.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST;
  }
  let refs: Descriptor[];
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(json.manifests)) {
      throw new ErrUnsupported("Cannot parse index: no manifests");
    }
    refs = json.manifests.map((m, i) => descriptorOf(m, `manifests[${i}]`));
  } else if (IMAGE_TYPES.has(mediaType)) {
    const layers = Array.isArray(json.layers) ? json.layers : [];
    refs = [
      descriptorOf(json.config, "config"),
      ...layers.map((l, i) => descriptorOf(l, `layers[${i}]`)),
    ];
  } else {
    throw new ErrUnsupported(`Cannot parse manifest: unsupported media type "${mediaType}"`);
  }
  return { mediaType, payload, json, references: () => refs.map((d) => ({ ...d })) };
}
