/**
 * A repository on a registry endpoint, over the OCI Distribution HTTP API: manifests
 * (get/put/exists/delete), blobs (stat, verified download, monolithic and chunked upload,
 * cross-repository mount) and tags.
 *
 * @module
 */
import type { RegistryClient, RequestOptions } from "./client.ts";
import { concat, digestOf, StreamVerifier, verifyDigest } from "./_digest.ts";
import { uploadBlob } from "./_upload.ts";
import { ErrBlobUnknown, ErrManifestUnknown, ErrTagUnknown, RegistryError } from "./errors.ts";
import { MANIFEST_ACCEPT, parseManifest } from "./manifest.ts";
import type {
  BlobCreateOptions,
  BlobCreateResult,
  BlobService,
  BlobWriter,
  Descriptor,
  Manifest,
  ManifestService,
  Repository,
  TagService,
  TransferProgress,
} from "./types.ts";

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

const OCTET_STREAM = "application/octet-stream";

/**
 * A {@linkcode Repository} reached through a {@linkcode RegistryClient}.
 *
 * @example
 * ```ts ignore
 * import { HttpRepository, RegistryClient } from "@distribution/metadata/registry";
 *
 * const client = new RegistryClient("http://127.0.0.1:5000");
 * const repo = new HttpRepository(client, { name: "127.0.0.1:5000/team/app", path: "team/app" });
 * console.log(await repo.tags().all());
 * ```
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
  readonly #scopes: string[];
  readonly #onProgress: ((event: TransferProgress) => void) | undefined;

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
    this.#scopes = [`repository:${options.path}:${(options.actions ?? ["pull"]).join(",")}`];
    this.#onProgress = options.onProgress;
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
    return {
      exists: (reference) => this.#manifestExists(reference),
      get: (reference) => this.#getManifest(reference),
      put: (manifest, options) => this.#putManifest(manifest, options?.tag),
      delete: (digest) => this.#deleteManifest(digest),
    };
  }

  /**
   * The blob service.
   *
   * @returns It.
   */
  blobs(): BlobService {
    return {
      stat: (digest) => this.#statBlob(digest),
      open: (digest) => this.#openBlob(digest),
      get: async (digest) => {
        const chunks: Uint8Array[] = [];
        const reader = (await this.#openBlob(digest)).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
        }
        return concat(chunks);
      },
      put: (data, options) => this.#putBlob(data, options?.mediaType, options?.chunkSize),
      create: (options) => this.#createUpload(options),
    };
  }

  /**
   * The tag service.
   *
   * @returns It.
   */
  tags(): TagService {
    return {
      get: async (tag) => {
        try {
          return await this.#headManifest(tag);
        } catch (error) {
          if (error instanceof RegistryError && error.status === 404) {
            throw new ErrTagUnknown(tag, { status: 404, errors: error.errors, cause: error });
          }
          throw error;
        }
      },
      all: () => this.#allTags(),
    };
  }

  #request(method: string, pathOrUrl: string, options: RequestOptions = {}): Promise<Response> {
    return this.client.request(method, pathOrUrl, { scopes: [...this.#scopes], ...options });
  }

  #url(kind: string, rest: string): string {
    return `/v2/${this.path}/${kind}/${rest}`;
  }

  async #headManifest(reference: string): Promise<Descriptor> {
    const response = await this.#request("HEAD", this.#url("manifests", reference), {
      headers: { accept: MANIFEST_ACCEPT },
      notFound: (o) =>
        new ErrManifestUnknown(`Cannot find manifest "${reference}" in "${this.name}"`, o),
    });
    return {
      mediaType: (response.headers.get("content-type") ?? "").split(";")[0]!,
      size: Number(response.headers.get("content-length") ?? 0),
      digest: response.headers.get("docker-content-digest") ?? "",
    };
  }

  async #manifestExists(reference: string): Promise<boolean> {
    try {
      await this.#headManifest(reference);
      return true;
    } catch (error) {
      if (error instanceof RegistryError && error.status === 404) return false;
      throw error;
    }
  }

  async #getManifest(reference: string): Promise<Manifest> {
    const response = await this.#request("GET", this.#url("manifests", reference), {
      headers: { accept: MANIFEST_ACCEPT },
      notFound: (o) =>
        new ErrManifestUnknown(`Cannot find manifest "${reference}" in "${this.name}"`, o),
    });
    const payload = new Uint8Array(await response.arrayBuffer());
    const contentType = response.headers.get("content-type") ?? "";
    const shown = reference.includes(":")
      ? `${this.name}@${reference}`
      : `${this.name}:${reference}`;
    const manifest = parseManifest(payload, contentType, shown);
    if (reference.includes(":")) {
      await verifyDigest(payload, reference, `manifest "${shown}"`);
    } else {
      const header = response.headers.get("docker-content-digest");
      if (header !== null && header.startsWith("sha256:")) {
        await verifyDigest(payload, header, `manifest "${shown}"`);
      }
    }
    return manifest;
  }

  async #putManifest(manifest: Manifest, tag: string | undefined): Promise<string> {
    const digest = await digestOf(manifest.payload);
    const response = await this.#request("PUT", this.#url("manifests", tag ?? digest), {
      headers: { "content-type": manifest.mediaType },
      body: manifest.payload,
    });
    await response.body?.cancel();
    return response.headers.get("docker-content-digest") ?? digest;
  }

  async #deleteManifest(digest: string): Promise<void> {
    const response = await this.#request("DELETE", this.#url("manifests", digest), {
      notFound: (o) =>
        new ErrManifestUnknown(`Cannot find manifest "${digest}" in "${this.name}"`, o),
    });
    await response.body?.cancel();
  }

  async #allTags(): Promise<string[]> {
    const tags: string[] = [];
    let next: string | null = `/v2/${this.path}/tags/list`;
    while (next !== null) {
      const response = await this.#request("GET", next);
      const body = await response.json() as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = response.headers.get("link");
      const target = link === null ? null : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] ?? null;
      next = target === null
        ? null
        : new URL(target, response.url || this.endpoint + next).toString();
    }
    return tags;
  }

  async #statBlob(digest: string): Promise<Descriptor> {
    const response = await this.#request("HEAD", this.#url("blobs", digest), {
      notFound: (o) => new ErrBlobUnknown(`Cannot find blob "${digest}" in "${this.name}"`, o),
    });
    return {
      mediaType: (response.headers.get("content-type") ?? OCTET_STREAM).split(";")[0]!,
      size: Number(response.headers.get("content-length") ?? 0),
      digest: response.headers.get("docker-content-digest") ?? digest,
    };
  }

  async #openBlob(digest: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#request("GET", this.#url("blobs", digest), {
      notFound: (o) => new ErrBlobUnknown(`Cannot find blob "${digest}" in "${this.name}"`, o),
    });
    if (response.body === null) throw new ErrBlobUnknown(`Cannot read blob "${digest}": no body`);
    const total = Number(response.headers.get("content-length") ?? 0);
    const verifier = new StreamVerifier(digest);
    const onProgress = this.#onProgress;
    let current = 0;
    const what = `blob "${digest}" from "${this.name}"`;
    return response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          verifier.update(chunk);
          current += chunk.length;
          onProgress?.({ action: "pull", digest, current, total });
          controller.enqueue(chunk);
        },
        async flush() {
          await verifier.finish(what);
        },
      }),
    );
  }

  async #createUpload(options: BlobCreateOptions = {}): Promise<BlobCreateResult> {
    let path = `/v2/${this.path}/blobs/uploads/`;
    const scopes = [...this.#scopes];
    const mount = options.mountFrom;
    if (mount !== undefined) {
      path += `?mount=${encodeURIComponent(mount.digest)}&from=${
        encodeURIComponent(mount.repository)
      }`;
      scopes.push(`repository:${mount.repository}:pull`);
    }
    const response = await this.client.request("POST", path, { scopes });
    await response.body?.cancel();
    if (response.status === 201 && mount !== undefined) {
      return {
        kind: "mounted",
        status: 201,
        descriptor: {
          mediaType: OCTET_STREAM,
          size: Number(response.headers.get("content-length") ?? 0),
          digest: response.headers.get("docker-content-digest") ?? mount.digest,
        },
      };
    }
    const location = response.headers.get("location");
    if (response.status !== 202 || location === null) {
      throw new RegistryError(
        "UNKNOWN",
        `Cannot start an upload to "${this.name}": status ${response.status}`,
        { status: response.status },
      );
    }
    return {
      kind: "upload",
      status: 202,
      writer: new HttpBlobWriter(this, new URL(location, this.endpoint + path).toString(), scopes),
    };
  }

  async #putBlob(
    data: Uint8Array,
    mediaType = OCTET_STREAM,
    chunkSize?: number,
  ): Promise<Descriptor> {
    const digest = await digestOf(data);
    const created = await this.#createUpload();
    if (created.kind !== "upload") return created.descriptor;
    return { ...(await uploadBlob(created.writer, data, digest, chunkSize)), mediaType };
  }
}

class HttpBlobWriter implements BlobWriter {
  #location: string;
  #size = 0;
  readonly #repo: HttpRepository;
  readonly #scopes: string[];

  constructor(repo: HttpRepository, location: string, scopes: string[]) {
    this.#repo = repo;
    this.#location = location;
    this.#scopes = scopes;
  }

  get location(): string {
    return this.#location;
  }

  get size(): number {
    return this.#size;
  }

  #next(response: Response): void {
    const location = response.headers.get("location");
    if (location !== null) this.#location = new URL(location, this.#location).toString();
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    const start = this.#size;
    const response = await this.#repo.client.request("PATCH", this.#location, {
      scopes: this.#scopes,
      headers: {
        "content-type": OCTET_STREAM,
        "content-range": `${start}-${start + chunk.length - 1}`,
      },
      body: chunk,
    });
    await response.body?.cancel();
    this.#next(response);
    this.#size += chunk.length;
  }

  async commit(digest: string, last?: Uint8Array): Promise<Descriptor> {
    const url = new URL(this.#location);
    url.searchParams.set("digest", digest);
    const options: RequestOptions = { scopes: this.#scopes, headers: {} };
    if (last !== undefined && last.length > 0) {
      options.headers = { "content-type": OCTET_STREAM };
      options.body = last;
    }
    const response = await this.#repo.client.request("PUT", url.toString(), options);
    await response.body?.cancel();
    this.#size += last?.length ?? 0;
    return {
      mediaType: OCTET_STREAM,
      size: this.#size,
      digest: response.headers.get("docker-content-digest") ?? digest,
    };
  }

  async cancel(): Promise<void> {
    const response = await this.#repo.client.request("DELETE", this.#location, {
      scopes: this.#scopes,
    });
    await response.body?.cancel();
  }
}
