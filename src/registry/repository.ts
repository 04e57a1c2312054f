/**
 * A repository on a registry endpoint, over the OCI Distribution HTTP API: manifests
 * (get/put/exists/delete), blobs (stat, verified download, monolithic and chunked upload,
 * cross-repository mount) and tags. Every answer is checked before it is believed: digests the
 * registry names must be the ones asked for, bodies are bounded, tag lists validated.
 *
 * @module
 */
import type { RegistryClient, RequestOptions } from "./transport/client.ts";
import { discard, type HttpResponse } from "./transport/http.ts";
import { LIMITS, parseJson, readAtMost } from "./transport/limits.ts";
import { digestOf, isDigest, verifyDigest } from "./_digest.ts";
import { verifying } from "./_verify.ts";
import { ReadTarget, type Relayed, relaySource, relayStream } from "../_relay.ts";
import { uploadBlob } from "./_upload.ts";
import { isRetryable } from "./transport/retry.ts";
import { isRegistryError, RegistryError } from "./errors.ts";
import { MANIFEST_ACCEPT, parseManifest } from "./manifest.ts";
import { isValidTag } from "./reference.ts";
import type {
  BlobCreateOptions,
  BlobCreateResult,
  BlobOpenOptions,
  BlobService,
  BlobSource,
  BlobUploadOptions,
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

/** Throws `DIGEST_INVALID` when the registry's `Docker-Content-Digest` names another digest. */
function checkAnsweredDigest(response: HttpResponse, asked: string, what: string): void {
  const answered = response.headers.get("docker-content-digest");
  if (answered !== null && answered !== asked) {
    throw new RegistryError(
      "DIGEST_INVALID",
      `Cannot accept the answer for ${what}: the registry names digest "${answered}", ` +
        `expected "${asked}"`,
      { status: response.status, url: response.url, reason: `answered ${answered}` },
    );
  }
}

function declaredLength(response: HttpResponse): number {
  const value = response.headers.get("content-length");
  return value !== null && /^\d+$/.test(value) ? Number(value) : 0;
}

function tooLarge(what: string, limit: number, url: string): RegistryError {
  return new RegistryError("TOO_LARGE", `Cannot read ${what}: larger than ${limit} bytes`, {
    url,
    reason: `limit ${limit} bytes`,
  });
}

/** The next page of a tag list from a `Link: <url>; rel="next"` header, or `null`. */
function nextPage(response: HttpResponse): string | null {
  const link = response.headers.get("link");
  if (link === null) return null;
  const target = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  if (target === undefined) return null;
  try {
    return new URL(target, response.url).toString();
  } catch (cause) {
    throw new RegistryError("MALFORMED", `Cannot follow the tag list's Link "${link}"`, {
      url: response.url,
      cause,
    });
  }
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
      open: (digest, options) => this.#openBlob(digest, options),
      get: async (digest, options) =>
        readAtMost(await this.#openBlob(digest, options), Infinity, `blob "${digest}"`),
      put: (data, options) => this.#putBlob(data, options?.mediaType, options?.chunkSize),
      upload: (source, options) => this.#upload(source, options),
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
          if (isRegistryError(error) && error.status === 404) {
            throw new RegistryError("TAG_UNKNOWN", `Cannot find tag "${tag}" in "${this.name}"`, {
              status: 404,
              method: "HEAD",
              url: error.url,
              errors: error.errors,
              cause: error,
            });
          }
          throw error;
        }
      },
      all: () => this.#allTags(),
    };
  }

  #request(method: string, pathOrUrl: string, options: RequestOptions = {}) {
    return this.client.request(method, pathOrUrl, { scopes: this.#scopes, ...options });
  }

  #url(kind: string, rest: string): string {
    return `/v2/${this.path}/${kind}/${rest}`;
  }

  async #headManifest(reference: string): Promise<Descriptor> {
    const response = await this.#request("HEAD", this.#url("manifests", reference), {
      headers: { accept: MANIFEST_ACCEPT },
      notFound: "MANIFEST_UNKNOWN",
    });
    await discard(response);
    if (reference.includes(":")) checkAnsweredDigest(response, reference, `"${reference}"`);
    const digest = response.headers.get("docker-content-digest");
    return {
      mediaType: (response.headers.get("content-type") ?? "").split(";")[0]!,
      size: declaredLength(response),
      digest: isDigest(digest) ? digest : "",
    };
  }

  async #manifestExists(reference: string): Promise<boolean> {
    try {
      await this.#headManifest(reference);
      return true;
    } catch (error) {
      if (isRegistryError(error) && error.status === 404) return false;
      throw error;
    }
  }

  async #getManifest(reference: string): Promise<Manifest> {
    const response = await this.#request("GET", this.#url("manifests", reference), {
      headers: { accept: MANIFEST_ACCEPT },
      notFound: "MANIFEST_UNKNOWN",
    });
    const byDigest = reference.includes(":");
    const shown = byDigest ? `${this.name}@${reference}` : `${this.name}:${reference}`;
    const what = `manifest "${shown}"`;
    if (declaredLength(response) > LIMITS.manifest) {
      await discard(response);
      throw tooLarge(what, LIMITS.manifest, response.url);
    }
    const payload = await readAtMost(response.body, LIMITS.manifest, what, response.url);
    const manifest = parseManifest(payload, response.headers.get("content-type") ?? "", shown);
    const header = response.headers.get("docker-content-digest");
    const expected = byDigest ? reference : isDigest(header) ? header : null;
    if (expected !== null) await verifyDigest(payload, expected, what);
    return manifest;
  }

  async #putManifest(manifest: Manifest, tag: string | undefined): Promise<string> {
    const digest = await digestOf(manifest.payload);
    const response = await this.#request("PUT", this.#url("manifests", tag ?? digest), {
      headers: { "content-type": manifest.mediaType },
      body: manifest.payload,
    });
    await discard(response);
    checkAnsweredDigest(response, digest, `manifest "${digest}"`);
    return digest;
  }

  async #deleteManifest(digest: string): Promise<void> {
    const response = await this.#request("DELETE", this.#url("manifests", digest), {
      notFound: "MANIFEST_UNKNOWN",
    });
    await discard(response);
  }

  async #allTags(): Promise<string[]> {
    const tags: string[] = [];
    const seen = new Set<string>();
    let budget: number = LIMITS.tagList;
    let next: string | null = `${this.endpoint}${this.#url("tags", "list")}`;
    while (next !== null) {
      const what = `the tag list of "${this.name}"`;
      if (seen.has(next)) {
        throw new RegistryError("LOOP", `Cannot read ${what}: page "${next}" links back`, {
          url: next,
          reason: "paging loop",
        });
      }
      if (seen.size >= LIMITS.tagPages) {
        throw new RegistryError(
          "TOO_LARGE",
          `Cannot read ${what}: more than ${LIMITS.tagPages} pages`,
          { url: next, reason: `limit ${LIMITS.tagPages} pages` },
        );
      }
      seen.add(next);
      const response = await this.#request("GET", next, { notFound: "NAME_UNKNOWN" });
      const bytes = await readAtMost(response.body, budget, what, response.url);
      budget -= bytes.length;
      const body = parseJson(bytes, what, response.url) as { tags?: unknown } | null;
      const page = body === null || typeof body !== "object" ? undefined : body.tags ?? [];
      if (!Array.isArray(page) || !page.every((t) => typeof t === "string" && isValidTag(t))) {
        throw new RegistryError("MALFORMED", `Cannot read ${what}: "tags" is not a list of tags`, {
          url: response.url,
        });
      }
      tags.push(...page);
      next = nextPage(response);
    }
    return tags;
  }

  async #statBlob(digest: string): Promise<Descriptor> {
    const response = await this.#request("HEAD", this.#url("blobs", digest), {
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

  async #openBlob(
    digest: string,
    options: BlobOpenOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const url = this.#url("blobs", digest);
    const what = `blob "${digest}" from "${this.name}"`;
    const maxBytes = options.maxBytes ?? Infinity;
    const onProgress = this.#onProgress;
    let received = 0;
    let total = 0;
    const onRetry = (attempt: number, error: Error) =>
      onProgress?.({ action: "retry", digest, current: received, total, attempt, error });
    const get = (headers: Record<string, string>) =>
      this.#request("GET", url, { headers, notFound: "BLOB_UNKNOWN", onRetry });
    let response = await get({});
    total = declaredLength(response);
    if (total > maxBytes) {
      await discard(response);
      throw tooLarge(what, maxBytes, response.url);
    }
    const client = this.client;
    let source = relaySource(response.body ?? emptyBody());
    let skip = 0; // bytes a restarted answer repeats
    let attempts = 1;
    let receivedAtFailure = -1;
    const body = relayStream(source.byob, {
      async pull(into): Promise<Relayed> {
        const target = into && new ReadTarget(into);
        for (;;) {
          let result: Relayed;
          try {
            result = await source.read(into);
            if (result.done) return result;
          } catch (error) {
            // A cut or stalled body resumes while attempts are left and each brings new bytes.
            const again = isRetryable(error) && attempts < client.retry.attempts &&
              received > receivedAtFailure;
            if (!again) throw error;
            receivedAtFailure = received;
            onRetry(attempts, error);
            await client.backoff(attempts++, error);
            response = await get(received > 0 ? { range: `bytes=${received}-` } : {});
            skip = resumedAt(response, received, what);
            source = relaySource(response.body ?? emptyBody());
            into = target?.again();
            continue;
          }
          let chunk = result.value;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            // A reader's buffer is handed back from its start: the kept bytes move there.
            chunk = target === undefined
              ? chunk.subarray(dropped)
              : chunk.copyWithin(0, dropped).subarray(0, chunk.length - dropped);
            if (chunk.length === 0) {
              into = target?.again(chunk);
              continue;
            }
          }
          received += chunk.length;
          if (received > maxBytes) {
            await source.cancel().catch(() => {});
            throw tooLarge(what, maxBytes, response.url);
          }
          onProgress?.({ action: "pull", digest, current: received, total });
          return { done: false, value: chunk };
        }
      },
      cancel: (reason) => source.cancel(reason),
    });
    if (options.verify === false) return body;
    return verifying(body, digest, what, maxBytes);
  }

  async #upload(source: BlobSource, options: BlobUploadOptions = {}): Promise<Descriptor> {
    let session = options.session ?? null;
    let lastError: unknown = null;
    for (let attempt = 1;; attempt++) {
      let sourceError: unknown = null;
      try {
        if (session === null) {
          const created = await this.#createUpload();
          if (created.kind !== "upload") return created.descriptor;
          session = created.writer;
        }
        // The source's own failure (a file error, a digest check) must not pass for the
        // network's, which is how fetch reports it: it is remembered here and never retried.
        let reader: ReadableStreamDefaultReader<Uint8Array>;
        try {
          reader = (await source.open()).getReader();
        } catch (error) {
          sourceError = error;
          throw error;
        }
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            let result: ReadableStreamReadResult<Uint8Array>;
            try {
              result = await reader.read();
            } catch (error) {
              sourceError = error;
              return controller.error(error);
            }
            if (result.done) return controller.close();
            controller.enqueue(result.value);
            sent += result.value.length;
            options.onProgress?.(sent);
          },
          cancel: (reason) => reader.cancel(reason),
        }, { highWaterMark: 0 });
        return await sendBlob(
          session,
          body,
          source,
          options.chunkSize ?? this.client.uploadChunkSize,
        );
      } catch (error) {
        if (session !== null) await session.cancel();
        session = null;
        const failure = sourceError ?? error;
        // A registry that stalls twice in a row is not waited for again.
        const stalledTwice = isRegistryError(error, "TIMEOUT") &&
          isRegistryError(lastError, "TIMEOUT");
        const again = sourceError === null && attempt < this.client.retry.attempts &&
          !stalledTwice && (isRetryable(error) || isRegistryError(error, "BLOB_UPLOAD_UNKNOWN"));
        if (!again) throw failure;
        lastError = error;
        options.onRetry?.(attempt, error as Error);
        await this.client.backoff(attempt, error);
      }
    }
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
    await discard(response);
    if (response.status === 201 && mount !== undefined) {
      checkAnsweredDigest(response, mount.digest, `the mount of "${mount.digest}"`);
      return {
        kind: "mounted",
        status: 201,
        descriptor: {
          mediaType: OCTET_STREAM,
          size: declaredLength(response),
          digest: mount.digest,
        },
      };
    }
    const location = response.headers.get("location");
    if (response.status !== 202 || location === null) {
      throw new RegistryError(
        "UNKNOWN",
        `Cannot start an upload to "${this.name}": status ${response.status}` +
          (location === null ? " without a Location" : ""),
        { status: response.status, method: "POST", url: response.url },
      );
    }
    return {
      kind: "upload",
      status: 202,
      writer: new HttpBlobWriter(this.client, new URL(location, response.url).toString(), scopes),
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

function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/**
 * Where an answer to a resumed download starts: a `206` must start at `received` (nothing to
 * skip); any other answer is the whole blob again, whose first `received` bytes are skipped.
 */
function resumedAt(response: HttpResponse, received: number, what: string): number {
  if (response.status !== 206) return received;
  const range = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
  if (range === null || Number(range[1]) !== received) {
    throw new RegistryError(
      "MALFORMED",
      `Cannot resume ${what} at byte ${received}: the registry answered ` +
        `Content-Range "${response.headers.get("content-range")}"`,
      { status: 206, method: "GET", url: response.url },
    );
  }
  return 0;
}

/** Re-cuts a stream into chunks of exactly `size` bytes (the last one shorter). */
async function* rechunk(
  stream: ReadableStream<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let length = 0;
  for await (const chunk of stream) {
    for (let offset = 0; offset < chunk.length;) {
      const taken = Math.min(size - length, chunk.length - offset);
      buffer.set(chunk.subarray(offset, offset + taken), length);
      length += taken;
      offset += taken;
      if (length === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        length = 0;
      }
    }
  }
  if (length > 0) yield buffer.subarray(0, length);
}

function sizeChanged(source: BlobSource, detail: string): RegistryError {
  return new RegistryError(
    "SIZE_INVALID",
    `Cannot upload "${source.digest}": its source ${detail} the ${source.size} bytes it had`,
    { url: source.digest, reason: `source ${detail} ${source.size} bytes` },
  );
}

/**
 * `body` in `PATCH` requests of `chunkSize` bytes, each streamed from the source's own chunks
 * (one that straddles two requests is split, not copied): gathering each into a buffer cost
 * Node, whose `fetch` copies a buffer body twice more, ~40 MiB and ~10% of a push.
 */
async function patchStreamed(
  writer: HttpBlobWriter,
  body: ReadableStream<Uint8Array>,
  source: BlobSource,
  chunkSize: number,
): Promise<void> {
  const reader = body.getReader();
  // Both are set by the parts' pull, which TypeScript does not follow.
  let rest = null as Uint8Array | null;
  let failure = null as RegistryError | null;
  for (let sent = 0; sent < source.size;) {
    const length = Math.min(chunkSize, source.size - sent);
    let given = 0;
    let cancelled = false;
    const part = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk = rest;
        rest = null;
        if (chunk === null) {
          const result = await reader.read();
          // A read pending when the failed request cancelled the part ends too: not the source's.
          if (cancelled) return;
          if (result.done) {
            failure = sizeChanged(source, `ended after ${sent + given} of`);
            return controller.error(failure);
          }
          chunk = result.value;
        }
        const taken = Math.min(chunk.length, length - given);
        if (taken < chunk.length) rest = chunk.subarray(taken);
        controller.enqueue(taken < chunk.length ? chunk.subarray(0, taken) : chunk);
        given += taken;
        if (given === length) controller.close();
      },
      cancel: (reason) => {
        cancelled = true;
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    try {
      await writer.writeStream(part, length);
    } catch (error) {
      throw failure ?? error;
    }
    sent += length;
  }
  if ((rest !== null && rest.length > 0) || !(await reader.read()).done) {
    await reader.cancel().catch(() => {});
    throw sizeChanged(source, "grew past");
  }
}

/** A blob's bytes through a session: `PATCH` chunks of `chunkSize`, or one streamed `PUT`. */
async function sendBlob(
  writer: BlobWriter,
  body: ReadableStream<Uint8Array>,
  source: BlobSource,
  chunkSize: number,
): Promise<Descriptor> {
  if (chunkSize > 0 && source.size > chunkSize) {
    if (writer instanceof HttpBlobWriter) await patchStreamed(writer, body, source, chunkSize);
    else for await (const chunk of rechunk(body, chunkSize)) await writer.write(chunk);
    return await writer.commit(source.digest);
  }
  return await writer.commit(source.digest, body, source.size);
}

class HttpBlobWriter implements BlobWriter {
  #location: string;
  #size = 0;
  readonly #client: RegistryClient;
  readonly #scopes: string[];

  constructor(client: RegistryClient, location: string, scopes: string[]) {
    this.#client = client;
    this.#location = location;
    this.#scopes = scopes;
  }

  get location(): string {
    return this.#location;
  }

  get size(): number {
    return this.#size;
  }

  #next(response: HttpResponse): void {
    const location = response.headers.get("location");
    if (location !== null) this.#location = new URL(location, this.#location).toString();
  }

  write(chunk: Uint8Array): Promise<void> {
    return chunk.length === 0 ? Promise.resolve() : this.writeStream(chunk, chunk.length);
  }

  /** One `PATCH` of `length` bytes, whole or streamed as read. */
  async writeStream(chunk: Uint8Array | ReadableStream<Uint8Array>, length: number): Promise<void> {
    const start = this.#size;
    const headers: Record<string, string> = {
      "content-type": OCTET_STREAM,
      "content-range": `${start}-${start + length - 1}`,
    };
    // A streamed body's length is sent by Node and Bun (some registries refuse it chunked).
    if (chunk instanceof ReadableStream) headers["content-length"] = String(length);
    // Not retried alone: the registry may hold part of it; the whole upload starts again.
    const response = await this.#client.request("PATCH", this.#location, {
      once: true,
      scopes: this.#scopes,
      headers,
      body: chunk,
      bodySize: length,
    });
    await discard(response);
    this.#next(response);
    this.#size += length;
  }

  async commit(
    digest: string,
    last?: Uint8Array | ReadableStream<Uint8Array>,
    size?: number,
  ): Promise<Descriptor> {
    const url = new URL(this.#location);
    url.searchParams.set("digest", digest);
    const options: RequestOptions = { scopes: this.#scopes, headers: {} };
    const streamed = last instanceof ReadableStream;
    if (streamed || (last !== undefined && last.length > 0)) {
      options.headers = { "content-type": OCTET_STREAM };
      options.body = last;
      // Node and Bun then send the length (some registries refuse a chunked body); Deno's
      // fetch streams chunked whatever the header says.
      if (streamed && size !== undefined) {
        options.bodySize = size;
        options.headers["content-length"] = String(size);
      }
    }
    const response = await this.#client.request("PUT", url.toString(), options);
    await discard(response);
    checkAnsweredDigest(response, digest, `the upload of "${digest}"`);
    this.#size += streamed ? size ?? 0 : last?.length ?? 0;
    return { mediaType: OCTET_STREAM, size: this.#size, digest };
  }

  async cancel(): Promise<void> {
    try {
      const response = await this.#client.request("DELETE", this.#location, {
        scopes: this.#scopes,
        detached: true,
        once: true,
      });
      await discard(response);
    } catch {
      // dockerd ignores a failed cancel too: the registry purges abandoned sessions
    }
  }
}
