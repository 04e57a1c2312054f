// A registry's image as a `docker save` archive, built as it streams: each layer from the
// registry's GET into the archive, one at a time, its digest and manifest size checked as it
// passes and its DiffID computed from the same bytes; then the configuration and manifest.json
// (layers named `<hex>.tar`, the configuration `<hex>.json`, as skopeo writes them), or as an
// OCI image layout in a tar (`blobs/<alg>/<hex>`, index.json, oci-layout: skopeo's
// oci-archive). dockerd's `POST /images/load` and archive files are fed from it.
import type { V2MetadataService } from "../../v2_metadata_service.ts";
import { digestOf } from "../_digest.ts";
import { type DiffIDSink, diffIDSink, feeding } from "../_diff_id.ts";
import { configFrom, imageParts, isForeign } from "../_image.ts";
import { imageManifest } from "../_image_manifest.ts";
import { verifyingSized } from "../_verify.ts";
import { RegistryError } from "../errors.ts";
import { proven, recordLayer } from "../transfer/proven.ts";
import { familiarName, formatReference, type Reference } from "../reference.ts";
import type { Descriptor, Platform, PulledLayer, Repository } from "../types.ts";
import { TAR_END, tarHeader, tarPadding } from "./_tar.ts";

/** What a copy into dockerd or an archive did. */
export interface ArchiveCopyResult extends Descriptor {
  /** The image ID: the digest of its configuration. */
  imageID: string;
  /** Each layer: `recorded` once written and its bytes proved its DiffID. */
  layers: PulledLayer[];
}

/** An archive on its way. */
export interface RegistryArchive {
  /** The archive's bytes, read once. */
  stream: ReadableStream<Uint8Array>;
  /**
   * Once the archive was all written: each layer's DiffID as its bytes proved it, the proven
   * ones recorded with `tagAndAdd` (as a pull records them).
   */
  finish(
    service: V2MetadataService,
    hmacKey: Uint8Array | null,
    sourceRepository: string,
  ): Promise<ArchiveCopyResult>;
  /** Stops the layer being read (the archive was not all written). */
  abort(reason: unknown): void;
}

/** One layer on its way: its blob, the name of its file in the archive, its DiffID. */
interface LayerEntry {
  layer: Descriptor;
  diffID: string;
  file: string;
  /** `null` for a blob already written under the same name (named twice in the manifest). */
  sink: DiffIDSink | null;
}

/** The parts of the archive, in order; each layer's bytes checked and fed to its DiffID. */
async function* archiveParts(
  repo: Repository,
  entries: LayerEntry[],
  files: { name: string; data: Uint8Array }[],
  stop: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for (const { layer, file, sink } of entries) {
    if (sink === null) continue;
    const what = `layer "${layer.digest}"`;
    const blob = await repo.blobs().open(layer.digest, { maxBytes: layer.size, verify: false });
    const reader = feeding(verifyingSized(blob, layer.digest, layer.size, what, stop), sink, stop)
      .getReader();
    yield tarHeader(file, layer.size);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield value;
    }
    yield tarPadding(layer.size);
  }
  for (const { name, data } of files) {
    yield tarHeader(name, data.length);
    yield data;
    yield tarPadding(data.length);
  }
  yield TAR_END;
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

/** The two archive formats: `docker save`'s, and an OCI image layout in a tar (skopeo's). */
export type ArchiveFormat = "docker-archive" | "oci-archive";

/** A blob's file in an OCI image layout. */
function blobFile(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

/** The files after the layers: the configuration and what names the image, per format. */
function namingFiles(
  format: ArchiveFormat,
  ref: Reference,
  tag: string | undefined,
  config: { digest: string; data: Uint8Array },
  manifest: { descriptor: Descriptor; payload: Uint8Array },
  layerFiles: string[],
): { name: string; data: Uint8Array }[] {
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  if (format === "docker-archive") {
    const name = tag ?? (ref.tag === undefined ? undefined : `${familiarName(ref)}:${ref.tag}`);
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
  const name = tag ?? ref.tag;
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

/**
 * The image `ref` names (from an index, `platform`'s) as an archive of `format`.
 *
 * @param repo The repository.
 * @param ref The reference, with a tag or digest.
 * @param platform The platform to take from an index.
 * @param format `docker-archive` (`docker save`'s) or `oci-archive` (an OCI image layout).
 * @param tag What names the image: a `docker-archive`'s `RepoTags` entry (by default the
 * reference's familiar name and tag), an `oci-archive`'s `org.opencontainers.image.ref.name`
 * (by default the reference's tag); none for a reference by digest.
 * @returns The archive, streamed once read.
 */
export async function registryArchive(
  repo: Repository,
  ref: Reference,
  platform: Platform,
  format: ArchiveFormat,
  tag: string | undefined,
): Promise<RegistryArchive> {
  const shown = formatReference(ref);
  const manifest = await imageManifest(repo, ref, platform, "pull");
  const { config, configBytes, layers: pairs } = await imageParts(
    manifest,
    configFrom(repo),
    shown,
  );
  const foreign = pairs.find(({ layer }) => isForeign(layer));
  if (foreign !== undefined) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot archive "${shown}": layer ${foreign.layer.digest} is foreign`,
      { url: shown },
    );
  }
  const written = new Set<string>();
  const entries: LayerEntry[] = pairs.map(({ layer, diffID }) => {
    const file = format === "docker-archive"
      ? `${layer.digest.slice(layer.digest.indexOf(":") + 1)}.tar`
      : blobFile(layer.digest);
    const first = !written.has(file);
    written.add(file);
    return { layer, diffID, file, sink: first ? diffIDSink() : null };
  });
  const imageID = config.digest;
  const descriptor: Descriptor = {
    mediaType: manifest.mediaType,
    digest: await digestOf(manifest.payload),
    size: manifest.payload.length,
  };
  const stop = new AbortController();
  const parts = archiveParts(
    repo,
    entries,
    namingFiles(
      format,
      ref,
      tag,
      { digest: imageID, data: configBytes },
      { descriptor, payload: manifest.payload },
      entries.map((entry) => entry.file),
    ),
    stop.signal,
  );
  return {
    stream: streamOf(parts),
    abort(reason) {
      stop.abort(reason);
      for (const entry of entries) entry.sink?.abort();
    },
    async finish(service, hmacKey, sourceRepository) {
      const actual = new Map<string, string | null>();
      for (const entry of entries) {
        if (entry.sink !== null) actual.set(entry.file, await entry.sink.close());
      }
      const results: PulledLayer[] = [];
      for (const { layer, diffID, file } of entries) {
        const { digest } = layer;
        const verdict = proven(diffID, actual.get(file) ?? null);
        if (verdict.status === "recorded") {
          await recordLayer(service, hmacKey, diffID, digest, sourceRepository);
        }
        results.push({ digest, diffID, ...verdict });
      }
      return { ...descriptor, imageID, layers: results };
    },
  };
}
