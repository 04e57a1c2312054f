/**
 * Who gets credentials. The registry's challenges are kept for its own origin (scheme, host
 * and port) only, as dockerd keeps them per host: Basic credentials, the registry's bearer
 * tokens and a `registrytoken` are sent to that origin and nowhere else, whatever upload
 * `Location` or tag-list `Link` the registry answers with. A token realm receives credentials
 * only over https, or over plain http when the registry itself is plain http (`plainHttp`);
 * an https registry naming an http realm is refused with `INSECURE_REALM`.
 *
 * @module
 */
import type { AuthConfig } from "../../hmac.ts";
import { RegistryError } from "../errors.ts";
import type { AuthChallenge } from "./challenge.ts";
import { errorFromResponse } from "./error_answer.ts";
import { type CallLimits, type HttpRequest, send } from "./http.ts";
import { LIMITS, parseJson, readAtMost } from "./limits.ts";
import type { Transport } from "./transport.ts";

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The `Authorization` values for one registry origin, from its challenges. */
export class Authenticator {
  /** The registry's origin, e.g. `https://registry.example.com:5000`: the only one authorised. */
  readonly origin: string;
  readonly #auth: AuthConfig | undefined;
  readonly #transport: Transport;
  readonly #limits: CallLimits;
  #challenges: AuthChallenge[] = [];
  readonly #tokens = new Map<string, string>();

  /**
   * @param endpoint The registry's base URL.
   * @param auth The credentials.
   * @param transport What carries token requests.
   * @param limits Signal and idle timeout of token requests.
   */
  constructor(
    endpoint: string,
    auth: AuthConfig | undefined,
    transport: Transport,
    limits: CallLimits,
  ) {
    this.origin = new URL(endpoint).origin;
    this.#auth = auth;
    this.#transport = transport;
    this.#limits = limits;
  }

  /** Whether `url` is on the registry's origin. */
  owns(url: string): boolean {
    return new URL(url).origin === this.origin;
  }

  /** Keeps the challenges the registry's origin answered with (tokens of old ones are dropped). */
  learn(challenges: AuthChallenge[]): void {
    this.#challenges = challenges;
    this.#tokens.clear();
  }

  /** Whether a request can be sent again with an answer to one of these challenges. */
  canAnswer(challenges: AuthChallenge[]): boolean {
    return challenges.some((c) =>
      c.scheme === "bearer" || (c.scheme === "basic" && this.#basic() !== null)
    );
  }

  /**
   * The `Authorization` header for a request to `url`: `null` for any other origin than the
   * registry's, and when no challenge asks for one.
   */
  async authorization(url: string, scopes: string[]): Promise<string | null> {
    if (!this.owns(url)) return null;
    const bearer = this.#challenges.find((c) => c.scheme === "bearer");
    if (bearer !== undefined) {
      // dockerd hands a registrytoken over as is, in place of the token flow.
      return `Bearer ${this.#auth?.registrytoken || await this.#token(bearer, scopes)}`;
    }
    if (this.#challenges.some((c) => c.scheme === "basic")) return this.#basic();
    return null;
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

  /** The realm's URL, refused when credentials would travel in clear text from an https registry. */
  #realm(challenge: AuthChallenge): URL {
    const realm = challenge.params.realm;
    let url: URL | null = null;
    try {
      if (realm !== undefined) url = new URL(realm);
    } catch {
      // refused below
    }
    if (url === null) {
      throw new RegistryError(
        "MALFORMED",
        `Cannot authenticate to "${this.origin}": the challenge's realm ${
          realm === undefined ? "is missing" : `"${realm}" is not a URL`
        }`,
        { url: this.origin },
      );
    }
    const registryIsHttp = this.origin.startsWith("http:");
    if (url.protocol === "https:" || (url.protocol === "http:" && registryIsHttp)) return url;
    throw new RegistryError(
      "INSECURE_REALM",
      `Cannot authenticate to "${this.origin}": token realm "${url}" is not https`,
      { url: url.toString(), reason: "token realm is not https" },
    );
  }

  async #token(challenge: AuthChallenge, scopes: string[]): Promise<string> {
    const all = [...new Set(scopes)].sort();
    const key = all.join(" ");
    const cached = this.#tokens.get(key);
    if (cached !== undefined) return cached;
    const realm = this.#realm(challenge);
    const service = challenge.params.service ?? "";
    const request = this.#auth?.identitytoken
      ? this.#tokenPost(realm, service, all, this.#auth.identitytoken)
      : this.#tokenGet(realm, service, all);
    const response = await send(this.#transport, request, this.#limits);
    const where = `a token from "${realm}"`;
    if (response.status < 200 || response.status > 299) {
      throw await errorFromResponse(response, { method: request.method, url: realm.toString() }, {
        what: `fetch ${where}`,
        code: response.status === 401 ? "UNAUTHORIZED" : "DENIED",
      });
    }
    const body = parseJson(
      await readAtMost(response.body, LIMITS.token, where, realm.toString()),
      where,
      realm.toString(),
    ) as { token?: unknown; access_token?: unknown } | null;
    const token = body?.token || body?.access_token;
    if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) {
      throw new RegistryError("MALFORMED", `Cannot fetch ${where}: no token in the answer`, {
        url: realm.toString(),
      });
    }
    this.#tokens.set(key, token);
    return token;
  }

  /** dockerd's OAuth2 refresh-token grant, for an `identitytoken`. */
  #tokenPost(realm: URL, service: string, scopes: string[], refreshToken: string): HttpRequest {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      service,
      client_id: "docker",
      refresh_token: refreshToken,
    });
    if (scopes.length > 0) form.set("scope", scopes.join(" "));
    return {
      method: "POST",
      url: realm.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    };
  }

  /** The token GET, with Basic credentials when there are some. */
  #tokenGet(realm: URL, service: string, scopes: string[]): HttpRequest {
    const url = new URL(realm);
    if (service !== "") url.searchParams.set("service", service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    const basic = this.#basic();
    if (basic !== null) headers["authorization"] = basic;
    if (this.#auth?.username) url.searchParams.set("account", this.#auth.username);
    url.searchParams.set("client_id", "docker");
    return { method: "GET", url: url.toString(), headers };
  }
}
