// The CLI's credentials: which keychain each registry a command talks to uses, from the command
// line (`-u`/`--password-stdin`, `--creds`, copy's `--src-*`/`--dest-*` as skopeo has them) or a
// docker config.json and its helpers (the registry library's keychain).
import type { AuthConfig } from "../hmac.ts";
import { dockerKeychain, type Keychain, type KeychainEntry } from "../registry/keychain.ts";
import { parseReference } from "../registry/reference.ts";
import { type CliArgs, type SideCredentialArgs, UsageError } from "./args.ts";

/**
 * Resolves the credentials for a registry host, e.g. `127.0.0.1:5000` or `docker.io`: a
 * `Reference`'s `domain`, where names are normalised.
 */
export type CredentialResolver = (host: string) => Promise<KeychainEntry>;

/** What resolving credentials needs from the runtime. */
export interface CredentialEnvironment {
  /** An environment variable (`DOCKER_CONFIG`, `HOME`). */
  env(name: string): string | undefined;
  /** Reads a text file, following symlinks. */
  readTextFile(path: string): Promise<string>;
  /** Reads stdin to its end; rejects when it holds more than `maxBytes`. */
  readStdin(maxBytes: number): Promise<string>;
}

/** The longest password stdin gives: identity tokens are a few KiB. */
const MAX_PASSWORD_BYTES = 64 * 1024;

/** The same credentials for every host. */
function fieldsKeychain(auth: AuthConfig, source: string): Keychain {
  return { resolve: () => Promise.resolve({ auth, source }), names: () => true };
}

/** No credentials for any host. */
function anonymousKeychain(option: string): Keychain {
  return { resolve: () => Promise.resolve({ auth: null, source: option }), names: () => true };
}

/** The CLI's keychains, each made once, and the one password stdin can give. */
export class CommandCredentials {
  readonly #args: CliArgs;
  readonly #environment: CredentialEnvironment;
  readonly #warn: (line: string) => void;
  #shared: Promise<Keychain> | undefined;
  #stdinTakenBy: string | undefined;

  /**
   * @param args The command line.
   * @param environment Environment variables, files, stdin.
   * @param warn Prints a warning.
   */
  constructor(args: CliArgs, environment: CredentialEnvironment, warn: (line: string) => void) {
    this.#args = args;
    this.#environment = environment;
    this.#warn = warn;
  }

  /** The password on stdin, for `option`: stdin holds one. */
  async #password(option: string): Promise<string> {
    if (this.#stdinTakenBy !== undefined) {
      throw new UsageError(
        `Cannot read passwords for both "${this.#stdinTakenBy}" and "${option}" from stdin: give one as USER:PASSWORD`,
      );
    }
    this.#stdinTakenBy = option;
    // As `docker login --password-stdin`: one trailing newline (LF or CRLF) is not part of it.
    return (await this.#environment.readStdin(MAX_PASSWORD_BYTES)).replace(/\r?\n$/, "");
  }

  /** `USER[:PASSWORD]`, the password from stdin when omitted, as skopeo's `--creds`. */
  async #creds(text: string, option: string): Promise<Keychain> {
    const colon = text.indexOf(":");
    const username = colon < 0 ? text : text.slice(0, colon);
    if (username === "") throw new UsageError(`Option "${option}" needs a user name`);
    const password = colon < 0 ? await this.#password(option) : text.slice(colon + 1);
    return fieldsKeychain({ username, password }, option);
  }

  /** The keychain of a command's registries: `--creds`, `-u` and tokens, or a config.json. */
  shared(): Promise<Keychain> {
    return this.#shared ??= this.#makeShared();
  }

  async #makeShared(): Promise<Keychain> {
    const args = this.#args;
    if (args.creds !== undefined) return await this.#creds(args.creds, "--creds");
    const fields: AuthConfig = {};
    if (args.username !== undefined) fields.username = args.username;
    if (args.password !== undefined) {
      this.#warn(
        'warning: a password in the arguments shows in the process list; use "--password-stdin"',
      );
      fields.password = args.password;
    }
    if (args.passwordStdin) fields.password = await this.#password("--password-stdin");
    if (args.identityToken !== undefined) fields.identitytoken = args.identityToken;
    if (args.registryToken !== undefined) fields.registrytoken = args.registryToken;
    if (Object.keys(fields).length > 0) return fieldsKeychain(fields, "options");
    const { env, readTextFile } = this.#environment;
    return await dockerKeychain({
      ...(args.authFile === undefined ? {} : { configFile: args.authFile }),
      env,
      readTextFile,
    });
  }

  /**
   * Refuses credential fields (`-u`, tokens) for two registries: one's password would go to
   * the other.
   *
   * @param source The source registry host.
   * @param destination The destination registry host.
   * @throws {UsageError} When fields are given and the hosts differ.
   */
  checkSides(source: string, destination: string): void {
    const args = this.#args;
    const fields = (args.username ?? args.identityToken ?? args.registryToken) !== undefined;
    if (fields && source !== destination) {
      throw new UsageError(
        `Cannot send "--username" credentials to both "${source}" and "${destination}": pass "--src-creds" and "--dest-creds"`,
      );
    }
  }

  /**
   * The keychain of one side of `copy`: its own options, else the shared one.
   *
   * @param side The side's options.
   * @param prefix `src` or `dest`, for messages.
   * @returns The keychain.
   */
  async side(side: SideCredentialArgs, prefix: "src" | "dest"): Promise<Keychain> {
    if (side.noCreds) return anonymousKeychain(`none (--${prefix}-no-creds)`);
    if (side.creds !== undefined) return await this.#creds(side.creds, `--${prefix}-creds`);
    if (side.authFile !== undefined) {
      const { env, readTextFile } = this.#environment;
      return await dockerKeychain({ configFile: side.authFile, env, readTextFile });
    }
    return await this.shared();
  }

  /**
   * `check`'s resolver: helpers are asked only for hosts the configuration names, and for the
   * `--target` registry; a host only the store names (which a crafted store could fill with
   * hundreds) is never sent to the user's helper.
   *
   * @returns The resolver.
   */
  async forCheck(): Promise<CredentialResolver> {
    const keychain = await this.shared();
    let target: string | undefined;
    try {
      if (this.#args.target !== undefined) target = parseReference(this.#args.target).domain;
    } catch {
      // an invalid --target: check reports it
    }
    return (host) =>
      host === target || keychain.names(host)
        ? keychain.resolve(host)
        : Promise.resolve({ auth: null, source: "none (not in config.json)" });
  }
}
