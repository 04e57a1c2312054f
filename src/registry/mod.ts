/**
 * The registry side of the distribution metadata (subpath `./registry`): Docker references,
 * an OCI Distribution API client (Basic and Bearer token auth, manifests, verified blob
 * downloads, monolithic and chunked uploads, cross-repository mounts), an OCI image layout
 * content store, and `pull`/`push` that read and write the distribution metadata exactly
 * where dockerd does — push mounts layers from repositories the metadata knows, preferring
 * entries tagged with the current credentials. Runs on `fetch` and `crypto.subtle` (plus an
 * incremental SHA-256 that checks blobs while they stream), in any runtime.
 *
 * @example Push an image from an OCI layout, recording where its layers went
 * ```ts ignore
 * import { computeV2MetadataHMACKey, FSMetadataStore, V2MetadataService } from "@distribution/metadata";
 * import { ociLayoutStore, pull, push } from "@distribution/metadata/registry";
 *
 * const auth = { username: "ci", password: "secret" };
 * const config = {
 *   auth,
 *   hmacKey: await computeV2MetadataHMACKey(auth),
 *   metadataService: new V2MetadataService(await FSMetadataStore.open("/tmp/distribution")),
 *   plainHttp: true,
 * };
 * await push("127.0.0.1:5000/team/app:1.0", await ociLayoutStore("/tmp/app"), config);
 * await pull("127.0.0.1:5000/team/app:1.0", await ociLayoutStore("/tmp/copy"), config);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export * from "./reference.ts";
export * from "./manifest.ts";
export * from "./client.ts";
export * from "./repository.ts";
export * from "./repositories.ts";
export * from "./oci_layout.ts";
export * from "./pull.ts";
export * from "./push.ts";
export { MetadataError } from "../errors.ts";
export type { FileInfo, FileSystem } from "../file_system.ts";
export type { AuthConfig } from "../hmac.ts";
export type { V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
