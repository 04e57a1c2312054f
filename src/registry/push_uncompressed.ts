/**
 * Pushing an image whose source holds its layers uncompressed (dockerd, a `docker save`
 * archive): each layer is looked up by its DiffID first, as dockerd's push does (existence
 * check, mounts, more checks: {@linkcode lookUpLayer}), and only the layers left are read from
 * the source, gzipped and uploaded ({@linkcode uploadLayer}), then the Docker v2 manifest is
 * built from what the registry has.
 *
 * @module
 */
import type { FileSystem } from "../file_system.ts";
import { runtimeFileSystem } from "../_runtime_file_system.ts";
import { digestOf, isDigest } from "./_digest.ts";
import { gzipStream } from "./_gzip.ts";
import { diffIDsOf } from "./_image.ts";
import { hashing, inTempDir, spoolInto } from "./_spool.ts";
import { RegistryError } from "./errors.ts";
import { withCredentials } from "./keychain.ts";
import { parseManifest } from "./manifest.ts";
import {
  type LayerPushed,
  lookUpLayer,
  openPush,
  pushBlob,
  type PushContext,
  uploadLayer,
} from "./push.ts";
import { parseReference } from "./reference.ts";
import { checkRepositoryName } from "./repositories.ts";
import { TaskGroup } from "./transfer/task_group.ts";
import { UploadAsMade } from "./ends/upload_as_made.ts";
import type { BlobWriter, Descriptor, PushResult, RegistryConfig } from "./types.ts";

/** The media types of what dockerd pushes. */
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/**
 * A layer's bytes, readable again: uncompressed, already proven to hash to its DiffID, or,
 * with `blob`, already gzipped (proven to inflate to it), pushed as they are.
 */
export interface UncompressedLayer {
  /** The DiffID its (inflated) bytes hash to. */
  diffID: string;
  /** Its bytes from the start. */
  open(): Promise<ReadableStream<Uint8Array>>;
  /** Frees what holds the bytes (e.g. a spool file) once they are compressed or pushed. */
  release(): Promise<void>;
  /**
   * The blob the bytes already are, when the source holds the layer gzipped (`sent` when
   * {@linkcode GzipLayer} sent it as it was made).
   */
  blob?: GzippedLayer;
}

/** A layer gzipped into a file, and the upload it was sent in as it was made, if any. */
export type GzippedLayer = Descriptor & { sent?: UploadAsMade };

/**
 * Gzips a layer's bytes into `file` as {@linkcode gzipInto} does, sending them to the
 * registry as they are made when the destination allows it.
 */
export type GzipLayer = (file: string, bytes: ReadableStream<Uint8Array>) => Promise<GzippedLayer>;

/** An image whose source holds the layers uncompressed. */
export interface UncompressedImage {
  /** The configuration's exact bytes (dockerd's image ID is their digest). */
  config: Uint8Array;
  /** Each layer's size as dockerd's layer store gives it, for the attempt budgets, base first. */
  sizes?: readonly (number | undefined)[];
  /**
   * The layers no lookup found (`wanted`, by DiffID), in the source's order, each proven
   * against its DiffID as it is read (`DIGEST_INVALID` otherwise); spool files go under `dir`.
   * A source that gzips a layer as it spools it does so with `gzip`, given by a destination
   * that takes layers gzipped (a registry). Called once, and only when some layer is wanted.
   */
  layers(
    wanted: ReadonlySet<string>,
    dir: string,
    signal: AbortSignal,
    gzip?: GzipLayer,
  ): AsyncIterable<UncompressedLayer>;
}

/** Where {@linkcode pushUncompressed} keeps its temporary files, and what {@linkcode push} takes. */
export interface UncompressedPushConfig extends RegistryConfig {
  /** The file system of the temporary directory (default: the runtime's). */
  fs?: FileSystem;
  /** Where the temporary directory is made (default: the runtime's temporary directory). */
  tempDir?: string;
}

/**
 * `bytes` gzipped into `file` (through `<file>.tmp`), hashed as they are written, and sent
 * in `sent` on the way when given.
 *
 * @returns The blob they make: its digest and size.
 */
export async function gzipInto(
  fs: FileSystem,
  file: string,
  bytes: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  sent?: UploadAsMade,
): Promise<Descriptor> {
  const gzipped = gzipStream(bytes);
  const { passing, seen } = hashing(sent === undefined ? gzipped : sent.feed(gzipped), signal);
  await spoolInto(fs, file, passing);
  return { mediaType: DOCKER_LAYER, digest: seen.digest(), size: seen.size };
}

/** A proven layer gzipped into `dir` (its digest and size learnt), then uploaded. */
async function compressAndUpload(
  ctx: PushContext,
  fs: FileSystem,
  dir: string,
  layer: UncompressedLayer,
  session: BlobWriter | null,
  signal: AbortSignal,
): Promise<LayerPushed> {
  if (layer.blob !== undefined) {
    try {
      return await uploadLayer(
        ctx,
        layer.diffID,
        {
          ...layer.blob,
          open: () => layer.open(),
          what: `layer ${layer.diffID} as ${layer.blob.digest}`,
        },
        session,
        signal,
      );
    } finally {
      await layer.release();
    }
  }
  const gz = `${dir}/${layer.diffID.slice(layer.diffID.indexOf(":") + 1)}.gz`;
  try {
    let gzipped: Descriptor;
    try {
      gzipped = await gzipInto(fs, gz, await layer.open(), signal);
    } catch (error) {
      // The session a refused mount opened goes to no upload now.
      await session?.cancel().catch(() => {});
      throw error;
    } finally {
      await layer.release();
    }
    return await uploadLayer(
      ctx,
      layer.diffID,
      {
        ...gzipped,
        open: async () => (await fs.openRead!(gz)).stream,
        what: `layer ${layer.diffID} gzipped as ${gzipped.digest}`,
      },
      session,
      signal,
    );
  } finally {
    await fs.remove(gz);
  }
}

/** The Docker v2 manifest of a configuration and its layers, as dockerd writes it. */
async function dockerManifest(config: Descriptor, layers: Descriptor[]) {
  const payload = new TextEncoder().encode(JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: config.mediaType, size: config.size, digest: config.digest },
      layers: layers.map(({ mediaType, size, digest }) => ({ mediaType, size, digest })),
    },
    null,
    3,
  ));
  return { payload, digest: await digestOf(payload) };
}

/**
 * Pushes an image whose layers `image` holds uncompressed, as `docker push` pushes out of
 * dockerd: every layer looked up by its DiffID first (up to `maxConcurrentUploads` at once):
 * an existence check in the target repository of the best-known digest, mounts from other
 * repositories of the registry the metadata knows (credentials' HMAC first), more existence
 * checks, with dockerd's budgets by `image.sizes`. Only when layers are left does the source
 * read them: each proven against its DiffID, gzipped into a temporary file (digest and size
 * learnt), uploaded as {@linkcode push} uploads (upload claims, retries, checked as sent), up
 * to `maxConcurrentUploads` layers compressed and uploaded at once. Every layer found,
 * mounted or uploaded is recorded with `tagAndAdd` under the target repository; then the
 * configuration, then the Docker v2 manifest of the layers' registry digests. The temporary
 * directory (under `config.tempDir`) is removed whatever happens.
 *
 * @param ref Where to push, e.g. `registry.example.com/team/app:1`.
 * @param image The configuration and the source of the layers.
 * @param given Credentials, metadata service, HMAC key, concurrency, temporary directory.
 * @returns The manifest's descriptor, and what became of each layer.
 */
export async function pushUncompressed(
  ref: string,
  image: UncompressedImage,
  given: UncompressedPushConfig = {},
): Promise<PushResult> {
  const target = parseReference(ref);
  checkRepositoryName(target);
  const { fs = runtimeFileSystem(), tempDir, ...rest } = given;
  const config = await withCredentials(target.domain, rest);
  const diffIDs = diffIDsOf(image.config, `"${ref}"`);
  const invalid = diffIDs.find((diffID) => !isDigest(diffID));
  if (invalid !== undefined) {
    throw new RegistryError("MALFORMED", `Cannot push "${ref}": "${invalid}" is not a DiffID`);
  }
  const ctx = await openPush(target, config);
  const stop = new AbortController();
  const signal = config.signal ? AbortSignal.any([stop.signal, config.signal]) : stop.signal;
  const sizes = new Map(diffIDs.map((diffID, i) => [diffID, image.sizes?.[i]]));

  const pushed = new Map<string, LayerPushed>();
  const left = new Map<string, BlobWriter | null>();
  const lookups = new TaskGroup(stop);
  for (const diffID of sizes.keys()) {
    lookups.add(lookups.inSlot(ctx.uploads, async () => {
      signal.throwIfAborted();
      const looked = await lookUpLayer(ctx, diffID, { mediaType: DOCKER_LAYER }, sizes.get(diffID));
      if (looked.pushed === null) left.set(diffID, looked.session);
      else pushed.set(diffID, looked.pushed);
    }));
  }
  try {
    await lookups.settle();
    if (left.size > 0) await compressLeft(ctx, fs, tempDir, image, left, pushed, stop, signal);
  } finally {
    for (const session of left.values()) await session?.cancel().catch(() => {});
  }

  const layers = diffIDs.map((diffID) => pushed.get(diffID)!.descriptor);
  const configBlob = {
    mediaType: DOCKER_CONFIG,
    size: image.config.length,
    digest: await digestOf(image.config),
  };
  const manifest = await dockerManifest(configBlob, layers);
  await pushBlob(ctx, configBlob, image.config);
  const parsed = parseManifest(manifest.payload, DOCKER_MANIFEST);
  const digest = await ctx.repo.manifests().put(
    parsed,
    target.tag === undefined ? {} : { tag: target.tag },
  );
  return {
    mediaType: DOCKER_MANIFEST,
    digest,
    size: manifest.payload.length,
    layers: diffIDs.map((diffID) => {
      const { descriptor, ...outcome } = pushed.get(diffID)!;
      return { digest: descriptor.digest, diffID, ...outcome };
    }),
  };
}

/**
 * The layers `left` (DiffID → the session a refused mount opened) read from the source into
 * a temporary directory, each compressed and uploaded as soon as an upload place is free
 * while the source goes on; their sessions are taken out of `left` as they are used.
 */
async function compressLeft(
  ctx: PushContext,
  fs: FileSystem,
  tempDir: string | undefined,
  image: UncompressedImage,
  left: Map<string, BlobWriter | null>,
  pushed: Map<string, LayerPushed>,
  stop: AbortController,
  signal: AbortSignal,
): Promise<void> {
  if (fs.openRead === undefined || fs.writeFileStream === undefined) {
    throw new RegistryError("UNSUPPORTED", "Cannot compress layers: the file system cannot stream");
  }
  // Uploads as made that no layer committed (its DiffID refused, or a failure stopped all).
  const asMade = new Set<UploadAsMade>();
  const gzip: GzipLayer = async (file, bytes) => {
    const sent = UploadAsMade.offeredBy(ctx);
    if (sent === null) return await gzipInto(fs, file, bytes, signal);
    asMade.add(sent);
    return { ...await gzipInto(fs, file, bytes, signal, sent), sent };
  };
  await inTempDir(fs, tempDir, "distribution-push", async (dir) => {
    // The first failure, the source's or an upload's (which stops the source), ends them all.
    const uploads = new TaskGroup(stop);
    try {
      for await (const layer of image.layers(new Set(left.keys()), dir, signal, gzip)) {
        if (!left.has(layer.diffID)) {
          await layer.release();
          continue;
        }
        const session = left.get(layer.diffID)!;
        left.delete(layer.diffID);
        uploads.add(uploads.inSlot(ctx.uploads, async () => {
          signal.throwIfAborted();
          const done = await compressAndUpload(ctx, fs, dir, layer, session, signal);
          pushed.set(layer.diffID, done);
        }));
      }
      const missing = left.keys().next();
      if (!missing.done) {
        throw new RegistryError(
          "MALFORMED",
          `Cannot push "${ctx.target.name}": the source gave no layer ${missing.value}`,
        );
      }
    } catch (error) {
      uploads.fail(error);
    }
    try {
      await uploads.settle();
    } finally {
      for (const sent of asMade) await sent.cancel();
    }
  });
}
