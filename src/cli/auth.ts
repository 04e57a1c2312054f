// Credentials per registry host, resolved as the docker CLI resolves them before it sends
// them to dockerd: command-line fields, or a docker config.json with its `auths` entries and
// its credential helpers (`credsStore`, `credHelpers`).
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { AuthConfig } from "../hmac.ts";
import { getFromHelper, type ProgramRunner } from "./credential_helper.ts";

/** The credentials dockerd would use for one registry host, and where they came from. */
export interface HostCredentials {
  /** `null`: none (dockerd then hashes an empty AuthConfig, `{}`). */
  auth: AuthConfig | null;
  /**
   * Where they came from: `options`, `config.json`, `helper <name>`, `none`, or
   * `none (helper <name>)` when the helper holds nothing for the host.
   */
  source: string;
}

/**
 * Resolves the credentials for a registry host, e.g. `127.0.0.1:5000` or `docker.io`: a
 * `Reference`'s `domain` from the registry's reference module, where names are normalised.
 */
export type CredentialResolver = (host: string) => Promise<HostCredentials>;

/** The key the docker CLI stores Docker Hub's credentials under (`registry.IndexServer`). */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

/**
 * The key the docker CLI looks a host up by, in `auths`, in `credHelpers` and as the
 * server URL it gives a helper: the host itself, Docker Hub's old v1 URL for Docker Hub.
 */
function configKey(host: string): string {
  return host === "docker.io" ? DOCKER_HUB_KEY : host;
}

/** The docker CLI's `ConvertToHostname`: `https://host/path` → `host`. */
function convertToHostname(key: string): string {
  return key.replace(/^https?:\/\//, "").split("/")[0]!;
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

function objectField(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

/**
 * Reads a docker config.json and resolves credentials from it as the docker CLI's
 * `ResolveAuthConfig` does: the helper named for the host in `credHelpers`, else the
 * `credsStore` helper, is asked for user name and secret (an `auths` entry for the host
 * keeps its other fields, the registry token); without a helper the `auths` entry is used,
 * looked up by its exact key, else by its host name.
 *
 * Unlike the docker CLI, which then silently pushes with the `auths` entry alone, a helper
 * that cannot be run or fails is an error.
 *
 * @param text The file's contents.
 * @param path The file's path, for error messages.
 * @param run How to run a credential helper.
 * @returns The resolver.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { credentialsFromConfig } from "./auth.ts";
 *
 * const config = JSON.stringify({ auths: { "127.0.0.1:5000": { auth: btoa("ci:pw") } } });
 * const resolve = credentialsFromConfig(config, "config.json", () => {
 *   throw new Error("no helper is configured");
 * });
 * deepEqual(await resolve("127.0.0.1:5000"), {
 *   auth: { username: "ci", password: "pw" },
 *   source: "config.json",
 * });
 * ```
 */
export function credentialsFromConfig(
  text: string,
  path: string,
  run: ProgramRunner,
): CredentialResolver {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new Error(`Cannot parse "${path}": ${(error as Error).message}`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`Cannot use "${path}": it is not a JSON object`);
  }
  const { auths, credHelpers, credsStore } = config as Record<string, unknown>;
  const byKey = new Map<string, AuthConfig>();
  for (const [key, entry] of Object.entries(objectField(auths))) {
    if (typeof entry !== "object" || entry === null) continue;
    byKey.set(key, authFromConfigEntry(entry, `"auths" > "${key}" in "${path}"`));
  }
  const entryFor = (key: string) => {
    const exact = byKey.get(key);
    if (exact) return exact;
    for (const [other, auth] of byKey) if (convertToHostname(other) === key) return auth;
    return undefined;
  };
  const helpers = objectField(credHelpers);
  const store = typeof credsStore === "string" && credsStore !== "" ? credsStore : undefined;
  return async (host) => {
    const key = configKey(host);
    const entry = entryFor(key);
    // An entry in credHelpers wins even when empty (no helper then), as in the docker CLI.
    const named = Object.hasOwn(helpers, key) ? helpers[key] : store;
    const helper = typeof named === "string" && named !== "" ? named : undefined;
    if (helper === undefined) {
      const found = entry !== undefined && Object.keys(entry).length > 0;
      return found ? { auth: entry, source: "config.json" } : { auth: null, source: "none" };
    }
    // nativeStore.Get: the entry's user name, password and identity token are the helper's.
    const { username: _, password: __, identitytoken: ___, ...kept } = entry ?? {};
    const fromHelper = await getFromHelper(run, helper, key);
    const auth: AuthConfig = { ...kept, ...fromHelper };
    if (fromHelper !== null) return { auth, source: `helper ${helper}` };
    return { auth: Object.keys(auth).length > 0 ? auth : null, source: `none (helper ${helper})` };
  };
}

/**
 * The same credentials for every host, from command-line fields.
 *
 * @param auth The fields given.
 * @returns The resolver.
 */
export function credentialsFromFields(auth: AuthConfig): CredentialResolver {
  return () => Promise.resolve({ auth, source: "options" });
}

/** Where credentials come from: fields, or a docker config.json. */
export interface CredentialOptions {
  /** A docker config.json; default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
  configFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  identityToken?: string | undefined;
  registryToken?: string | undefined;
}

/** What resolving credentials needs from the runtime. */
export interface CredentialEnvironment {
  /** An environment variable (`DOCKER_CONFIG`, `HOME`). */
  env(name: string): string | undefined;
  /** Reads a text file, following symlinks. */
  readTextFile(path: string): Promise<string>;
  /** Runs a credential helper. */
  runProgram: ProgramRunner;
}

/**
 * The credentials the docker CLI would send to dockerd for each registry host: the fields
 * given, when any is; else those of the docker config.json (see
 * {@linkcode credentialsFromConfig}). A config file that is missing means no credentials,
 * as for the docker CLI; one that cannot be read or parsed is an error naming it.
 *
 * @param options The fields, or the config file to read.
 * @param environment The runtime: environment variables, files, programs.
 * @returns The resolver; helpers run when a host is first resolved, not before.
 *
 * @example Fields given on the command line
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { credentialResolver } from "./auth.ts";
 *
 * const resolve = await credentialResolver({ username: "ci", password: "pw" }, {
 *   env: () => undefined,
 *   readTextFile: () => Promise.reject(new Error("not read")),
 *   runProgram: () => Promise.reject(new Error("not run")),
 * });
 * deepEqual((await resolve("127.0.0.1:5000")).auth, { username: "ci", password: "pw" });
 * ```
 */
export async function credentialResolver(
  options: CredentialOptions,
  environment: CredentialEnvironment,
): Promise<CredentialResolver> {
  const fields: AuthConfig = {};
  if (options.username !== undefined) fields.username = options.username;
  if (options.password !== undefined) fields.password = options.password;
  if (options.identityToken !== undefined) fields.identitytoken = options.identityToken;
  if (options.registryToken !== undefined) fields.registrytoken = options.registryToken;
  if (Object.keys(fields).length > 0) {
    if (options.configFile !== undefined) {
      throw new MetadataError("EINVAL", "Pass either a config file or credential fields, not both");
    }
    return credentialsFromFields(fields);
  }
  const path = options.configFile ??
    `${environment.env("DOCKER_CONFIG") ?? `${environment.env("HOME") ?? ""}/.docker`}/config.json`;
  let text: string;
  try {
    text = await environment.readTextFile(path);
  } catch (error) {
    const code = errorCode(error);
    // The docker CLI without a config file: no credentials, for every host.
    if (code === "ENOENT" && options.configFile === undefined) {
      return () => Promise.resolve({ auth: null, source: "none" });
    }
    const why = code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES"
      ? "permission denied"
      : String(error);
    throw new MetadataError(code, `Cannot read credentials "${path}": ${why}`, { path });
  }
  return credentialsFromConfig(text, path, environment.runProgram);
}
