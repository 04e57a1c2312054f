/**
 * What carries one HTTP request, redirects followed: a {@linkcode Transport}. Two exist, one
 * over a `fetch` ({@linkcode fetchTransport}: the global one, or the caller's) and, on Node, one
 * on `node:http` (node_http.ts); default_transport.ts picks for the runtime. Limits, retries and
 * credentials are the layers above (http.ts, client.ts, auth.ts), the same whatever carries the
 * bytes.
 *
 * @module
 */

/** A request as a transport sends it. */
export interface TransportRequest {
  /** The method. */
  method: string;
  /** The absolute http(s) URL. */
  url: string;
  /** The headers, names in lower case. */
  headers: Record<string, string>;
  /** The body: whole, or a stream (sent as it is read, once). */
  body?: Uint8Array | string | ReadableStream<Uint8Array> | undefined;
  /** Aborts the request and the reading of its answer's body. */
  signal: AbortSignal;
}

/** The answer to a {@linkcode TransportRequest}, after redirects. */
export interface TransportResponse {
  /** The HTTP status. */
  status: number;
  /** The headers. */
  headers: Headers;
  /** The URL that answered (the last one after redirects). */
  url: string;
  /** The body, or `null` (a `HEAD`, a `204` or `304`). */
  body: ReadableStream<Uint8Array> | null;
  /**
   * Whether the body was decoded from its `Content-Encoding` (then `Content-Length` counts
   * other bytes than it has).
   */
  decoded: boolean;
}

/**
 * Sends a request and resolves with the answer's head once it arrives, following redirects as
 * `fetch`'s `"follow"` does; rejects when no answer comes (and with the signal's reason when
 * it aborts).
 */
export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

/**
 * A {@linkcode Transport} over a `fetch` function: the global one or the caller's.
 *
 * @param fetchFn The `fetch` to call.
 * @returns The transport.
 * @example
 * ```ts
 * import { fetchTransport } from "./transport.ts";
 *
 * const transport = fetchTransport(globalThis.fetch);
 * ```
 */
export function fetchTransport(fetchFn: typeof fetch): Transport {
  return async (request) => {
    const init: RequestInit & { duplex?: "half" } = {
      method: request.method,
      headers: request.headers,
      signal: request.signal,
    };
    const body = request.body;
    if (body !== undefined) init.body = body as BodyInit;
    // A streamed body goes out as it is read (fetch requires saying so, since the answer could
    // otherwise start before the body ends).
    if (body instanceof ReadableStream) init.duplex = "half";
    const response = await fetchFn(request.url, init);
    return {
      status: response.status,
      headers: response.headers,
      url: response.url || request.url,
      body: response.body,
      // fetch decodes a Content-Encoding it knows; any one is taken as decoded.
      decoded: response.headers.has("content-encoding"),
    };
  };
}
