/**
 * `push`: an image from a content store to a registry, following dockerd's algorithm
 * (docker `distribution/push_v2.go`): existence checks and cross-repository mounts chosen from
 * the distribution metadata, stale entries forgotten, every pushed layer recorded.
 *
 * @module
 */
import { checkV2MetadataHMAC } from "../hmac.ts";
import { MetadataError } from "../errors.ts";
import { type V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
import { planImage, type PlannedManifest } from "./_plan.ts";
import { isForeign } from "./_image.ts";
import {
  attemptBudget,
  forgetsFailedMount,
  hasAuthInfo,
  mountCandidates,
  mountFailureEnds,
  sortByLikenessAndAge,
} from "./push_candidates.ts";
import { DEFAULT_CONCURRENT_UPLOADS, limiter } from "./_limit.ts";
import { takeFrom, uploadOnce, UploadRate } from "./_claim.ts";
import { verifyingSized } from "./_verify.ts";
import { isRegistryError } from "./errors.ts";
import { withCredentials } from "./keychain.ts";
import { familiarName, formatReference, parseReference, type Reference } from "./reference.ts";
import { checkRepositoryName, endpointsFor, openRepository } from "./repositories.ts";
import type { UploadClaims } from "../upload_claims.ts";
import type {
  BlobWriter,
  ContentStore,
  Descriptor,
  PushedLayer,
  PushResult,
  RegistryConfig,
  Repository,
} from "./types.ts";

/** One push's state: the repository, the metadata, the layers done and under way. */
export interface PushContext {
  repo: Repository;
  target: Reference;
  service: V2MetadataService;
  hmacKey: Uint8Array | null;
  hasAuthInfo: boolean;
  config: RegistryConfig;
  /** DiffID → descriptor of layers known to be on the registry (dockerd's pushState.remoteLayers). */
  remoteLayers: Map<string, Descriptor>;
  /** DiffID → the push of that layer under way (one per DiffID, however many images name it). */
  pushing: Map<string, Promise<LayerPushed>>;
  /** Runs at most `maxConcurrentUploads` layer pushes at once. */
  uploads: <T>(task: () => Promise<T>) => Promise<T>;
  /** The metadata store's upload claims, when it offers them. */
  claims: UploadClaims | undefined;
  /** The upload rate measured so far, which bounds a wait for another's claim. */
  rate: UploadRate;
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
      await ctx.service.tagAndAdd(diffID, ctx.hmacKey, {
        digest,
        sourceRepository: target,
        hmac: "",
      });
    }
    const descriptor = { ...layer, digest, size: layer.size ?? size };
    ctx.remoteLayers.set(diffID, descriptor);
    ctx.config.onProgress?.({
      action: "exists",
      digest,
      current: descriptor.size,
      total: descriptor.size,
    });
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
  let upload: BlobWriter | null = null;
  const candidates = await mountCandidates(
    ctx.target,
    ctx.hmacKey,
    budget.maxMountAttempts,
    entries,
  );
  for (const candidate of candidates) {
    const source = parseReference(candidate.sourceRepository, { defaultTag: false });
    let unauthorized = false;
    let created: Awaited<ReturnType<typeof blobs.create>> | null = null;
    try {
      created = await blobs.create({
        mountFrom: { repository: source.path, digest: candidate.digest },
      });
    } catch (error) {
      if (mountFailureEnds(error)) {
        if (upload !== null) await ignore(upload.cancel());
        throw error;
      }
      unauthorized = isRegistryError(error, "UNAUTHORIZED");
    }
    if (created?.kind === "mounted") {
      if (upload !== null) await ignore(upload.cancel());
      const digest = created.descriptor.digest;
      // A mount's answer gives no size: dockerd's client asks with a HEAD too.
      const size = layer.size ?? (await blobs.stat(digest)).size;
      const pushed = await mounted(
        ctx,
        diffID,
        { ...layer, digest, size },
        candidate.sourceRepository,
      );
      return { pushed };
    }
    if (await forgetsFailedMount(candidate, ctx.hmacKey, unauthorized, ctx.hasAuthInfo)) {
      await ignore(ctx.service.remove(candidate));
    }
    if (created?.kind === "upload") {
      if (upload !== null) await ignore(upload.cancel());
      upload = created.writer;
    }
  }

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
 * checking or not, ever has other bytes under this name.
 */
export async function uploadLayer(
  ctx: PushContext,
  diffID: string,
  blob: Descriptor & { open(): Promise<ReadableStream<Uint8Array>>; what: string },
  session: BlobWriter | null,
  stop: AbortSignal,
): Promise<LayerPushed> {
  const { open, what, ...layer } = blob;
  const { digest, size } = layer;
  const blobs = ctx.repo.blobs();
  const onProgress = ctx.config.onProgress;
  const sendLayer = async (): Promise<LayerPushed> => {
    await blobs.upload({
      digest,
      size,
      // `stop` ends the upload when another layer failed.
      open: async () => verifyingSized(await open(), digest, size, what, stop),
    }, {
      session,
      chunkSize: ctx.config.chunkSize,
      onProgress: (current) => onProgress?.({ action: "push", digest, current, total: size }),
      onRetry: (attempt, error) =>
        onProgress?.({ action: "retry", digest, current: 0, total: size, attempt, error }),
    });
    await record(ctx, diffID, layer);
    return { descriptor: layer, transfer: "uploaded" };
  };
  const { result, waited } = await uploadOnce<LayerPushed>({
    claims: ctx.claims,
    target: ctx.target,
    config: ctx.config,
    stop,
    digest,
    size,
    rate: ctx.rate,
    session,
    adopt: (repository) => adopt(ctx, diffID, layer, repository),
    upload: sendLayer,
  });
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
    ctx.config.onProgress?.({
      action: "skip",
      digest: layer.digest,
      current: 0,
      total: layer.size,
    });
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
  await ctx.service.tagAndAdd(diffID, ctx.hmacKey, {
    digest: descriptor.digest,
    sourceRepository: ctx.target.name,
    hmac: "",
  });
  ctx.remoteLayers.set(diffID, descriptor);
}

/** A layer mounted from `from`: reported and recorded. */
async function mounted(
  ctx: PushContext,
  diffID: string,
  descriptor: Descriptor,
  from: string,
): Promise<LayerPushed> {
  ctx.config.onProgress?.({
    action: "mount",
    digest: descriptor.digest,
    current: descriptor.size,
    total: descriptor.size,
    from,
  });
  await record(ctx, diffID, descriptor);
  return { descriptor, transfer: "mounted", from };
}

/** After another builder's upload claim ended: the layer from where it went, recorded. */
async function adopt(
  ctx: PushContext,
  diffID: string,
  layer: Descriptor,
  repository: string,
): Promise<LayerPushed | null> {
  const taken = await takeFrom(ctx.repo.blobs(), ctx.target, layer.digest, repository);
  if (taken === null) return null;
  if (taken.transfer === "mounted") return await mounted(ctx, diffID, layer, taken.from);
  ctx.config.onProgress?.({
    action: "exists",
    digest: layer.digest,
    current: layer.size,
    total: layer.size,
  });
  await record(ctx, diffID, layer);
  return { descriptor: layer, transfer: "exists" };
}

/**
 * Every layer of an image, up to `maxConcurrentUploads` at once, each DiffID once. The first
 * failure stops the other uploads at once (their sessions cancelled, the layers still waiting
 * never started), and is thrown once they all ended.
 */
async function pushLayers(
  ctx: PushContext,
  store: ContentStore,
  layers: { layer: Descriptor; diffID: string }[],
): Promise<PushedLayer[]> {
  const stop = new AbortController();
  // Set by the tasks, which TypeScript does not follow.
  let first = null as { error: unknown } | null;
  const tasks = layers.map(({ layer, diffID }) => {
    let task = ctx.pushing.get(diffID);
    if (task === undefined) {
      task = ctx.uploads(async () => {
        stop.signal.throwIfAborted();
        try {
          return await pushLayer(ctx, store, diffID, layer, stop.signal);
        } catch (error) {
          if (!stop.signal.aborted) {
            first = { error };
            stop.abort();
          }
          throw error;
        }
      });
      ctx.pushing.set(diffID, task);
    }
    return task;
  });
  for (const task of tasks) task.catch(() => {}); // each is awaited below, or settled on failure
  const pushed: PushedLayer[] = [];
  try {
    for (const [i, task] of tasks.entries()) {
      const { descriptor: _, ...outcome } = await task;
      pushed.push({ digest: layers[i]!.layer.digest, diffID: layers[i]!.diffID, ...outcome });
    }
  } catch (error) {
    stop.abort();
    await Promise.allSettled(tasks);
    throw first?.error ?? error;
  }
  return pushed;
}

/** The config blob (or any non-layer blob): HEAD, then upload when missing. */
export async function pushBlob(
  ctx: PushContext,
  descriptor: Descriptor,
  data: Uint8Array,
): Promise<void> {
  try {
    await ctx.repo.blobs().stat(descriptor.digest);
    ctx.config.onProgress?.({
      action: "exists",
      digest: descriptor.digest,
      current: descriptor.size,
      total: descriptor.size,
    });
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
  const repo = await openRepository(target, endpointsFor(target, config, true)[0]!, config, [
    "pull",
    "push",
  ]);
  return {
    repo,
    target,
    service: config.metadataService ?? new V2MetadataService(null),
    hmacKey: config.hmacKey ?? null,
    hasAuthInfo: hasAuthInfo(config.auth),
    config,
    remoteLayers: new Map(),
    pushing: new Map(),
    uploads: limiter(config.maxConcurrentUploads ?? DEFAULT_CONCURRENT_UPLOADS),
    claims: config.metadataService?.store?.claims,
    rate: new UploadRate(),
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
