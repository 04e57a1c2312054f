/**
 * `push`: an image from a content store to a registry, following dockerd's algorithm
 * (docker `distribution/push_v2.go`): existence checks and cross-repository mounts chosen from
 * the distribution metadata, stale entries forgotten, every pushed layer recorded.
 *
 * @module
 */
import { checkV2MetadataHMAC } from "../hmac.ts";
import { MetadataError } from "../errors.ts";
import type { V2Metadata } from "../v2_metadata_service.ts";
import { planImage, type PlannedManifest } from "./_plan.ts";
import { isForeign } from "./_image.ts";
import { attemptBudget, mountCandidates, sortByLikenessAndAge } from "./push_candidates.ts";
import { inManifestOrder } from "./transfer/in_manifest_order.ts";
import {
  mountFrom,
  openRegistryDestination,
  type RegistryDestination,
  uploadClaimed,
} from "./ends/registry_destination.ts";
import { recordLayer } from "./transfer/proven.ts";
import { told } from "./transfer/told.ts";
import type { UploadAsMade } from "./ends/upload_as_made.ts";
import { DEFAULT_CONCURRENT_UPLOADS, limiter } from "./_limit.ts";
import { verifyingSized } from "./_verify.ts";
import { isRegistryError } from "./errors.ts";
import { withCredentials } from "./keychain.ts";
import { familiarName, formatReference, parseReference, type Reference } from "./reference.ts";
import { checkRepositoryName } from "./repositories.ts";
import type {
  BlobWriter,
  ContentStore,
  Descriptor,
  PushedLayer,
  PushResult,
  RegistryConfig,
} from "./types.ts";

/** One push's state: the destination, the layers done and under way. */
export interface PushContext extends RegistryDestination {
  /** DiffID → descriptor of layers known to be on the registry (dockerd's pushState.remoteLayers). */
  remoteLayers: Map<string, Descriptor>;
  /** DiffID → the push of that layer under way (one per DiffID, however many images name it). */
  pushing: Map<string, Promise<LayerPushed>>;
  /** Runs at most `maxConcurrentUploads` layer pushes at once. */
  uploads: <T>(task: () => Promise<T>) => Promise<T>;
}

/** What became of one layer: as {@linkcode PushedLayer}, with the descriptor pushed. */
export interface LayerPushed extends Omit<PushedLayer, "digest" | "diffID"> {
  descriptor: Descriptor;
}

/** A stored layer's size: the store's stat when it has one, else its manifest's word. */
async function storedSize(store: ContentStore, layer: Descriptor): Promise<number> {
  return store.stat === undefined ? layer.size : (await store.stat(layer.digest)).size;
}

async function ignore(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch {
    // dockerd ignores failures of Remove and of cancelling an upload
  }
}

/**
 * A layer before its lookup: its blob's descriptor when the source has it compressed, else
 * its media type alone (the registry's answers give the digest and size).
 */
export type LayerShape = Omit<Descriptor, "digest" | "size"> & { digest?: string; size?: number };

/** dockerd's layerAlreadyExists: HEAD up to `max` distinct digests in the target repository. */
async function layerAlreadyExists(
  ctx: PushContext,
  diffID: string,
  layer: LayerShape,
  checkOtherRepositories: boolean,
  max: number,
  entries: V2Metadata[],
  checked: Set<string>,
): Promise<Descriptor | null> {
  const target = ctx.target.name;
  const candidates = entries.filter((m) =>
    !(m.sourceRepository.length > 0 && !checkOtherRepositories && m.sourceRepository !== target)
  );
  const sorted = await sortByLikenessAndAge(target, ctx.hmacKey, candidates);
  const byDigest = new Map<string, V2Metadata>();
  for (const meta of sorted) {
    if (byDigest.size >= max) break;
    if (byDigest.has(meta.digest) || checked.has(meta.digest)) continue;
    byDigest.set(meta.digest, meta);
  }
  for (const [digest, meta] of byDigest) {
    checked.add(digest);
    let size: number;
    try {
      // stat refuses an answer for another digest than the one asked (DIGEST_INVALID).
      size = (await ctx.repo.blobs().stat(digest)).size;
    } catch (error) {
      if (isRegistryError(error, "BLOB_UNKNOWN") && meta.sourceRepository === target) {
        await ignore(ctx.service.remove(meta));
      }
      if (isRegistryError(error, "ABORTED")) throw error;
      continue;
    }
    if (meta.sourceRepository !== target || !(await checkV2MetadataHMAC(meta, ctx.hmacKey))) {
      await recordLayer(ctx.service, ctx.hmacKey, diffID, digest, target);
    }
    const descriptor = { ...layer, digest, size: layer.size ?? size };
    ctx.remoteLayers.set(diffID, descriptor);
    told(ctx.config.onProgress, "exists", descriptor);
    return descriptor;
  }
  return null;
}

/**
 * What the lookup of a layer came to: the layer on the registry (found or mounted), or the
 * session a refused mount left open, which its upload goes on in.
 */
export type LookedUp = { pushed: LayerPushed } | { pushed: null; session: BlobWriter | null };

/**
 * dockerd's v2PushDescriptor.Upload up to the upload: the layer already pushed by this push,
 * one existence check of the best-known digest, mounts from other repositories of the
 * registry, more existence checks; the budgets by `budgetSize` (dockerd's layer size).
 */
export async function lookUpLayer(
  ctx: PushContext,
  diffID: string,
  layer: LayerShape,
  budgetSize: number | undefined,
): Promise<LookedUp> {
  const done = ctx.remoteLayers.get(diffID);
  if (done !== undefined) return { pushed: { descriptor: done, transfer: "exists" } };
  const budget = attemptBudget(budgetSize);
  const checked = new Set<string>();
  let entries: V2Metadata[] = [];
  try {
    entries = await ctx.service.getMetadata(diffID);
  } catch {
    // no metadata for this layer: nothing to find, dockerd goes on to mounts (none) and upload
  }
  const found = await layerAlreadyExists(ctx, diffID, layer, true, 1, entries, checked);
  if (found !== null) return { pushed: { descriptor: found, transfer: "exists" } };

  const blobs = ctx.repo.blobs();
  const candidates = await mountCandidates(
    ctx.target,
    ctx.hmacKey,
    budget.maxMountAttempts,
    entries,
  );
  const mounts = await mountFrom(
    ctx,
    candidates.map((entry) => ({
      repository: entry.sourceRepository,
      digest: entry.digest,
      entry,
    })),
  );
  if (mounts.mounted !== null) {
    const { repository, digest } = mounts.mounted;
    // A mount's answer gives no size: dockerd's client asks with a HEAD too.
    const size = layer.size ?? (await blobs.stat(digest)).size;
    const pushed = await mounted(ctx, diffID, { ...layer, digest, size }, repository);
    return { pushed };
  }
  const upload = mounts.session;

  if (budget.maxExistenceChecks - checked.size > 0) {
    const found = await layerAlreadyExists(
      ctx,
      diffID,
      layer,
      budget.checkOtherRepositories,
      budget.maxExistenceChecks - checked.size,
      entries,
      checked,
    );
    if (found !== null) {
      if (upload !== null) await ignore(upload.cancel());
      return { pushed: { descriptor: found, transfer: "exists" } };
    }
  }
  return { pushed: null, session: upload };
}

/**
 * Uploads a layer the lookup did not find, under an upload claim when the store offers them,
 * then records it. Each layer is read once, checked as it is sent: the check holds back the
 * last bytes until the bytes proved to be `size` and to hash to `digest`, and errors the body
 * otherwise, so the request cannot complete (the session is cancelled) and no registry,
 * checking or not, ever has other bytes under this name. A layer already sent as it was made
 * (`sent`) is only committed; when that attempt failed, it is uploaded as any other.
 */
export async function uploadLayer(
  ctx: PushContext,
  diffID: string,
  blob: Descriptor & {
    open(): Promise<ReadableStream<Uint8Array>>;
    what: string;
    sent?: UploadAsMade | undefined;
  },
  session: BlobWriter | null,
  stop: AbortSignal,
): Promise<LayerPushed> {
  const { open, what, sent, ...layer } = blob;
  const { digest, size } = layer;
  if (await sent?.commit(layer, stop)) {
    if (session !== null) await ignore(session.cancel());
    ctx.config.onProgress?.({ action: "push", digest, current: size, total: size });
    await record(ctx, diffID, layer);
    return { descriptor: layer, transfer: "uploaded" };
  }
  const { result, waited } = await uploadClaimed(
    ctx,
    { digest, size, open: async () => verifyingSized(await open(), digest, size, what, stop) },
    session,
    stop,
    true,
    async (how): Promise<LayerPushed> => {
      await record(ctx, diffID, layer);
      return how.transfer === "mounted"
        ? { descriptor: layer, transfer: "mounted", from: how.from }
        : { descriptor: layer, transfer: how.transfer };
    },
  );
  return waited ? { ...result, waited } : result;
}

/** dockerd's v2PushDescriptor.Upload for one layer of a content store. */
async function pushLayer(
  ctx: PushContext,
  store: ContentStore,
  diffID: string,
  layer: Descriptor,
  stop: AbortSignal,
): Promise<LayerPushed> {
  if (isForeign(layer)) {
    told(ctx.config.onProgress, "skip", layer);
    return { descriptor: layer, transfer: "foreign" };
  }
  const looked = await lookUpLayer(ctx, diffID, layer, layer.size);
  if (looked.pushed !== null) return looked.pushed;
  let size: number;
  try {
    size = await storedSize(store, layer);
  } catch (error) {
    if (looked.session !== null) await ignore(looked.session.cancel());
    throw error;
  }
  return await uploadLayer(
    ctx,
    diffID,
    {
      ...layer,
      size,
      open: () => store.open(layer.digest, { verify: false }),
      what: `blob "${layer.digest}" in the content store`,
    },
    looked.session,
    stop,
  );
}

/** Records a layer the target repository has now, as dockerd does after a push. */
async function record(ctx: PushContext, diffID: string, descriptor: Descriptor): Promise<void> {
  await recordLayer(ctx.service, ctx.hmacKey, diffID, descriptor.digest, ctx.target.name);
  ctx.remoteLayers.set(diffID, descriptor);
}

/** A layer mounted from `from`: reported and recorded. */
async function mounted(
  ctx: PushContext,
  diffID: string,
  descriptor: Descriptor,
  from: string,
): Promise<LayerPushed> {
  told(ctx.config.onProgress, "mount", descriptor, from);
  await record(ctx, diffID, descriptor);
  return { descriptor, transfer: "mounted", from };
}

/**
 * Every layer of an image, up to `maxConcurrentUploads` at once, each DiffID once. The first
 * failure stops the other uploads at once (their sessions cancelled, the layers still waiting
 * never started), and is thrown once they all ended.
 */
function pushLayers(
  ctx: PushContext,
  store: ContentStore,
  layers: { layer: Descriptor; diffID: string }[],
): Promise<PushedLayer[]> {
  return inManifestOrder(
    layers,
    ctx.uploads,
    ({ layer, diffID }, inSlot) => {
      let task = ctx.pushing.get(diffID);
      if (task === undefined) {
        task = inSlot((stop) => pushLayer(ctx, store, diffID, layer, stop));
        ctx.pushing.set(diffID, task);
      }
      return task;
    },
    ({ layer, diffID }, { descriptor: _, ...outcome }) => ({
      digest: layer.digest,
      diffID,
      ...outcome,
    }),
  );
}

/** The config blob (or any non-layer blob): HEAD, then upload when missing. */
export async function pushBlob(
  ctx: PushContext,
  descriptor: Descriptor,
  data: Uint8Array,
): Promise<void> {
  try {
    await ctx.repo.blobs().stat(descriptor.digest);
    told(ctx.config.onProgress, "exists", descriptor);
    return;
  } catch (error) {
    if (!isRegistryError(error, "BLOB_UNKNOWN")) throw error;
  }
  const options = ctx.config.chunkSize === undefined ? {} : { chunkSize: ctx.config.chunkSize };
  await ctx.repo.blobs().put(data, options);
  ctx.config.onProgress?.({
    action: "push",
    digest: descriptor.digest,
    current: data.length,
    total: data.length,
  });
}

async function pushManifest(
  ctx: PushContext,
  store: ContentStore,
  node: PlannedManifest,
  tag: string | undefined,
  pushed: Set<string>,
): Promise<PushResult> {
  const { manifest, descriptor } = node;
  let layers: PushedLayer[];
  let manifests: PushResult[] | undefined;
  if (node.kind === "index") {
    manifests = [];
    for (const child of node.children) {
      if (!pushed.has(child.descriptor.digest)) {
        manifests.push(await pushManifest(ctx, store, child, undefined, pushed));
      }
    }
    layers = manifests.flatMap((image) => image.layers);
  } else {
    layers = await pushLayers(ctx, store, node.layers);
    await pushBlob(ctx, node.config, node.configBytes);
  }
  const digest = await ctx.repo.manifests().put(manifest, tag === undefined ? {} : { tag });
  pushed.add(digest);
  const result: PushResult = {
    mediaType: manifest.mediaType,
    digest,
    size: descriptor.size,
    layers,
  };
  return manifests === undefined ? result : { ...result, manifests };
}

/**
 * Opens a push to `target` for `config` (its credentials already resolved): the repository
 * with pull and push scopes on the first endpoint, the metadata service, the limits.
 */
export async function openPush(target: Reference, config: RegistryConfig): Promise<PushContext> {
  return {
    ...await openRegistryDestination(target, config),
    remoteLayers: new Map(),
    pushing: new Map(),
    uploads: limiter(config.maxConcurrentUploads ?? DEFAULT_CONCURRENT_UPLOADS),
  };
}

/**
 * Pushes an image from a content store, as `docker push` does. The image is the manifest the
 * store has under the reference (full reference, tag, or digest); for an index, each child
 * manifest the store has is pushed, then the index. Layers go up to `maxConcurrentUploads`
 * (default 5) at once, each by dockerd's algorithm: one existence check of the best-known
 * digest; cross-repository mounts from other repositories of the same registry the metadata
 * knows, best first (credentials' HMAC, path likeness, age), 1/3/4 attempts for layers up to
 * 100 KiB / 10 MiB / bigger; a failed mount forgets its entry when the entry's HMAC matches
 * `hmacKey` or is empty; a few more existence checks; then the upload. An upload streams the
 * layer from the store once, in one `PUT` (or `PATCH` chunks of `config.chunkSize`), so memory
 * stays bounded whatever its size, checked as it is read against its digest and its size (the
 * store's `stat`): its last bytes go only once both hold, and a mismatch fails the request and
 * cancels the session, so nothing is committed under a name its bytes do not match; a failed
 * attempt (no answer, a cut, `408`, `429`, `5xx`) cancels its session and starts again in a
 * new one, reading the layer again, within `config.retry`. Every layer found, mounted or
 * uploaded is recorded with `tagAndAdd` under the target repository's full name. Then the
 * configuration blob and, only after all its blobs, the manifest (unchanged bytes, so the
 * digest is the store's).
 * When the metadata store offers upload claims (`MetadataStore.claims`: Redis, Deno KV, a
 * Durable Object, the directory store with `lock: true`), each upload is claimed first, so
 * builders sharing the store upload a layer once: one that finds another's claim waits for
 * it to end, then mounts the layer from the repository it went to (or finds it, in the same
 * repository), and uploads it itself only when it is not there, or when waiting has taken
 * as long as uploading it would at the rate its own uploads reached so far (at least
 * `config.claimTtlMs`, at most 60 s, the cap before any upload finished). A failed upload releases its claim at once; a
 * crashed uploader's claim runs out after `config.claimTtlMs` (10 s) and is taken over.
 * `config.signal` stops everything promptly and cancels the upload sessions.
 *
 * @param ref A Docker reference with a tag (or digest), e.g. `127.0.0.1:5000/team/app:1.0`.
 * @param store The content store holding the image.
 * @param config Credentials, metadata service, HMAC key, transport, concurrency, retries,
 * progress, chunk size, signal.
 * @returns The descriptor of the pushed manifest, and what became of each layer (uploaded,
 * mounted from where, already there, waited for another builder's upload).
 *
 * @example
 * ```ts ignore
 * import { computeV2MetadataHMACKey, FSMetadataStore, V2MetadataService } from "@distribution/metadata";
 * import { ociLayoutStore, push } from "@distribution/metadata/registry";
 *
 * const auth = { username: "ci", password: "secret" };
 * const pushed = await push("registry.example.com/team/app:1.0", await ociLayoutStore("/tmp/app"), {
 *   auth,
 *   hmacKey: await computeV2MetadataHMACKey(auth),
 *   metadataService: new V2MetadataService(await FSMetadataStore.open("/tmp/dist")),
 *   onProgress: (event) => console.log(event.action, event.digest, event.current, event.total),
 * });
 * console.log(pushed.digest);
 * ```
 */
export async function push(
  ref: string,
  store: ContentStore,
  config: RegistryConfig = {},
): Promise<PushResult> {
  const target = parseReference(ref);
  checkRepositoryName(target);
  config = await withCredentials(target.domain, config);
  const names = [formatReference(target)];
  if (target.tag !== undefined) names.push(`${target.name}:${target.tag}`, target.tag);
  if (target.digest !== undefined) names.push(target.digest);
  let descriptor: Descriptor | null = null;
  for (const name of names) {
    descriptor = await store.resolve(name);
    if (descriptor !== null) break;
  }
  if (descriptor === null) {
    throw new MetadataError(
      "ENOENT",
      `Cannot push "${ref}": tag does not exist: ${familiarName(target)}${
        target.tag ? `:${target.tag}` : ""
      }`,
      { path: ref },
    );
  }
  // Everything local is read and checked before the first request: manifests and configs
  // against their digests, DiffIDs as digests, indexes for cycles.
  const plan = await planImage(store, descriptor, formatReference(target));
  const ctx = await openPush(target, config);
  return await pushManifest(ctx, store, plan, target.tag, new Set());
}
