/**
 * The shapes the registry side works with, after Docker's `distribution` package:
 * descriptors, manifests, and a repository with its manifest, blob and tag services.
 *
 * @module
 */
import type { AuthConfig } from "../hmac.ts";
import type { V2MetadataService } from "../v2_metadata_service.ts";
import type { Keychain } from "./keychain.ts";
import type { RetryPolicy } from "./transport/retry.ts";
import type { TlsOptions } from "./transport/default_transport.ts";

/** The platform an image runs on (OCI `platform`). */
export interface Platform {
  /** e.g. `amd64`, `arm64`. */
  architecture: string;
  /** e.g. `linux`. */
  os: string;
  /** e.g. `v8`. */
  variant?: string;
  /** e.g. `10.0.17763.1`. */
  "os.version"?: string;
  /** Required CPU/OS features. */
  "os.features"?: string[];
}

/** Targeted content: a blob or manifest by media type, size and digest (wire format). */
export interface Descriptor {
  /** The content's media type. */
  mediaType: string;
  /** The size in bytes. */
  size: number;
  /** The digest, `sha256:<hex>`. */
  digest: string;
  /** Where a foreign (non-distributable) blob can be fetched instead. */
  urls?: string[];
  /** Arbitrary annotations. */
  annotations?: Record<string, string>;
  /** The platform, for entries of an image index. */
  platform?: Platform;
}

/** A manifest as the registry stores it: its references and exact payload. */
export interface Manifest {
  /** The media type it was served or stored with. */
  mediaType: string;
  /** The exact bytes; the digest is computed over them. */
  payload: Uint8Array;
  /** The parsed JSON. */
  json: Record<string, unknown>;
  /** The blobs and manifests it references: the config first, then the layers (or the index entries). */
  references(): Descriptor[];
}

/** Options of {@linkcode BlobService.create}. */
export interface BlobCreateOptions {
  /** Try a cross-repository mount of this blob from another repository of the same registry. */
  mountFrom?: { repository: string; digest: string };
}

/** An upload session (`/v2/<name>/blobs/uploads/<id>`). */
export interface BlobWriter {
  /** The session's current location. */
  readonly location: string;
  /** The bytes sent so far. */
  readonly size: number;
  /** Sends a chunk (`PATCH` with `Content-Range`). */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Finishes the upload (`PUT ?digest=`), optionally sending the last bytes with it: whole,
   * or streamed as they are read (then `size` is how many, when known).
   */
  commit(
    digest: string,
    last?: Uint8Array | ReadableStream<Uint8Array>,
    size?: number,
  ): Promise<Descriptor>;
  /**
   * Abandons the session (`DELETE`), even after the call's signal aborted (within 5 s);
   * failures are ignored.
   */
  cancel(): Promise<void>;
}

/** What {@linkcode BlobService.create} gives: a mounted blob (201) or an upload session (202). */
export type BlobCreateResult =
  | { kind: "mounted"; descriptor: Descriptor; status: number }
  | { kind: "upload"; writer: BlobWriter; status: number };

/** Options of {@linkcode BlobService.get} and {@linkcode ContentStore.get}. */
export interface BlobReadOptions {
  /** The most bytes accepted (e.g. the descriptor's size); more fail with `TOO_LARGE`. */
  maxBytes?: number;
}

/** Options of {@linkcode BlobService.open} and {@linkcode ContentStore.open}. */
export interface BlobOpenOptions extends BlobReadOptions {
  /**
   * Check the bytes against the digest as they are read (default `true`): the stream errors
   * with `DIGEST_INVALID` at its end, before its last bytes are delivered. `false` gives the
   * bytes unchecked, for a reader that checks them itself (e.g. {@linkcode ContentStore.write}).
   */
  verify?: boolean;
}

/** A blob to upload, that can be read again from its start when an attempt fails. */
export interface BlobSource {
  /** Its digest (the registry checks it). */
  digest: string;
  /** Its size in bytes. */
  size: number;
  /** Its bytes from the start; called once per attempt. */
  open(): Promise<ReadableStream<Uint8Array>>;
}

/** Options of {@linkcode BlobService.upload}. */
export interface BlobUploadOptions {
  /** A session already opened (e.g. by a mount the registry answered with an upload). */
  session?: BlobWriter | null;
  /** Send in `PATCH` chunks of this many bytes (default: one streamed `PUT`). */
  chunkSize?: number | undefined;
  /** Bytes sent so far in the current attempt. */
  onProgress?: ((sent: number) => void) | undefined;
  /** Told before each new attempt. */
  onRetry?: ((attempt: number, error: Error) => void) | undefined;
}

/** Blobs of one repository. */
export interface BlobService {
  /**
   * Describes a blob (`HEAD`): `BLOB_UNKNOWN` when absent, `DIGEST_INVALID` when the registry
   * answers for another digest.
   */
  stat(digest: string): Promise<Descriptor>;
  /**
   * The blob as a stream, checked as it is read: it errors with `DIGEST_INVALID` at the end on
   * a mismatch (before its last bytes are delivered), with `TOO_LARGE` past `maxBytes`. A body
   * cut or stalled midway is resumed with a `Range` request (or read again from its start and
   * skipped to where it was), within the retry policy, as long as each attempt brings new bytes.
   */
  open(digest: string, options?: BlobOpenOptions): Promise<ReadableStream<Uint8Array>>;
  /** The whole blob, checked as {@linkcode BlobService.open} checks it. */
  get(digest: string, options?: BlobReadOptions): Promise<Uint8Array>;
  /** Uploads a whole blob: monolithic, or in chunks of `chunkSize` bytes. */
  put(data: Uint8Array, options?: { mediaType?: string; chunkSize?: number }): Promise<Descriptor>;
  /**
   * Uploads a blob from a stream: one streamed `PUT`, or `PATCH` chunks of `chunkSize` (each
   * held in memory while it is sent). A failure the policy retries (no answer, a cut, `408`,
   * `429`, `5xx`, an expired session) cancels the session and starts again from
   * `source.open()` in a new one; an error of the source itself is never retried.
   */
  upload(source: BlobSource, options?: BlobUploadOptions): Promise<Descriptor>;
  /**
   * Starts an upload, or mounts a blob from another repository; a mount answered for another
   * digest than the one asked fails with `DIGEST_INVALID`.
   */
  create(options?: BlobCreateOptions): Promise<BlobCreateResult>;
}

/** Manifests of one repository. */
export interface ManifestService {
  /** Whether a manifest exists by digest or tag. */
  exists(reference: string): Promise<boolean>;
  /**
   * Fetches a manifest by digest or tag: at most `LIMITS.manifest` bytes, digest
   * verified, schema 1 refused.
   */
  get(reference: string): Promise<Manifest>;
  /** Stores a manifest under its digest, or under `options.tag`; returns its digest. */
  put(manifest: Manifest, options?: { tag?: string }): Promise<string>;
  /** Deletes a manifest by digest. */
  delete(digest: string): Promise<void>;
}

/** Tags of one repository. */
export interface TagService {
  /** The descriptor a tag points at; `TAG_UNKNOWN` when there is none. */
  get(tag: string): Promise<Descriptor>;
  /**
   * Every tag, following pagination on the registry's origin: each must be a valid tag
   * (`MALFORMED` otherwise), a page seen twice is a `LOOP`, and all pages together are
   * bounded by `LIMITS.tagList` bytes and `.tagPages` pages.
   */
  all(): Promise<string[]>;
}

/** A named collection of manifests and blobs on one registry endpoint. */
export interface Repository {
  /** The full name (`docker.io/library/busybox`), as recorded in the metadata. */
  readonly name: string;
  /** The base URL of the endpoint, e.g. `https://registry-1.docker.io`. */
  readonly endpoint: string;
  /** Whether the endpoint is a mirror. */
  readonly mirror: boolean;
  /** The manifest service. */
  manifests(): ManifestService;
  /** The blob service. */
  blobs(): BlobService;
  /** The tag service. */
  tags(): TagService;
}

/** Progress of one blob. */
export interface TransferProgress {
  /**
   * What happens to the blob: `pull`/`push` bytes moved (`current` of `total`), `mount`ed from
   * another repository, `exists` already (nothing moved), `skip`ped (foreign), or `retry`:
   * an attempt failed and another follows (`attempt` made so far, `error` the failure).
   */
  action: "pull" | "push" | "mount" | "exists" | "skip" | "retry";
  /** The blob's digest. */
  digest: string;
  /** Bytes done. */
  current: number;
  /** Bytes in all. */
  total: number;
  /** For `mount`: the repository it was mounted from. */
  from?: string;
  /** For `retry`: the attempts made so far. */
  attempt?: number;
  /** For `retry`: why the last attempt failed. */
  error?: Error;
}

/** How pull, push, tags and getRepositories reach the registry and record what they did. */
export interface RegistryConfig {
  /** Credentials for the registry (basic or token flow). */
  auth?: AuthConfig;
  /** Resolves the registry's credentials when `auth` is not given, e.g. `dockerKeychain()`. */
  keychain?: Keychain;
  /** Where pull/push record and look up blob sources. */
  metadataService?: V2MetadataService;
  /**
   * The key entries are tagged with. With a `keychain`, by default `computeV2MetadataHMACKey`
   * of the credentials it resolves, as dockerd derives it; otherwise `null` (no key: entries are
   * recorded untagged, as dockerd's pull records them).
   */
  hmacKey?: Uint8Array | null;
  /** Tried first for Docker Hub references, e.g. `https://mirror.gcr.io`. */
  mirrors?: string[];
  /** Use `http://` (registries on 127.0.0.1 without TLS). */
  plainHttp?: boolean;
  /**
   * The `fetch` every request goes through, token requests included (default: `node:http` on
   * Node, the global `fetch` elsewhere; see docs/registry.md, "Transports").
   */
  fetch?: typeof fetch;
  /** Per blob: bytes done / total. */
  onProgress?: (event: TransferProgress) => void;
  /**
   * What pull takes from an image index: one platform (default: this machine's, `hostPlatform()`,
   * as docker and skopeo; tagged as that image), a list, or `"all"` (then every image listed, and
   * the name is tagged as the index).
   */
  platform?: Platform | Platform[] | "all";
  /**
   * Upload chunk size for push; blobs larger than it go up in `PATCH` chunks, each held in
   * memory while it is sent (default: one streamed `PUT`).
   */
  chunkSize?: number;
  /** Layers downloaded at once by pull (default 3, as dockerd). */
  maxConcurrentDownloads?: number;
  /** Layers uploaded at once by push (default 5, as dockerd). */
  maxConcurrentUploads?: number;
  /**
   * How failed requests and transfers are retried (default `DEFAULT_RETRY`): per operation (a
   * request, a blob's download or upload), 5 attempts in all and 60 s of waiting.
   */
  retry?: RetryPolicy;
  /**
   * The registry's own TLS settings: CA certificates, a client certificate and key, or no
   * verification (see docs/registry.md, "TLS", for each runtime).
   */
  tls?: TlsOptions;
  /** The `User-Agent` of every request (default `DEFAULT_USER_AGENT`, this package's name and version). */
  userAgent?: string;
  /** Aborts the call: every request, wait and stream fails with `ABORTED`. */
  signal?: AbortSignal;
  /**
   * How long an upload claim lives unless renewed, in milliseconds (default 10 000; renewed
   * every third of it): when the metadata store offers claims (`MetadataStore.claims`), push
   * and copy claim each layer before uploading it, and a
   * builder that finds another's claim waits for it. A crashed uploader's claim is taken
   * over once it ran out.
   */
  claimTtlMs?: number;
  /**
   * Milliseconds a request may go without receiving a byte (for the answer's headers, then
   * between body chunks) before it fails with `TIMEOUT`; default `DEFAULT_IDLE_TIMEOUT` (30 s).
   */
  idleTimeout?: number;
}

/** What pull did with one layer. */
export interface PulledLayer {
  /** The layer's digest. */
  digest: string;
  /** The DiffID the image configuration claims for it. */
  diffID: string;
  /**
   * - `recorded`: the DiffID was verified against the layer and recorded in the metadata;
   * - `exists`: the store and the metadata already had it, nothing was fetched;
   * - `foreign`: a non-distributable layer, not fetched;
   * - `mismatch`: the layer's DiffID is another one: nothing recorded;
   * - `unverifiable`: the DiffID could not be computed (a compression this runtime cannot
   *   open, or corrupt gzip): nothing recorded;
   * - `invalid`: the configuration's DiffID is not a valid digest: nothing recorded.
   */
  status: "recorded" | "exists" | "foreign" | "mismatch" | "unverifiable" | "invalid";
  /** For `mismatch`: the DiffID the layer really has. */
  actualDiffID?: string;
}

/** What {@linkcode pull} returns: the stored manifest's descriptor, and what became of each layer. */
export interface PullResult extends Descriptor {
  /** Each layer, in manifest order (of every image pulled, for an index). */
  layers: PulledLayer[];
  /**
   * When the name was tagged as an image index (`platform` a list or `"all"`): each image
   * pulled from it, in index order.
   */
  manifests?: PullResult[];
}

/** What push did with one layer. */
export interface PushedLayer {
  /** The layer's digest. */
  digest: string;
  /** The DiffID the image configuration gives it. */
  diffID: string;
  /**
   * How it reached the registry: `uploaded`, `mounted` from another repository (`from`),
   * `exists` there already (an existence check found it), or `foreign` (not pushed).
   */
  transfer: "uploaded" | "mounted" | "exists" | "foreign";
  /** For `mounted`: the full name of the repository it was mounted from. */
  from?: string;
  /**
   * `true` when another builder sharing the metadata store was uploading it (an upload
   * claim) and this push waited for that, then took it from there, or uploaded it itself.
   */
  waited?: boolean;
}

/** What {@linkcode push} returns: the pushed manifest's descriptor, and what became of each layer. */
export interface PushResult extends Descriptor {
  /** Each layer, in manifest order (of every image pushed, for an index). */
  layers: PushedLayer[];
  /** When an index was pushed: each image pushed with it, in index order. */
  manifests?: PushResult[];
}

/** Local images: blobs by digest, and names pointing at manifests. */
export interface ContentStore {
  /** Whether the blob is present. */
  has(digest: string): Promise<boolean>;
  /**
   * The whole blob; throws a `MetadataError` with code `ENOENT` when absent (`EFBIG` when
   * larger than `options.maxBytes`, for stores that can tell before reading).
   */
  get(digest: string, options?: BlobReadOptions): Promise<Uint8Array>;
  /** Stores a blob; it is verified against `digest` first. */
  put(digest: string, data: Uint8Array): Promise<void>;
  /**
   * A blob as a stream (`ENOENT` when absent, `EFBIG` over `maxBytes` before a byte is read),
   * checked against its digest as it is read unless `options.verify` is `false`.
   */
  open(digest: string, options?: BlobOpenOptions): Promise<ReadableStream<Uint8Array>>;
  /**
   * Optional: the blob's size without reading it (`ENOENT` when absent). `push` sends a layer
   * with this length (else the one its manifest gives), checked as it is read: bytes that are
   * not that many, or not the digest's, fail the upload before it can complete.
   */
  stat?(digest: string): Promise<{ size: number }>;
  /**
   * Stores a blob from a stream, checked as it passes; it lands under its name only once
   * checked and complete, so a failed, corrupt or cancelled write leaves nothing. A blob
   * already present is left alone (the stream is cancelled).
   */
  write(digest: string, data: ReadableStream<Uint8Array>, options?: BlobReadOptions): Promise<void>;
  /** The manifest descriptor a name (a tag or a full reference) points at, or `null`. */
  resolve(name: string): Promise<Descriptor | null>;
  /** Points a name at a manifest (replacing what it pointed at). */
  tag(name: string, descriptor: Descriptor): Promise<void>;
}
