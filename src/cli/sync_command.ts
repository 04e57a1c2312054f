// `sync docker://REPOSITORY docker://DESTINATION` (every tag of a repository) and
// `sync --src yaml FILE docker://DESTINATION` (the images skopeo's YAML list names): each image
// into DESTINATION/<its last name part>, as skopeo sync names it, a few images at once, recording
// into one metadata store (so a layer the images share is sent once). Run again after a failure,
// it sends only what is missing.
import {
  copy,
  type CopyConfig,
  type CopySide,
  formatReference,
  parseReference,
  type Reference,
  tags,
} from "../registry/mod.ts";
import { limiter } from "../registry/_limit.ts";
import { V2MetadataService } from "../v2_metadata_service.ts";
import { type SideCredentialArgs, UsageError } from "./args.ts";
import { INTERRUPTED, openMetadataStore } from "./copy_command.ts";
import { parseImageLocation } from "./image_location.ts";
import { registrySide, type RegistrySideContext } from "./registry_side.ts";
import { parseSyncYaml, type YamlValue } from "./sync_yaml.ts";

/**
 * Destination repositories filled at once; the images of one go one after the other, each
 * moving 3 blobs at a time. Two images committing a layer they share into one repository at
 * once made a manifest put find that layer unknown (once in ~7 runs on docker-registry 2.8;
 * likely its filesystem driver rewriting the repository's link file in place), so one
 * repository's images never overlap.
 */
const CONCURRENT_REPOSITORIES = 2;

/** What `sync` needs from the CLI. */
export interface SyncContext extends RegistrySideContext {
  /** Prints one line on stdout. */
  print(line: string): void;
  /** Prints one line on stderr. */
  warn(line: string): void;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

/** One repository to copy: its way in, and its tags (`null`: every one). */
interface SyncSource {
  repository: Reference;
  side: CopySide;
  tags: string[] | null;
}

/** The repository of `docker://REPOSITORY` (a tag or digest in it is a usage error). */
async function dockerSource(context: SyncContext): Promise<SyncSource[]> {
  const { args } = context;
  const source = parseImageLocation(args.argument!, "/");
  if (source.kind !== "docker" || /[:@]/.test(args.argument!.split("/").at(-1)!)) {
    throw new UsageError(`Command "sync" takes docker://REPOSITORY, not "${args.argument}"`);
  }
  const side = await registrySide(context, source.reference, {
    prefix: "src",
    own: args.sourceCredentials,
  });
  return [{ repository: source.reference, side, tags: null }];
}

function yamlMapping(value: YamlValue | undefined, what: string): { [key: string]: YamlValue } {
  if (value === undefined || value === "") return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`Cannot read ${what}: it must be a mapping`);
  }
  return value;
}

function yamlString(value: YamlValue | undefined, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new UsageError(`Cannot read ${what}: it must be a string`);
  return value;
}

/** The repositories a skopeo sync YAML list names, each registry with its own options. */
async function yamlSources(context: SyncContext): Promise<SyncSource[]> {
  const path = context.args.argument!;
  const document = parseSyncYaml(await context.readTextFile(path), path);
  const sources: SyncSource[] = [];
  for (const [registry, value] of Object.entries(document)) {
    const where = (key: string) => `"${registry}" > "${key}" in "${path}"`;
    const options = yamlMapping(value, `"${registry}" in "${path}"`);
    const credentials = yamlMapping(options["credentials"], where("credentials"));
    const username = yamlString(credentials["username"], where("credentials"));
    const password = yamlString(credentials["password"], where("credentials"));
    const verify = yamlString(options["tls-verify"], where("tls-verify"));
    if (verify !== undefined && verify !== "true" && verify !== "false") {
      throw new UsageError(`Cannot read ${where("tls-verify")}: it is true or false`);
    }
    // The registry's own options as copy's --src-* options, the command line's where it has none.
    const own: SideCredentialArgs = {
      ...context.args.sourceCredentials,
      ...username === undefined ? {} : { creds: `${username}:${password ?? ""}` },
      ...verify === undefined ? {} : { tlsVerify: verify === "true" },
      ...options["cert-dir"] === undefined
        ? {}
        : { certDir: yamlString(options["cert-dir"], where("cert-dir")) },
    };
    for (const [name, listed] of Object.entries(yamlMapping(options["images"], where("images")))) {
      let repository: Reference;
      try {
        repository = parseReference(`${registry}/${name}`, { defaultTag: false });
      } catch (error) {
        throw new UsageError(`Cannot read ${where("images")}: ${(error as Error).message}`);
      }
      if (!Array.isArray(listed) && listed !== "") {
        throw new UsageError(`Cannot read ${where("images")} > "${name}": it must list tags`);
      }
      const chosen = Array.isArray(listed) ? listed.map((tag) => String(tag)) : [];
      const side = await registrySide(context, repository, { prefix: "src", own });
      sources.push({ repository, side, tags: chosen.length === 0 ? null : chosen });
    }
  }
  return sources;
}

/**
 * Runs `sync`: one line (or JSON event) per image copied, a warning per image that failed, then
 * a summary.
 *
 * @param context The command line, output, registries and signal.
 * @returns The exit status: 0 all copied, 2 when any failed, 130 on Ctrl-C.
 */
export async function syncCommand(context: SyncContext): Promise<number> {
  const { args } = context;
  const yaml = args.syncSource === "yaml";
  const destination = parseImageLocation(args.destination!, "/");
  if (destination.kind !== "docker") {
    throw new UsageError(
      `Command "sync" copies to docker://DESTINATION, not "${args.destination}"`,
    );
  }
  const sources = yaml ? await yamlSources(context) : await dockerSource(context);
  for (const source of sources) {
    context.credentials.checkSides(source.repository.domain, destination.reference.domain);
  }
  const to = await registrySide(context, destination.reference, {
    prefix: "dest",
    own: args.destinationCredentials,
  });
  const images: { from: string; to: string; side: CopySide }[] = [];
  for (const source of sources) {
    const name = source.repository.name;
    const listed = source.tags ?? await tags(name, { ...source.side, signal: context.signal });
    const target = `${destination.reference.name}/${source.repository.path.split("/").at(-1)}`;
    for (const tag of listed) {
      images.push({ from: `${name}:${tag}`, to: `${target}:${tag}`, side: source.side });
    }
  }
  const opened = await openMetadataStore(context);
  const shared: CopyConfig = {
    metadataService: new V2MetadataService(opened.store),
    signal: context.signal,
    destination: to,
    ...(args.all ? { platform: "all" as const } : {}),
  };
  let failed = 0;
  /** One image; a failure is told and counted, the others go on. */
  async function copyOne(image: (typeof images)[number]): Promise<void> {
    try {
      const { digest } = await copy(image.from, image.to, { ...shared, source: image.side });
      if (args.quiet) return;
      if (args.json) {
        context.print(
          JSON.stringify({
            event: "copied",
            source: image.from,
            destination: image.to,
            digest,
          }),
        );
      } else context.print(`Copied docker://${image.from} to docker://${image.to} (${digest})`);
    } catch (error) {
      if (context.signal.aborted) throw error;
      failed++;
      context.warn(`error: Cannot sync "${image.from}": ${(error as Error).message}`);
    }
  }
  const byRepository = new Map<string, typeof images>();
  for (const image of images) {
    const repository = image.to.slice(0, image.to.lastIndexOf(":"));
    byRepository.set(repository, [...byRepository.get(repository) ?? [], image]);
  }
  const slots = limiter(CONCURRENT_REPOSITORIES);
  try {
    await Promise.all([...byRepository.values()].map((group) =>
      slots(async () => {
        for (const image of group) await copyOne(image);
      })
    ));
  } catch (error) {
    if (!context.signal.aborted) throw error;
    context.warn("error: interrupted; run again to copy the rest");
    return INTERRUPTED;
  } finally {
    await opened.close();
  }

  const from = yaml
    ? args.argument!
    : `docker://${formatReference({ ...sources[0]!.repository, tag: undefined })}`;
  const into = `docker://${destination.reference.name}${
    yaml ? "" : `/${sources[0]!.repository.path.split("/").at(-1)}`
  }`;
  if (args.json) {
    context.print(
      JSON.stringify({
        event: "synced",
        source: from,
        destination: into,
        images: images.length,
        failed,
      }),
    );
  } else if (!args.quiet || failed > 0) {
    context.print(
      `Synced ${images.length - failed} of ${images.length} images from ${from} to ${into}`,
    );
  }
  return failed === 0 ? 0 : 2;
}
