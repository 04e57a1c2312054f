/**
 * An archive file as the source of a transfer: `docker-archive` (what `docker save` and skopeo
 * write) or `oci-archive` (an OCI image layout in a tar). The archive is read once, entry by
 * entry, into a temporary directory (every file hashed as it is written). A docker archive's
 * layers, checked against their DiffIDs, are given uncompressed (or gzipped, as the archive
 * holds them): to a registry they are pushed as dockerd pushes them
 * ({@linkcode pushUncompressed}), looked up by DiffID first and only those the registry lacks
 * gzipped and uploaded. An OCI archive's blobs, checked against their digests, form an OCI
 * image layout, pushed to a registry as any layout is and read as a layout elsewhere. The
 * directory is removed afterwards.
 *
 * @module
 */
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { isDigest } from "../_digest.ts";
import { diffIDsOf } from "../_image.ts";
import { hashing, inTempDir, spoolInto } from "../_spool.ts";
import { diffIDSink } from "../_diff_id.ts";
import { RegistryError } from "../errors.ts";
import { ANNOTATION_REF_NAME, type OciLayoutStore, ociLayoutStore } from "../oci_layout.ts";
import { push } from "../push.ts";
import { DOCKER_LAYER } from "../push_uncompressed.ts";
import type { ImageSource, SourceLayer } from "../transfer/source.ts";
import { type OpenSource, transferImage } from "../transfer/transfer.ts";
import { familiarName, formatReference, parseReference } from "../reference.ts";
import { LIMITS, parseJson, readAtMost } from "../transport/limits.ts";
import { hostPlatform } from "../platform.ts";
import type { Descriptor, Platform, PushResult, RegistryConfig } from "../types.ts";
import type { ArchiveFormat } from "./_image_archive.ts";
import { layoutSource } from "./layout_source.ts";
import { registryPushDestination } from "./registry_push_destination.ts";
import { cleanName, linkTarget, tarEntries } from "./_tar_reader.ts";

/** How {@linkcode copyFromArchive} reads the archive and reaches the registry. */
export interface ArchiveSourceConfig extends RegistryConfig {
  /** `docker-archive` (default) or `oci-archive`. */
  format?: ArchiveFormat;
  /**
   * Which image: a docker archive's `RepoTags` entry (`app:1`), an OCI archive's
   * `org.opencontainers.image.ref.name`; without it the archive must hold one image.
   */
  tag?: string;
  /** The file system holding the archive and the temporary directory (default: the runtime's). */
  fs?: FileSystem;
  /** Where the temporary layout is made (default: the runtime's temporary directory). */
  tempDir?: string;
}

function malformed(what: string, detail: string): RegistryError {
  return new RegistryError("MALFORMED", `Cannot read ${what}: ${detail}`, {
    url: what,
    reason: detail,
  });
}

/** The image a list of candidates names: `tag`'s, or the only one. */
function pick<T>(all: T[], names: (item: T) => string[], tag: string | undefined, what: string): T {
  if (tag === undefined) {
    if (all.length !== 1) {
      throw malformed(what, `it holds ${all.length} images; name one`);
    }
    return all[0]!;
  }
  const found = all.find((item) => names(item).includes(tag));
  if (found === undefined) throw malformed(what, `no image named "${tag}"`);
  return found;
}

/**
 * The OCI archive at `path` read into a layout at `dir`: the layout, and the descriptor of
 * the image `tag` picks (its annotations left out).
 */
async function readOciArchive(
  fs: FileSystem,
  path: string,
  dir: string,
  signal: AbortSignal | undefined,
  tag: string | undefined,
  what: string,
): Promise<{ layout: OciLayoutStore; descriptor: Descriptor }> {
  const { stream } = await fs.openRead!(path);
  const layout = await ociLayoutStore(dir, { fs });
  let index: Uint8Array | undefined;
  for await (const entry of tarEntries(stream, what, signal)) {
    if (entry.kind === "symlink") throw malformed(what, `entry "${entry.name}" is a link`);
    const blob = /^blobs\/(sha256\/[0-9a-f]{64})$/.exec(entry.name);
    if (entry.name === "index.json") {
      index = await readAtMost(entry.body, LIMITS.layoutIndex, `"index.json" of ${what}`);
    } else if (blob !== null) {
      await layout.write(blob[1]!.replace("/", ":"), entry.body, { maxBytes: entry.size });
    } else await entry.body.cancel();
  }
  if (index === undefined) throw malformed(what, "no index.json");
  const manifests = (parseJson(index, `"index.json" of ${what}`) as { manifests?: unknown })
    ?.manifests;
  if (!Array.isArray(manifests)) throw malformed(what, "index.json lists no manifests");
  const chosen = pick(
    manifests as (Descriptor | null)[],
    (d) => [d?.annotations?.[ANNOTATION_REF_NAME] ?? ""],
    tag,
    what,
  );
  if (
    chosen === null || typeof chosen !== "object" || !isDigest(chosen.digest) ||
    typeof chosen.mediaType !== "string" || !Number.isSafeInteger(chosen.size)
  ) {
    throw malformed(what, "index.json names its image with no valid descriptor");
  }
  if (!await layout.has(chosen.digest)) {
    throw malformed(what, `index.json names manifest ${chosen.digest} that is not in it`);
  }
  const { annotations: _, ...descriptor } = chosen;
  return { layout, descriptor };
}

/** One file of a docker archive, saved: where, its size and SHA-256. */
interface Saved {
  file: string;
  size: number;
  digest: string;
  /** Whether it starts as gzip does (a layer `docker load` takes compressed). */
  gzip: boolean;
}

/** A `manifest.json` entry. */
interface DockerImage {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

function isDockerImage(value: unknown): value is DockerImage {
  const image = value as DockerImage | null;
  return typeof image === "object" && image !== null && typeof image.Config === "string" &&
    Array.isArray(image.Layers) && image.Layers.every((l) => typeof l === "string") &&
    (image.RepoTags === null || image.RepoTags === undefined ||
      (Array.isArray(image.RepoTags) && image.RepoTags.every((t) => typeof t === "string")));
}

/** A `RepoTags` entry as `docker-archive:PATH:NAME:TAG` names it: `app:1`, `busybox:latest`. */
function familiarTag(name: string): string {
  try {
    const ref = parseReference(name);
    return `${familiarName(ref)}:${ref.tag}`;
  } catch {
    return name;
  }
}

/**
 * The digest an entry's name claims: dockerd 25 and later save every file of an image as an
 * OCI layout's `blobs/sha256/<hex>` (and manifest.json names them so), `null` for other names.
 */
function claimedDigest(name: string): string | null {
  const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
  return blob === null ? null : `sha256:${blob[1]}`;
}

/**
 * A docker archive read: every file saved to `work` (its order is free: `docker save` writes
 * `manifest.json` last; dockerd 25 and later write `blobs/sha256/<hex>` files, each checked
 * against its name), then the image `tag` picks, its layers proven against the
 * configuration's DiffIDs (an uncompressed one by its hash, a gzipped one by inflating it).
 */
export async function readDockerArchive(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  fs: FileSystem,
  work: string,
  tag: string | undefined,
  what: string,
): Promise<ImageSource> {
  const saved = new Map<string, Saved>();
  // skopeo names each layer's legacy `<id>/layer.tar` as a link to `<hex>.tar`.
  const links = new Map<string, string>();
  for await (const entry of tarEntries(stream, what, signal)) {
    if (entry.kind === "directory") continue;
    if (saved.has(entry.name) || links.has(entry.name)) {
      throw malformed(what, `entry "${entry.name}" appears twice`);
    }
    if (entry.kind === "symlink") {
      const target = linkTarget(entry.name, entry.target!);
      if (target === null) {
        throw malformed(what, `link "${entry.name}" points outside the archive`);
      }
      links.set(entry.name, target);
      continue;
    }
    const file = `${work}/${saved.size}`;
    const { passing, seen } = hashing(entry.body);
    await spoolInto(fs, file, passing);
    const digest = seen.digest();
    const claimed = claimedDigest(entry.name);
    if (claimed !== null && claimed !== digest) {
      throw new RegistryError(
        "DIGEST_INVALID",
        `Cannot read ${what}: entry "${entry.name}" is ${digest}, not the digest its name says`,
        { url: what, reason: `digest ${claimed}` },
      );
    }
    saved.set(entry.name, {
      file,
      size: seen.size,
      digest,
      gzip: seen.first === 0x1f,
    });
  }
  /** The file `name` (as dockerd joins it to the archive's root) is, through at most 8 links. */
  const find = (name: string, role: string): Saved => {
    let path = cleanName(name);
    if (path === null) throw malformed(what, `${role} "${name}" is absolute or leaves the archive`);
    for (let hops = 0; links.has(path) && hops <= 8; hops++) path = links.get(path)!;
    const found = saved.get(path);
    if (found === undefined) throw malformed(what, `${role} "${name}" is not in the archive`);
    return found;
  };
  const read = async (name: string, limit: number, role: string) => {
    const found = find(name, role);
    if (found.size > limit) {
      throw new RegistryError(
        "TOO_LARGE",
        `Cannot read ${what}: ${role} "${name}" is larger than the limit of ${limit} bytes`,
        { url: what, reason: `limit ${limit} bytes` },
      );
    }
    return { ...found, data: await fs.readFile(found.file) };
  };
  const list = parseJson(
    (await read("manifest.json", LIMITS.manifest, "the file")).data,
    `"manifest.json" of ${what}`,
  );
  if (!Array.isArray(list) || !list.every(isDockerImage)) {
    throw malformed(what, "manifest.json is not a list of images");
  }
  const wanted = tag === undefined ? undefined : familiarTag(tag);
  const image = pick(list, (i) => (i.RepoTags ?? []).map(familiarTag), wanted, what);
  const config = await read(image.Config, LIMITS.config, "the configuration");
  const diffIDs = diffIDsOf(config.data, what);
  if (diffIDs.length !== image.Layers.length) {
    throw malformed(
      what,
      `manifest.json names ${image.Layers.length} layers, the configuration ${diffIDs.length}`,
    );
  }
  const layers = new Map<string, SourceLayer>();
  const sizes: number[] = [];
  for (const [i, name] of image.Layers.entries()) {
    const layer = find(name, "layer");
    const diffID = diffIDs[i]!;
    sizes.push(layer.size);
    // A gzipped layer (`docker load` takes them; our own archives keep the registry's
    // blobs) goes as it is once its bytes inflate to the DiffID.
    const inflated = layer.digest === diffID || !layer.gzip
      ? layer.digest
      : await diffIDOf(fs, layer, signal);
    if (inflated !== diffID) {
      throw new RegistryError(
        "DIGEST_INVALID",
        `Cannot read ${what}: layer "${name}" is ${inflated ?? "not a readable layer"}, ` +
          `not the DiffID ${diffID} its configuration names`,
        { url: what, reason: `DiffID ${diffID}` },
      );
    }
    layers.set(diffID, {
      diffID,
      size: layer.size,
      open: async () => (await fs.openRead!(layer.file)).stream,
      // The work directory goes as a whole: a file may be two layers' (through links).
      release: () => Promise.resolve(),
      ...(layer.digest === diffID
        ? {}
        : { blob: { mediaType: DOCKER_LAYER, size: layer.size, digest: layer.digest } }),
    });
  }
  return {
    shown: what,
    config: config.data,
    sizes,
    layers: async function* (wanted: ReadonlySet<string>) {
      for (const layer of layers.values()) if (wanted.has(layer.diffID)) yield layer;
    },
  };
}

/** The DiffID of a saved gzipped layer: its bytes inflated and hashed, `null` if corrupt. */
async function diffIDOf(
  fs: FileSystem,
  layer: Saved,
  signal: AbortSignal | undefined,
): Promise<string | null> {
  const sink = diffIDSink();
  const reader = (await fs.openRead!(layer.file)).stream.getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) return await sink.close();
      await sink.write(value);
    }
  } catch (error) {
    sink.abort();
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

/**
 * Pushes the image an archive at `path` holds to `ref`: the archive read once into a
 * temporary directory (under `config.tempDir`, removed afterwards whatever happens), then
 * pushed from there, recording each layer in `config.metadataService`.
 *
 * A docker archive's `manifest.json` picks the image (`config.tag`, else its only one); each
 * of its layers, an uncompressed tar, must hash to the DiffID its configuration names
 * (`DIGEST_INVALID` otherwise; a gzipped one must inflate to it, and goes as it is), and the
 * push is dockerd's ({@linkcode pushUncompressed}): each layer looked up by its DiffID in the
 * metadata first (existence check, mounts), only the layers left gzipped and uploaded, then a
 * Docker v2 manifest of gzipped layers. An OCI archive's blobs are
 * checked against their digests; `index.json` picks the image (by
 * `org.opencontainers.image.ref.name`), pushed with its manifest's bytes unchanged. dockerd 25
 * and later save an OCI image layout inside the docker archive, which reads either way.
 *
 * A hostile archive is refused with the entry named, before anything is pushed: a link,
 * device, absolute name or one leaving with `..` (`MALFORMED`), a header that is not a number
 * or an entry over `LIMITS.archiveEntry` bytes (`MALFORMED`, `TOO_LARGE`), more than
 * `LIMITS.archiveEntries` entries, an archive ending inside an entry (`TRUNCATED`), a
 * `manifest.json` naming what is not there (`MALFORMED`). Nothing is written outside the
 * temporary directory.
 *
 * @param path The archive.
 * @param ref Where to push, e.g. `registry.example.com/team/app:1`.
 * @param config Format, tag, temporary directory, file system, and what {@linkcode push} takes.
 * @returns What push returns.
 *
 * @example
 * ```ts ignore
 * import { copyFromArchive } from "@distribution/metadata/registry";
 *
 * await copyFromArchive("/tmp/app.tar", "registry.example.com/team/app:1", { tag: "app:1" });
 * ```
 */
export async function copyFromArchive(
  path: string,
  ref: string,
  config: ArchiveSourceConfig = {},
): Promise<PushResult> {
  const { format = "docker-archive", tag, fs = runtimeFileSystem(), tempDir, ...pushConfig } =
    config;
  if (format === "docker-archive") {
    return await transferImage(
      archiveSource(path, { format, tag, fs }),
      registryPushDestination(ref, { ...pushConfig, fs }),
      { fs, tempDir, signal: config.signal },
    );
  }
  checkStreams(fs, path);
  const what = `${format} "${path}"`;
  const target = parseReference(ref);
  return await inTempDir(fs, tempDir, "distribution-archive", async (temp) => {
    const read = await readOciArchive(fs, path, `${temp}/layout`, config.signal, tag, what);
    const { layout, descriptor } = read;
    await layout.tag(formatReference(target), descriptor);
    return await push(ref, layout, pushConfig);
  });
}

/** Refuses a file system that cannot stream files (the archive is read, and spooled, so). */
function checkStreams(fs: FileSystem, path: string): void {
  if (fs.openRead === undefined || fs.writeFileStream === undefined) {
    throw new RegistryError("UNSUPPORTED", `Cannot read "${path}": the file system cannot stream`);
  }
}

/** Which image of an archive, and the file system holding it. */
export interface ArchiveReadOptions {
  /** `docker-archive` (default) or `oci-archive`. */
  format?: ArchiveFormat | undefined;
  /**
   * A docker archive's `RepoTags` entry (`app:1`), an OCI archive's
   * `org.opencontainers.image.ref.name`; without it the archive must hold one image.
   */
  tag?: string | undefined;
  /** For an OCI archive whose image is an index: the platform taken (default: this machine's). */
  platform?: Platform | undefined;
  /** The file system holding the archive (default: the runtime's). */
  fs?: FileSystem | undefined;
}

/**
 * An archive at `path` as the source of a transfer: read once into the transfer's directory,
 * every file checked as {@linkcode copyFromArchive} checks it; a docker archive's layers
 * proven against their DiffIDs, an OCI archive's image read as a layout's.
 *
 * @param path The archive.
 * @param options Format, the image's tag, platform, file system.
 * @returns The source, for {@linkcode transferImage}.
 */
export function archiveSource(path: string, options: ArchiveReadOptions = {}): OpenSource {
  const { format = "docker-archive", tag, fs = runtimeFileSystem() } = options;
  const what = `${format} "${path}"`;
  return async (work) => {
    const { dir, signal } = work;
    checkStreams(fs, path);
    if (format === "docker-archive") {
      const { stream } = await fs.openRead!(path);
      await fs.mkdir(`${dir}/archive`, 0o700);
      return await readDockerArchive(stream, signal, fs, `${dir}/archive`, tag, what);
    }
    const { layout, descriptor } = await readOciArchive(
      fs,
      path,
      `${dir}/layout`,
      signal,
      tag,
      what,
    );
    return await layoutSource(layout, descriptor, options.platform ?? hostPlatform(), what)(work);
  };
}
