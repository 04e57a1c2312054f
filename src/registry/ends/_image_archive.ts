// An image as a `docker save` archive, built as it streams: each layer as the source gives it,
// one at a time, into the archive (a registry's checked as it passes and its DiffID computed
// from the same bytes); then the configuration and manifest.json (layers named `<hex>.tar`,
// the configuration `<hex>.json`, as skopeo writes them), or as an OCI image layout in a tar
// (`blobs/<alg>/<hex>`, index.json, oci-layout: skopeo's oci-archive). dockerd's
// `POST /images/load` and archive files are fed from it.
import { digestOf } from "../_digest.ts";
import { diffIDsOf, isForeign } from "../_image.ts";
import { RegistryError } from "../errors.ts";
import { familiarName, type Reference } from "../reference.ts";
import {
  manifestFor,
  takenBlobs,
  type TakenLayer,
  takenLayer,
} from "../transfer/built_manifest.ts";
import { Proving, type Records, type TakenLayerResult } from "../transfer/proving.ts";
import type { ImageSource } from "../transfer/source.ts";
import type { Descriptor } from "../types.ts";
import { TAR_END, tarHeader, tarPadding } from "./_tar.ts";

/** What a copy into dockerd, an archive or a layout did. */
export interface ArchiveCopyResult extends Descriptor {
  /** The image ID: the digest of its configuration. */
  imageID: string;
  /** Each layer, base first. */
  layers: TakenLayerResult[];
}

/** An archive on its way. */
export interface ImageArchive {
  /** The archive's bytes, read once. */
  stream: ReadableStream<Uint8Array>;
  /**
   * Once the archive was all written: each layer's DiffID as its bytes proved it, and for a
   * registry's image the proven ones recorded with `tagAndAdd` (as a pull records them).
   */
  finish(records: Records | undefined): Promise<ArchiveCopyResult>;
  /** Stops the layer being read (the archive was not all written). */
  abort(reason: unknown): void;
}

/** The two archive formats: `docker save`'s, and an OCI image layout in a tar (skopeo's). */
export type ArchiveFormat = "docker-archive" | "oci-archive";

/**
 * The name a docker archive, and dockerd, give a registry's image by default: its familiar
 * name and tag (`app:1`, `busybox:latest`); none for a reference by digest alone.
 *
 * @param ref The reference.
 * @returns The name, or `undefined`.
 */
export function savedName(ref: Reference): string | undefined {
  return ref.tag === undefined ? undefined : `${familiarName(ref)}:${ref.tag}`;
}

/** A blob's file in an OCI image layout. */
function blobFile(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

/** A layer's file in an archive of `format`. */
function layerFile(format: ArchiveFormat, digest: string): string {
  return format === "docker-archive"
    ? `${digest.slice(digest.indexOf(":") + 1)}.tar`
    : blobFile(digest);
}

/** The files after the layers: the configuration and what names the image, per format. */
function namingFiles(
  format: ArchiveFormat,
  name: string | undefined,
  config: { digest: string; data: Uint8Array },
  manifest: { descriptor: Descriptor; payload: Uint8Array },
  layerFiles: string[],
): { name: string; data: Uint8Array }[] {
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  if (format === "docker-archive") {
    const configFile = `${config.digest.slice(config.digest.indexOf(":") + 1)}.json`;
    return [
      { name: configFile, data: config.data },
      {
        name: "manifest.json",
        data: json([{
          Config: configFile,
          RepoTags: name === undefined ? null : [name],
          Layers: layerFiles,
        }]),
      },
    ];
  }
  const annotations = name === undefined ? {} : {
    annotations: { "org.opencontainers.image.ref.name": name },
  };
  return [
    { name: blobFile(config.digest), data: config.data },
    { name: blobFile(manifest.descriptor.digest), data: manifest.payload },
    {
      name: "index.json",
      data: json({ schemaVersion: 2, manifests: [{ ...manifest.descriptor, ...annotations }] }),
    },
    { name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
  ];
}

/** An async generator as a stream, read as the socket drains. */
function streamOf(parts: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async pull(controller) {
      const next = await parts.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel(reason) {
      await parts.throw(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** The bytes of one layer's entry: header, the bytes, padding. */
async function* layerEntry(
  file: string,
  size: number,
  bytes: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = bytes.getReader();
  yield tarHeader(file, size);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    yield value;
  }
  yield tarPadding(size);
}

/**
 * `image` as an archive of `format`: every layer, each once, in the source's order (a
 * registry's one at a time from its `GET`), then the configuration, the manifest (the
 * source's exact bytes, or {@linkcode builtManifest}'s) and what names the image.
 *
 * @param image The source's image.
 * @param format `docker-archive` (`docker save`'s) or `oci-archive` (an OCI image layout).
 * @param name What names the image: a `docker-archive`'s `RepoTags` entry, an `oci-archive`'s
 * `org.opencontainers.image.ref.name`; none when `undefined`.
 * @param dir The transfer's directory, where the source spools.
 * @param signal Stops the transfer.
 * @returns The archive, streamed once read.
 */
export async function imageArchive(
  image: ImageSource,
  format: ArchiveFormat,
  name: string | undefined,
  dir: string,
  signal: AbortSignal,
): Promise<ImageArchive> {
  const { shown } = image;
  const foreign = image.manifest?.layers.find(isForeign);
  if (foreign !== undefined) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot archive "${shown}": layer ${foreign.digest} is foreign`,
      { url: shown },
    );
  }
  const diffIDs = diffIDsOf(image.config, shown);
  const imageID = await digestOf(image.config);
  const taken = new Map<string, TakenLayer>();
  const proving = new Proving();
  let manifest: { descriptor: Descriptor; payload: Uint8Array } | undefined;
  const stop = new AbortController();
  const signals = AbortSignal.any([signal, stop.signal]);

  async function* parts(): AsyncGenerator<Uint8Array> {
    const written = new Set<string>();
    for await (const layer of image.layers(new Set(diffIDs), dir, signals)) {
      const took = takenLayer(layer);
      taken.set(layer.diffID, took);
      const { digest } = took;
      try {
        if (written.has(digest)) continue;
        written.add(digest);
        const bytes = await proving.open(digest, layer, signals);
        yield* layerEntry(layerFile(format, digest), layer.size, bytes);
      } finally {
        await layer.release();
      }
    }
    manifest = await manifestFor(image, diffIDs, taken);
    const files = namingFiles(
      format,
      name,
      { digest: imageID, data: image.config },
      manifest,
      takenBlobs(image, diffIDs, taken).map(({ digest }) => layerFile(format, digest)),
    );
    for (const { name, data } of files) {
      yield tarHeader(name, data.length);
      yield data;
      yield tarPadding(data.length);
    }
    yield TAR_END;
  }

  return {
    stream: streamOf(parts()),
    abort(reason) {
      stop.abort(reason);
      proving.abort();
    },
    async finish(records) {
      return {
        ...manifest!.descriptor,
        imageID,
        layers: await proving.settle(takenBlobs(image, diffIDs, taken), image.origin, records),
      };
    },
  };
}
