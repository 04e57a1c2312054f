/**
 * A registry's image into an archive file: `docker-archive` (what `docker save` writes and
 * `docker load` and skopeo read) or `oci-archive` (an OCI image layout in a tar, skopeo's),
 * streamed from the registry to the file, which appears only once complete.
 *
 * @module
 */
import { withCredentials } from "../keychain.ts";
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { V2MetadataService } from "../../v2_metadata_service.ts";
import { RegistryError } from "../errors.ts";
import { hostPlatform } from "../platform.ts";
import { parseReference } from "../reference.ts";
import { fromFirstEndpoint, getRepositories } from "../repositories.ts";
import type { Platform, RegistryConfig } from "../types.ts";
import {
  type ArchiveCopyResult,
  type ArchiveFormat,
  registryArchive,
} from "./_registry_archive.ts";

/** How {@linkcode copyToArchive} reaches the registry and writes the file. */
export interface ArchiveCopyConfig extends Omit<RegistryConfig, "platform"> {
  /** `docker-archive` (default) or `oci-archive`. */
  format?: ArchiveFormat;
  /**
   * What names the image: a docker archive's `RepoTags` entry (default: the reference's
   * familiar name and tag), an OCI archive's `org.opencontainers.image.ref.name` (default: the
   * reference's tag); none for a reference by digest.
   */
  tag?: string;
  /** The image of an index to take (default: this machine's platform). */
  platform?: Platform;
  /** Where the file is written (default: the runtime's file system). */
  fs?: FileSystem;
}

/**
 * Copies an image from a registry into an archive at `path` (replaced atomically; a failed copy
 * leaves no file): the manifest (from an index, `config.platform`'s, by default this
 * machine's), each layer streamed from the registry into the file as it arrives (digest and
 * size checked; a layer that is not what the manifest says fails the copy), then the
 * configuration and what names the image (`config.tag`): `manifest.json` for
 * `docker-archive`, the manifest, `index.json` and `oci-layout` for `oci-archive`. Layers whose
 * bytes proved their DiffID are recorded in `config.metadataService`, when given, as pull
 * records them.
 *
 * @param ref The image in a registry, e.g. `registry.example.com/team/app:1`.
 * @param path The archive's path.
 * @param config Format, tag, credentials, metadata service, HMAC key, platform, file system,
 * transport.
 * @returns The manifest copied, the image ID, and each layer's DiffID check.
 *
 * @example
 * ```ts ignore
 * import { copyToArchive } from "@distribution/metadata/registry";
 *
 * await copyToArchive("registry.example.com/team/app:1", "/tmp/app.tar", { tag: "app:1" });
 * ```
 */
export async function copyToArchive(
  ref: string,
  path: string,
  given: ArchiveCopyConfig = {},
): Promise<ArchiveCopyResult> {
  const parsed = parseReference(ref);
  const config = await withCredentials(parsed.domain, given);
  const fs = config.fs ?? runtimeFileSystem();
  if (fs.writeFileStream === undefined) {
    throw new RegistryError("UNSUPPORTED", `Cannot write "${path}": the file system cannot stream`);
  }
  const service = config.metadataService ?? new V2MetadataService(null);
  const slash = path.lastIndexOf("/");
  const temp = `${path.slice(0, slash + 1)}.tmp-${path.slice(slash + 1)}${
    crypto.getRandomValues(new Uint32Array(1))[0]
  }`;
  const { platform: _, fs: __, format = "docker-archive", tag, ...registryConfig } = config;
  const repositories = await getRepositories(ref, registryConfig);
  return await fromFirstEndpoint(repositories, async (repo) => {
    const platform = config.platform ?? hostPlatform();
    const archive = await registryArchive(repo, parsed, platform, format, tag);
    try {
      await fs.writeFileStream!(path, temp, archive.stream, 0o644);
    } catch (error) {
      archive.abort(error);
      throw error;
    }
    return await archive.finish(service, config.hmacKey ?? null, parsed.name);
  });
}
