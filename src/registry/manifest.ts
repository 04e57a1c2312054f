/**
 * Manifest media types and parsing: Docker schema 2 manifests and lists, OCI manifests and
 * indexes; schema 1 is refused with dockerd's deprecation error.
 *
 * @module
 */
import { isDigest } from "./_digest.ts";
import { RegistryError, schema1Deprecated } from "./errors.ts";
import { LIMITS } from "./transport/limits.ts";
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
 * import { isIndexMediaType } from "./manifest.ts";
 * console.log(isIndexMediaType("application/vnd.oci.image.index.v1+json")); // true
 * ```
 */
export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

function malformed(message: string, ref: string | null, cause?: unknown): RegistryError {
  return new RegistryError("MALFORMED", message, { url: ref ?? undefined, cause });
}

function descriptorOf(value: unknown, where: string, ref: string | null): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    d === null || typeof d !== "object" || !isDigest(d.digest) ||
    !Number.isSafeInteger(d.size) || d.size! < 0
  ) {
    throw malformed(`Cannot parse manifest: ${where} is not a descriptor`, ref);
  }
  return { ...d, mediaType: typeof d.mediaType === "string" ? d.mediaType : "" } as Descriptor;
}

/**
 * Parses a manifest payload. The media type is the `Content-Type` it came with, or the
 * payload's own `mediaType`. Schema 1 throws a `RegistryError` with code `SCHEMA1_DEPRECATED`;
 * what does not parse, or holds a descriptor without a valid digest and size, `MALFORMED`.
 *
 * @param payload The exact bytes.
 * @param contentType The media type it was served with (empty: use the payload's).
 * @param ref The reference, for the schema 1 error message.
 * @returns The manifest.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
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
    throw malformed("Cannot parse manifest: not JSON", ref, cause);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw malformed("Cannot parse manifest: not a JSON object", ref);
  }
  const declared = typeof json.mediaType === "string" ? json.mediaType : "";
  let mediaType = contentType.split(";")[0]!.trim();
  if (mediaType === "" || mediaType === "application/json" || mediaType === "text/plain") {
    mediaType = declared;
  }
  if (SCHEMA1_TYPES.has(mediaType) || json.schemaVersion === 1) throw schema1Deprecated(ref);
  if (mediaType === "") {
    // OCI allows omitting mediaType: tell an index from a manifest by its fields.
    mediaType = Array.isArray(json.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST;
  }
  let refs: Descriptor[];
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(json.manifests)) {
      throw malformed("Cannot parse index: no manifests", ref);
    }
    // Each entry is a manifest to fetch or copy: a crafted index must not mean unbounded work.
    if (json.manifests.length > LIMITS.indexEntries) {
      throw new RegistryError(
        "TOO_LARGE",
        `Cannot parse index: ${json.manifests.length} manifests, more than ` +
          `LIMITS.indexEntries (${LIMITS.indexEntries})`,
        { url: ref ?? undefined },
      );
    }
    refs = json.manifests.map((m, i) => descriptorOf(m, `manifests[${i}]`, ref));
  } else if (IMAGE_TYPES.has(mediaType)) {
    const layers = Array.isArray(json.layers) ? json.layers : [];
    refs = [
      descriptorOf(json.config, "config", ref),
      ...layers.map((l, i) => descriptorOf(l, `layers[${i}]`, ref)),
    ];
  } else {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot parse manifest: unsupported media type "${mediaType}"`,
      { url: ref ?? undefined },
    );
  }
  return { mediaType, payload, json, references: () => refs.map((d) => ({ ...d })) };
}
