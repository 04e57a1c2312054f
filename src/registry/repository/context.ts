/**
 * What the services of one repository share: its client, its names and the token scopes its
 * requests ask for, and the checks an answer passes before it is believed.
 *
 * @module
 */
import type { RegistryClient, RequestOptions } from "../transport/client.ts";
import type { HttpResponse } from "../transport/http.ts";
import { RegistryError } from "../errors.ts";
import type { TransferProgress } from "../types.ts";

/** One repository on one endpoint, as its services see it. */
export interface RepositoryContext {
  /** The endpoint's client. */
  readonly client: RegistryClient;
  /** The full name, e.g. `127.0.0.1:5000/team/app`. */
  readonly name: string;
  /** The path on the endpoint, e.g. `team/app`. */
  readonly path: string;
  /** The token scopes of its requests, e.g. `repository:team/app:pull,push`. */
  readonly scopes: string[];
  /** Per-blob progress. */
  readonly onProgress?: ((event: TransferProgress) => void) | undefined;
}

/** The media type of a blob the registry does not type. */
export const OCTET_STREAM = "application/octet-stream";

/** A request of the repository, asking its scopes unless `options` names others. */
export function request(
  ctx: RepositoryContext,
  method: string,
  pathOrUrl: string,
  options: RequestOptions = {},
): Promise<HttpResponse> {
  return ctx.client.request(method, pathOrUrl, { scopes: ctx.scopes, ...options });
}

/** The API path of a manifest, blob or tag list of the repository. */
export function apiPath(
  ctx: RepositoryContext,
  kind: "manifests" | "blobs" | "tags",
  rest: string,
): string {
  return `/v2/${ctx.path}/${kind}/${rest}`;
}

/** Throws `DIGEST_INVALID` when the registry's `Docker-Content-Digest` names another digest. */
export function checkAnsweredDigest(response: HttpResponse, asked: string, what: string): void {
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

/** The answer's `Content-Length`, 0 when it has none. */
export function declaredLength(response: HttpResponse): number {
  const value = response.headers.get("content-length");
  return value !== null && /^\d+$/.test(value) ? Number(value) : 0;
}

/** `TOO_LARGE` for `what` past `limit` bytes. */
export function tooLarge(what: string, limit: number, url: string): RegistryError {
  return new RegistryError("TOO_LARGE", `Cannot read ${what}: larger than ${limit} bytes`, {
    url,
    reason: `limit ${limit} bytes`,
  });
}
