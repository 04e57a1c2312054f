// The commands on one image or repository, as skopeo has them: `inspect docker://REF` (the
// manifest's digest, media type and platforms, the image's layers and configuration; `--raw`,
// `--config`), `list-tags docker://REPOSITORY` and `delete docker://REF`.
import {
  type CopySide,
  formatReference,
  hostPlatform,
  isRegistryError,
  LIMITS,
  type Manifest,
  parsePlatform,
  type Reference,
  type Repository,
  tags,
} from "../registry/mod.ts";
import { isIndexMediaType } from "../registry/manifest.ts";
import { selectEntries } from "../registry/_image_manifest.ts";
import { endpointsFor, openRepository } from "../registry/repositories.ts";
import { withCredentials } from "../registry/keychain.ts";
import { UsageError } from "./args.ts";
import { parseImageLocation } from "./image_location.ts";
import { registrySide, type RegistrySideContext } from "./registry_side.ts";

/** What a one-registry command needs from the CLI. */
export interface RegistryCommandContext extends RegistrySideContext {
  /** Prints one line on stdout, control characters escaped. */
  print(line: string): void;
  /** Writes text to stdout as it is (`--raw`: the registry's bytes). */
  write(text: string): void;
  /** Prints one line on stderr. */
  warn(line: string): void;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

/** Codes that mean "no such image or repository": exit 1, as for the store commands. */
const NOT_FOUND = new Set(["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "TAG_UNKNOWN", "BLOB_UNKNOWN"]);

/** The reference of `docker://REF`; any other image location is a usage error. */
function dockerReference(context: RegistryCommandContext): Reference {
  const { command, argument } = context.args;
  const location = parseImageLocation(argument!, "/");
  if (location.kind !== "docker") {
    throw new UsageError(`Command "${command}" takes docker://REF, not "${argument}"`);
  }
  return location.reference;
}

/** The repository of `reference`, opened for `actions` with the command's way in. */
async function repositoryOf(
  context: RegistryCommandContext,
  reference: Reference,
  actions: string[],
): Promise<Repository> {
  const side: CopySide = await registrySide(context, reference, null);
  const config = { ...await withCredentials(reference.domain, side), signal: context.signal };
  return await openRepository(
    reference,
    endpointsFor(reference, config, true)[0]!,
    config,
    actions,
  );
}

/** Runs a command, a "not found" answer being exit 1. */
async function orNotFound(
  context: RegistryCommandContext,
  run: () => Promise<void>,
): Promise<number> {
  try {
    await run();
    return 0;
  } catch (error) {
    if (!isRegistryError(error) || !NOT_FOUND.has(error.code)) throw error;
    context.warn(`error: ${error.message}`);
    return 1;
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return `sha256:${Array.from(hash, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** The platform of an index entry, `os/arch[/variant]`. */
function platformName(platform: { os?: string; architecture?: string; variant?: string }) {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

function objectField(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

/**
 * `inspect docker://REF`: as skopeo's (`Name`, `Digest`, `RepoTags`, `Created`, `Labels`,
 * `Architecture`, `Variant`, `Os`, `Layers`, `LayersData`, `Env`), with `MediaType` and, for
 * an index, its `Platforms` (the image shown is linux/amd64's, as pull takes it). `--raw`
 * writes the manifest as served, `--config` the image's configuration, `-q` the digest.
 *
 * @param context The command line, output and registry access.
 * @returns The exit status: 0, or 1 when the image does not exist.
 */
export function inspectCommand(context: RegistryCommandContext): Promise<number> {
  return orNotFound(context, async () => {
    const { args } = context;
    const reference = dockerReference(context);
    const repository = await repositoryOf(context, reference, ["pull"]);
    const manifests = repository.manifests();
    const top = await manifests.get(reference.digest ?? reference.tag ?? "latest");
    if (args.raw) return context.write(new TextDecoder().decode(top.payload));
    const digest = await sha256(top.payload);
    if (args.quiet) return context.print(digest);
    let image: Manifest = top;
    let platforms: string[] | null = null;
    if (isIndexMediaType(top.mediaType)) {
      platforms = top.references().map((entry) => platformName(entry.platform ?? {}));
      const platform = args.platform === undefined ? hostPlatform() : parsePlatform(args.platform);
      const [chosen] = selectEntries(top, platform, formatReference(reference));
      image = await manifests.get(chosen!.digest);
    }
    const [configDescriptor, ...layers] = image.references();
    const configBytes = await repository.blobs().get(configDescriptor!.digest, {
      maxBytes: LIMITS.config,
    });
    if (args.config) return context.write(new TextDecoder().decode(configBytes));
    const config = objectField(JSON.parse(new TextDecoder().decode(configBytes)));
    const runConfig = objectField(config.config);
    const result = {
      Name: reference.name,
      Digest: digest,
      MediaType: top.mediaType,
      ...platforms === null ? {} : { Platforms: platforms },
      RepoTags: await repository.tags().all(),
      Created: config.created ?? null,
      Labels: runConfig.Labels ?? null,
      Architecture: config.architecture ?? null,
      ...config.variant === undefined ? {} : { Variant: config.variant },
      Os: config.os ?? null,
      Layers: layers.map((layer) => layer.digest),
      LayersData: layers.map((layer) => ({
        MIMEType: layer.mediaType,
        Digest: layer.digest,
        Size: layer.size,
        Annotations: layer.annotations ?? null,
      })),
      Env: runConfig.Env ?? null,
    };
    if (args.json) return context.print(JSON.stringify(result));
    context.print(`Name:         ${result.Name}`);
    context.print(`Digest:       ${result.Digest}`);
    context.print(`MediaType:    ${result.MediaType}`);
    if (platforms !== null) context.print(`Platforms:    ${platforms.join(", ")}`);
    context.print(`Platform:     ${platformName({ ...config } as Record<string, string>)}`);
    context.print(`Created:      ${result.Created ?? "-"}`);
    context.print(`Tags:         ${result.RepoTags.join(", ")}`);
    context.print(`Layers:`);
    for (const layer of layers) context.print(`  ${layer.digest}  ${layer.size}`);
  });
}

/**
 * `list-tags docker://REPOSITORY`: one tag a line, or skopeo's
 * `{"Repository": …, "Tags": […]}` with `--json`.
 *
 * @param context The command line, output and registry access.
 * @returns The exit status: 0, or 1 when the repository does not exist.
 */
export function listTagsCommand(context: RegistryCommandContext): Promise<number> {
  return orNotFound(context, async () => {
    const reference = dockerReference(context);
    // A tag or digest after the last "/" names an image, not a repository (skopeo refuses it).
    if (/[:@]/.test(context.args.argument!.split("/").at(-1)!)) {
      throw new UsageError(
        `Command "list-tags" takes docker://REPOSITORY, not "${context.args.argument}"`,
      );
    }
    const side = await registrySide(context, reference, null);
    const config = { ...await withCredentials(reference.domain, side), signal: context.signal };
    const all = await tags(reference.name, config);
    if (context.args.json) {
      context.print(JSON.stringify({ Repository: reference.name, Tags: all }));
    } else all.forEach((tag) => context.print(tag));
  });
}

/**
 * `delete docker://REF`: a tag is resolved to its digest first (registries delete manifests by
 * digest only), then the manifest is deleted, and with it every tag pointing at it.
 *
 * @param context The command line, output and registry access.
 * @returns The exit status: 0, or 1 when the image does not exist.
 */
export function deleteCommand(context: RegistryCommandContext): Promise<number> {
  return orNotFound(context, async () => {
    const reference = dockerReference(context);
    const repository = await repositoryOf(context, reference, ["pull", "delete"]);
    const digest = reference.digest ??
      (await repository.tags().get(reference.tag ?? "latest")).digest;
    await repository.manifests().delete(digest);
    const shown = `docker://${formatReference(reference)}`;
    if (context.args.quiet) return;
    if (context.args.json) {
      context.print(JSON.stringify({ event: "deleted", reference: shown, digest }));
    } else context.print(`Deleted ${shown} (${digest})`);
  });
}
