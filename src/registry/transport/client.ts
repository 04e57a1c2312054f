/**
 * One registry endpoint over HTTP: the `/v2/` ping that learns its challenges, and requests
 * authorised by {@linkcode Authenticator} (sent again once after a 401 that can be answered),
 * each under the call's signal and idle timeout, error answers mapped to a
 * {@linkcode RegistryError}.
 *
 * @module
 */
import type { AuthConfig } from "../../hmac.ts";
import { RegistryError, type RegistryErrorCode } from "../errors.ts";
import { Authenticator } from "./auth.ts";
import { parseAuthChallenges } from "./challenge.ts";
import { errorFromResponse } from "./error_answer.ts";
import { type CallLimits, discard, type HttpResponse, send } from "./http.ts";
import { DEFAULT_IDLE_TIMEOUT } from "./limits.ts";
import { defaultTransport, isNode, type TlsOptions } from "./default_transport.ts";
import { fetchTransport, type Transport } from "./transport.ts";
import { DEFAULT_USER_AGENT, withUserAgent } from "./user_agent.ts";
import { isRetryable, type OnRetry, RetryBudget, type RetryPolicy, retryPolicy } from "./retry.ts";
import { answeredUrl } from "./url.ts";

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
  /**
   * The operation this request is part of (a blob's upload or download): its retries spend
   * that operation's budget, and are told to that budget's listener (default: a budget of its
   * own, telling `onRetry`).
   */
  retry?: RetryBudget;
  /** Told before each new attempt of a request with a budget of its own. */
  onRetry?: OnRetry | undefined;
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

  /**
   * A fresh budget for one operation under this client's retry policy, its waits aborted by
   * the call's signal.
   *
   * @param onRetry Told before each new attempt of the operation.
   * @returns The budget.
   */
  retryBudget(onRetry?: OnRetry): RetryBudget {
    return new RetryBudget(this.#retry, this.#limits.signal, onRetry);
  }

  /** The limits every request of this client runs under. */
  get limits(): CallLimits {
    return this.#limits;
  }

  /** Pings `/v2/`: a 2xx, or a 401 whose challenges are kept, is a v2 registry. */
  async ping(): Promise<void> {
    const url = `${this.endpoint}/v2/`;
    const response = await send(this.#transport, { method: "GET", url }, this.#limits);
    if (response.status < 200 || (response.status > 299 && response.status !== 401)) {
      throw await errorFromResponse(response, { method: "GET", url }, {
        what: `ping "${url}"`,
        code: "UNKNOWN",
      });
    }
    await discard(response);
    if (response.status === 401) {
      this.#auth.learn(parseAuthChallenges(response.headers.get("www-authenticate")));
    }
    this.#pinged = true;
  }

  /**
   * Sends a request to a path of the endpoint or to an absolute URL it gave (an upload
   * location, a `Link`), authorised only when that URL is on the endpoint's origin.
   *
   * A failure with no answer (`UNREACHABLE`) or a `408`, `429` or `5xx` answer is sent again
   * with backoff within `options.retry` (or a budget of its own), unless the body is a stream
   * or `options.once`. A stall is not retried here: a request that never answers would hold
   * the call for every attempt (blob downloads resume after one, uploads start again).
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
    const exchange = () => this.#exchange(method, url, options);
    if (options.once || options.body instanceof ReadableStream) return await exchange();
    return await (options.retry ?? this.retryBudget(options.onRetry)).run(exchange, {
      again: (error) =>
        isRetryable(error) && error.code !== "TIMEOUT" && error.code !== "TRUNCATED",
    });
  }

  /** One attempt, answering a 401 challenge once when the body can be sent again. */
  async #exchange(method: string, url: string, options: RequestOptions): Promise<HttpResponse> {
    const limits: CallLimits = options.detached
      ? { idleTimeout: Math.min(this.#limits.idleTimeout, DETACHED_IDLE_TIMEOUT) }
      : this.#limits;
    const scopes = options.scopes ?? [];
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
          // The challenge's own `scope` is not asked for: it may name other repositories, and
          // the token request carries the user's credentials (dockerd does not ask it either).
          this.#auth.learn(challenges);
          continue;
        }
      }
      if (response.status < 400) return response;
      throw await errorFromResponse(response, { method, url }, {
        notFound: options.notFound ?? "UNKNOWN",
      });
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
  return pathOrUrl.startsWith("/") ? endpoint + pathOrUrl : answeredUrl(pathOrUrl);
}
