/**
 * `link`: the record `docker pull` would have written for an image dockerd already holds,
 * without downloading it, so that `docker push` finds every layer in the registry (moby#23684:
 * after `docker load`, dockerd knows no registry digest of any layer and uploads them all).
 *
 * @module
 */
import { digestOf, isDigest } from "./_digest.ts";
import { diffIDSink } from "./_diff_id.ts";
import { isForeign, layersWithDiffIDs } from "./_image.ts";
import { DEFAULT_CONCURRENT_DOWNLOADS, limiter } from "./_limit.ts";
import { RegistryError } from "./errors.ts";
import { proven, recordLayer } from "./transfer/proven.ts";
import { withCredentials } from "./keychain.ts";
import { imageManifest } from "./_image_manifest.ts";
import { DockerdApi } from "./ends/dockerd_api.ts";
import { dockerdMetadataService } from "./ends/dockerd_store.ts";
import { formatReference, parseReference } from "./reference.ts";
import { fromFirstEndpoint, getRepositories } from "./repositories.ts";
import type { Descriptor, Platform, PulledLayer, RegistryConfig, Repository } from "./types.ts";

/** How {@linkcode link} reaches dockerd and the registry, and how far it trusts the registry. */
export interface LinkConfig extends Omit<RegistryConfig, "platform"> {
  /** dockerd's socket as a `DOCKER_HOST` value (default `unix:///var/run/docker.sock`). */
  dockerHost?: string;
  /**
   * Read each layer once (streamed, nothing stored) and record only the layers whose bytes
   * prove their DiffID (default `true`). `false` trusts the registry's manifest to pair the
   * image's DiffIDs with the right blobs: see docs/security.md before turning it off.
   */
  verify?: boolean;
  /** The image of an index to link (default: the platform of dockerd's image). */
  platform?: Platform;
}

/** What {@linkcode link} did: the registry's image manifest, and what became of each layer. */
export interface LinkResult extends Descriptor {
  /** dockerd's image ID, equal to the digest of the registry's image configuration. */
  imageID: string;
  /**
   * Each layer in manifest order: `recorded` (with `verify`, proven by its bytes), `foreign`
   * (non-distributable, never pushed: nothing recorded), `unverifiable` or `invalid` (nothing
   * recorded).
   */
  layers: PulledLayer[];
}

/** The DiffID of a layer's bytes as the registry serves them (digest checked), or `null`. */
async function diffIDFromRegistry(repo: Repository, layer: Descriptor): Promise<string | null> {
  const sink = diffIDSink();
  const reader = (await repo.blobs().open(layer.digest, { maxBytes: layer.size })).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await sink.write(value);
    }
  } catch (error) {
    sink.abort();
    throw error;
  }
  return await sink.close();
}

/** What becomes of one layer, before anything is recorded. */
async function checkLayer(
  repo: Repository,
  layer: Descriptor,
  diffID: string,
  verify: boolean,
): Promise<PulledLayer> {
  const { digest } = layer;
  if (isForeign(layer)) return { digest, diffID, status: "foreign" };
  // No byte is fetched for a DiffID that is no digest; without `verify` the claim is taken.
  const actual = !verify || !isDigest(diffID) ? diffID : await diffIDFromRegistry(repo, layer);
  return { digest, diffID, ...proven(diffID, actual) };
}

/**
 * Awaits `asked` in their order: the first to fail is the error the caller sees, whichever
 * failed first in time, and aborts `stop` so the others end too.
 */
async function inOrder<T extends readonly unknown[]>(
  asked: { [K in keyof T]: Promise<T[K]> },
  stop: AbortController,
): Promise<T> {
  // A later failure is awaited below, or moot after an earlier one.
  for (const promise of asked) promise.catch(() => {});
  const values: unknown[] = [];
  try {
    for (const promise of asked) values.push(await promise);
  } catch (error) {
    stop.abort();
    throw error;
  }
  return values as unknown as T;
}

/**
 * Links an image dockerd holds (loaded, built, or imported) to the same image in a registry:
 * records into the distribution metadata, for every layer, the entry `docker pull` of that
 * image would have written (DiffID → the registry's blob digest, source repository, HMAC of
 * `hmacKey`), without downloading a layer unless `verify` asks to check them. Afterwards
 * `docker push` to that repository finds every layer already there, and a push to another
 * repository of that registry mounts them.
 *
 * Reads the image from dockerd's API (its ID and `RootFS.Layers`), fetches only the registry's
 * manifest (from an index, the entry for `platform`, by default the image's own platform),
 * and requires the manifest's configuration digest to equal the image ID: otherwise the images
 * differ and it fails with `IMAGE_MISMATCH`, recording nothing. With `verify` (the default),
 * each layer streams once through a DiffID check, up to `maxConcurrentDownloads` (3) at once,
 * nothing stored; a layer whose bytes have another DiffID fails the whole link with
 * `IMAGE_MISMATCH` (the manifest pairs the image with layers it does not hold), recording
 * nothing. Without `metadataService`, records into dockerd's own store, found from `/info`
 * (`<DockerRootDir>/image/<Driver>/distribution`); a dockerd on the containerd image store
 * keeps none (`UNSUPPORTED`).
 *
 * @param image The image in dockerd: a reference or an image ID, e.g. `app:1`.
 * @param ref The same image in a registry, e.g. `registry.example.com/team/app:1`.
 * @param config dockerd's socket, credentials and their HMAC key, the metadata service,
 * `verify`, `platform`, transport, signal, progress.
 * @returns The registry's image manifest and what became of each layer.
 *
 * @example
 * ```ts ignore
 * import { computeV2MetadataHMACKey } from "@distribution/metadata";
 * import { link } from "@distribution/metadata/registry";
 *
 * const auth = { username: "ci", password: "secret" };
 * const linked = await link("app:1", "registry.example.com/team/app:1", {
 *   auth,
 *   hmacKey: await computeV2MetadataHMACKey(auth),
 * });
 * console.log(linked.layers.map((layer) => layer.status));
 * ```
 */
export async function link(
  image: string,
  ref: string,
  given: LinkConfig = {},
): Promise<LinkResult> {
  const parsed = parseReference(ref);
  const config = await withCredentials(parsed.domain, given);
  const shown = formatReference(parsed);
  // dockerd's image, its store (`/info` is slow to answer) and the registry's ping are asked
  // at once: each waits on another process, and a link is mostly that waiting.
  const stop = new AbortController();
  const signal = config.signal === undefined
    ? stop.signal
    : AbortSignal.any([config.signal, stop.signal]);
  const api = new DockerdApi(config.dockerHost, signal);
  const { platform: _, ...registryConfig } = config;
  const [held, service, repositories] = await inOrder([
    api.image(image),
    config.metadataService === undefined
      ? dockerdMetadataService(api, `link "${image}"`)
      : Promise.resolve(config.metadataService),
    getRepositories(ref, { ...registryConfig, signal }),
  ], stop);
  return await fromFirstEndpoint(repositories, async (repo) => {
    const manifest = await imageManifest(
      repo.manifests(),
      parsed.digest ?? parsed.tag!,
      config.platform ?? held.platform,
      "link",
      shown,
    );
    const [configDescriptor, ...layers] = manifest.references();
    if (configDescriptor!.digest !== held.id) {
      throw new RegistryError(
        "IMAGE_MISMATCH",
        `Cannot link "${image}" to "${shown}": the images differ (dockerd's is ${held.id}, ` +
          `the registry's has configuration ${configDescriptor!.digest})`,
        { url: shown },
      );
    }
    const pairs = layersWithDiffIDs(layers, held.diffIDs, `"${shown}"`);
    const downloads = limiter(config.maxConcurrentDownloads ?? DEFAULT_CONCURRENT_DOWNLOADS);
    const verify = config.verify ?? true;
    // After a failure or a disproved layer, layers still waiting for a place are not fetched
    // (`null`): the link fails either way.
    let stopped = false;
    const outcomes = await Promise.all(pairs.map(({ layer, diffID }) =>
      downloads(async () => {
        if (stopped) return null;
        try {
          const outcome = await checkLayer(repo, layer, diffID, verify);
          stopped ||= outcome.status === "mismatch";
          return outcome;
        } catch (error) {
          stopped = true;
          throw error;
        }
      })
    ));
    const checked = outcomes.filter((outcome) => outcome !== null);
    const disproved = checked.find((layer) => layer.status === "mismatch");
    if (disproved !== undefined) {
      throw new RegistryError(
        "IMAGE_MISMATCH",
        `Cannot link "${image}" to "${shown}": layer ${disproved.digest} holds DiffID ` +
          `${disproved.actualDiffID}, not the image's ${disproved.diffID}; nothing recorded`,
        { url: shown },
      );
    }
    for (const layer of checked) {
      if (layer.status !== "recorded") continue;
      await recordLayer(service, config.hmacKey ?? null, layer.diffID, layer.digest, parsed.name);
    }
    return {
      mediaType: manifest.mediaType,
      digest: await digestOf(manifest.payload),
      size: manifest.payload.length,
      imageID: held.id,
      layers: checked,
    };
  });
}
