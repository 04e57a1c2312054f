/**
 * dockerd as the source of a transfer, to a registry as `docker push` pushes: the image
 * configuration's exact bytes and the layers' sizes are read from dockerd's image store on
 * disk, every layer is looked up by its DiffID in the distribution metadata first, and only
 * when layers are left is `GET /images/{id}/get` (the `docker save` archive) streamed for
 * their bytes (to dockerd, an archive or a layout, for all of them).
 *
 * dockerd 20.10 writes that archive from a directory, in the lexical order of its names: for
 * each layer its v1 directory `<v1 id>/` with `VERSION`, `json` and `layer.tar` (v1 IDs are
 * digests, so the layers come in no order of the image), the configuration
 * `<image id hex>.json` among them, then `manifest.json` (and `repositories` when saved by
 * name; by ID, as here, there is none); a layer the image holds twice is a symbolic link to
 * the first `layer.tar`. So each `layer.tar` is known by its bytes' SHA-256, its DiffID, not
 * by its name, and `manifest.json` is never needed. dockerd 25 and later save an OCI image
 * layout instead, every file a blob `blobs/sha256/<hex>` named by its digest, a layer's by its
 * DiffID: only the blobs of the layers wanted are read, each checked against its name.
 *
 * @module
 */
import type { FileSystem } from "../../file_system.ts";
import { runtimeFileSystem } from "../../_runtime_file_system.ts";
import { digestOf } from "../_digest.ts";
import { hashing, spoolInto } from "../_spool.ts";
import { RegistryError } from "../errors.ts";
import type { GzipLayer, GzippedLayer, UncompressedPushConfig } from "../push_uncompressed.ts";
import type { ImageSource, SourceLayer } from "../transfer/source.ts";
import { type OpenSource, transferImage } from "../transfer/transfer.ts";
import { LIMITS } from "../transport/limits.ts";
import type { PushResult } from "../types.ts";
import { type DaemonImage, DockerdApi } from "./dockerd_api.ts";
import { dockerdImageStore, isDenied, openDockerdMetadata } from "./dockerd_store.ts";
import { readDockerArchive } from "./archive_source.ts";
import { registryPushDestination } from "./registry_push_destination.ts";
import { tarEntries } from "./_tar_reader.ts";

/** How {@linkcode copyFromDockerd} reaches dockerd and the registry. */
export interface DockerdSourceConfig extends UncompressedPushConfig {
  /** dockerd's socket as a `DOCKER_HOST` value (default `unix:///var/run/docker.sock`). */
  dockerHost?: string;
  /** The file system of dockerd's image store and of the temporary directory (default: the runtime's). */
  fs?: FileSystem;
}

/** The configuration's bytes from dockerd's image store, proven to be the image ID. */
async function configOf(fs: FileSystem, store: string, image: DaemonImage): Promise<Uint8Array> {
  const path = `${store}/imagedb/content/sha256/${image.id.slice("sha256:".length)}`;
  const bytes = await fs.readFile(path, { maxBytes: LIMITS.config });
  const digest = await digestOf(bytes);
  if (digest !== image.id) {
    throw new RegistryError(
      "DIGEST_INVALID",
      `Cannot push dockerd's image ${image.id}: its configuration "${path}" is ${digest}`,
      { url: path, reason: `digest ${image.id}` },
    );
  }
  return bytes;
}

/**
 * Each layer's size in dockerd's layer store (`layerdb/sha256/<chain ID>/size`), which
 * dockerd's push sizes its attempt budgets by; `undefined` where it cannot be read.
 */
async function layerSizes(
  fs: FileSystem,
  store: string,
  diffIDs: string[],
): Promise<(number | undefined)[]> {
  const sizes: (number | undefined)[] = [];
  let chainID = "";
  for (const diffID of diffIDs) {
    chainID = chainID === ""
      ? diffID
      : await digestOf(new TextEncoder().encode(`${chainID} ${diffID}`));
    try {
      const path = `${store}/layerdb/sha256/${chainID.slice("sha256:".length)}/size`;
      const text = new TextDecoder().decode(await fs.readFile(path, { maxBytes: 32 }));
      sizes.push(/^\d+$/.test(text) ? Number(text) : undefined);
    } catch {
      sizes.push(undefined); // dockerd's own rule for a size it cannot get: a middle layer
    }
  }
  return sizes;
}

/** A layer of dockerd's save before 25: `<v1 id>/layer.tar`. */
const V1_LAYER = /^[0-9a-f]{64}\/layer\.tar$/;
/** A file of dockerd's save from 25 on: an OCI layout's blob, a layer's named by its DiffID. */
const SAVED_BLOB = /^blobs\/sha256\/([0-9a-f]{64})$/;

/**
 * The `wanted` layers of dockerd's save of `image`, each spooled into `dir` as it streams and
 * known by its SHA-256, the save read only until the last of them; gzipped with `gzip` as they
 * are spooled when the destination takes them so. A `layer.tar` that is none of the image's
 * DiffIDs, or a blob whose bytes are not the digest its name says, is refused
 * (`DIGEST_INVALID`), so no bytes but the image's own are ever pushed or recorded.
 */
async function* savedLayers(
  api: DockerdApi,
  image: DaemonImage,
  wanted: ReadonlySet<string>,
  fs: FileSystem,
  dir: string,
  signal: AbortSignal,
  gzip: GzipLayer | undefined,
): AsyncGenerator<SourceLayer> {
  const what = `dockerd's save of ${image.id}`;
  const body = await api.request({ method: "GET", path: `/images/${image.id}/get` });
  const diffIDs = new Set(image.diffIDs);
  // Once the last layer wanted went by, the rest of the save is not read.
  const missing = new Set(wanted);
  // A layer is gzipped as it is spooled (one pass over its bytes, not two) when it is surely
  // wanted: named by its DiffID, or every layer is wanted (a first push). Otherwise a
  // `layer.tar` is known only once hashed, so it is spooled as it is and gzipped only if wanted.
  const allWanted = [...diffIDs].every((diffID) => wanted.has(diffID));
  let spooled = 0;
  for await (const entry of tarEntries(body, what, signal)) {
    const blob = entry.kind === "file" ? SAVED_BLOB.exec(entry.name) : null;
    const claimed = blob === null ? null : `sha256:${blob[1]}`;
    // A blob is named by its digest, a layer's being its DiffID: only the ones wanted are read.
    const read = claimed === null
      ? entry.kind === "file" && V1_LAYER.test(entry.name)
      : missing.has(claimed);
    if (!read) {
      await entry.body.cancel();
      continue;
    }
    const file = `${dir}/${spooled++}.tar`;
    const raw = hashing(entry.body, signal);
    let gzipped: GzippedLayer | undefined;
    if (gzip !== undefined && (claimed !== null || allWanted)) {
      gzipped = await gzip(file, raw.passing);
    } else await spoolInto(fs, file, raw.passing);
    const diffID = raw.seen.digest();
    if (!diffIDs.has(diffID) || (claimed !== null && diffID !== claimed)) {
      throw new RegistryError(
        "DIGEST_INVALID",
        `Cannot read ${what}: "${entry.name}" is ${diffID}, ${
          claimed === null ? "none of the image's DiffIDs" : "not the digest its name says"
        }`,
        { url: what, reason: `DiffID ${claimed ?? diffID}` },
      );
    }
    if (!wanted.has(diffID)) {
      await fs.remove(file);
      continue;
    }
    yield {
      diffID,
      size: gzipped?.size ?? raw.seen.size,
      open: async () => (await fs.openRead!(file)).stream,
      release: () => Promise.resolve(fs.remove(file)),
      ...(gzipped === undefined ? {} : { blob: gzipped }),
    };
    missing.delete(diffID);
    if (missing.size === 0) return;
  }
}

/**
 * dockerd's image `held` as a transfer's source: its configuration's exact bytes from dockerd's
 * image store (`store`), its layers' sizes from its `layerdb`, its layers from its save, read
 * only when some are wanted. When this user may not read the image store (it is root's, the
 * socket the docker group's), or dockerd keeps none (`store` `null`: the containerd image
 * store), the save is read whole into the transfer's directory first, as skopeo reads it, its
 * configuration checked against the image ID.
 */
function fromDockerd(
  api: DockerdApi,
  held: DaemonImage,
  store: string | null,
  fs: FileSystem,
): OpenSource {
  return async ({ dir, signal }) => {
    if (store !== null) {
      try {
        const config = await configOf(fs, store, held);
        return {
          shown: `dockerd's image ${held.id}`,
          config,
          sizes: await layerSizes(fs, store, held.diffIDs),
          layers: (wanted, spool, stop, gzip) =>
            savedLayers(api, held, wanted, fs, spool, stop, gzip),
        };
      } catch (error) {
        if (!isDenied(error)) throw error;
      }
    }
    return await fromSave(api, held, fs, dir, signal);
  };
}

/** dockerd's save of `image` read whole into `dir`, its configuration proved to be the image ID. */
async function fromSave(
  api: DockerdApi,
  image: DaemonImage,
  fs: FileSystem,
  dir: string,
  signal: AbortSignal,
): Promise<ImageSource> {
  const what = `dockerd's save of ${image.id}`;
  const save = await api.request({ method: "GET", path: `/images/${image.id}/get` });
  const saved = await readDockerArchive(save, signal, fs, dir, undefined, what);
  const digest = await digestOf(saved.config);
  if (digest !== image.id) {
    throw new RegistryError(
      "DIGEST_INVALID",
      `Cannot copy dockerd's image ${image.id}: the configuration in its save is ${digest}`,
      { url: what, reason: `digest ${image.id}` },
    );
  }
  return saved;
}

/** How {@linkcode dockerdSource} reaches dockerd. */
export interface DockerdReadOptions {
  /** dockerd's socket as a `DOCKER_HOST` value (default `unix:///var/run/docker.sock`). */
  dockerHost?: string;
  /** The file system of dockerd's image store and of the transfer (default: the runtime's). */
  fs?: FileSystem;
  /** Stops every request to dockerd. */
  signal?: AbortSignal;
}

/**
 * An image dockerd holds as the source of a transfer: its ID and DiffIDs from
 * `GET /images/{image}/json`, then as {@linkcode copyFromDockerd} reads it.
 *
 * @param image The image in dockerd: a reference or an image ID, e.g. `app:1`.
 * @param options dockerd's socket, the file system, the signal.
 * @returns The source, for {@linkcode transferImage}.
 */
export function dockerdSource(image: string, options: DockerdReadOptions = {}): OpenSource {
  return async (work) => {
    const api = new DockerdApi(options.dockerHost, options.signal);
    const held = await api.image(image);
    const open = fromDockerd(api, held, await api.imageStore(), options.fs ?? runtimeFileSystem());
    return await open(work);
  };
}

/**
 * Pushes an image dockerd holds to a registry, as `docker push` does, and records every
 * layer in dockerd's store, so a later `docker push` of it skips them too.
 *
 * The image's ID and DiffIDs come from `GET /images/{image}/json`, its configuration's exact
 * bytes from dockerd's image store on disk (`<DockerRootDir>/image/<Driver>/imagedb`, found
 * from `/info`; its digest must be the image ID), and the layers' sizes from its `layerdb`.
 * Each layer is then looked up by its DiffID in the metadata (an existence check in the target
 * repository, mounts from the registry's other repositories, HMAC-preferred, with dockerd's
 * budgets), and only when layers are left is dockerd's save of the image streamed: each
 * `layer.tar` is hashed as it is spooled to a temporary file, must be one of the image's
 * DiffIDs (`DIGEST_INVALID` otherwise, nothing recorded), and the ones left are gzipped and
 * uploaded, up to `maxConcurrentUploads` at once, then recorded. Without
 * `metadataService`, records into dockerd's own store (`<…>/distribution`; `EACCES` saying so
 * when this user may not open it); a dockerd on the containerd image store keeps no such store
 * (`UNSUPPORTED`). A user whom dockerd's socket admits but not its image store (the docker
 * group, not root) still pushes, with `metadataService` given: the image then comes from the
 * save, read whole into the temporary directory first (as skopeo reads it), its configuration
 * checked against the image ID.
 *
 * @param image The image in dockerd: a reference or an image ID, e.g. `app:1`.
 * @param ref Where to push, e.g. `registry.example.com/team/app:1`.
 * @param config dockerd's socket, credentials and their HMAC key, the metadata service,
 * concurrency, temporary directory, transport, signal, progress.
 * @returns The pushed Docker v2 manifest, and what became of each layer.
 *
 * @example
 * ```ts ignore
 * import { computeV2MetadataHMACKey } from "@distribution/metadata";
 * import { copyFromDockerd } from "@distribution/metadata/registry";
 *
 * const auth = { username: "ci", password: "secret" };
 * const pushed = await copyFromDockerd("app:1", "registry.example.com/team/app:1", {
 *   auth,
 *   hmacKey: await computeV2MetadataHMACKey(auth),
 * });
 * console.log(pushed.layers.map((layer) => layer.transfer));
 * ```
 */
export async function copyFromDockerd(
  image: string,
  ref: string,
  config: DockerdSourceConfig = {},
): Promise<PushResult> {
  const { dockerHost, tempDir, ...pushConfig } = config;
  const fs = config.fs ?? runtimeFileSystem();
  const api = new DockerdApi(dockerHost, config.signal);
  const held = await api.image(image);
  const doing = `copy "${image}" out of dockerd`;
  const store = await dockerdImageStore(api, doing);
  const metadataService = config.metadataService ?? await openDockerdMetadata(store, doing);
  return await transferImage(
    fromDockerd(api, held, store, fs),
    registryPushDestination(ref, { ...pushConfig, fs, metadataService }),
    { fs, tempDir, signal: config.signal },
  );
}
