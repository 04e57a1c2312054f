// The docker credential helper protocol, as the docker CLI speaks it: run
// `docker-credential-<name> get`, write the server URL to its stdin, read
// `{"ServerURL","Username","Secret"}` from its stdout.
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { AuthConfig } from "../hmac.ts";
import type { ProgramResult, ProgramRunner } from "./_program.ts";

/** What a helper may print: credentials are a few KiB at most. */
const MAX_OUTPUT_BYTES = 64 * 1024;

/**
 * Helper names as the helpers are published (`desktop`, `osxkeychain`, `ecr-login`,
 * `gcloud`, `pass`): a name with `/` could run a program off PATH, and other characters
 * have no business in a program name.
 */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The docker CLI's user name for an identity token (`credentials.tokenUsername`). */
const TOKEN_USERNAME = "<token>";

/** What helpers print when they hold nothing for the server (`credentials.errCredentialsNotFound`). */
const NOT_FOUND = "credentials not found in native keychain";

/**
 * The program of a credential helper: `docker-credential-<name>`.
 *
 * @param name The name in config.json's `credsStore` or `credHelpers`, e.g. `desktop`.
 * @returns The program name, e.g. `docker-credential-desktop`.
 * @throws {MetadataError} `EINVAL` when the name could address another program.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { helperProgram } from "./_credential_helper.ts";
 *
 * equal(helperProgram("ecr-login"), "docker-credential-ecr-login");
 * ```
 */
export function helperProgram(name: string): string {
  if (!HELPER_NAME.test(name)) {
    throw new MetadataError(
      "EINVAL",
      `Cannot use credential helper "${name}": a helper name is letters, digits, ".", "_" and "-"`,
    );
  }
  return `docker-credential-${name}`;
}

function runFailure(program: string, serverURL: string, why: string): MetadataError {
  return new MetadataError(
    "EIO",
    `Cannot get credentials for "${serverURL}" from "${program}": ${why}`,
  );
}

function stringField(object: Record<string, unknown>, name: string): string {
  // Go's decoder: field names match case-insensitively, the last one wins.
  let value: unknown;
  for (const [key, field] of Object.entries(object)) {
    if (key.toLowerCase() === name.toLowerCase()) value = field;
  }
  return typeof value === "string" ? value : "";
}

/**
 * Asks a credential helper for a server's credentials, as the docker CLI's
 * `nativeStore.getCredentialsFromStore` does: a `<token>` user name means the secret is
 * an identity token.
 *
 * @param run How to run a program.
 * @param timeout Milliseconds the helper may take.
 * @param name The helper's name, e.g. `desktop`.
 * @param serverURL What the docker CLI asks for: the registry host, or
 * `https://index.docker.io/v1/` for Docker Hub.
 * @returns `username` and `password`, or `identitytoken`; `null` when the helper holds
 * nothing for the server.
 * @throws {MetadataError} When the helper cannot be run, fails, or prints no credentials.
 *
 * @example A helper's answer
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { getFromHelper } from "./_credential_helper.ts";
 *
 * const auth = await getFromHelper(
 *   async () => ({ status: 0, stdout: '{"Username":"<token>","Secret":"t0k"}', stderr: "" }),
 *   1_000,
 *   "example",
 *   "registry.example.com",
 * );
 * deepEqual(auth, { identitytoken: "t0k" });
 * ```
 */
export async function getFromHelper(
  run: ProgramRunner,
  timeout: number,
  name: string,
  serverURL: string,
): Promise<AuthConfig | null> {
  const program = helperProgram(name);
  let result: ProgramResult;
  try {
    result = await run(program, ["get"], serverURL, { maxBytes: MAX_OUTPUT_BYTES, timeout });
  } catch (error) {
    const code = errorCode(error);
    const why = code === "ENOENT"
      ? "no such program in an absolute PATH entry"
      : code === "EACCES"
      ? `permission denied (on Deno, allow it with --allow-run=${program})`
      : error instanceof Error
      ? error.message
      : String(error);
    throw runFailure(program, serverURL, why);
  }
  const output = result.stdout.trim();
  if (result.status !== 0) {
    if (output === NOT_FOUND) return null;
    const said = output || result.stderr.trim();
    throw runFailure(
      program,
      serverURL,
      `exit status ${result.status}${said === "" ? "" : `: ${said.slice(0, 200)}`}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    throw runFailure(program, serverURL, "its output is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw runFailure(program, serverURL, "its output is not a JSON object");
  }
  const fields = parsed as Record<string, unknown>;
  const username = stringField(fields, "Username");
  const secret = stringField(fields, "Secret");
  if (username === TOKEN_USERNAME) return { identitytoken: secret };
  return { username, password: secret };
}
