// `sync docker://REPOSITORY docker://DESTINATION`: every tag of a repository into
// DESTINATION/<its last name part>, as skopeo sync copies a repository, a few images at once,
// recording into one metadata store (so a layer the images share mounts or is found instead of
// being sent again). Run again after a failure, it sends only what is missing.
import { copy, type CopyConfig, formatReference, tags } from "../registry/mod.ts";
import { limiter } from "../registry/_limit.ts";
import { V2MetadataService } from "../v2_metadata_service.ts";
import { UsageError } from "./args.ts";
import { INTERRUPTED, openMetadataStore } from "./copy_command.ts";
import { parseImageLocation } from "./image_location.ts";
import { registrySide, type RegistrySideContext } from "./registry_side.ts";

/** Images copied at once; each moves its own blobs 3 at a time. */
const CONCURRENT_IMAGES = 2;

/** What `sync` needs from the CLI. */
export interface SyncContext extends RegistrySideContext {
  /** Prints one line on stdout. */
  print(line: string): void;
  /** Prints one line on stderr. */
  warn(line: string): void;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
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
  const source = parseImageLocation(args.argument!, "/");
  const destination = parseImageLocation(args.destination!, "/");
  if (source.kind !== "docker" || destination.kind !== "docker") {
    throw new UsageError(`Command "sync" takes docker://REPOSITORY docker://DESTINATION`);
  }
  if (/[:@]/.test(args.argument!.split("/").at(-1)!)) {
    throw new UsageError(`Command "sync" takes a repository, not "${args.argument}"`);
  }
  context.credentials.checkSides(source.reference.domain, destination.reference.domain);
  const from = await registrySide(context, source.reference, {
    prefix: "src",
    own: args.sourceCredentials,
  });
  const to = await registrySide(context, destination.reference, {
    prefix: "dest",
    own: args.destinationCredentials,
  });
  const target = `${destination.reference.name}/${source.reference.path.split("/").at(-1)}`;
  const all = await tags(source.reference.name, { ...from, signal: context.signal });
  const opened = await openMetadataStore(context);
  const config: CopyConfig = {
    metadataService: new V2MetadataService(opened.store),
    signal: context.signal,
    source: from,
    destination: to,
    ...(args.all ? { platform: "all" as const } : {}),
  };
  const slots = limiter(CONCURRENT_IMAGES);
  let failed = 0;
  try {
    await Promise.all(all.map((tag) =>
      slots(async () => {
        const image = `${source.reference.name}:${tag}`;
        try {
          const { digest } = await copy(image, `${target}:${tag}`, config);
          if (args.quiet) return;
          if (args.json) {
            context.print(
              JSON.stringify({
                event: "copied",
                source: image,
                destination: `${target}:${tag}`,
                digest,
              }),
            );
          } else context.print(`Copied docker://${image} to docker://${target}:${tag} (${digest})`);
        } catch (error) {
          if (context.signal.aborted) throw error;
          failed++;
          context.warn(`error: Cannot sync "${image}": ${(error as Error).message}`);
        }
      })
    ));
  } catch (error) {
    if (!context.signal.aborted) throw error;
    context.warn("error: interrupted; run again to copy the rest");
    return INTERRUPTED;
  } finally {
    await opened.close();
  }
  const shown = `docker://${formatReference({ ...source.reference, tag: undefined })}`;
  if (args.json) {
    context.print(
      JSON.stringify({
        event: "synced",
        source: shown,
        destination: `docker://${target}`,
        images: all.length,
        failed,
      }),
    );
  } else if (!args.quiet || failed > 0) {
    context.print(
      `Synced ${all.length - failed} of ${all.length} images from ${shown} to docker://${target}`,
    );
  }
  return failed === 0 ? 0 : 2;
}
