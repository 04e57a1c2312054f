/**
 * A registry's image into a `docker-archive` file: the archive `docker save` writes and
 * `docker load` and skopeo read, streamed from the registry to the file, which appears only
 * once complete.
 *
 * @module
 */
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { V2MetadataService } from "../../v2_metadata_service.ts";
import { RegistryError } from "../errors.ts";
import { hostPlatform } from "../platform.ts";
import { fromFirstEndpoint } from "../pull.ts";
import { parseReference } from "../reference.ts";
import { getRepositories } from "../repositories.ts";
import type { Platform, RegistryConfig } from "../types.ts";
import { type ArchiveCopyResult, registryArchive } from "./_registry_archive.ts";

/** How {@linkcode copyToDockerArchive} reaches the registry and writes the file. */
export interface DockerArchiveCopyConfig extends Omit<RegistryConfig, "platform"> {
  /** The image of an index to take (default: this machine's platform). */
  platform?: Platform;
  /** Where the file is written (default: the runtime's file system). */
  fs?: FileSystem;
}

/**
 * Copies an image from a registry into a `docker save` archive at `path` (replaced atomically;
 * a failed copy leaves no file): the manifest (from an index, `config.platform`'s, by default
 * this machine's), each layer streamed from the registry into the file as it arrives (digest
 * and size checked; a layer that is not what the manifest says fails the copy), the
 * configuration and `manifest.json` naming `tag`. Layers whose bytes proved their DiffID are
 * recorded in `config.metadataService`, when given, as pull records them.
 *
 * @param ref The image in a registry, e.g. `registry.example.com/team/app:1`.
 * @param path The archive's path.
 * @param tag The name `docker load` gives it (default: the reference's familiar name and tag;
 * a reference by digest gives none).
 * @param config Credentials, metadata service, HMAC key, platform, file system, transport.
 * @returns The manifest copied, the image ID, and each layer's DiffID check.
 *
 * @example
 * ```ts ignore
 * import { copyToDockerArchive } from "@distribution/metadata/registry";
 *
 * await copyToDockerArchive("registry.example.com/team/app:1", "/tmp/app.tar", "app:1");
 * ```
 */
export async function copyToDockerArchive(
  ref: string,
  path: string,
  tag: string | undefined,
  config: DockerArchiveCopyConfig = {},
): Promise<ArchiveCopyResult> {
  const parsed = parseReference(ref);
  const fs = config.fs ?? runtimeFileSystem();
  if (fs.writeFileStream === undefined) {
    throw new RegistryError("UNSUPPORTED", `Cannot write "${path}": the file system cannot stream`);
  }
  const service = config.metadataService ?? new V2MetadataService(null);
  const slash = path.lastIndexOf("/");
  const temp = `${path.slice(0, slash + 1)}.tmp-${path.slice(slash + 1)}${
    crypto.getRandomValues(new Uint32Array(1))[0]
  }`;
  const { platform: _, fs: __, ...registryConfig } = config;
  const repositories = await getRepositories(ref, registryConfig);
  return await fromFirstEndpoint(repositories, async (repo) => {
    const archive = await registryArchive(repo, parsed, config.platform ?? hostPlatform(), tag);
    try {
      await fs.writeFileStream!(path, temp, archive.stream, 0o644);
    } catch (error) {
      archive.abort(error);
      throw error;
    }
    return await archive.finish(service, config.hmacKey ?? null, parsed.name);
  });
}
