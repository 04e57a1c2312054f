/**
 * From a reference to repositories: the registry endpoints it resolves to (Docker Hub's mirrors
 * first, as dockerd's `GetRepositories` orders them), each pinged, and `tags()`.
 *
 * @module
 */
import { RegistryClient } from "./transport/client.ts";
import { isRegistryError, RegistryError } from "./errors.ts";
import { DEFAULT_DOMAIN, familiarName, parseReference, type Reference } from "./reference.ts";
import { withCredentials } from "./keychain.ts";
import { HttpRepository } from "./repository.ts";
import type { RegistryConfig, Repository } from "./types.ts";

/** Docker Hub's registry endpoint. */
export const DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io";

/** One place a repository can be reached. */
export interface RegistryEndpoint {
  /** The base URL, e.g. `https://registry-1.docker.io`. */
  url: string;
  /** Whether it is a pull-through mirror. */
  mirror: boolean;
}

/**
 * The endpoints of a reference's registry, in the order dockerd tries them: for Docker Hub the
 * configured mirrors, then Docker Hub itself; for any other registry that registry
 * (`http://` with `plainHttp`). Pushes never go to mirrors.
 *
 * @param ref The parsed reference.
 * @param config Mirrors and `plainHttp`.
 * @param forPush `true` to leave the mirrors out.
 * @returns The endpoints.
 */
export function endpointsFor(
  ref: Reference,
  config: RegistryConfig = {},
  forPush = false,
): RegistryEndpoint[] {
  if (ref.domain === DEFAULT_DOMAIN) {
    const mirrors = forPush ? [] : (config.mirrors ?? []).map((m) => ({
      url: (/^https?:\/\//.test(m) ? m : `https://${m}`).replace(/\/+$/, ""),
      mirror: true,
    }));
    return [...mirrors, { url: DOCKER_HUB_ENDPOINT, mirror: false }];
  }
  return [{ url: `${config.plainHttp ? "http" : "https"}://${ref.domain}`, mirror: false }];
}

/** Refuses `scratch`, as dockerd's `validateRepoName`. */
export function checkRepositoryName(ref: Reference): void {
  if (familiarName(ref) === "scratch") {
    const reason = "'scratch' is a reserved name";
    throw new RegistryError("NAME_INVALID", `Cannot use "${ref.name}": ${reason}`, {
      url: ref.name,
      reason,
    });
  }
}

/**
 * Opens a repository on one endpoint and pings it (`/v2/`), keeping the auth challenge.
 *
 * @param ref The parsed reference.
 * @param endpoint Where.
 * @param config Credentials, transport, progress.
 * @param actions Token scope actions (`["pull"]`, or `["push", "pull"]`).
 * @returns The repository.
 */
export async function openRepository(
  ref: Reference,
  endpoint: RegistryEndpoint,
  config: RegistryConfig = {},
  actions: string[] = ["pull"],
): Promise<HttpRepository> {
  const client = new RegistryClient(endpoint.url, {
    auth: config.auth,
    fetch: config.fetch,
    signal: config.signal,
    idleTimeout: config.idleTimeout,
    retry: config.retry,
    userAgent: config.userAgent,
    tls: config.tls,
  });
  await client.ping();
  return new HttpRepository(client, {
    name: ref.name,
    path: ref.path,
    mirror: endpoint.mirror,
    actions,
    onProgress: config.onProgress,
  });
}

/**
 * The repositories a reference can be pulled from: for Docker Hub references the configured
 * mirrors first, then Docker Hub; endpoints whose `/v2/` ping fails are left out. Fails with
 * the last error when none answers, or when the reference is invalid.
 *
 * @param ref A Docker reference, e.g. `busybox` or `127.0.0.1:5000/team/app`.
 * @param config Credentials, mirrors, transport.
 * @returns The reachable repositories, in the order to try them.
 *
 * @example
 * ```ts ignore
 * import { getRepositories } from "@distribution/metadata/registry";
 * const [repo] = await getRepositories("busybox", { mirrors: ["https://mirror.gcr.io"] });
 * console.log(repo?.endpoint);
 * ```
 */
export async function getRepositories(
  ref: string,
  config: RegistryConfig = {},
): Promise<Repository[]> {
  const parsed = parseReference(ref);
  checkRepositoryName(parsed);
  config = await withCredentials(parsed.domain, config);
  const repositories: Repository[] = [];
  let lastError: unknown = null;
  for (const endpoint of endpointsFor(parsed, config)) {
    try {
      repositories.push(await openRepository(parsed, endpoint, config));
    } catch (error) {
      if (isRegistryError(error, "ABORTED")) throw error;
      lastError = error;
    }
  }
  if (repositories.length === 0) {
    throw lastError ?? new RegistryError("UNREACHABLE", `Cannot reach a registry for "${ref}"`);
  }
  return repositories;
}

/**
 * The tags of a repository (Docker's `distribution.Tags`), following pagination on the
 * registry's origin. Each tag is validated, a page that links back to one already read fails
 * with `LOOP`, and all pages together are bounded (`LIMITS.tagList`, `LIMITS.tagPages`).
 *
 * @param ref A reference; its tag or digest, if any, is ignored.
 * @param config Credentials, mirrors, transport.
 * @returns The tags, as the registry lists them.
 *
 * @example
 * ```ts ignore
 * import { tags } from "@distribution/metadata/registry";
 * console.log(await tags("127.0.0.1:5000/team/app", { plainHttp: true }));
 * ```
 */
export async function tags(ref: string, config: RegistryConfig = {}): Promise<string[]> {
  let lastError: unknown = null;
  for (const repository of await getRepositories(ref, config)) {
    try {
      return await repository.tags().all();
    } catch (error) {
      lastError = error;
      if (!repository.mirror || isRegistryError(error, "ABORTED")) break;
    }
  }
  throw lastError;
}

/** Codes that let dockerd fall back to the next endpoint (shouldV2Fallback). */
const FALLBACK_CODES: ReadonlySet<string> = new Set([
  "UNAUTHORIZED",
  "MANIFEST_UNKNOWN",
  "NAME_UNKNOWN",
  "UNREACHABLE",
]);

/**
 * `attempt` on each of the endpoints in turn (mirrors first, as `getRepositories` orders them),
 * going on to the next after a mirror's failure or one dockerd falls back on, never after an
 * abort; the last endpoint's failure is thrown.
 *
 * @param repositories The endpoints, from `getRepositories`.
 * @param attempt The transfer from one endpoint.
 * @returns The first endpoint's result that succeeds.
 */
export async function fromFirstEndpoint<T>(
  repositories: Repository[],
  attempt: (repo: Repository) => Promise<T>,
): Promise<T> {
  for (const [i, repo] of repositories.entries()) {
    try {
      return await attempt(repo);
    } catch (error) {
      const more = i < repositories.length - 1;
      const fallback = !isRegistryError(error, "ABORTED") &&
        (repo.mirror || (isRegistryError(error) && FALLBACK_CODES.has(error.code)));
      if (!more || !fallback) throw error;
    }
  }
  throw new Error("unreachable: getRepositories returns at least one repository");
}
