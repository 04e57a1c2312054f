/**
 * `copy`: an image from one registry straight to another (or to another repository of the
 * same one), as skopeo copies it: each blob streams from the source's `GET` into the
 * destination's upload, verified as it passes, with nothing written to disk; the metadata is
 * recorded as dockerd records a pull from the source and a push to the destination.
 *
 * @module
 */
import type { AuthConfig } from "../hmac.ts";
import { isDigest } from "./_digest.ts";
import { type DiffIDSink, diffIDSink, feeding } from "./_diff_id.ts";
import { configFrom, imageParts, isForeign, knownDiffID } from "./_image.ts";
import { DEFAULT_CONCURRENT_DOWNLOADS, DEFAULT_CONCURRENT_UPLOADS, limiter } from "./_limit.ts";
import { isRegistryError, RegistryError } from "./errors.ts";
import { attemptBudget, mountCandidates } from "./push_candidates.ts";
import { eachImage } from "./transfer/each_image.ts";
import { inManifestOrder, type InSlot } from "./transfer/in_manifest_order.ts";
import {
  mountFrom,
  type MountSource,
  openRegistryDestination,
  type RegistryDestination,
  uploadClaimed,
} from "./ends/registry_destination.ts";
import { proven, recordLayer } from "./transfer/proven.ts";
import { told } from "./transfer/told.ts";
import { type Keychain, withCredentials } from "./keychain.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import { checkRepositoryName, fromFirstEndpoint, getRepositories } from "./repositories.ts";
import type { TlsOptions } from "./transport/default_transport.ts";
import type { Descriptor, Manifest, PulledLayer, RegistryConfig, Repository } from "./types.ts";

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
  source: Reference;
  shown: string;
  config: CopyConfig;
  sourceKey: Uint8Array | null;
  to: RegistryDestination;
  /** Runs at most the concurrency's blob copies at once. */
  slots: <T>(task: () => Promise<T>) => Promise<T>;
  /** Digest → its copy under way or done (one per digest, however many images name it). */
  copying: Map<string, Promise<Placed>>;
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
  const { digest } = blob;
  const sameRegistry = ctx.from.endpoint === ctx.to.repo.endpoint;
  const sources: MountSource[] = sameRegistry
    ? [{ repository: ctx.source.name, digest, entry: null }]
    : [];
  if (diffID !== null && isDigest(diffID)) {
    const entries = await ctx.to.service.getMetadata(diffID).catch(() => []);
    const budget = attemptBudget(blob.size);
    const paths = new Set(sameRegistry ? [ctx.source.path] : []);
    const candidates = await mountCandidates(ctx.to.target, ctx.to.hmacKey, -1, entries);
    for (const entry of candidates.filter((c) => c.digest === digest)) {
      const repository = parseReference(entry.sourceRepository, { defaultTag: false });
      if (paths.has(repository.path)) continue;
      paths.add(repository.path);
      sources.push({ repository: repository.name, digest, entry });
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
  const onProgress = ctx.config.onProgress;
  try {
    await ctx.to.repo.blobs().stat(digest);
    told(onProgress, "exists", blob);
    return { transfer: "exists" };
  } catch (error) {
    if (!isRegistryError(error, "BLOB_UNKNOWN")) throw error;
  }
  const mounts = await mountFrom(ctx.to, await mountSources(ctx, blob, diffID));
  if (mounts.mounted !== null) {
    const from = mounts.mounted.repository;
    told(onProgress, "mount", blob, from);
    return { transfer: "mounted", from };
  }
  const { session } = mounts;
  if (stop.aborted) {
    // Another blob failed meanwhile: a session a mount opened is not left behind.
    if (session !== null) await session.cancel().catch(() => {});
    stop.throwIfAborted();
  }
  let sink: DiffIDSink | null = null;
  // Each attempt reads the source again from its start, into a fresh DiffID.
  const reading = async () => {
    sink?.abort();
    sink = diffID === null ? null : diffIDSink();
    return feeding(await open(), sink, stop);
  };
  try {
    // A layer goes up under an upload claim, as push's do (the configuration needs none).
    const { result, waited } = await uploadClaimed(
      ctx.to,
      { digest, size, open: reading },
      session,
      stop,
      diffID !== null,
      async (how): Promise<Placed> =>
        how.transfer === "uploaded"
          ? { transfer: "copied", actual: await (sink as DiffIDSink | null)?.close() ?? null }
          : how.transfer === "mounted"
          ? how
          : { transfer: "exists" },
    );
    return waited ? { ...result, waited } : result;
  } catch (error) {
    (sink as DiffIDSink | null)?.abort();
    throw error;
  }
}

/** A blob of the source onto the destination, once per digest for the whole copy. */
function copyBlob(
  ctx: CopyContext,
  blob: Descriptor,
  diffID: string | null,
  inSlot: InSlot,
): Promise<Placed> {
  let copying = ctx.copying.get(blob.digest);
  if (copying === undefined) {
    // The source's bytes, checked as they pass; the last bytes are held back until they
    // match their digest, so the destination never receives all of a blob that does not.
    const open = () => ctx.from.blobs().open(blob.digest, { maxBytes: blob.size });
    copying = inSlot((stop) => placeBlob(ctx, blob, open, diffID, stop));
    ctx.copying.set(blob.digest, copying);
  }
  return copying;
}

/**
 * What a placed layer proves, and its metadata: a pull from the source (when its bytes gave
 * the configuration's DiffID) and a push to the destination, each under that side's HMAC key.
 */
async function settleLayer(
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
  if (placed.actual !== undefined) {
    const verdict = proven(diffID, placed.actual);
    if (verdict.status !== "recorded") return { ...outcome, ...verdict };
    await recordLayer(ctx.to.service, ctx.sourceKey, diffID, digest, ctx.from.name);
  } else if (!isDigest(diffID)) return { ...outcome, status: "invalid" };
  else if (await knownDiffID(ctx.to.service, digest) !== diffID) {
    // No byte passed: record the push only for a DiffID the metadata already proved.
    return { ...outcome, status: "unchecked" };
  }
  await recordLayer(ctx.to.service, ctx.to.hmacKey, diffID, digest, ctx.to.target.name);
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
  const { config, configBytes, layers } = await imageParts(
    manifest,
    configFrom(ctx.from),
    ctx.shown,
  );
  const stop = new AbortController();
  const results = await inManifestOrder(
    layers,
    ctx.slots,
    ({ layer, diffID }, inSlot) => {
      if (!isForeign(layer)) return copyBlob(ctx, layer, diffID, inSlot);
      told(ctx.config.onProgress, "skip", layer);
      return Promise.resolve(null);
    },
    ({ layer, diffID }, placed): CopiedLayer | Promise<CopiedLayer> =>
      placed === null
        ? { digest: layer.digest, diffID, transfer: "foreign", status: "foreign" }
        : settleLayer(ctx, layer, diffID, placed),
    stop,
  );
  const stream = () =>
    Promise.resolve(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(configBytes);
          controller.close();
        },
      }),
    );
  await placeBlob(ctx, { ...config, size: configBytes.length }, stream, null, stop.signal);
  await ctx.to.repo.manifests().put(manifest, tag === undefined ? {} : { tag });
  return { mediaType: manifest.mediaType, digest, size: manifest.payload.length, layers: results };
}

/** A destination named by digest must be what the copy tags: refused before anything moves. */
function checkTargetDigest(ctx: CopyContext, digest: string): void {
  const wanted = ctx.to.target.digest;
  if (wanted === undefined || wanted === digest) return;
  throw new RegistryError(
    "DIGEST_INVALID",
    `Cannot copy "${ctx.shown}" to "${formatReference(ctx.to.target)}": it is ${digest}`,
    { url: wanted, reason: `the image is ${digest}` },
  );
}

async function copyFrom(ctx: CopyContext): Promise<CopyResult> {
  const tag = ctx.to.target.tag;
  return await eachImage(ctx.from, ctx.source, ctx.config.platform, "copy", {
    named: (digest) => checkTargetDigest(ctx, digest),
    image: (manifest, digest, named) => copyImage(ctx, manifest, digest, named ? tag : undefined),
    // One platform's image is the name: the index does not go.
    async index(manifest, _, named) {
      if (named) await ctx.to.repo.manifests().put(manifest, tag === undefined ? {} : { tag });
    },
  });
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
  const to = await openRegistryDestination(target, sideConfig(config, config.destination, true));
  const repositories = await getRepositories(source, sideConfig(config, config.source, false));
  const concurrency = Math.min(
    config.maxConcurrentDownloads ?? DEFAULT_CONCURRENT_DOWNLOADS,
    config.maxConcurrentUploads ?? DEFAULT_CONCURRENT_UPLOADS,
  );
  return await fromFirstEndpoint(repositories, (from) =>
    copyFrom({
      from,
      source: parsedSource,
      shown: formatReference(parsedSource),
      config,
      sourceKey: config.source?.hmacKey ?? null,
      to,
      slots: limiter(concurrency),
      copying: new Map(),
    }));
}
