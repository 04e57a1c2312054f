/**
 * `copy`: an image from one registry straight to another (or to another repository of the
 * same one), as skopeo copies it: each blob streams from the source's `GET` into the
 * destination's upload, verified as it passes, with nothing written to disk; the metadata is
 * recorded as dockerd records a pull from the source and a push to the destination.
 *
 * @module
 */
import type { AuthConfig } from "../hmac.ts";
import { type V2Metadata, V2MetadataService } from "../v2_metadata_service.ts";
import { LIMITS } from "./transport/limits.ts";
import { digestOf, isDigest } from "./_digest.ts";
import { type DiffIDSink, diffIDSink, feeding } from "./_diff_id.ts";
import { diffIDsOf, isForeign, knownDiffID, layersWithDiffIDs } from "./_image.ts";
import { DEFAULT_CONCURRENT_DOWNLOADS, DEFAULT_CONCURRENT_UPLOADS, limiter } from "./_limit.ts";
import { takeFrom, uploadOnce, UploadRate } from "./_claim.ts";
import { isRegistryError, RegistryError } from "./errors.ts";
import { isIndexMediaType } from "./manifest.ts";
import { imageOfIndex, selectEntries } from "./_image_manifest.ts";
import {
  attemptBudget,
  forgetsFailedMount,
  hasAuthInfo,
  mountCandidates,
  mountFailureEnds,
} from "./push_candidates.ts";
import { type Keychain, withCredentials } from "./keychain.ts";
import { hostPlatform } from "./platform.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import {
  checkRepositoryName,
  endpointsFor,
  fromFirstEndpoint,
  getRepositories,
  openRepository,
} from "./repositories.ts";
import type { TlsOptions } from "./transport/default_transport.ts";
import type {
  BlobWriter,
  Descriptor,
  Manifest,
  PulledLayer,
  RegistryConfig,
  Repository,
} from "./types.ts";

/** How one side of a copy is reached: its own credentials, never sent to the other side. */
export interface CopySide {
  /** Credentials for this side's registry. */
  auth?: AuthConfig;
  /** Resolves this side's credentials when `auth` is not given. */
  keychain?: Keychain;
  /**
   * The HMAC key this side's metadata entries are tagged with; default
   * `computeV2MetadataHMACKey` of this side's credentials (none without `auth` or `keychain`).
   */
  hmacKey?: Uint8Array | null;
  /** Use `http://` (registries on 127.0.0.1 without TLS). */
  plainHttp?: boolean;
  /** For a Docker Hub source: mirrors tried first (a destination never goes to a mirror). */
  mirrors?: string[];
  /** This side's own TLS settings. */
  tls?: TlsOptions;
  /**
   * The `fetch` this side's requests go through, token requests included (default as
   * {@linkcode RegistryConfig.fetch}: `node:http` on Node, the global `fetch` elsewhere).
   */
  fetch?: typeof fetch;
}

/**
 * What {@linkcode copy} takes: each side's own way in, and what the whole copy shares
 * (metadata service, platforms, concurrency, retries, chunk size, signal, progress).
 */
export interface CopyConfig extends
  Omit<
    RegistryConfig,
    "auth" | "keychain" | "hmacKey" | "plainHttp" | "mirrors" | "fetch" | "tls"
  > {
  /** The registry read from. */
  source?: CopySide;
  /** The registry written to. */
  destination?: CopySide;
}

/** What copy did with one layer. */
export interface CopiedLayer {
  /** The layer's digest. */
  digest: string;
  /** The DiffID the image configuration claims for it. */
  diffID: string;
  /**
   * How it reached the destination: `copied` (streamed through), `mounted` from another
   * repository of the destination's registry, `exists` there already, or `foreign` (not
   * copied, as push leaves foreign layers).
   */
  transfer: "copied" | "mounted" | "exists" | "foreign";
  /** For `mounted`: the full name of the repository it was mounted from. */
  from?: string;
  /**
   * `true` when another builder sharing the metadata store was uploading it (an upload
   * claim, as push has) and this copy waited for that.
   */
  waited?: boolean;
  /**
   * What was recorded: as {@linkcode PulledLayer}'s status (`recorded` also when no byte
   * passed but the metadata already knew this DiffID for the digest), or `unchecked`: no
   * byte passed and the metadata did not know the DiffID, so nothing was recorded.
   */
  status: Exclude<PulledLayer["status"], "exists"> | "unchecked";
  /** For `mismatch`: the DiffID the layer really has. */
  actualDiffID?: string;
}

/** What {@linkcode copy} returns: the descriptor of the manifest tagged at the destination. */
export interface CopyResult extends Descriptor {
  /** Each layer, in manifest order (of every image copied, for an index). */
  layers: CopiedLayer[];
  /** When an index was copied (`platform` a list or `"all"`): each image, in index order. */
  manifests?: CopyResult[];
}

/** One copy: both repositories, the metadata, and the shared transfer slots. */
interface CopyContext {
  from: Repository;
  to: Repository;
  source: Reference;
  target: Reference;
  shown: string;
  config: CopyConfig;
  service: V2MetadataService;
  sourceKey: Uint8Array | null;
  targetKey: Uint8Array | null;
  /** Whether the destination's credentials are given (push's `hasAuthInfo`). */
  targetHasAuthInfo: boolean;
  /** Runs at most the concurrency's blob copies at once. */
  slots: <T>(task: () => Promise<T>) => Promise<T>;
  /** Digest → its copy under way or done (one per digest, however many images name it). */
  copying: Map<string, Promise<Placed>>;
  /** The upload rate measured so far, which bounds a wait for another's upload claim. */
  rate: UploadRate;
}

/** How a blob reached the destination, and the DiffID its bytes gave when they passed. */
interface Placed {
  transfer: "copied" | "mounted" | "exists";
  /** For `mounted`: the repository's full name. */
  from?: string;
  /** Another builder's upload claim was waited for. */
  waited?: boolean;
  /** The DiffID computed (`null`: not computable; `undefined`: no byte passed). */
  actual?: string | null;
}

/** A repository to mount from, and the metadata entry that named it (none for the source). */
interface MountSource {
  repository: Reference;
  entry: V2Metadata | null;
}

/**
 * The repositories of the destination's registry to mount `digest` from, best first: the
 * source repository when both sides are one registry, then those the metadata knows for the
 * DiffID (push's candidates), kept only when they name this very digest (a copy keeps the
 * manifest's bytes, so another compression of the layer will not do).
 */
async function mountSources(
  ctx: CopyContext,
  blob: Descriptor,
  diffID: string | null,
): Promise<MountSource[]> {
  const sources: MountSource[] = ctx.from.endpoint === ctx.to.endpoint
    ? [{ repository: ctx.source, entry: null }]
    : [];
  if (diffID !== null && isDigest(diffID)) {
    const entries = await ctx.service.getMetadata(diffID).catch(() => []);
    const budget = attemptBudget(blob.size);
    const candidates = await mountCandidates(ctx.target, ctx.targetKey, -1, entries);
    for (const entry of candidates.filter((c) => c.digest === blob.digest)) {
      const repository = parseReference(entry.sourceRepository, { defaultTag: false });
      if (!sources.some((known) => known.repository.path === repository.path)) {
        sources.push({ repository, entry });
      }
    }
    sources.length = Math.min(sources.length, Math.max(budget.maxMountAttempts, 1));
  }
  return sources;
}

/**
 * One blob onto the destination: nothing when it has it (`HEAD`), a mount when it can, else
 * streamed from the source (`open`, once per upload attempt) into an upload session. When
 * `diffID` is given, the DiffID of the bytes that pass is computed on the way.
 */
async function placeBlob(
  ctx: CopyContext,
  blob: Descriptor,
  open: () => Promise<ReadableStream<Uint8Array>>,
  diffID: string | null,
  stop: AbortSignal,
): Promise<Placed> {
  const { digest, size } = blob;
  const blobs = ctx.to.blobs();
  const onProgress = ctx.config.onProgress;
  try {
    await blobs.stat(digest);
    onProgress?.({ action: "exists", digest, current: size, total: size });
    return { transfer: "exists" };
  } catch (error) {
    if (!isRegistryError(error, "BLOB_UNKNOWN")) throw error;
  }
  let session: BlobWriter | null = null;
  for (const { repository, entry } of await mountSources(ctx, blob, diffID)) {
    let created = null;
    let unauthorized = false;
    try {
      created = await blobs.create({ mountFrom: { repository: repository.path, digest } });
    } catch (error) {
      if (mountFailureEnds(error)) {
        if (session !== null) await session.cancel().catch(() => {});
        throw error;
      }
      unauthorized = isRegistryError(error, "UNAUTHORIZED");
    }
    if (created?.kind === "mounted") {
      if (session !== null) await session.cancel().catch(() => {});
      onProgress?.({ action: "mount", digest, current: size, total: size, from: repository.name });
      return { transfer: "mounted", from: repository.name };
    }
    // A stale entry is forgotten as push forgets it (dockerd ignores a failure to).
    if (
      entry !== null &&
      await forgetsFailedMount(entry, ctx.targetKey, unauthorized, ctx.targetHasAuthInfo)
    ) {
      await ctx.service.remove(entry).catch(() => {});
    }
    if (created === null) continue;
    if (session !== null) await session.cancel().catch(() => {});
    session = created.writer;
  }
  if (stop.aborted) {
    // Another blob failed meanwhile: a session a mount opened is not left behind.
    if (session !== null) await session.cancel().catch(() => {});
    stop.throwIfAborted();
  }
  const send = async (): Promise<Placed> => {
    let sink: DiffIDSink | null = null;
    try {
      await blobs.upload({
        digest,
        size,
        // Each attempt reads the source again from its start, into a fresh DiffID.
        open: async () => {
          sink?.abort();
          sink = diffID === null ? null : diffIDSink();
          return feeding(await open(), sink, stop);
        },
      }, {
        session,
        chunkSize: ctx.config.chunkSize,
        onProgress: (current) => onProgress?.({ action: "push", digest, current, total: size }),
        onRetry: (attempt, error) =>
          onProgress?.({ action: "retry", digest, current: 0, total: size, attempt, error }),
      });
    } catch (error) {
      (sink as DiffIDSink | null)?.abort();
      throw error;
    }
    return { transfer: "copied", actual: await (sink as DiffIDSink | null)?.close() ?? null };
  };
  // A layer goes up under an upload claim, as push's do (the configuration needs none).
  const { result, waited } = await uploadOnce<Placed>({
    claims: diffID === null ? undefined : ctx.service.store?.claims,
    target: ctx.target,
    config: ctx.config,
    stop,
    digest,
    size,
    rate: ctx.rate,
    session,
    adopt: async (repository) => {
      const taken = await takeFrom(blobs, ctx.target, digest, repository);
      if (taken === null) return null;
      onProgress?.({
        action: taken.transfer === "mounted" ? "mount" : "exists",
        digest,
        current: size,
        total: size,
        ...(taken.transfer === "mounted" ? { from: taken.from } : {}),
      });
      return taken.transfer === "mounted" ? taken : { transfer: "exists" };
    },
    upload: send,
  });
  return waited ? { ...result, waited } : result;
}

/** A blob of the source onto the destination, once per digest for the whole copy. */
function copyBlob(
  ctx: CopyContext,
  blob: Descriptor,
  diffID: string | null,
  stop: AbortSignal,
): Promise<Placed> {
  let copying = ctx.copying.get(blob.digest);
  if (copying === undefined) {
    // The source's bytes, checked as they pass; the last bytes are held back until they
    // match their digest, so the destination never receives all of a blob that does not.
    const open = () => ctx.from.blobs().open(blob.digest, { maxBytes: blob.size });
    copying = ctx.slots(() => {
      stop.throwIfAborted();
      return placeBlob(ctx, blob, open, diffID, stop);
    });
    ctx.copying.set(blob.digest, copying);
  }
  return copying;
}

/**
 * What a placed layer proves, and its metadata: a pull from the source (when its bytes gave
 * the configuration's DiffID) and a push to the destination, each under that side's HMAC key.
 */
async function recordLayer(
  ctx: CopyContext,
  layer: Descriptor,
  diffID: string,
  placed: Placed,
): Promise<CopiedLayer> {
  const { digest } = layer;
  const outcome = {
    digest,
    diffID,
    transfer: placed.transfer,
    ...(placed.from === undefined ? {} : { from: placed.from }),
    ...(placed.waited ? { waited: true } : {}),
  };
  if (!isDigest(diffID)) return { ...outcome, status: "invalid" };
  if (placed.actual === undefined) {
    // No byte passed: record the push only for a DiffID the metadata already proved.
    if (await knownDiffID(ctx.service, digest) !== diffID) {
      return { ...outcome, status: "unchecked" };
    }
  } else if (placed.actual === null) return { ...outcome, status: "unverifiable" };
  else if (placed.actual !== diffID) {
    return { ...outcome, status: "mismatch", actualDiffID: placed.actual };
  } else {
    await ctx.service.tagAndAdd(diffID, ctx.sourceKey, {
      digest,
      sourceRepository: ctx.from.name,
      hmac: "",
    });
  }
  await ctx.service.tagAndAdd(diffID, ctx.targetKey, {
    digest,
    sourceRepository: ctx.target.name,
    hmac: "",
  });
  return { ...outcome, status: "recorded" };
}

/**
 * An image manifest's layers (up to the concurrency at once, recorded in manifest order as
 * each and those before it are done), then its configuration, then the manifest itself.
 */
async function copyImage(
  ctx: CopyContext,
  manifest: Manifest,
  digest: string,
  tag: string | undefined,
): Promise<CopyResult> {
  const [config, ...layers] = manifest.references();
  const configBytes = await ctx.from.blobs().get(config!.digest, { maxBytes: LIMITS.config });
  const what = `"${ctx.shown}"`;
  const pairs = layersWithDiffIDs(layers, diffIDsOf(configBytes, what), what);
  const stop = new AbortController();
  const tasks = pairs.map(({ layer, diffID }) => {
    if (!isForeign(layer)) return copyBlob(ctx, layer, diffID, stop.signal);
    ctx.config.onProgress?.({
      action: "skip",
      digest: layer.digest,
      current: 0,
      total: layer.size,
    });
    return Promise.resolve(null);
  });
  for (const task of tasks) task.catch(() => {}); // each is awaited below, or settled on failure
  const results: CopiedLayer[] = [];
  try {
    for (const [i, task] of tasks.entries()) {
      const placed = await task;
      const { layer, diffID } = pairs[i]!;
      results.push(
        placed === null
          ? { digest: layer.digest, diffID, transfer: "foreign", status: "foreign" }
          : await recordLayer(ctx, layer, diffID, placed),
      );
    }
    const stream = () =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(configBytes);
            controller.close();
          },
        }),
      );
    await placeBlob(ctx, { ...config!, size: configBytes.length }, stream, null, stop.signal);
  } catch (error) {
    stop.abort();
    await Promise.allSettled(tasks);
    throw error;
  }
  await ctx.to.manifests().put(manifest, tag === undefined ? {} : { tag });
  return { mediaType: manifest.mediaType, digest, size: manifest.payload.length, layers: results };
}

/** A destination named by digest must be what the copy tags: refused before anything moves. */
function checkTargetDigest(ctx: CopyContext, digest: string): void {
  const wanted = ctx.target.digest;
  if (wanted === undefined || wanted === digest) return;
  throw new RegistryError(
    "DIGEST_INVALID",
    `Cannot copy "${ctx.shown}" to "${formatReference(ctx.target)}": it is ${digest}`,
    { url: wanted, reason: `the image is ${digest}` },
  );
}

async function copyFrom(ctx: CopyContext): Promise<CopyResult> {
  const { from, source, target, shown } = ctx;
  const manifest = await from.manifests().get(source.digest ?? source.tag!);
  const digest = source.digest ?? await digestOf(manifest.payload);
  const tag = target.tag;
  if (!isIndexMediaType(manifest.mediaType)) {
    checkTargetDigest(ctx, digest);
    return await copyImage(ctx, manifest, digest, tag);
  }
  const selection = ctx.config.platform ?? hostPlatform();
  const one = selection !== "all" && !Array.isArray(selection);
  const entries = selectEntries(manifest, selection, shown);
  checkTargetDigest(ctx, one ? entries[0]!.digest : digest);
  const images: CopyResult[] = [];
  for (const entry of entries) {
    const child = await imageOfIndex(from, entry, "copy", shown);
    images.push(await copyImage(ctx, child, entry.digest, one ? tag : undefined));
  }
  if (one) return images[0]!;
  await ctx.to.manifests().put(manifest, tag === undefined ? {} : { tag });
  const layers = images.flatMap((image) => image.layers);
  return {
    mediaType: manifest.mediaType,
    digest,
    size: manifest.payload.length,
    layers,
    manifests: images,
  };
}

/** The configuration of one side: what the copy shares, and that side's own way in. */
function sideConfig(config: CopyConfig, side: CopySide = {}, heard: boolean): RegistryConfig {
  const { source: _, destination: __, onProgress, ...shared } = config;
  return {
    ...shared,
    ...side,
    // The source's byte events would repeat the destination's: only its retries are told.
    ...(onProgress === undefined ? {} : {
      onProgress: heard ? onProgress : (event) => {
        if (event.action === "retry") onProgress(event);
      },
    }),
  };
}

/**
 * Copies an image from one registry to another, as `skopeo copy docker://… docker://…` does:
 * nothing is written to disk. Each blob is first looked for at the destination (`HEAD`), then
 * mounted from the source repository when both are on one registry (and from repositories the
 * metadata knows for its DiffID, as push chooses them), and otherwise streamed from the
 * source's `GET` into the destination's upload, one read, up to the lower of
 * `maxConcurrentDownloads` (3) and `maxConcurrentUploads` (5) blobs at once, so 3 by default.
 * Its digest is checked as it passes and its last bytes held back until it matches, so the
 * destination never receives the whole of a blob that is not what its name says (the copy
 * fails with `DIGEST_INVALID` naming it). A cut download resumes with `Range` (or restarts);
 * a failed upload cancels its session and starts again in a new one, reading the source
 * again; within `config.retry`. Each layer's DiffID is computed from the bytes as they pass:
 * when it is the configuration's, the metadata records a pull from the source
 * (`tagAndAdd(diffID, source.hmacKey, {digest, sourceRepository: source repository})`) and a
 * push to the destination (the same under `destination.hmacKey` and its repository), in
 * manifest order; a layer mounted or found records the push only when the metadata already
 * knew its DiffID. Configurations and then manifests go up after all their blobs, their
 * bytes unchanged, so the destination's digest is the source's. An index gives one
 * platform's image (default: this machine's, {@linkcode hostPlatform}, tagged as that image), a list or `"all"` (each
 * image, then the index, tagged). `config.signal` stops everything and cancels the upload
 * sessions; `config.onProgress` hears each blob's bytes sent, mounts, blobs found, skips and
 * retries. Each side's credentials go to its own registry only.
 *
 * @param source The image to copy, e.g. `registry-a.example.com/team/app:1.0`.
 * @param destination Where to, e.g. `registry-b.example.com/team/app:1.0`.
 * @param config Each side's credentials and HMAC key, the metadata service, platforms,
 * concurrency, retries, chunk size, signal, progress.
 * @returns The descriptor of the manifest tagged at the destination, and each layer's fate.
 *
 * @example
 * ```ts ignore
 * import { computeV2MetadataHMACKey, FSMetadataStore, V2MetadataService } from "@distribution/metadata";
 * import { copy } from "@distribution/metadata/registry";
 *
 * const auth = { username: "ci", password: "secret" };
 * const copied = await copy("registry-a.example.com/app:1.0", "registry-b.example.com/app:1.0", {
 *   source: { hmacKey: await computeV2MetadataHMACKey({}) },
 *   destination: { auth, hmacKey: await computeV2MetadataHMACKey(auth) },
 *   metadataService: new V2MetadataService(await FSMetadataStore.open("/tmp/dist")),
 *   onProgress: (event) => console.log(event.action, event.digest, event.current, event.total),
 * });
 * console.log(copied.digest, copied.layers.map((layer) => layer.transfer));
 * ```
 */
export async function copy(
  source: string,
  destination: string,
  config: CopyConfig = {},
): Promise<CopyResult> {
  const parsedSource = parseReference(source);
  const target = parseReference(destination);
  checkRepositoryName(target);
  // Each side's credentials, from its own keychain when not given, for its own registry.
  config = {
    ...config,
    source: await withCredentials(parsedSource.domain, config.source ?? {}),
    destination: await withCredentials(target.domain, config.destination ?? {}),
  };
  const targetConfig = sideConfig(config, config.destination, true);
  const to = await openRepository(
    target,
    endpointsFor(target, targetConfig, true)[0]!,
    targetConfig,
    [
      "pull",
      "push",
    ],
  );
  const repositories = await getRepositories(source, sideConfig(config, config.source, false));
  const concurrency = Math.min(
    config.maxConcurrentDownloads ?? DEFAULT_CONCURRENT_DOWNLOADS,
    config.maxConcurrentUploads ?? DEFAULT_CONCURRENT_UPLOADS,
  );
  return await fromFirstEndpoint(repositories, (from) =>
    copyFrom({
      from,
      to,
      source: parsedSource,
      target,
      shown: formatReference(parsedSource),
      config,
      service: config.metadataService ?? new V2MetadataService(null),
      sourceKey: config.source?.hmacKey ?? null,
      targetKey: config.destination?.hmacKey ?? null,
      targetHasAuthInfo: hasAuthInfo(targetConfig.auth),
      slots: limiter(concurrency),
      copying: new Map(),
      rate: new UploadRate(),
    }));
}
