/**
 * The HTTP side of the OCI Distribution API: one endpoint, `/v2/` ping, the Basic and Bearer
 * token authentication flows (driven by the registry's `WWW-Authenticate` challenges), and the
 * mapping of error answers to typed errors.
 *
 * @module
 */
import type { AuthConfig } from "../hmac.ts";
import {
  ErrAccessDenied,
  ErrBlobInvalidDigest,
  ErrBlobUnknown,
  ErrManifestUnknown,
  ErrRepositoryNameInvalid,
  ErrRepositoryUnknown,
  ErrUnauthorized,
  ErrUnsupported,
  RegistryError,
  type RegistryErrorEntry,
  type RegistryErrorOptions,
} from "./errors.ts";

/** One authentication challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** Lower-case scheme: `basic` or `bearer`. */
  scheme: string;
  /** Its parameters (`realm`, `service`, `scope`, `error`, …). */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges.
 *
 * @param header The header's value.
 * @returns The challenges, in order.
 *
 * @example
 * ```ts
 * import { parseAuthChallenges } from "@distribution/metadata/registry";
 * const [c] = parseAuthChallenges('Bearer realm="https://auth.example/token",service="registry"');
 * console.log(c?.scheme, c?.params.realm); // bearer https://auth.example/token
 * ```
 */
export function parseAuthChallenges(header: string | null): AuthChallenge[] {
  if (header === null) return [];
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | null = null;
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const start = i;
    while (i < header.length && /[^\s,=]/.test(header[i]!)) i++;
    if (i === start) break;
    const token = header.slice(start, i);
    skip(/\s/);
    if (header[i] !== "=") {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      continue;
    }
    i++;
    skip(/\s/);
    let value = "";
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) {
        if (header[i] === "\\") i++;
        value += header[i] ?? "";
      }
      i++;
    } else {
      const from = i;
      while (i < header.length && /[^\s,]/.test(header[i]!)) i++;
      value = header.slice(from, i);
    }
    if (current !== null) current.params[token.toLowerCase()] = value;
  }
  return challenges;
}

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** What a request needs: the repository scopes a token must cover. */
export interface RequestOptions {
  /** Extra headers. */
  headers?: Record<string, string>;
  /** The body (kept in memory, so a request can be retried after a challenge). */
  body?: Uint8Array | string;
  /** Token scopes, e.g. `repository:team/app:pull,push`. */
  scopes?: string[];
  /** The error a bare 404 means here (e.g. a HEAD on a blob has no body to tell). */
  notFound?: (options: RegistryErrorOptions) => RegistryError;
}

/** Options of a {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /** Credentials. */
  auth?: AuthConfig | undefined;
  /** The transport. */
  fetch?: typeof fetch | undefined;
}

/**
 * One registry endpoint, e.g. `https://registry-1.docker.io` or `http://127.0.0.1:5000`:
 * requests with authentication answered as the registry's challenges ask.
 *
 * @example
 * ```ts
 * import { RegistryClient } from "@distribution/metadata/registry";
 *
 * const client = new RegistryClient("http://127.0.0.1:5000", {
 *   fetch: () => Promise.resolve(new Response("{}", { status: 200 })),
 * });
 * await client.ping();
 * ```
 */
export class RegistryClient {
  /** The base URL, without a trailing `/`. */
  readonly endpoint: string;
  readonly #auth: AuthConfig | undefined;
  readonly #fetch: typeof fetch;
  #challenges: AuthChallenge[] = [];
  #pinged = false;
  readonly #tokens = new Map<string, string>();

  /**
   * Creates a client.
   *
   * @param endpoint The base URL, e.g. `https://registry.example.com`.
   * @param options Credentials and transport.
   */
  constructor(endpoint: string, options: RegistryClientOptions = {}) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.#auth = options.auth;
    const f = options.fetch;
    this.#fetch = f ?? ((input, init) => globalThis.fetch(input, init));
  }

  /**
   * Pings `/v2/`: a 200 or a 401 with a challenge is a v2 registry; the challenge is kept
   * for the requests that follow.
   *
   * @returns Nothing; throws a {@linkcode RegistryError} when the endpoint is no v2 registry.
   */
  async ping(): Promise<void> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.endpoint}/v2/`, { method: "GET" });
    } catch (cause) {
      throw new RegistryError("UNREACHABLE", `Cannot ping "${this.endpoint}/v2/": ${cause}`, {
        cause,
        path: this.endpoint,
      });
    }
    await response.body?.cancel();
    this.#pinged = true;
    if (response.status === 401) {
      this.#challenges = parseAuthChallenges(response.headers.get("www-authenticate"));
      return;
    }
    if (response.ok) return;
    throw new RegistryError(
      "UNKNOWN",
      `Cannot ping "${this.endpoint}/v2/": status ${response.status}`,
      { status: response.status, path: this.endpoint },
    );
  }

  /**
   * Sends a request to a path of the endpoint (or an absolute URL it gave, such as an upload
   * location), authenticating as the challenges ask and retrying once after a 401.
   *
   * @param method The HTTP method.
   * @param pathOrUrl `/v2/...` or an absolute URL.
   * @param options Headers, body, scopes and the meaning of a 404.
   * @returns The successful (2xx or 3xx) response.
   */
  async request(
    method: string,
    pathOrUrl: string,
    options: RequestOptions = {},
  ): Promise<Response> {
    if (!this.#pinged) await this.ping();
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.endpoint + pathOrUrl;
    const scopes = options.scopes ?? [];
    for (let attempt = 0;; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = await this.#authorization(scopes);
      if (authorization !== null) headers["authorization"] = authorization;
      const init: RequestInit = { method, headers };
      if (options.body !== undefined) init.body = options.body as BodyInit;
      let response: Response;
      try {
        response = await this.#fetch(url, init);
      } catch (cause) {
        throw new RegistryError("UNREACHABLE", `Cannot ${method} "${url}": ${cause}`, {
          cause,
          path: url,
        });
      }
      if (response.status === 401 && attempt === 0) {
        const challenges = parseAuthChallenges(response.headers.get("www-authenticate"));
        if (challenges.length > 0 && this.#canAnswer(challenges)) {
          await response.body?.cancel();
          this.#challenges = challenges;
          this.#tokens.clear();
          const scope = challenges.find((c) => c.scheme === "bearer")?.params.scope;
          if (scope !== undefined) { for (const s of scope.split(" ")) scopes.push(s); }
          continue;
        }
      }
      if (response.status < 400) return response;
      throw await errorFromResponse(response, `${method} ${url}`, options.notFound);
    }
  }

  #canAnswer(challenges: AuthChallenge[]): boolean {
    return challenges.some((c) =>
      c.scheme === "bearer" || (c.scheme === "basic" && this.#basic() !== null)
    );
  }

  #basic(): string | null {
    const auth = this.#auth;
    if (auth === undefined) return null;
    if (auth.username || auth.password) {
      return `Basic ${base64(`${auth.username ?? ""}:${auth.password ?? ""}`)}`;
    }
    if (auth.auth) return `Basic ${auth.auth}`;
    return null;
  }

  async #authorization(scopes: string[]): Promise<string | null> {
    if (this.#auth?.registrytoken) return `Bearer ${this.#auth.registrytoken}`;
    const bearer = this.#challenges.find((c) => c.scheme === "bearer");
    if (bearer !== undefined) return `Bearer ${await this.#token(bearer, scopes)}`;
    if (this.#challenges.some((c) => c.scheme === "basic")) return this.#basic();
    return null;
  }

  async #token(challenge: AuthChallenge, scopes: string[]): Promise<string> {
    const all = [...new Set(scopes)].sort();
    const key = all.join(" ");
    const cached = this.#tokens.get(key);
    if (cached !== undefined) return cached;
    const realm = challenge.params.realm;
    if (realm === undefined) {
      throw new ErrUnauthorized(`Cannot authenticate to "${this.endpoint}": no realm in challenge`);
    }
    const service = challenge.params.service ?? "";
    const auth = this.#auth;
    let response: Response;
    try {
      if (auth?.identitytoken) {
        const form = new URLSearchParams({
          grant_type: "refresh_token",
          service,
          client_id: "docker",
          refresh_token: auth.identitytoken,
        });
        if (all.length > 0) form.set("scope", key);
        response = await this.#fetch(realm, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: form.toString(),
        });
      } else {
        const url = new URL(realm);
        if (service !== "") url.searchParams.set("service", service);
        for (const scope of all) url.searchParams.append("scope", scope);
        const headers: Record<string, string> = {};
        const basic = this.#basic();
        if (basic !== null) headers["authorization"] = basic;
        if (auth?.username) url.searchParams.set("account", auth.username);
        url.searchParams.set("client_id", "docker");
        response = await this.#fetch(url.toString(), { method: "GET", headers });
      }
    } catch (cause) {
      throw new RegistryError("UNREACHABLE", `Cannot fetch a token from "${realm}": ${cause}`, {
        cause,
        path: realm,
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      const message = `Cannot fetch a token from "${realm}": status ${response.status}`;
      if (response.status === 401) throw new ErrUnauthorized(message, { status: 401, path: realm });
      throw new ErrAccessDenied(message, { status: response.status, path: realm });
    }
    const body = await response.json() as { token?: string; access_token?: string };
    const token = body.token || body.access_token;
    if (!token) {
      throw new ErrUnauthorized(`Cannot fetch a token from "${realm}": no token in answer`);
    }
    this.#tokens.set(key, token);
    return token;
  }
}

/**
 * Turns an error answer into the typed error for its first registry error code (or, without a
 * body, its status).
 *
 * @param response The answer (its body is consumed).
 * @param what What was attempted, for the message.
 * @param notFound The error a 404 without a known code means.
 * @returns The error to throw.
 */
export async function errorFromResponse(
  response: Response,
  what: string,
  notFound?: (options: RegistryErrorOptions) => RegistryError,
): Promise<RegistryError> {
  let errors: RegistryErrorEntry[] = [];
  let text = "";
  try {
    text = await response.text();
    const body = JSON.parse(text) as { errors?: RegistryErrorEntry[] };
    if (Array.isArray(body.errors)) errors = body.errors;
  } catch {
    // no JSON body: the status alone tells
  }
  const status = response.status;
  const first = errors[0];
  const detail = first
    ? `${first.code.toLowerCase().replaceAll("_", " ")}: ${first.message}`
    : `status ${status}`;
  const options: RegistryErrorOptions = { status, errors, path: response.url || what };
  const message = `Cannot ${what}: ${detail}`;
  switch (first?.code) {
    case "BLOB_UNKNOWN":
      return new ErrBlobUnknown(message, options);
    case "MANIFEST_UNKNOWN":
      return new ErrManifestUnknown(message, options);
    case "NAME_UNKNOWN":
      return new ErrRepositoryUnknown(repositoryOf(first, what), { ...options });
    case "NAME_INVALID":
      return new ErrRepositoryNameInvalid(repositoryOf(first, what), first.message, options);
    case "DENIED":
      return new ErrAccessDenied(message, options);
    case "UNAUTHORIZED":
      return new ErrUnauthorized(message, options);
    case "UNSUPPORTED":
      return new ErrUnsupported(message, options);
    case "DIGEST_INVALID":
      return new ErrBlobInvalidDigest(message, options);
  }
  if (first === undefined) {
    if (status === 401) return new ErrUnauthorized(message, options);
    if (status === 403) return new ErrAccessDenied(message, options);
    if (status === 404 && notFound) return notFound(options);
    if (status === 405) return new ErrUnsupported(message, options);
  }
  return new RegistryError(
    first?.code ?? "UNKNOWN",
    text && !first ? `${message}: ${text.slice(0, 200)}` : message,
    options,
  );
}

function repositoryOf(entry: RegistryErrorEntry, what: string): string {
  const detail = entry.detail as { name?: unknown } | undefined;
  if (typeof detail?.name === "string") return detail.name;
  return /\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(what)?.[1] ?? what;
}
