// Credentials for `check`: a docker config.json, or fields from the command line, turned
// into the AuthConfig dockerd would receive on push, per registry host.
import type { AuthConfig } from "../hmac.ts";

/** The credentials dockerd would use for one registry host, and where they came from. */
export interface HostCredentials {
  /** `null`: none (dockerd then hashes an empty AuthConfig, `{}`). */
  auth: AuthConfig | null;
  /** Where they came from: `config.json`, `--username`, `none`, `helper <name>`. */
  source: string;
}

/** Resolves the credentials for a registry host. */
export type CredentialResolver = (host: string) => HostCredentials;

/** Docker Hub's host names, as repositories name it and as `docker login` stores it. */
const DOCKER_HUB = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/**
 * The registry host of a repository name, by Docker's rule: the first component when it
 * has a `.` or `:` or is `localhost`, else `docker.io`.
 *
 * @param repository A repository name, e.g. `127.0.0.1:5000/team/app` or `library/busybox`.
 * @returns The host, e.g. `127.0.0.1:5000` or `docker.io`.
 */
export function registryHost(repository: string): string {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? "" : repository.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost") {
    return DOCKER_HUB.includes(first) ? "docker.io" : first;
  }
  return "docker.io";
}

/**
 * A repository as dockerd names it: host added, `library/` for official Docker Hub images,
 * a tag or digest dropped (`busybox:1.36` → `docker.io/library/busybox`).
 *
 * @param reference What the user typed.
 * @returns The full repository name.
 */
export function normalizeRepository(reference: string): string {
  let name = reference.replace(/@.*$/s, "");
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > lastSlash) name = name.slice(0, colon);
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  const explicitHost = first.includes(".") || first.includes(":") || first === "localhost";
  const host = registryHost(name);
  let path = explicitHost ? name.slice(slash + 1) : name;
  if (host === "docker.io" && !path.includes("/")) path = `library/${path}`;
  return `${host}/${path}`;
}

/** `https://index.docker.io/v1/` → `index.docker.io`, as the docker CLI matches keys. */
function hostnameOf(key: string): string {
  const stripped = key.replace(/^[a-z]+:\/\//i, "");
  const host = stripped.split("/")[0]!;
  return DOCKER_HUB.includes(host) ? "docker.io" : host;
}

/** Go's base64.StdEncoding, lenient about missing padding as the docker CLI's decoder is. */
function decodeBase64(text: string): string {
  const binary = atob(text.replace(/\s+/g, ""));
  return new TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
}

interface ConfigAuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

function stringField(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Turns one `auths` entry of a docker config.json into the AuthConfig the docker CLI sends:
 * `auth` (base64 `user:password`) decoded into `username`/`password`, as the CLI does.
 *
 * @param entry The entry, e.g. `{ "auth": "dXNlcjpwdw==" }`.
 * @param where Where it is, for error messages.
 * @returns The credentials, without the `auth` field.
 */
export function authFromConfigEntry(entry: ConfigAuthEntry, where: string): AuthConfig {
  const auth: AuthConfig = {};
  const encoded = stringField(entry.auth);
  if (encoded !== undefined) {
    let decoded: string;
    try {
      decoded = decodeBase64(encoded);
    } catch {
      throw new Error(`Cannot decode "auth" of ${where}: it is not base64`);
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new Error(`Cannot decode "auth" of ${where}: it has no ":"`);
    auth.username = decoded.slice(0, colon);
    auth.password = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, "");
  } else {
    const username = stringField(entry.username);
    const password = stringField(entry.password);
    if (username !== undefined) auth.username = username;
    if (password !== undefined) auth.password = password;
  }
  const identityToken = stringField(entry.identitytoken);
  const registryToken = stringField(entry.registrytoken);
  if (identityToken !== undefined) auth.identitytoken = identityToken;
  if (registryToken !== undefined) auth.registrytoken = registryToken;
  return auth;
}

/**
 * Reads a docker config.json: credentials per host from `auths`; hosts whose secrets live
 * in a credential helper (`credsStore`, `credHelpers`) are reported as such.
 *
 * @param text The file's contents.
 * @param path The file's path, for error messages.
 * @returns The resolver.
 */
export function credentialsFromConfig(text: string, path: string): CredentialResolver {
  let config: { auths?: unknown; credsStore?: unknown; credHelpers?: unknown };
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new Error(`Cannot parse "${path}": ${(error as Error).message}`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`Cannot use "${path}": it is not a JSON object`);
  }
  const byHost = new Map<string, AuthConfig>();
  const auths = typeof config.auths === "object" && config.auths !== null ? config.auths : {};
  for (const [key, entry] of Object.entries(auths as Record<string, ConfigAuthEntry>)) {
    if (typeof entry !== "object" || entry === null) continue;
    const auth = authFromConfigEntry(entry, `"auths" > "${key}" in "${path}"`);
    if (Object.keys(auth).length > 0) byHost.set(hostnameOf(key), auth);
  }
  const helpers = typeof config.credHelpers === "object" && config.credHelpers !== null
    ? config.credHelpers as Record<string, unknown>
    : {};
  const helperByHost = new Map<string, string>();
  for (const [key, helper] of Object.entries(helpers)) {
    if (typeof helper === "string") helperByHost.set(hostnameOf(key), helper);
  }
  const store = typeof config.credsStore === "string" ? config.credsStore : undefined;
  return (host) => {
    const auth = byHost.get(host);
    if (auth) return { auth, source: "config.json" };
    const helper = helperByHost.get(host) ?? store;
    if (helper) return { auth: null, source: `helper ${helper} (not run)` };
    return { auth: null, source: "none" };
  };
}

/**
 * The same credentials for every host, from command-line fields.
 *
 * @param auth The fields given.
 * @returns The resolver.
 */
export function credentialsFromFields(auth: AuthConfig): CredentialResolver {
  return () => ({ auth, source: "options" });
}
