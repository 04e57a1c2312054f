/**
 * One registry endpoint over HTTP: the `/v2/` ping that learns its challenges, and requests
 * authorised by {@linkcode Authenticator} (sent again once after a 401 that can be answered),
 * each under the call's signal and idle timeout, error answers mapped to a
 * {@linkcode RegistryError}.
 *
 * @module
 */
import type { AuthConfig } from "../../hmac.ts";
import { codeOf, errorEntries, RegistryError, type RegistryErrorCode } from "../errors.ts";
import { Authenticator } from "./auth.ts";
import { parseAuthChallenges } from "./challenge.ts";
import { type CallLimits, discard, type HttpResponse, send } from "./http.ts";
import { DEFAULT_IDLE_TIMEOUT, LIMITS, readAtMost } from "./limits.ts";
import { defaultTransport, isNode, type TlsOptions } from "./default_transport.ts";
import { fetchTransport, type Transport } from "./transport.ts";
import { DEFAULT_USER_AGENT, withUserAgent } from "./user_agent.ts";
import {
  isRetryable,
  parseRetryAfter,
  retryDelay,
  type RetryPolicy,
  retryPolicy,
  sleep,
} from "./retry.ts";

/** What a request needs besides its method and URL. */
export interface RequestOptions {
  /** Extra headers. */
  headers?: Record<string, string>;
  /**
   * The body: whole (sent again after a challenge or a retryable failure), or a stream (sent
   * once: neither answered after a challenge nor retried here).
   */
  body?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** The size of a streamed body, when known. */
  bodySize?: number;
  /** Token scopes, e.g. `repository:team/app:pull,push`. */
  scopes?: string[];
  /** The code a 404 without a registry code means here (default `UNKNOWN`). */
  notFound?: RegistryErrorCode;
  /**
   * Sent even when the call's signal has aborted, under its own 5 s idle timeout: for the
   * clean-up of an upload session.
   */
  detached?: boolean;
  /** Not retried here (the caller retries at its own level, e.g. a chunk of an upload). */
  once?: boolean;
  /** Told before each new attempt: the attempts made and the failure of the last one. */
  onRetry?: (attempt: number, error: RegistryError) => void;
}

/** Options of a {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /** Credentials, for the endpoint's origin only. */
  auth?: AuthConfig | undefined;
  /**
   * The `fetch` every request goes through (default: `node:http` on Node, the global `fetch`
   * elsewhere; see {@linkcode defaultTransport}).
   */
  fetch?: typeof fetch | undefined;
  /** Aborts every request. */
  signal?: AbortSignal | undefined;
  /** Milliseconds without a byte before `TIMEOUT` (default {@linkcode DEFAULT_IDLE_TIMEOUT}). */
  idleTimeout?: number | undefined;
  /** How failed requests are retried (default {@linkcode DEFAULT_RETRY}). */
  retry?: RetryPolicy | undefined;
  /** The `User-Agent` of every request (default {@linkcode DEFAULT_USER_AGENT}). */
  userAgent?: string | undefined;
  /** The registry's own TLS settings (not with `fetch`: the caller's `fetch` has its own). */
  tls?: TlsOptions | undefined;
}

/** The longest idle time of a detached request (an upload session's clean-up). */
const DETACHED_IDLE_TIMEOUT = 5_000;

/** The `Retry-After` of each error made from an answer that had one, in ms. */
const retryAfterOf = new WeakMap<RegistryError, number>();

/** A registry endpoint, e.g. `https://registry-1.docker.io` or `http://127.0.0.1:5000`. */
export class RegistryClient {
  /** The base URL, without a trailing `/`. */
  readonly endpoint: string;
  /**
   * The `PATCH` chunk size of an upload given none: 0 (one streamed `PUT`), except with a
   * caller's `fetch` on Node: undici reads a streamed body as fast as its source gives it,
   * whatever the socket takes (a 256 MiB `PUT` held 390 MiB), and 4 MiB chunks bound that.
   */
  readonly uploadChunkSize: number;
  readonly #transport: Transport;
  readonly #limits: CallLimits;
  readonly #auth: Authenticator;
  readonly #retry: Required<RetryPolicy>;
  #pinged = false;

  /**
   * @param endpoint The base URL, e.g. `https://registry.example.com`.
   * @param options Credentials, transport, signal and idle timeout.
   */
  constructor(endpoint: string, options: RegistryClientOptions = {}) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.#transport = withUserAgent(
      options.fetch === undefined
        ? defaultTransport(options.tls)
        : callerTransport(options.fetch, options.tls),
      options.userAgent ?? DEFAULT_USER_AGENT,
    );
    this.uploadChunkSize = options.fetch !== undefined && isNode() ? 4 << 20 : 0;
    this.#limits = {
      signal: options.signal,
      idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    };
    this.#auth = new Authenticator(this.endpoint, options.auth, this.#transport, this.#limits);
    this.#retry = retryPolicy(options.retry);
  }

  /** How this client's requests, and the transfers built on them, are retried. */
  get retry(): Required<RetryPolicy> {
    return this.#retry;
  }

  /**
   * Waits before attempt `attempt + 1` after `error`: backoff with jitter, at least the
   * `Retry-After` of the answer it came from. Fails with `ABORTED` when the call aborts.
   *
   * @param attempt Attempts made so far.
   * @param error The last failure.
   * @returns When it is time.
   */
  backoff(attempt: number, error: unknown): Promise<void> {
    const retryAfter = error instanceof RegistryError ? retryAfterOf.get(error) ?? null : null;
    return sleep(retryDelay(this.#retry, attempt, retryAfter), this.#limits.signal);
  }

  /** The limits every request of this client runs under. */
  get limits(): CallLimits {
    return this.#limits;
  }

  /** Pings `/v2/`: a 2xx, or a 401 whose challenges are kept, is a v2 registry. */
  async ping(): Promise<void> {
    const url = `${this.endpoint}/v2/`;
    const response = await send(this.#transport, { method: "GET", url }, this.#limits);
    await discard(response);
    if (response.status === 401) {
      this.#auth.learn(parseAuthChallenges(response.headers.get("www-authenticate")));
    } else if (response.status < 200 || response.status > 299) {
      throw new RegistryError("UNKNOWN", `Cannot ping "${url}": status ${response.status}`, {
        status: response.status,
        method: "GET",
        url,
      });
    }
    this.#pinged = true;
  }

  /**
   * Sends a request to a path of the endpoint or to an absolute URL it gave (an upload
   * location, a `Link`), authorised only when that URL is on the endpoint's origin.
   *
   * @param method The HTTP method.
   * @param pathOrUrl `/v2/...`, or an absolute URL.
   * A failure with no answer (`UNREACHABLE`) or a `408`, `429` or `5xx` answer is retried
   * with backoff, per the client's retry policy, unless the body is a stream or `options.once`.
   *
   * @param method The HTTP method.
   * @param pathOrUrl `/v2/...`, or an absolute URL.
   * @param options Headers, body, scopes, what a 404 means, retries.
   * @returns The answer (status below 400); its body is still to be read.
   */
  async request(
    method: string,
    pathOrUrl: string,
    options: RequestOptions = {},
  ): Promise<HttpResponse> {
    if (!this.#pinged) await this.ping();
    const url = resolveUrl(this.endpoint, pathOrUrl);
    const retries = !options.once && !(options.body instanceof ReadableStream);
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#exchange(method, url, options);
      } catch (error) {
        // A stall is not retried here: a request that never answers would hold the call for
        // every attempt. Blob downloads resume after one (see the repository).
        const again = retries && attempt < this.#retry.attempts && isRetryable(error) &&
          error.code !== "TIMEOUT" && error.code !== "TRUNCATED";
        if (!again) throw error;
        options.onRetry?.(attempt, error);
        await this.backoff(attempt, error);
      }
    }
  }

  /** One attempt, answering a 401 challenge once when the body can be sent again. */
  async #exchange(method: string, url: string, options: RequestOptions): Promise<HttpResponse> {
    const limits: CallLimits = options.detached
      ? { idleTimeout: Math.min(this.#limits.idleTimeout, DETACHED_IDLE_TIMEOUT) }
      : this.#limits;
    const scopes = [...options.scopes ?? []];
    const replayable = !(options.body instanceof ReadableStream);
    for (let attempt = 0;; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = await this.#auth.authorization(url, scopes);
      if (authorization !== null) headers["authorization"] = authorization;
      const response = await send(this.#transport, {
        method,
        url,
        headers,
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.bodySize === undefined ? {} : { bodySize: options.bodySize }),
      }, limits);
      if (response.status === 401 && attempt === 0 && replayable && this.#auth.owns(url)) {
        const challenges = parseAuthChallenges(response.headers.get("www-authenticate"));
        if (challenges.length > 0 && this.#auth.canAnswer(challenges)) {
          await discard(response);
          this.#auth.learn(challenges);
          const scope = challenges.find((c) => c.scheme === "bearer")?.params.scope;
          if (scope !== undefined) scopes.push(...scope.split(" "));
          continue;
        }
      }
      if (response.status < 400) return response;
      const error = await errorFromResponse(response, method, url, options.notFound ?? "UNKNOWN");
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      if (retryAfter !== null) retryAfterOf.set(error, retryAfter);
      throw error;
    }
  }
}

/** The caller's `fetch`, which carries TLS settings of its own if any. */
function callerTransport(fetchFn: typeof fetch, tls: TlsOptions | undefined): Transport {
  if (tls !== undefined) {
    throw new RegistryError("UNSUPPORTED", 'Pass either "fetch" or "tls", not both');
  }
  return fetchTransport(fetchFn);
}

/** An absolute http(s) URL for a path of the endpoint, or for a URL an answer gave. */
function resolveUrl(endpoint: string, pathOrUrl: string): string {
  if (pathOrUrl.startsWith("/")) return endpoint + pathOrUrl;
  const url = URL.canParse(pathOrUrl) ? new URL(pathOrUrl) : null;
  if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new RegistryError("MALFORMED", `Cannot follow "${pathOrUrl}": not an http(s) URL`, {
      url: pathOrUrl,
    });
  }
  return url.toString();
}

/**
 * Turns an error answer into a {@linkcode RegistryError}: the code of its first registry
 * error entry, else of its status. At most {@linkcode LIMITS}`.errorBody` bytes are read.
 *
 * @param response The answer (its body is consumed).
 * @param method The request's method.
 * @param url The request's URL.
 * @param notFound The code a 404 without a registry code means.
 * @returns The error to throw.
 */
export async function errorFromResponse(
  response: HttpResponse,
  method: string,
  url: string,
  notFound: RegistryErrorCode,
): Promise<RegistryError> {
  let text = "";
  try {
    text = new TextDecoder().decode(await readAtMost(response.body, LIMITS.errorBody, "", url));
  } catch {
    // too long, stalled or cut: the status alone tells
    await discard(response);
  }
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the status alone tells
  }
  const errors = errorEntries(body);
  const status = response.status;
  const code = codeOf(status, errors, notFound);
  const first = errors[0];
  const detail = first === undefined
    ? `status ${status}${
      text === "" || body !== null ? "" : `: ${JSON.stringify(text.slice(0, 200))}`
    }`
    : `${first.code.toLowerCase().replaceAll("_", " ")}${
      first.message ? `: ${first.message}` : ""
    }`;
  return new RegistryError(code, `Cannot ${method} "${url}": ${detail}`, {
    status,
    method,
    url,
    errors,
    ...(first?.message ? { reason: first.message } : {}),
  });
}
