/**
 * `pull`: a manifest, its configuration and its layers from a registry into a content store,
 * recording each layer's source in the distribution metadata as dockerd does — but only under
 * a DiffID verified against the layer's own bytes.
 *
 * @module
 */
import { V2MetadataService } from "../v2_metadata_service.ts";
import { LIMITS } from "./transport/limits.ts";
import { readVerified } from "./_digest.ts";
import { imageParts, isForeign, knownDiffID } from "./_image.ts";
import { diffIDSink, feeding } from "./_diff_id.ts";
import { DEFAULT_CONCURRENT_DOWNLOADS, limiter } from "./_limit.ts";
import { RegistryError } from "./errors.ts";
import { eachImage } from "./transfer/each_image.ts";
import { inManifestOrder } from "./transfer/in_manifest_order.ts";
import { proven, recordLayer } from "./transfer/proven.ts";
import { told } from "./transfer/told.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import { withCredentials } from "./keychain.ts";
import { fromFirstEndpoint, getRepositories } from "./repositories.ts";
import type {
  ContentStore,
  Descriptor,
  Manifest,
  PulledLayer,
  PullResult,
  RegistryConfig,
  Repository,
} from "./types.ts";

/** The image configuration: from the store when it has it, else fetched (bounded, verified). */
async function fetchConfig(
  repo: Repository,
  store: ContentStore,
  descriptor: Descriptor,
): Promise<Uint8Array> {
  const what = `image configuration "${descriptor.digest}"`;
  const data = await store.has(descriptor.digest)
    ? await readVerified(store, descriptor.digest, what)
    : await repo.blobs().get(descriptor.digest, { maxBytes: LIMITS.config });
  if (data.length > LIMITS.config) {
    throw new RegistryError(
      "TOO_LARGE",
      `Cannot read ${what}: larger than ${LIMITS.config} bytes`,
      {
        url: descriptor.digest,
      },
    );
  }
  await store.put(descriptor.digest, data);
  return data;
}

/** Reads a stream to its end, keeping nothing (what reads it on the way does the work). */
async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  while (!(await reader.read()).done);
}

/**
 * A layer into the store (fetched unless present, at most its declared size, digest verified
 * as it streams to a temp file), and its DiffID computed from the same bytes as they pass
 * (`null` when it cannot be).
 */
async function fetchLayer(
  repo: Repository,
  store: ContentStore,
  layer: Descriptor,
  stop: AbortSignal,
): Promise<string | null> {
  const diffID = diffIDSink();
  try {
    if (await store.has(layer.digest)) {
      await drain(feeding(await store.open(layer.digest), diffID, stop));
    } else {
      // The store checks the digest and the size as the bytes land: no second hash here.
      const blob = await repo.blobs().open(layer.digest, { maxBytes: layer.size, verify: false });
      await store.write(layer.digest, feeding(blob, diffID, stop), { maxBytes: layer.size });
    }
  } catch (error) {
    diffID.abort();
    throw error;
  }
  return await diffID.close();
}

async function pullLayer(
  repo: Repository,
  store: ContentStore,
  config: RegistryConfig,
  service: V2MetadataService,
  layer: Descriptor,
  diffID: string,
  stop: AbortSignal,
): Promise<PulledLayer> {
  const { digest } = layer;
  if (isForeign(layer) && !(await store.has(digest))) {
    told(config.onProgress, "skip", layer);
    return { digest, diffID, status: "foreign" };
  }
  // dockerd: a layer it already has (known DiffID for this blob) is "Already exists" and
  // records nothing; a downloaded layer is recorded once registered.
  if (await store.has(digest) && await knownDiffID(service, digest) === diffID) {
    told(config.onProgress, "exists", layer);
    return { digest, diffID, status: "exists" };
  }
  const actual = await fetchLayer(repo, store, layer, stop);
  return { digest, diffID, ...proven(diffID, actual) };
}

/** One pull: the repository, the reference, where the blobs go, and the shared download slots. */
interface PullContext {
  repo: Repository;
  ref: Reference;
  shown: string;
  store: ContentStore;
  config: RegistryConfig;
  service: V2MetadataService;
  downloads: <T>(task: () => Promise<T>) => Promise<T>;
}

/**
 * An image manifest's configuration and layers, up to `maxConcurrentDownloads` layers at once;
 * each layer is recorded in manifest order once it and every layer before it are done, so the
 * metadata sees the same calls in the same order as a pull of one layer at a time. On a
 * failure the other downloads stop (their temp files removed) before it is thrown.
 */
async function pullImage(
  ctx: PullContext,
  manifest: Manifest,
  digest: string,
): Promise<PullResult> {
  const { repo, store, config, service, shown } = ctx;
  const { layers } = await imageParts(
    manifest,
    (descriptor) => fetchConfig(repo, store, descriptor),
    shown,
  );
  const results = await inManifestOrder(
    layers,
    ctx.downloads,
    ({ layer, diffID }, inSlot) =>
      inSlot((stop) => pullLayer(repo, store, config, service, layer, diffID, stop)),
    async (_, outcome) => {
      if (outcome.status === "recorded") {
        const { diffID, digest } = outcome;
        await recordLayer(service, config.hmacKey ?? null, diffID, digest, ctx.ref.name);
      }
      return outcome;
    },
  );
  await store.put(digest, manifest.payload);
  return { mediaType: manifest.mediaType, digest, size: manifest.payload.length, layers: results };
}

async function pullFrom(
  repo: Repository,
  ref: Reference,
  store: ContentStore,
  config: RegistryConfig,
): Promise<PullResult> {
  const shown = formatReference(ref);
  const ctx: PullContext = {
    repo,
    ref,
    shown,
    store,
    config,
    service: config.metadataService ?? new V2MetadataService(null),
    downloads: limiter(config.maxConcurrentDownloads ?? DEFAULT_CONCURRENT_DOWNLOADS),
  };
  const name = ref.tag ?? shown;
  const descriptor = ({ mediaType, digest, size }: Descriptor) => ({ mediaType, digest, size });
  // An index is stored even when the name becomes one of its images.
  return await eachImage(repo, ref, config.platform, "pull", {
    async image(manifest, digest, named) {
      const result = await pullImage(ctx, manifest, digest);
      if (named) await store.tag(name, descriptor(result));
      return result;
    },
    async index(manifest, digest, named) {
      await store.put(digest, manifest.payload);
      if (named) {
        await store.tag(name, {
          mediaType: manifest.mediaType,
          digest,
          size: manifest.payload.length,
        });
      }
    },
  });
}

/**
 * Pulls an image into a content store, as `docker pull` does: the manifest (from an index, the
 * configured platform's, each of a list of platforms, or all of them), the configuration and
 * every layer, up to `maxConcurrentDownloads` (default 3) at once. Each layer streams from the
 * registry to a temp file of the store and lands under its name only once its digest is
 * verified, so memory stays bounded whatever its size; blobs already in the store are not
 * fetched again. A body cut or stalled midway resumes with a `Range` request; `408`, `429`
 * (after its `Retry-After`) and `5xx` answers and network failures are retried with backoff
 * (`config.retry`, 5 attempts by default). Each layer's DiffID is computed from its bytes as
 * they pass (gzip decompressed); when it equals the configuration's `rootfs.diff_ids` entry,
 * pull calls `metadataService.tagAndAdd(diffID, hmacKey, {digest, sourceRepository, hmac: ""})`
 * with the repository's full name, as dockerd does, in manifest order; otherwise nothing is
 * recorded for that layer and the result says why. For Docker Hub references the mirrors are
 * tried first. `config.signal` stops everything promptly, leaving no partial blob and recording
 * nothing for unfinished layers; `config.onProgress` hears every blob's bytes, skips, existing
 * blobs and retries.
 *
 * With `platform` a list or `"all"`, the index and every image chosen are stored and the name is
 * tagged as the index (the result's `manifests` lists each image); with one platform the name
 * is tagged as that image, and the index is stored too.
 *
 * @param ref A Docker reference, e.g. `127.0.0.1:5000/team/app:1.0` or `busybox`.
 * @param store Where the blobs go, e.g. {@linkcode ociLayoutStore}.
 * @param config Credentials, metadata service, HMAC key, mirrors, platforms, concurrency,
 * retries, transport, signal, progress.
 * @returns The descriptor of the manifest tagged, and what became of each layer.
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore, V2MetadataService } from "@distribution/metadata";
 * import { ociLayoutStore, pull } from "@distribution/metadata/registry";
 *
 * const metadataService = new V2MetadataService(await FSMetadataStore.open("/tmp/dist"));
 * const store = await ociLayoutStore("/tmp/busybox");
 * const pulled = await pull("busybox", store, {
 *   metadataService,
 *   platform: "all",
 *   onProgress: (event) => console.log(event.action, event.digest, event.current, event.total),
 *   signal: AbortSignal.timeout(600_000),
 * });
 * console.log(pulled.digest, pulled.manifests?.length);
 * ```
 */
export async function pull(
  ref: string,
  store: ContentStore,
  config: RegistryConfig = {},
): Promise<PullResult> {
  const parsed = parseReference(ref);
  config = await withCredentials(parsed.domain, config);
  const repositories = await getRepositories(ref, config);
  return await fromFirstEndpoint(repositories, (repo) => pullFrom(repo, parsed, store, config));
}
