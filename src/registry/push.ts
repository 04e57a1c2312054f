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

interface PushContext {
  repo: Repository;
  target: Reference;
  store: ContentStore;
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
interface LayerPushed extends Omit<PushedLayer, "digest" | "diffID"> {
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

/** dockerd's layerAlreadyExists: HEAD up to `max` distinct digests in the target repository. */
async function layerAlreadyExists(
  ctx: PushContext,
  diffID: string,
  layer: Descriptor,
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
    try {
      // stat refuses an answer for another digest than the one asked (DIGEST_INVALID).
      await ctx.repo.blobs().stat(digest);
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
    const descriptor = { ...layer, digest };
    ctx.remoteLayers.set(diffID, descriptor);
    ctx.config.onProgress?.({ action: "exists", digest, current: layer.size, total: layer.size });
    return descriptor;
  }
  return null;
}

/** dockerd's v2PushDescriptor.Upload for one layer. */
async function pushLayer(
  ctx: PushContext,
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
  const done = ctx.remoteLayers.get(diffID);
  if (done !== undefined) return { descriptor: done, transfer: "exists" };
  const budget = attemptBudget(layer.size);
  const checked = new Set<string>();
  let entries: V2Metadata[] = [];
  try {
    entries = await ctx.service.getMetadata(diffID);
  } catch {
    // no metadata for this layer: nothing to find, dockerd goes on to mounts (none) and upload
  }
  const found = await layerAlreadyExists(ctx, diffID, layer, true, 1, entries, checked);
  if (found !== null) return { descriptor: found, transfer: "exists" };

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
      const descriptor = { ...layer, digest: created.descriptor.digest };
      return await mounted(ctx, diffID, descriptor, candidate.sourceRepository);
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
      return { descriptor: found, transfer: "exists" };
    }
  }

  // Each layer is read once, checked as it is sent: the check holds back the last bytes
  // until the bytes proved to be `size` and to hash to `digest`, and errors the body
  // otherwise, so the request cannot complete (the session is cancelled) and no registry,
  // checking or not, ever has other bytes under this name.
  const digest = layer.digest;
  let size: number;
  try {
    size = await storedSize(ctx.store, layer);
  } catch (error) {
    if (upload !== null) await ignore(upload.cancel());
    throw error;
  }
  const onProgress = ctx.config.onProgress;
  const session = upload;
  const sendLayer = async (): Promise<LayerPushed> => {
    await blobs.upload({
      digest,
      size,
      // `stop` ends the upload when another layer failed.
      open: async () =>
        verifyingSized(
          await ctx.store.open(digest, { verify: false }),
          digest,
          size,
          `blob "${digest}" in the content store`,
          stop,
        ),
    }, {
      session,
      chunkSize: ctx.config.chunkSize,
      onProgress: (current) => onProgress?.({ action: "push", digest, current, total: size }),
      onRetry: (attempt, error) =>
        onProgress?.({ action: "retry", digest, current: 0, total: size, attempt, error }),
    });
    await record(ctx, diffID, { ...layer, size });
    return { descriptor: { ...layer, size }, transfer: "uploaded" };
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
    adopt: (repository) => adopt(ctx, diffID, { ...layer, size }, repository),
    upload: sendLayer,
  });
  return waited ? { ...result, waited } : result;
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
          return await pushLayer(ctx, diffID, layer, stop.signal);
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
async function pushBlob(ctx: PushContext, descriptor: Descriptor, data: Uint8Array): Promise<void> {
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
        manifests.push(await pushManifest(ctx, child, undefined, pushed));
      }
    }
    layers = manifests.flatMap((image) => image.layers);
  } else {
    layers = await pushLayers(ctx, node.layers);
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
  const repo = await openRepository(target, endpointsFor(target, config, true)[0]!, config, [
    "pull",
    "push",
  ]);
  const ctx: PushContext = {
    repo,
    target,
    store,
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
  return await pushManifest(ctx, plan, target.tag, new Set());
}
