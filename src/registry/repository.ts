/**
 * A repository on a registry endpoint, over the OCI Distribution HTTP API: its manifests
 * (`repository/manifests.ts`), blobs (stat here; download, upload and mount in
 * `repository/blob_*.ts`) and tags (`repository/tags.ts`). Every answer is checked before it
 * is believed: digests the registry names must be the ones asked for, bodies are bounded, tag
 * lists validated, URLs it hands over parsed as http(s).
 *
 * @module
 */
import type { RegistryClient } from "./transport/client.ts";
import { discard } from "./transport/http.ts";
import { readAtMost } from "./transport/limits.ts";
import type {
  BlobService,
  Descriptor,
  ManifestService,
  Repository,
  TagService,
  TransferProgress,
} from "./types.ts";
import {
  apiPath,
  checkAnsweredDigest,
  declaredLength,
  OCTET_STREAM,
  type RepositoryContext,
  request,
} from "./repository/context.ts";
import { manifestService } from "./repository/manifests.ts";
import { tagService } from "./repository/tags.ts";
import { openBlob } from "./repository/blob_download.ts";
import { createUpload, putBlob, uploadFrom } from "./repository/blob_upload.ts";

/** Options of {@linkcode HttpRepository}. */
export interface HttpRepositoryOptions {
  /** The full name recorded in metadata, e.g. `docker.io/library/busybox`. */
  name: string;
  /** The path on the endpoint, e.g. `library/busybox`. */
  path: string;
  /** Whether the endpoint is a mirror. */
  mirror?: boolean;
  /** Token scope actions (default `pull`; push asks `pull,push`). */
  actions?: string[];
  /** Per-blob progress. */
  onProgress?: ((event: TransferProgress) => void) | undefined;
}

/**
 * A {@linkcode Repository} reached through a {@linkcode RegistryClient}.
 */
export class HttpRepository implements Repository {
  /** The full name, e.g. `127.0.0.1:5000/team/app`. */
  readonly name: string;
  /** The path on the endpoint, e.g. `team/app`. */
  readonly path: string;
  /** Whether the endpoint is a mirror. */
  readonly mirror: boolean;
  /** The client. */
  readonly client: RegistryClient;
  readonly #context: RepositoryContext;

  /**
   * Creates a repository handle (no request is made).
   *
   * @param client The endpoint's client.
   * @param options Name, path, scope actions and progress callback.
   */
  constructor(client: RegistryClient, options: HttpRepositoryOptions) {
    this.client = client;
    this.name = options.name;
    this.path = options.path;
    this.mirror = options.mirror ?? false;
    this.#context = {
      client,
      name: options.name,
      path: options.path,
      scopes: [`repository:${options.path}:${(options.actions ?? ["pull"]).join(",")}`],
      onProgress: options.onProgress,
    };
  }

  /** The endpoint's base URL. */
  get endpoint(): string {
    return this.client.endpoint;
  }

  /**
   * The manifest service.
   *
   * @returns It.
   */
  manifests(): ManifestService {
    return manifestService(this.#context);
  }

  /**
   * The blob service.
   *
   * @returns It.
   */
  blobs(): BlobService {
    const ctx = this.#context;
    return {
      stat: (digest) => statBlob(ctx, digest),
      open: (digest, options) => openBlob(ctx, digest, options),
      get: async (digest, options) =>
        readAtMost(await openBlob(ctx, digest, options), Infinity, `blob "${digest}"`),
      put: (data, options) => putBlob(ctx, data, options?.mediaType, options?.chunkSize),
      upload: (source, options) => uploadFrom(ctx, source, options),
      create: (options) => createUpload(ctx, options),
    };
  }

  /**
   * The tag service.
   *
   * @returns It.
   */
  tags(): TagService {
    return tagService(this.#context);
  }
}

/** Describes a blob (`HEAD`), its digest checked against the one asked for. */
async function statBlob(ctx: RepositoryContext, digest: string): Promise<Descriptor> {
  const response = await request(ctx, "HEAD", apiPath(ctx, "blobs", digest), {
    notFound: "BLOB_UNKNOWN",
  });
  await discard(response);
  checkAnsweredDigest(response, digest, `blob "${digest}"`);
  return {
    mediaType: (response.headers.get("content-type") ?? OCTET_STREAM).split(";")[0]!,
    size: declaredLength(response),
    digest,
  };
}
