/**
 * The registry side of the distribution metadata (subpath `./registry`): `pull` and `push`
 * that read and write the distribution metadata exactly where dockerd does (push mounts
 * layers from repositories the metadata knows, preferring entries tagged with the current
 * credentials), `tags`, `getRepositories`, an OCI image layout content store, and Docker
 * references. Runs on `fetch` (`node:http` on Node), Web streams and `crypto.subtle` (plus the
 * runtime's incremental SHA-256 when it has one), in any runtime.
 *
 * Blobs stream end to end (registry → temp file → rename once verified, and file → one
 * streamed `PUT`), so memory stays bounded whatever the layer size; layers move 3 (pull) or
 * 5 (push) at once; failed requests are retried with backoff and cut downloads resumed
 * ({@linkcode DEFAULT_RETRY}); `onProgress` hears every blob. See docs/registry.md.
 *
 * Registries are servers nobody here controls: credentials go only to the registry's own
 * origin, every digest is checked, DiffIDs are recorded only when the layer's bytes prove
 * them, answers are bounded ({@linkcode LIMITS}), every call takes `signal` and fails a
 * stalled transfer after `idleTimeout`, and every failure is a {@linkcode RegistryError}
 * with a typed `code`. See docs/security.md.
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
export { pull } from "./pull.ts";
export { push } from "./push.ts";
export { link, type LinkConfig, type LinkResult } from "./link.ts";
export { copyToDockerd, type DockerdCopyConfig } from "./ends/dockerd_load.ts";
export { copyFromDockerd, type DockerdSourceConfig } from "./ends/dockerd_source.ts";
export type { UncompressedPushConfig } from "./push_uncompressed.ts";
export { type ArchiveCopyConfig, copyToArchive } from "./ends/archive_file.ts";
export { type ArchiveSourceConfig, copyFromArchive } from "./ends/archive_source.ts";
export type { ArchiveCopyResult, ArchiveFormat } from "./ends/_image_archive.ts";
export type { TakenLayerResult } from "./transfer/proving.ts";
export { type CopiedLayer, copy, type CopyConfig, type CopyResult, type CopySide } from "./copy.ts";
export { getRepositories, tags } from "./repositories.ts";
export {
  dockerKeychain,
  type DockerKeychainOptions,
  HELPER_TIMEOUT,
  type Keychain,
  type KeychainEntry,
  keychainFromConfig,
  MAX_CONCURRENT_HELPERS,
  type ProgramLimits,
  type ProgramResult,
  type ProgramRunner,
} from "./keychain.ts";
export { OciLayoutStore, ociLayoutStore } from "./oci_layout.ts";
export { hostPlatform, parsePlatform } from "./platform.ts";
export { familiarName, formatReference, parseReference, type Reference } from "./reference.ts";
export {
  isRegistryError,
  RegistryError,
  type RegistryErrorCode,
  type RegistryErrorEntry,
  type RegistryErrorOptions,
} from "./errors.ts";
export { DEFAULT_IDLE_TIMEOUT, LIMITS } from "./transport/limits.ts";
export { DEFAULT_RETRY, type RetryPolicy } from "./transport/retry.ts";
export { DEFAULT_USER_AGENT } from "./transport/user_agent.ts";
export type { TlsOptions } from "./transport/default_transport.ts";
export type {
  BlobCreateOptions,
  BlobCreateResult,
  BlobOpenOptions,
  BlobReadOptions,
  BlobService,
  BlobSource,
  BlobUploadOptions,
  BlobWriter,
  ContentStore,
  Descriptor,
  Manifest,
  ManifestService,
  Platform,
  PulledLayer,
  PullResult,
  PushedLayer,
  PushResult,
  RegistryConfig,
  Repository,
  TagService,
  TransferProgress,
} from "./types.ts";
export type {
  FileInfo,
  FileSystem,
  ReadFileOptions,
  ReadStreamResult,
  WriteStreamOptions,
} from "../file_system.ts";
export type { AuthConfig } from "../hmac.ts";
export type { V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
