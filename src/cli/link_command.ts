// `link docker-daemon:IMAGE docker://REF`: records in dockerd's store what `docker pull REF`
// would have, so that `docker push` of a loaded image finds its layers in the registry.
import { FSMetadataStore } from "../fs_store.ts";
import { link, type LinkConfig } from "../registry/link.ts";
import { parsePlatform } from "../registry/platform.ts";
import { formatReference } from "../registry/reference.ts";
import { DEFAULT_DOCKER_HOST } from "../registry/ends/dockerd_api.ts";

import { V2MetadataService } from "../v2_metadata_service.ts";
import { UsageError } from "./args.ts";
import type { CopyContext } from "./copy_command.ts";
import { registrySide } from "./registry_side.ts";
import { parseImageLocation } from "./image_location.ts";

/** What `link` needs from the CLI: `copy`'s context without its progress and paths. */
export type LinkContext = Omit<CopyContext, "cwd" | "progress">;

const DAEMON = "docker-daemon:";

/**
 * Runs `link SRC DST`.
 *
 * @param context The options, output, credentials and signal.
 * @returns The exit status: 0 when every layer that can be pushed was recorded.
 */
export async function linkCommand(context: LinkContext): Promise<number> {
  const { args } = context;
  const source = args.argument!;
  const image = source.slice(DAEMON.length);
  if (!source.startsWith(DAEMON) || image === "") {
    throw new UsageError(`Cannot link "${source}": name dockerd's image as docker-daemon:IMAGE`);
  }
  const destination = parseImageLocation(args.destination!, "/");
  if (destination.kind !== "docker") {
    throw new UsageError(
      `Cannot link to "${destination.text}": name a registry image as docker://REF`,
    );
  }
  if (args.store !== undefined) {
    throw new UsageError(
      `Cannot link into "--store": link records into dockerd's store (or --root)`,
    );
  }
  const platform = args.platform === undefined ? undefined : parsePlatform(args.platform);
  const ref = formatReference(destination.reference);
  const config: LinkConfig = {
    // The library derives the HMAC key from what the keychain resolves, as dockerd's push
    // hashes the AuthConfig the docker CLI sends (the empty one without any).
    ...await registrySide(context, destination.reference, null),
    dockerHost: context.env("DOCKER_HOST") || DEFAULT_DOCKER_HOST,
    signal: context.signal,
  };
  if (args.verify !== undefined) config.verify = args.verify;
  if (platform !== undefined) config.platform = platform;
  if (args.root !== undefined) {
    const store = await FSMetadataStore.open(args.root, { fs: context.fs, lock: true });
    config.metadataService = new V2MetadataService(store);
  }
  const linked = await link(image, ref, config);
  const recorded = linked.layers.filter((layer) => layer.status === "recorded").length;
  for (const layer of linked.layers) {
    if (layer.status === "recorded" || layer.status === "foreign") continue;
    context.warn(`warning: layer ${layer.digest} not recorded: its DiffID is ${layer.status}`);
  }
  if (args.json) {
    const { imageID, mediaType, digest, size, layers } = linked;
    context.print(JSON.stringify({
      event: "linked",
      source,
      destination: `docker://${ref}`,
      imageID,
      mediaType,
      digest,
      size,
      layers,
    }));
  } else {
    context.print(
      `Linked ${source} to docker://${ref} (${linked.digest}): ${recorded} of ` +
        `${linked.layers.length} layers recorded`,
    );
  }
  return linked.layers.every((layer) => layer.status === "recorded" || layer.status === "foreign")
    ? 0
    : 1;
}
