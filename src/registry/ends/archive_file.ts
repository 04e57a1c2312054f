/**
 * An archive file as a destination: `docker-archive` (what `docker save` writes and
 * `docker load` and skopeo read) or `oci-archive` (an OCI image layout in a tar, skopeo's),
 * streamed from the source (a registry's `GET`, dockerd's save, another archive) to the file,
 * which appears only once complete.
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
import type { ImageDestination } from "../transfer/destination.ts";
import type { Records } from "../transfer/proving.ts";
import { transferImage } from "../transfer/transfer.ts";
import {
  type ArchiveCopyResult,
  type ArchiveFormat,
  imageArchive,
  savedName,
} from "./_image_archive.ts";
import { registrySource } from "./registry_source.ts";

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

/** Refuses a file system that cannot stream the archive into `path`. */
function checkWritesStreams(
  fs: FileSystem,
  path: string,
): asserts fs is FileSystem & Required<Pick<FileSystem, "writeFileStream">> {
  if (fs.writeFileStream === undefined) {
    throw new RegistryError("UNSUPPORTED", `Cannot write "${path}": the file system cannot stream`);
  }
}

/**
 * An archive file at `path` as the destination of a transfer, replaced atomically (a failed
 * transfer leaves no file): the image's layers streamed into it as the source gives them,
 * then its configuration and what names it. A registry's layers whose bytes proved their
 * DiffID are recorded in `service` as pull records them.
 *
 * @param path The archive's path.
 * @param options Format, name, file system, and where a registry's layers are recorded.
 * @returns The destination.
 */
export function archiveDestination(
  path: string,
  options: {
    format: ArchiveFormat;
    name: string | undefined;
    fs: FileSystem;
    /** Where a registry's layers are recorded (none: nowhere). */
    records?: Records;
  },
): ImageDestination<ArchiveCopyResult> {
  const { fs } = options;
  return {
    async put(image, dir, signal) {
      checkWritesStreams(fs, path);
      const slash = path.lastIndexOf("/");
      const temp = `${path.slice(0, slash + 1)}.tmp-${path.slice(slash + 1)}${
        crypto.getRandomValues(new Uint32Array(1))[0]
      }`;
      const archive = await imageArchive(image, options.format, options.name, dir, signal);
      try {
        await fs.writeFileStream(path, temp, archive.stream, 0o644);
      } catch (error) {
        archive.abort(error);
        throw error;
      }
      return await archive.finish(options.records);
    },
  };
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
  checkWritesStreams(fs, path);
  const { platform = hostPlatform(), fs: _, format = "docker-archive", tag, ...registryConfig } =
    config;
  const into = archiveDestination(path, {
    format,
    name: tag ?? (format === "docker-archive" ? savedName(parsed) : parsed.tag),
    fs,
    records: {
      service: config.metadataService ?? new V2MetadataService(null),
      hmacKey: config.hmacKey ?? null,
    },
  });
  const repositories = await getRepositories(ref, registryConfig);
  return await fromFirstEndpoint(
    repositories,
    (repo) =>
      transferImage(registrySource(repo, parsed, platform), into, { fs, signal: config.signal }),
  );
}
