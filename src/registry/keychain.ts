/**
 * Credentials per registry host, resolved as the docker CLI resolves them from a docker
 * `config.json`: its `auths` entries and its credential helpers (`credsStore`, `credHelpers`).
 * A {@linkcode Keychain} is accepted wherever `auth` is: pull, push, copy (per side), tags.
 *
 * Helpers are asked only for hosts a call needs, each host once (the answer is kept), a few at
 * a time, each within a time limit, and are found only in absolute `PATH` entries (never the
 * working directory).
 *
 * @module
 */
import { nodeBuiltin } from "../_runtime.ts";
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import { type AuthConfig, computeV2MetadataHMACKey } from "../hmac.ts";
import { getFromHelper } from "./_credential_helper.ts";
import { limiter } from "./_limit.ts";
import { defaultProgramRunner, type ProgramRunner } from "./_program.ts";

export type { ProgramLimits, ProgramResult, ProgramRunner } from "./_program.ts";

/** The credentials for one registry host, and where they came from. */
export interface KeychainEntry {
  /** `null`: none (dockerd then hashes an empty AuthConfig, `{}`). */
  auth: AuthConfig | null;
  /**
   * Where they came from: `config.json`, `helper <name>`, `none`, or `none (helper <name>)`
   * when the helper holds nothing for the host.
   */
  source: string;
}

/** Credentials per registry host. */
export interface Keychain {
  /**
   * The credentials for a registry host, e.g. `127.0.0.1:5000` or `docker.io` (a
   * `Reference`'s `domain`).
   */
  resolve(host: string): Promise<KeychainEntry>;
  /**
   * Whether resolving the host tells no helper of a host it did not know: the configuration
   * names it (in `auths` or `credHelpers`), or has no `credsStore` to ask about any host.
   */
  names(host: string): boolean;
}

/** Where {@linkcode dockerKeychain} reads and runs. */
export interface DockerKeychainOptions {
  /**
   * The docker config.json; default `$DOCKER_CONFIG/config.json`, else
   * `$HOME/.docker/config.json` (a missing default file means no credentials, a missing given
   * one is an error).
   */
  configFile?: string;
  /** Environment variables (`DOCKER_CONFIG`, `HOME`, `PATH`); default the process's. */
  env?: (name: string) => string | undefined;
  /** Reads a text file; default `node:fs`. */
  readTextFile?: (path: string) => Promise<string>;
  /** Runs a credential helper; default `node:child_process`, found in absolute `PATH` entries. */
  runProgram?: ProgramRunner;
  /** Milliseconds a helper may take before it is killed (default {@linkcode HELPER_TIMEOUT}). */
  helperTimeout?: number;
  /** Helpers running at once (default {@linkcode MAX_CONCURRENT_HELPERS}). */
  maxConcurrentHelpers?: number;
}

/**
 * How long a helper may take, in ms: long enough for one that asks for a passphrase (`pass`),
 * short enough that one that hangs does not hold a command for ever.
 */
export const HELPER_TIMEOUT = 60_000;

/** Helpers running at once: one command asks for a host or two, a crafted store for hundreds. */
export const MAX_CONCURRENT_HELPERS = 2;

/** The key the docker CLI stores Docker Hub's credentials under (`registry.IndexServer`). */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

/**
 * The key the docker CLI looks a host up by, in `auths`, in `credHelpers` and as the server URL
 * it gives a helper: the host itself, Docker Hub's old v1 URL for Docker Hub.
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
 * One `auths` entry of a docker config.json as the AuthConfig the docker CLI sends: `auth`
 * (base64 `user:password`) decoded into `username`/`password`.
 */
function authFromConfigEntry(entry: ConfigAuthEntry, where: string): AuthConfig {
  const auth: AuthConfig = {};
  const encoded = stringField(entry.auth);
  if (encoded !== undefined) {
    let decoded: string;
    try {
      decoded = decodeBase64(encoded);
    } catch {
      throw new MetadataError("EINVAL", `Cannot decode "auth" of ${where}: it is not base64`);
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new MetadataError("EINVAL", `Cannot decode "auth" of ${where}: it has no ":"`);
    }
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
 * A keychain over the text of a docker config.json, resolving as the docker CLI's
 * `ResolveAuthConfig` does: the helper named for the host in `credHelpers`, else the
 * `credsStore` helper, is asked for user name and secret (an `auths` entry for the host keeps
 * its other fields, the registry token); without a helper the `auths` entry is used, looked up
 * by its exact key, else by its host name. Unlike the docker CLI, which then silently pushes
 * with the `auths` entry alone, a helper that cannot be run or fails is an error.
 *
 * @param text The file's contents.
 * @param path The file's path, for error messages.
 * @param options How helpers run: the runner (by default found on the `PATH` of `env`), their
 * time limit and how many at once.
 * @returns The keychain; each host's answer is kept, so a helper is asked once per host.
 * @throws {MetadataError} `EINVAL` when the text is no JSON object or an `auth` is not base64.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { keychainFromConfig } from "./keychain.ts";
 *
 * const config = JSON.stringify({ auths: { "127.0.0.1:5000": { auth: btoa("ci:pw") } } });
 * const keychain = keychainFromConfig(config, "config.json");
 * deepEqual(await keychain.resolve("127.0.0.1:5000"), {
 *   auth: { username: "ci", password: "pw" },
 *   source: "config.json",
 * });
 * ```
 */
export function keychainFromConfig(
  text: string,
  path: string,
  options: Pick<
    DockerKeychainOptions,
    "env" | "runProgram" | "helperTimeout" | "maxConcurrentHelpers"
  > = {},
): Keychain {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new MetadataError("EINVAL", `Cannot parse "${path}": ${(error as Error).message}`, {
      path,
    });
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new MetadataError("EINVAL", `Cannot use "${path}": it is not a JSON object`, { path });
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
  const timeout = options.helperTimeout ?? HELPER_TIMEOUT;
  const slots = limiter(options.maxConcurrentHelpers ?? MAX_CONCURRENT_HELPERS);
  const resolveKey = async (key: string): Promise<KeychainEntry> => {
    const entry = entryFor(key);
    // An entry in credHelpers wins even when empty (no helper then), as in the docker CLI.
    const named = Object.hasOwn(helpers, key) ? helpers[key] : store;
    const helper = typeof named === "string" && named !== "" ? named : undefined;
    if (helper === undefined) {
      const found = entry !== undefined && Object.keys(entry).length > 0;
      return found ? { auth: entry, source: "config.json" } : { auth: null, source: "none" };
    }
    const run = options.runProgram ?? defaultProgramRunner(options.env ?? processEnv);
    if (run === null) {
      throw new MetadataError(
        "ENOSYS",
        `Cannot run credential helper "${helper}": this runtime cannot run programs; pass runProgram`,
      );
    }
    // nativeStore.Get: the entry's user name, password and identity token are the helper's.
    const { username: _, password: __, identitytoken: ___, ...kept } = entry ?? {};
    const fromHelper = await slots(() => getFromHelper(run, timeout, helper, key));
    const auth: AuthConfig = { ...kept, ...fromHelper };
    if (fromHelper !== null) return { auth, source: `helper ${helper}` };
    return { auth: Object.keys(auth).length > 0 ? auth : null, source: `none (helper ${helper})` };
  };
  const answers = new Map<string, Promise<KeychainEntry>>();
  return {
    resolve(host) {
      const key = configKey(host);
      let answer = answers.get(key);
      if (answer === undefined) answers.set(key, answer = resolveKey(key));
      return answer;
    },
    names(host) {
      const key = configKey(host);
      return entryFor(key) !== undefined || Object.hasOwn(helpers, key) || store === undefined;
    },
  };
}

/** The process's environment variables, where the runtime gives them. */
function processEnv(name: string): string | undefined {
  try {
    return nodeBuiltin<{ env: Record<string, string | undefined> }>("node:process", "cwd")
      ?.env[name];
  } catch {
    return undefined; // Deno without --allow-env
  }
}

/** Reads a file with `node:fs`, where the runtime has it. */
function nodeReadTextFile(path: string): Promise<string> {
  const fs = nodeBuiltin<
    { promises: { readFile(path: string, encoding: "utf8"): Promise<string> } }
  >(
    "node:fs",
    "readFileSync",
  );
  if (fs === null) {
    return Promise.reject(
      new MetadataError(
        "ENOSYS",
        `Cannot read "${path}": this runtime has no files; pass readTextFile`,
      ),
    );
  }
  return fs.promises.readFile(path, "utf8");
}

/**
 * The docker CLI's keychain: credentials from a docker config.json and the helpers it names
 * (see {@linkcode keychainFromConfig}). A missing default file means no credentials for any
 * host, as for the docker CLI; a file that cannot be read or parsed is an error naming it.
 *
 * @param options The config file, and how to read it and run helpers.
 * @returns The keychain; helpers run when a host is first resolved, not before.
 * @throws {MetadataError} When the file cannot be read (`ENOENT` for a missing given file) or parsed.
 *
 * @example Pull with the user's docker credentials
 * ```ts ignore
 * import { dockerKeychain, ociLayoutStore, pull } from "@distribution/metadata/registry";
 *
 * const keychain = await dockerKeychain();
 * await pull("registry.example.com/team/app:1.0", await ociLayoutStore("/tmp/app"), { keychain });
 * ```
 */
export async function dockerKeychain(options: DockerKeychainOptions = {}): Promise<Keychain> {
  const env = options.env ?? processEnv;
  const path = options.configFile ??
    `${env("DOCKER_CONFIG") ?? `${env("HOME") ?? ""}/.docker`}/config.json`;
  let text: string;
  try {
    text = await (options.readTextFile ?? nodeReadTextFile)(path);
  } catch (error) {
    if (error instanceof MetadataError) throw error;
    const code = errorCode(error);
    // The docker CLI without a config file: no credentials, for every host.
    if (code === "ENOENT" && options.configFile === undefined) {
      return { resolve: () => Promise.resolve({ auth: null, source: "none" }), names: () => true };
    }
    const why = code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES"
      ? "permission denied"
      : String(error);
    throw new MetadataError(code, `Cannot read credentials "${path}": ${why}`, { path });
  }
  return keychainFromConfig(text, path, { ...options, env });
}

/** A configuration whose credentials are settled: no keychain left. */
export type Settled<T> = Omit<T, "keychain"> & Omit<CredentialFields, "keychain">;

/** What {@linkcode withCredentials} fills in. */
export interface CredentialFields {
  /** Credentials given: used as they are. */
  auth?: AuthConfig;
  /** Resolves the credentials when `auth` is not given. */
  keychain?: Keychain;
  /** The HMAC key; derived from the keychain's credentials when not given. */
  hmacKey?: Uint8Array | null;
}

/**
 * A configuration with its credentials for `host` settled: `auth` as given, else the
 * keychain's. With credentials from the keychain, `hmacKey` (unless given) is derived from
 * them as dockerd derives it (`computeV2MetadataHMACKey`, of `{}` when the keychain has none);
 * with `auth` given, `hmacKey` stays as given, so a pull without one records untagged entries,
 * byte for byte as dockerd's pull.
 *
 * @param host The registry host, e.g. `127.0.0.1:5000`.
 * @param config The configuration.
 * @returns A copy with `auth` and `hmacKey` set, without the keychain.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { computeV2MetadataHMACKey } from "../hmac.ts";
 * import { keychainFromConfig, withCredentials } from "./keychain.ts";
 *
 * const keychain = keychainFromConfig('{"auths":{"r.test":{"auth":"Y2k6cHc="}}}', "config.json");
 * const settled = await withCredentials("r.test", { keychain });
 * equal(settled.auth?.username, "ci");
 * equal(String(settled.hmacKey), String(await computeV2MetadataHMACKey({ username: "ci", password: "pw" })));
 * ```
 */
export async function withCredentials<T extends CredentialFields>(
  host: string,
  config: T,
): Promise<Settled<T>> {
  const { keychain, ...rest } = config;
  const settled: CredentialFields = { ...rest as CredentialFields };
  if (config.auth !== undefined || keychain === undefined) return settled as Settled<T>;
  const auth = (await keychain.resolve(host)).auth ?? {};
  if (Object.keys(auth).length > 0) settled.auth = auth;
  // Given `auth` alone keeps the key unset: pull then records untagged, as dockerd's pull.
  if (config.hmacKey === undefined) settled.hmacKey = await computeV2MetadataHMACKey(auth);
  return settled as Settled<T>;
}
