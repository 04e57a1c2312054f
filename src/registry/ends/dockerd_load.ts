/**
 * A registry's image into dockerd: its blobs stream, as they arrive, inside a `docker save`
 * archive into `POST /images/load` (compressed layers as they are: dockerd inflates them), then
 * every layer is recorded in dockerd's store as its pull would record it, so `docker push`
 * afterwards skips or mounts them.
 *
 * @module
 */
import type { V2MetadataService } from "../../v2_metadata_service.ts";
import { digestOf } from "../_digest.ts";
import { type DiffIDSink, diffIDSink, feeding } from "../_diff_id.ts";
import { diffIDsOf, isForeign, layersWithDiffIDs } from "../_image.ts";
import { verifyingSized } from "../_verify.ts";
import { RegistryError } from "../errors.ts";
import { imageManifest } from "../_image_manifest.ts";
import { hostPlatform } from "../platform.ts";
import { fromFirstEndpoint } from "../pull.ts";
import { familiarName, formatReference, parseReference, type Reference } from "../reference.ts";
import { getRepositories } from "../repositories.ts";
import { LIMITS, readAtMost } from "../transport/limits.ts";
import type { Descriptor, Platform, PulledLayer, RegistryConfig, Repository } from "../types.ts";
import { TAR_END, tarHeader, tarPadding } from "./_tar.ts";
import { DockerdApi } from "./dockerd_api.ts";
import { dockerdMetadataService } from "./dockerd_store.ts";

/** How {@linkcode copyToDockerd} reaches the registry and dockerd. */
export interface DockerdCopyConfig extends Omit<RegistryConfig, "platform"> {
  /** dockerd's socket as a `DOCKER_HOST` value (default `unix:///var/run/docker.sock`). */
  dockerHost?: string;
  /** The image of an index to take (default: this machine's platform). */
  platform?: Platform;
}

/** What {@linkcode copyToDockerd} did. */
export interface DockerdCopyResult extends Descriptor {
  /** The image ID dockerd gave it: the digest of its configuration. */
  imageID: string;
  /** Each layer: `recorded` once dockerd loaded it and its bytes proved its DiffID. */
  layers: PulledLayer[];
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

async function copyFrom(
  repo: Repository,
  ref: Reference,
  api: DockerdApi,
  service: V2MetadataService,
  tag: string | null,
  config: DockerdCopyConfig,
): Promise<DockerdCopyResult> {
  const shown = formatReference(ref);
  const manifest = await imageManifest(repo, ref, config.platform ?? hostPlatform(), "pull");
  const [configDescriptor, ...layers] = manifest.references();
  const configBytes = await repo.blobs().get(configDescriptor!.digest, {
    maxBytes: LIMITS.config,
  });
  const pairs = layersWithDiffIDs(layers, diffIDsOf(configBytes, `"${shown}"`), `"${shown}"`);
  const foreign = pairs.find(({ layer }) => isForeign(layer));
  if (foreign !== undefined) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot load "${shown}" into dockerd: layer ${foreign.layer.digest} is foreign`,
      { url: shown },
    );
  }
  const written = new Set<string>();
  const entries: LayerEntry[] = pairs.map(({ layer, diffID }) => {
    const file = `${layer.digest.slice(layer.digest.indexOf(":") + 1)}.tar`;
    const first = !written.has(file);
    written.add(file);
    return { layer, diffID, file, sink: first ? diffIDSink() : null };
  });
  const imageID = configDescriptor!.digest;
  const configFile = `${imageID.slice(imageID.indexOf(":") + 1)}.json`;
  const archiveManifest = new TextEncoder().encode(JSON.stringify([{
    Config: configFile,
    RepoTags: tag === null ? null : [tag],
    Layers: entries.map((entry) => entry.file),
  }]));
  const stop = new AbortController();
  const parts = archiveParts(repo, entries, [
    { name: configFile, data: configBytes },
    { name: "manifest.json", data: archiveManifest },
  ], stop.signal);
  let answer: Uint8Array;
  try {
    const body = await api.request({
      method: "POST",
      path: "/images/load?quiet=1",
      headers: { "content-type": "application/x-tar" },
      body: streamOf(parts),
    });
    answer = await readAtMost(body, 1 << 20, "dockerd's answer to the load");
  } catch (error) {
    stop.abort(error);
    for (const entry of entries) entry.sink?.abort();
    throw error;
  }
  checkLoadAnswer(answer, tag ?? shown);
  // Loaded: dockerd checked every DiffID; each is recorded once its bytes proved it here too.
  const proven = new Map<string, string | null>();
  for (const entry of entries) {
    if (entry.sink !== null) proven.set(entry.file, await entry.sink.close());
  }
  const results: PulledLayer[] = [];
  for (const { layer, diffID, file } of entries) {
    const actual = proven.get(file) ?? null;
    const { digest } = layer;
    if (actual === diffID) {
      await service.tagAndAdd(diffID, config.hmacKey ?? null, {
        digest,
        sourceRepository: ref.name,
        hmac: "",
      });
      results.push({ digest, diffID, status: "recorded" });
    } else if (actual === null) results.push({ digest, diffID, status: "unverifiable" });
    else results.push({ digest, diffID, status: "mismatch", actualDiffID: actual });
  }
  return {
    mediaType: manifest.mediaType,
    digest: await digestOf(manifest.payload),
    size: manifest.payload.length,
    imageID,
    layers: results,
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
  config: DockerdCopyConfig = {},
): Promise<DockerdCopyResult> {
  const parsed = parseReference(ref);
  const name = tag ??
    (parsed.tag === undefined ? null : `${familiarName(parsed)}:${parsed.tag}`);
  const api = new DockerdApi(config.dockerHost, config.signal);
  const service = config.metadataService ??
    await dockerdMetadataService(api, `copy "${ref}" into dockerd`);
  const { platform: _, ...registryConfig } = config;
  const repositories = await getRepositories(ref, registryConfig);
  return await fromFirstEndpoint(
    repositories,
    (repo) => copyFrom(repo, parsed, api, service, name, config),
  );
}
