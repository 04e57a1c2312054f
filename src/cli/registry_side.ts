// One registry a command talks to, reached as dockerd would (registry_access.ts) with the
// credentials the command line gives it (auth.ts): a side of `copy`, or the one registry of
// `inspect`, `list-tags` and `delete`.
import type { FileSystem } from "../file_system.ts";
import type { CopySide } from "../registry/copy.ts";
import { formatReference, type Reference } from "../registry/reference.ts";
import type { CliArgs, SideCredentialArgs } from "./args.ts";
import type { CommandCredentials } from "./auth.ts";
import { certsBase, insecureRegistries, registryAccess } from "./registry_access.ts";

/** What reaching a registry needs from the CLI. */
export interface RegistrySideContext {
  args: CliArgs;
  fs: FileSystem;
  /** An environment variable (`DISTRIBUTION_METADATA_CERTS_D`). */
  env(name: string): string | undefined;
  /** Reads a text file (certificates, daemon.json). */
  readTextFile(path: string): Promise<string>;
  /** The command's keychains. */
  credentials: CommandCredentials;
}

/** daemon.json's insecure registries, read once per process. */
let insecure: Promise<string[]> | undefined;

/**
 * The way into one registry: its keychain (the library derives the HMAC key from what it
 * resolves, `{}` for none, as dockerd hashes the AuthConfig it was given), http or https, TLS.
 *
 * @param context The command line and the machine.
 * @param reference The image or repository on it.
 * @param side For `copy`: which side, with its own options; `null` for a one-registry command.
 * @returns The configuration of that side.
 */
export async function registrySide(
  context: RegistrySideContext,
  reference: Reference,
  side: { prefix: "src" | "dest"; own: SideCredentialArgs } | null,
): Promise<CopySide> {
  const { args } = context;
  const access = await registryAccess(reference.domain, formatReference(reference), {
    plainHttp: args.plainHttp,
    tlsVerify: side?.own.tlsVerify ?? args.tlsVerify,
    certDir: side?.own.certDir ?? args.certDir,
    certsBase: certsBase(context.env),
    insecureRegistries: await (insecure ??= insecureRegistries(context.readTextFile)),
  }, context);
  const keychain = side === null
    ? await context.credentials.shared()
    : await context.credentials.side(side.own, side.prefix);
  return { keychain, ...access };
}
