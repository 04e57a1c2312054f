// `copy SRC DST`: an image from an OCI layout, dockerd or an archive to a registry (push), from a
// registry to a layout, dockerd or an archive (pull), or between registries (streamed straight
// through, nothing on disk), recording where its layers went in a metadata store, as dockerd
// records it.
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";
import { FSMetadataStore } from "../fs_store.ts";
import {
  type ContentStore,
  copy,
  type CopyConfig,
  copyFromArchive,
  copyFromDockerd,
  type CopySide,
  copyToArchive,
  copyToDockerd,
  type Descriptor,
  formatReference,
  type OciLayoutStore,
  ociLayoutStore,
  parsePlatform,
  type Platform,
  pull,
  push,
  type RegistryConfig,
} from "../registry/mod.ts";
import { V2MetadataService } from "../v2_metadata_service.ts";
import { DEFAULT_DOCKER_HOST, DockerdApi } from "../registry/ends/dockerd_api.ts";
import type { ArchiveCopyResult } from "../registry/ends/_image_archive.ts";
import { archiveDestination } from "../registry/ends/archive_file.ts";
import { archiveSource } from "../registry/ends/archive_source.ts";
import { dockerdDestination } from "../registry/ends/dockerd_load.ts";
import { dockerdSource } from "../registry/ends/dockerd_source.ts";
import { layoutDestination } from "../registry/ends/layout_destination.ts";
import { layoutSource } from "../registry/ends/layout_source.ts";
import { hostPlatform } from "../registry/platform.ts";
import type { ImageDestination } from "../registry/transfer/destination.ts";
import { type OpenSource, transferImage } from "../registry/transfer/transfer.ts";
import { removeTree } from "../_remove_tree.ts";
import { UsageError } from "./args.ts";
import type { CopyProgress } from "./copy_progress.ts";
import {
  type ImageLocation,
  parseImageLocation,
  showImageLocation,
  taggedName,
} from "./image_location.ts";
import { type OpenStore, openStoreLocation, parseStoreLocation } from "./store_location.ts";
import { registrySide, type RegistrySideContext } from "./registry_side.ts";

/** What `copy` needs from the CLI. */
export interface CopyContext extends RegistrySideContext {
  /** The working directory, for relative `oci:` paths. */
  cwd: string;
  progress: CopyProgress;
  /** Prints one line of the result on stdout. */
  print(line: string): void;
  /** Prints a warning on stderr. */
  warn(line: string): void;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

/** The exit status of a copy stopped by Ctrl-C, as shells report SIGINT (128 + 2). */
export const INTERRUPTED = 130;

/**
 * The metadata store `copy` records into when given neither `--root` nor `--store`: the
 * user's own, never dockerd's (a copy must not change what dockerd mounts from unless asked).
 *
 * @param env Environment variables.
 * @returns `$XDG_DATA_HOME/distribution-metadata/distribution`, by default under
 * `~/.local/share`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { defaultCopyStore } from "./copy_command.ts";
 *
 * equal(
 *   defaultCopyStore((name) => name === "HOME" ? "/home/ci" : undefined),
 *   "/home/ci/.local/share/distribution-metadata/distribution",
 * );
 * ```
 */
export function defaultCopyStore(env: (name: string) => string | undefined): string {
  const home = env("HOME");
  const dataHome = env("XDG_DATA_HOME") || (home ? `${home}/.local/share` : undefined);
  if (dataHome === undefined) {
    throw new MetadataError("ENOENT", "Cannot find a metadata store: no HOME; pass --root");
  }
  return `${dataHome}/distribution-metadata/distribution`;
}

/**
 * The metadata store `copy` and `sync` record into: `--store`, `--root`, else the user's own.
 *
 * @param context The command line, files and environment.
 * @returns The store, opened for writing, and how to close it.
 */
export async function openMetadataStore(context: RegistrySideContext): Promise<OpenStore> {
  const { fs, args } = context;
  const writable = (path: string) => FSMetadataStore.open(path, { fs, lock: true });
  if (args.store !== undefined) {
    return await openStoreLocation(await parseStoreLocation(args.store, fs, false), writable);
  }
  const path = args.root ?? defaultCopyStore(context.env);
  await fs.mkdir(path, 0o700);
  return { store: await writable(path), close: () => Promise.resolve() };
}

/** A layout that already holds an image: `copy` never creates a source. */
async function existingLayout(context: CopyContext, dir: string, shown: string) {
  if (await context.fs.stat(`${dir}/index.json`) === null) {
    throw new MetadataError("ENOENT", `Cannot copy "${shown}": no OCI layout (no index.json)`, {
      path: dir,
    });
  }
  return await ociLayoutStore(dir, { fs: context.fs });
}

/** The manifest `oci:DIR[:TAG]` names: the tag's, or the only one the layout holds. */
async function sourceManifest(
  layout: OciLayoutStore,
  tag: string | undefined,
  shown: string,
): Promise<Descriptor> {
  if (tag !== undefined) {
    const found = await layout.resolve(tag);
    if (found === null) {
      throw new MetadataError("ENOENT", `Cannot copy "${shown}": no image tagged "${tag}"`, {
        path: shown,
      });
    }
    return found;
  }
  const all = await layout.list();
  if (all.length !== 1) {
    throw new UsageError(
      `Cannot copy "${shown}": the layout holds ${all.length} images; name one as oci:DIR:TAG`,
    );
  }
  return all[0]!;
}

/**
 * A content store that answers every name with one manifest (push looks the target's tag
 * up; the source may call it otherwise) and tags what is stored under `tag` when given.
 */
function namedStore(
  store: ContentStore,
  names: { manifest?: Descriptor; tag?: string | undefined },
): ContentStore {
  return {
    has: (digest) => store.has(digest),
    get: (digest, options) => store.get(digest, options),
    put: (digest, data) => store.put(digest, data),
    open: (digest, options) => store.open(digest, options),
    write: (digest, data, options) => store.write(digest, data, options),
    resolve: (name) =>
      names.manifest === undefined ? store.resolve(name) : Promise.resolve({ ...names.manifest }),
    tag: (name, descriptor) => store.tag(names.tag ?? name, descriptor),
  };
}

/**
 * The outermost of `dir` and its ancestors that does not exist yet: what creating `dir`
 * creates, to remove if the copy fails (`undefined` when `dir` exists).
 */
async function firstMissing(fs: FileSystem, dir: string): Promise<string | undefined> {
  let missing: string | undefined;
  for (let path = dir; path !== "" && await fs.stat(path) === null;) {
    missing = path;
    path = path.slice(0, path.lastIndexOf("/"));
  }
  return missing;
}

/** Removes a directory tree this command created, warning if it cannot. */
async function removeCreated(context: CopyContext, path: string): Promise<void> {
  await removeTree(context.fs, path).catch((error) => {
    context.warn(`warning: could not remove "${path}": ${error}`);
  });
}

/** `--digestfile FILE`: the digest alone, no newline, as skopeo writes it; replaced whole. */
async function writeDigestFile(context: CopyContext, path: string, digest: string) {
  const absolute = path.startsWith("/") ? path : `${context.cwd}/${path}`;
  const temp = `${absolute}.tmp-${crypto.randomUUID()}`;
  await context.fs.writeFileAtomic(absolute, temp, new TextEncoder().encode(digest), 0o644);
}

/** Layers whose DiffID the bytes that passed disproved, or could not prove. */
const UNPROVEN = new Set(["mismatch", "unverifiable", "invalid"]);

/** Warns about layers whose DiffID pull or copy could not prove: they moved, not recorded. */
function warnUnrecorded(
  context: CopyContext,
  result: { layers: { digest: string; status: string }[] },
): void {
  for (const layer of result.layers) {
    if (!UNPROVEN.has(layer.status)) continue;
    context.warn(`warning: layer ${layer.digest} not recorded: its DiffID is ${layer.status}`);
  }
}

/** dockerd's socket, as the CLI reaches it. */
function dockerHost(context: CopyContext): string {
  return context.env("DOCKER_HOST") || DEFAULT_DOCKER_HOST;
}

/** A side that is no registry, as a transfer's source. */
async function sourceOf(
  context: CopyContext,
  source: Exclude<ImageLocation, { kind: "docker" }>,
  platform: Platform | "all" | undefined,
): Promise<OpenSource> {
  const { fs, signal } = context;
  const one = typeof platform === "object" ? platform : hostPlatform();
  switch (source.kind) {
    case "docker-daemon":
      return dockerdSource(taggedName(source.reference), {
        dockerHost: dockerHost(context),
        fs,
        signal,
      });
    case "archive":
      return archiveSource(source.path, {
        format: source.format,
        tag: source.tag,
        platform: one,
        fs,
      });
    case "oci": {
      const layout = await existingLayout(context, source.dir, source.text);
      const manifest = await sourceManifest(layout, source.tag, source.text);
      return layoutSource(layout, manifest, one, source.text);
    }
  }
}

/**
 * A side that is no registry, as a transfer's destination. An image from no registry records
 * nothing; the name it gets where none is given is the source's tag (`latest` for an archive
 * that names none), as skopeo names it.
 */
async function destinationOf(
  context: CopyContext,
  destination: Exclude<ImageLocation, { kind: "docker" }>,
  source: Exclude<ImageLocation, { kind: "docker" }>,
): Promise<ImageDestination<ArchiveCopyResult>> {
  switch (destination.kind) {
    case "docker-daemon": {
      const api = new DockerdApi(dockerHost(context), context.signal);
      return dockerdDestination(api, taggedName(destination.reference));
    }
    case "archive":
      return archiveDestination(destination.path, {
        format: destination.format,
        name: destination.tag,
        fs: context.fs,
      });
    case "oci": {
      const tag = destination.tag ??
        (source.kind === "docker-daemon" ? source.reference.tag : source.tag) ?? "latest";
      const name = tag.includes(":") ? tag.slice(tag.lastIndexOf(":") + 1) : tag;
      return layoutDestination(await ociLayoutStore(destination.dir, { fs: context.fs }), name);
    }
  }
}

/**
 * Runs `copy SRC DST`.
 *
 * @param context The options, output, credentials and signal.
 * @returns The exit status: 0 copied, 2 failed, {@linkcode INTERRUPTED} on Ctrl-C.
 */
export async function copyCommand(context: CopyContext): Promise<number> {
  const { args } = context;
  const source = parseImageLocation(args.argument!, context.cwd);
  const destination = parseImageLocation(args.destination!, context.cwd);
  if (source.kind === "docker" && destination.kind === "docker") {
    context.credentials.checkSides(source.reference.domain, destination.reference.domain);
  }
  const registry = source.kind === "docker" || destination.kind === "docker";
  const archiving = destination.kind === "docker-daemon" || destination.kind === "archive";
  if ((archiving || !registry) && args.all) {
    throw new UsageError(`Cannot copy "--all" to "${destination.text}": it takes one image`);
  }
  if ((source.kind === "archive" || source.kind === "docker-daemon") && args.all) {
    throw new UsageError(`Cannot copy "--all" from "${source.text}": it gives one image`);
  }
  // Without either, the registry side takes this machine's platform from an index.
  const platform = args.all
    ? "all" as const
    : args.platform === undefined
    ? undefined
    : parsePlatform(args.platform);
  // Into or out of dockerd, the layers are recorded in dockerd's own store (what its push
  // reads) unless another is named; between ends that are no registry, nothing is recorded.
  const daemon = source.kind === "docker-daemon" || destination.kind === "docker-daemon";
  const opened = !registry || (daemon && args.root === undefined && args.store === undefined)
    ? null
    : await openMetadataStore(context);
  const metadataService = opened === null ? undefined : new V2MetadataService(opened.store);
  /**
   * One side's own way in: its keychain (the library derives the HMAC key from what it
   * resolves, `{}` for none, as dockerd hashes the AuthConfig it was given), http or https.
   */
  const sideFor = (side: ImageLocation & { kind: "docker" }): Promise<CopySide> =>
    registrySide(
      context,
      side.reference,
      side === source
        ? { prefix: "src", own: args.sourceCredentials }
        : { prefix: "dest", own: args.destinationCredentials },
    );
  const shared: CopyConfig = {
    ...(metadataService === undefined ? {} : { metadataService }),
    signal: context.signal,
    onProgress: (event) => context.progress.onProgress(event),
    ...(platform === undefined ? {} : { platform }),
  };
  // Into dockerd or an archive: one image.
  const { platform: _, ...common } = shared;
  const onePlatform = typeof platform === "object" ? { platform } : {};
  const configFor = async (side: ImageLocation & { kind: "docker" }): Promise<RegistryConfig> => ({
    ...shared,
    ...await sideFor(side),
  });
  // What a failed pull leaves behind, when it created the destination layout.
  let created: string | undefined;
  try {
    let copied: Descriptor;
    if (source.kind === "oci" && destination.kind === "docker") {
      const layout = await existingLayout(context, source.dir, source.text);
      const manifest = await sourceManifest(layout, source.tag, source.text);
      context.progress.step("push");
      copied = await push(
        formatReference(destination.reference),
        namedStore(layout, { manifest }),
        await configFor(destination),
      );
    } else if (source.kind === "docker" && destination.kind === "oci") {
      created = await firstMissing(context.fs, destination.dir);
      const layout = await ociLayoutStore(destination.dir, { fs: context.fs });
      context.progress.step("pull");
      const result = await pull(
        formatReference(source.reference),
        namedStore(layout, { tag: destination.tag }),
        await configFor(source),
      );
      warnUnrecorded(context, result);
      copied = result;
    } else if (source.kind === "docker" && destination.kind === "docker-daemon") {
      context.progress.step("pull");
      const result = await copyToDockerd(
        formatReference(source.reference),
        taggedName(destination.reference),
        {
          ...common,
          ...await sideFor(source),
          ...onePlatform,
          dockerHost: dockerHost(context),
        },
      );
      warnUnrecorded(context, result);
      copied = result;
    } else if (source.kind === "docker" && destination.kind === "archive") {
      context.progress.step("pull");
      const { format, tag } = destination;
      const result = await copyToArchive(formatReference(source.reference), destination.path, {
        ...common,
        ...await sideFor(source),
        ...onePlatform,
        format,
        ...(tag === undefined ? {} : { tag }),
        fs: context.fs,
      });
      warnUnrecorded(context, result);
      copied = result;
    } else if (source.kind === "archive" && destination.kind === "docker") {
      context.progress.step("push");
      const { format, tag } = source;
      copied = await copyFromArchive(source.path, formatReference(destination.reference), {
        ...await configFor(destination),
        format,
        ...(tag === undefined ? {} : { tag }),
        fs: context.fs,
      });
    } else if (source.kind === "docker-daemon" && destination.kind === "docker") {
      context.progress.step("push");
      copied = await copyFromDockerd(
        taggedName(source.reference),
        formatReference(destination.reference),
        {
          ...await configFor(destination),
          dockerHost: dockerHost(context),
          fs: context.fs,
        },
      );
    } else if (source.kind === "docker" && destination.kind === "docker") {
      // Streamed registry to registry: each side with its own credentials and HMAC key.
      context.progress.step("push");
      const result = await copy(
        formatReference(source.reference),
        formatReference(destination.reference),
        { ...shared, source: await sideFor(source), destination: await sideFor(destination) },
      );
      warnUnrecorded(context, result);
      copied = result;
    } else if (source.kind !== "docker" && destination.kind !== "docker") {
      // Between ends that are no registry: one transfer, each layer as the source gives it.
      context.progress.step("pull");
      if (destination.kind === "oci") created = await firstMissing(context.fs, destination.dir);
      const result = await transferImage(
        await sourceOf(context, source, platform),
        await destinationOf(context, destination, source),
        { fs: context.fs, signal: context.signal, onProgress: shared.onProgress },
      );
      warnUnrecorded(context, result);
      copied = result;
    } else {
      throw new Error("unreachable: every pair with a registry is handled above");
    }
    context.progress.finish();
    if (args.digestFile !== undefined) {
      await writeDigestFile(context, args.digestFile, copied.digest);
    }
    const from = showImageLocation(source);
    const to = showImageLocation(destination);
    if (args.quiet) return 0;
    if (args.json) {
      const { mediaType, digest, size } = copied;
      context.print(
        JSON.stringify({ event: "copied", source: from, destination: to, mediaType, digest, size }),
      );
    } else context.print(`Copied ${from} to ${to} (${copied.digest})`);
    return 0;
  } catch (error) {
    context.progress.finish();
    if (created !== undefined) await removeCreated(context, created);
    // Once Ctrl-C aborted the signal, whatever failed failed because of it.
    if (context.signal.aborted) {
      context.warn("error: interrupted; nothing was recorded for unfinished layers");
      return INTERRUPTED;
    }
    throw error;
  } finally {
    await opened?.close();
  }
}
