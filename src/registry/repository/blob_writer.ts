/**
 * An upload session on a registry: `PATCH` chunks sent once each (the registry may hold part
 * of a failed one: the whole upload starts again), the closing `PUT` with the digest, a
 * `DELETE` to cancel. Every `Location` the registry answers with is parsed as an http(s) URL
 * (`MALFORMED` otherwise); its requests spend the upload's {@linkcode RetryBudget}.
 *
 * @module
 */
import type { RegistryClient, RequestOptions } from "../transport/client.ts";
import { discard, type HttpResponse } from "../transport/http.ts";
import type { RetryBudget } from "../transport/retry.ts";
import { answeredUrl } from "../transport/url.ts";
import type { BlobWriter, Descriptor } from "../types.ts";
import { checkAnsweredDigest, OCTET_STREAM } from "./context.ts";

/** A {@linkcode BlobWriter} over one upload session's location. */
export class HttpBlobWriter implements BlobWriter {
  #location: string;
  #size = 0;
  readonly #client: RegistryClient;
  readonly #scopes: string[];
  readonly #retry: RetryBudget;

  /**
   * @param client The endpoint's client.
   * @param location The session's URL, as parsed by {@linkcode answeredUrl}.
   * @param scopes The token scopes of its requests.
   * @param retry The budget of the upload the session belongs to.
   */
  constructor(client: RegistryClient, location: string, scopes: string[], retry: RetryBudget) {
    this.#client = client;
    this.#location = location;
    this.#scopes = scopes;
    this.#retry = retry;
  }

  /** The session's current URL. */
  get location(): string {
    return this.#location;
  }

  /** Bytes sent so far. */
  get size(): number {
    return this.#size;
  }

  #next(response: HttpResponse): void {
    const location = response.headers.get("location");
    if (location !== null) {
      this.#location = answeredUrl(location, this.#location, "upload Location");
    }
  }

  /** One `PATCH` of `chunk`. */
  write(chunk: Uint8Array): Promise<void> {
    return chunk.length === 0 ? Promise.resolve() : this.writeStream(chunk, chunk.length);
  }

  /**
   * One `PATCH` of `length` bytes, whole or streamed as read; without `length`, of every byte
   * of the stream, chunked and with no `Content-Range` (the registry appends what comes, as
   * `docker push` sends a layer).
   */
  async writeStream(
    chunk: Uint8Array | ReadableStream<Uint8Array>,
    length?: number,
  ): Promise<void> {
    const headers: Record<string, string> = { "content-type": OCTET_STREAM };
    let body = chunk;
    let sent = length ?? 0;
    if (length === undefined) {
      body = (chunk as ReadableStream<Uint8Array>).pipeThrough(
        new TransformStream({
          transform(bytes, controller) {
            sent += bytes.length;
            controller.enqueue(bytes);
          },
        }),
      );
    } else {
      headers["content-range"] = `${this.#size}-${this.#size + length - 1}`;
      // A streamed body's length is sent by Node and Bun (some registries refuse it chunked).
      if (chunk instanceof ReadableStream) headers["content-length"] = String(length);
    }
    // Not retried alone: the registry may hold part of it; the whole upload starts again.
    const response = await this.#client.request("PATCH", this.#location, {
      once: true,
      scopes: this.#scopes,
      headers,
      body,
      ...(length === undefined ? {} : { bodySize: length }),
    });
    await discard(response);
    this.#next(response);
    this.#size += sent;
  }

  /** The closing `PUT` with `digest`, and the last bytes when given. */
  async commit(
    digest: string,
    last?: Uint8Array | ReadableStream<Uint8Array>,
    size?: number,
  ): Promise<Descriptor> {
    const url = new URL(this.#location);
    url.searchParams.set("digest", digest);
    const options: RequestOptions = { scopes: this.#scopes, headers: {}, retry: this.#retry };
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

  /** Cancels the session (`DELETE`), sent even after an abort; a failure is ignored. */
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
