/**
 * Redirects as `fetch`'s `"follow"` takes them (WHATWG Fetch, "HTTP-redirect fetch"), for a
 * transport that follows them itself: at most {@linkcode MAX_REDIRECTS}; `301`/`302` after a
 * `POST`, and `303` after anything but `GET`/`HEAD`, become a `GET` without body; a streamed
 * body cannot be sent again, so any other redirect of one fails; and credentials stay on their
 * origin: `Authorization` (and `Cookie`, `Proxy-Authorization`) is dropped on a redirect to
 * another origin.
 *
 * @module
 */
import type { TransportRequest } from "./transport.ts";

/** How many redirects one request follows, as fetch (the next one fails). */
export const MAX_REDIRECTS = 20;

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Headers that describe a body, dropped with it. */
const BODY_HEADERS: ReadonlySet<string> = new Set([
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-type",
]);

/** Headers that carry credentials, for the origin they were meant for only. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "cookie",
  "proxy-authorization",
]);

/**
 * The request that follows `request`'s answer `status` with `location`, or `null` when that
 * answer is not a redirect to follow (not a redirect status, or no `Location`).
 *
 * @param request The request that was answered.
 * @param status The answer's status.
 * @param location The answer's `Location` header.
 * @returns The next request, or `null` to keep the answer.
 * @throws {TypeError} When the location is not an http(s) URL, or the body was a stream and
 * would have to be sent again.
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { redirectTarget } from "./redirect.ts";
 *
 * const next = redirectTarget({
 *   method: "GET",
 *   url: "https://registry.example/v2/app/blobs/sha256:0",
 *   headers: { authorization: "Bearer t" },
 *   signal: new AbortController().signal,
 * }, 307, "https://cdn.example/layer");
 * equal(next?.url, "https://cdn.example/layer");
 * equal(next?.headers.authorization, undefined);
 * ```
 */
export function redirectTarget(
  request: TransportRequest,
  status: number,
  location: string | null,
): TransportRequest | null {
  if (!REDIRECTS.has(status) || location === null) return null;
  const from = new URL(request.url);
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw new TypeError(`redirect location "${location}" is not a URL`);
  }
  if (to.protocol !== "http:" && to.protocol !== "https:") {
    throw new TypeError(`redirect location "${to}" is not an http(s) URL`);
  }
  if (request.body instanceof ReadableStream && status !== 303) {
    throw new TypeError(`a streamed body cannot be sent again to the redirect to "${to}"`);
  }
  const toGet = status === 303
    ? request.method !== "GET" && request.method !== "HEAD"
    : (status === 301 || status === 302) && request.method === "POST";
  const crossOrigin = to.origin !== from.origin;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if ((toGet && BODY_HEADERS.has(lower)) || (crossOrigin && CREDENTIAL_HEADERS.has(lower))) {
      continue;
    }
    headers[name] = value;
  }
  const next: TransportRequest = { ...request, url: to.toString(), headers };
  if (toGet) {
    next.method = "GET";
    delete next.body;
  }
  return next;
}
