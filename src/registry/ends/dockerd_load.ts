/**
 * dockerd as a destination: an image streams, as its layers arrive, inside a `docker save`
 * archive into `POST /images/load` (a registry's compressed layers as they are: dockerd
 * inflates them); a registry's layers are then recorded in dockerd's store as its pull would
 * record them, so `docker push` afterwards skips or mounts them.
 *
 * @module
 */
import { withCredentials } from "../keychain.ts";
import { RegistryError } from "../errors.ts";
import { hostPlatform } from "../platform.ts";
import { parseReference } from "../reference.ts";
import { fromFirstEndpoint, getRepositories } from "../repositories.ts";
import type { ImageDestination } from "../transfer/destination.ts";
import type { Records } from "../transfer/proving.ts";
import { transferImage } from "../transfer/transfer.ts";
import { readAtMost } from "../transport/limits.ts";
import type { Platform, RegistryConfig } from "../types.ts";
import { type ArchiveCopyResult, imageArchive, savedName } from "./_image_archive.ts";
import { DockerdApi } from "./dockerd_api.ts";
import { dockerdMetadataService } from "./dockerd_store.ts";
import { registrySource } from "./registry_source.ts";

/** How {@linkcode copyToDockerd} reaches the registry and dockerd. */
export interface DockerdCopyConfig extends Omit<RegistryConfig, "platform"> {
  /** dockerd's socket as a `DOCKER_HOST` value (default `unix:///var/run/docker.sock`). */
  dockerHost?: string;
  /** The image of an index to take (default: this machine's platform). */
  platform?: Platform;
}

/** Fails with dockerd's message when its streamed answer to a load reports an error. */
function checkLoadAnswer(answer: Uint8Array, name: string): void {
  for (const line of new TextDecoder().decode(answer).split("\n")) {
    let message: { error?: unknown } | null = null;
    try {
      message = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof message?.error === "string") {
      throw new RegistryError("DAEMON_ERROR", `dockerd could not load "${name}": ${message.error}`);
    }
  }
}

/**
 * dockerd as the destination of a transfer: the image streams as a `docker save` archive into
 * `POST /images/load` (a registry's compressed layers as they are: dockerd inflates them), then
 * each layer of a registry's image whose bytes proved its DiffID is recorded as dockerd's pull
 * records it. An image from dockerd or an archive records nothing: it comes from no repository.
 *
 * @param api dockerd's API.
 * @param name The name dockerd tags the image with, e.g. `app:1`; `undefined` for none.
 * @param records Where a registry's layers are recorded (none: nowhere).
 * @returns The destination.
 */
export function dockerdDestination(
  api: DockerdApi,
  name: string | undefined,
  records?: Records,
): ImageDestination<ArchiveCopyResult> {
  return {
    async put(image, dir, signal) {
      const archive = await imageArchive(image, "docker-archive", name, dir, signal);
      let answer: Uint8Array;
      try {
        const body = await api.request({
          method: "POST",
          path: "/images/load?quiet=1",
          headers: { "content-type": "application/x-tar" },
          body: archive.stream,
        });
        answer = await readAtMost(body, 1 << 20, "dockerd's answer to the load");
      } catch (error) {
        archive.abort(error);
        throw error;
      }
      checkLoadAnswer(answer, name ?? image.shown);
      // Loaded: dockerd checked every DiffID; each is recorded once its bytes proved it here too.
      return await archive.finish(records);
    },
  };
}

/**
 * Copies an image from a registry into dockerd, as `docker pull` would have it: the manifest
 * (from an index, `config.platform`'s, by default this machine's), its configuration, and each
 * layer streamed from the registry, digest and size checked as they pass, into a `docker save`
 * archive that streams into dockerd's `POST /images/load` (nothing on disk here, one layer at a
 * time; dockerd inflates and checks each layer). The image is tagged `tag` (by default the
 * reference's familiar name and tag; a reference by digest loads untagged). Then, as dockerd's
 * pull records them, every layer whose bytes proved its DiffID is recorded with
 * `tagAndAdd(diffID, hmacKey, { digest, sourceRepository })` into `config.metadataService`, by
 * default dockerd's own store (found from `/info`; `UNSUPPORTED` on the containerd image
 * store), so `docker push` of the image finds them. Foreign layers are `UNSUPPORTED` (dockerd
 * cannot load them); dockerd's refusals are `DAEMON_ERROR`.
 *
 * @param ref The image in a registry, e.g. `registry.example.com/team/app:1`.
 * @param tag The name dockerd tags it with, e.g. `app:1`, or `undefined` for the default.
 * @param config Credentials, HMAC key, metadata service, dockerd's socket, platform,
 * transport, signal.
 * @returns The manifest copied, the image ID, and what became of each layer.
 *
 * @example
 * ```ts ignore
 * import { copyToDockerd } from "@distribution/metadata/registry";
 *
 * const copied = await copyToDockerd("registry.example.com/team/app:1", "app:1", {
 *   auth: { username: "ci", password: "secret" },
 * });
 * console.log(copied.imageID);
 * ```
 */
export async function copyToDockerd(
  ref: string,
  tag: string | undefined,
  given: DockerdCopyConfig = {},
): Promise<ArchiveCopyResult> {
  const parsed = parseReference(ref);
  const config = await withCredentials(parsed.domain, given);
  const api = new DockerdApi(config.dockerHost, config.signal);
  const service = config.metadataService ??
    await dockerdMetadataService(api, `copy "${ref}" into dockerd`);
  const { platform = hostPlatform(), ...registryConfig } = config;
  const repositories = await getRepositories(ref, registryConfig);
  const name = tag ?? savedName(parsed);
  const into = dockerdDestination(api, name, { service, hmacKey: config.hmacKey ?? null });
  return await fromFirstEndpoint(
    repositories,
    (repo) =>
      transferImage(registrySource(repo, parsed, platform), into, { signal: config.signal }),
  );
}
