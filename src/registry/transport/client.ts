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

/** What a request needs besides its method and URL. */
export interface RequestOptions {
  /** Extra headers. */
  headers?: Record<string, string>;
  /** The body (kept whole, so the request can be sent again after a challenge). */
  body?: Uint8Array | string;
  /** Token scopes, e.g. `repository:team/app:pull,push`. */
  scopes?: string[];
  /** The code a 404 without a registry code means here (default `UNKNOWN`). */
  notFound?: RegistryErrorCode;
}

/** Options of a {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /** Credentials, for the endpoint's origin only. */
  auth?: AuthConfig | undefined;
  /** The transport (default: the global `fetch`). */
  fetch?: typeof fetch | undefined;
  /** Aborts every request. */
  signal?: AbortSignal | undefined;
  /** Milliseconds without a byte before `TIMEOUT` (default {@linkcode DEFAULT_IDLE_TIMEOUT}). */
  idleTimeout?: number | undefined;
}

/** A registry endpoint, e.g. `https://registry-1.docker.io` or `http://127.0.0.1:5000`. */
export class RegistryClient {
  /** The base URL, without a trailing `/`. */
  readonly endpoint: string;
  readonly #fetch: typeof fetch;
  readonly #limits: CallLimits;
  readonly #auth: Authenticator;
  #pinged = false;

  /**
   * @param endpoint The base URL, e.g. `https://registry.example.com`.
   * @param options Credentials, transport, signal and idle timeout.
   */
  constructor(endpoint: string, options: RegistryClientOptions = {}) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    const fetchFn = options.fetch;
    this.#fetch = fetchFn ?? ((input, init) => globalThis.fetch(input, init));
    this.#limits = {
      signal: options.signal,
      idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    };
    this.#auth = new Authenticator(this.endpoint, options.auth, this.#fetch, this.#limits);
  }

  /** The limits every request of this client runs under. */
  get limits(): CallLimits {
    return this.#limits;
  }

  /** Pings `/v2/`: a 2xx, or a 401 whose challenges are kept, is a v2 registry. */
  async ping(): Promise<void> {
    const url = `${this.endpoint}/v2/`;
    const response = await send(this.#fetch, { method: "GET", url }, this.#limits);
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
   * @param options Headers, body, scopes, and what a 404 means.
   * @returns The answer (status below 400); its body is still to be read.
   */
  async request(
    method: string,
    pathOrUrl: string,
    options: RequestOptions = {},
  ): Promise<HttpResponse> {
    if (!this.#pinged) await this.ping();
    const url = resolveUrl(this.endpoint, pathOrUrl);
    const scopes = [...options.scopes ?? []];
    for (let attempt = 0;; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = await this.#auth.authorization(url, scopes);
      if (authorization !== null) headers["authorization"] = authorization;
      const response = await send(this.#fetch, {
        method,
        url,
        headers,
        ...(options.body === undefined ? {} : { body: options.body }),
      }, this.#limits);
      if (response.status === 401 && attempt === 0 && this.#auth.owns(url)) {
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
      throw await errorFromResponse(response, method, url, options.notFound ?? "UNKNOWN");
    }
  }
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
