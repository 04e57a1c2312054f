// One blob's upload under an upload claim in the shared metadata store (issue 27): the first
// builder to claim "<registry>/<digest>" uploads; the others wait for its claim to end, then
// take the blob from the repository it went to (a mount, or found there), and upload it
// themselves only when it is not there (the holder failed, or died and its claim ran out) or
// when waiting would take longer than uploading it would.
import type { Claim, UploadClaims } from "../upload_claims.ts";
import { isRegistryError } from "./errors.ts";
import { parseReference, type Reference } from "./reference.ts";
import { sleep } from "./transport/retry.ts";
import type { BlobService, BlobWriter, RegistryConfig } from "./types.ts";

/** How long a claim lives unless renewed (`RegistryConfig.claimTtlMs`); renewed every third. */
export const DEFAULT_CLAIM_TTL_MS = 10_000;
/**
 * The longest a push waits for another's upload. Within it, a wait lasts as long as
 * uploading the layer itself would take at the rate this push's uploads reached so far, but
 * at least one claim lifetime: a holder is not given up sooner than a crashed one would be.
 */
export const CLAIM_WAIT_CAP_MS = 60_000;
/** The longest pause between two looks at a claim being waited for. */
const MAX_POLL_MS = 100;

/**
 * How long a claim marked done stays, in milliseconds: longer than any builder takes from
 * reading the metadata (which the holder recorded before marking) to claiming.
 */
export const DONE_TTL_MS = 60_000;

/** What the holder of a claim tells waiters. */
interface ClaimNote {
  /** The full name of the repository the blob is uploaded into. */
  repository: string;
  /** Set once the upload completed: the blob is in `repository`. */
  done?: true;
}

/** The upload rate measured so far: completed uploads' bytes over the time they took. */
export class UploadRate {
  #bytes = 0;
  #ms = 0;

  /** Counts one completed upload of `bytes` that took `ms` milliseconds. */
  record(bytes: number, ms: number): void {
    this.#bytes += bytes;
    this.#ms += Math.max(ms, 1);
  }

  /** Milliseconds `bytes` would take at the rate so far; `undefined` before any upload. */
  timeFor(bytes: number): number | undefined {
    return this.#bytes === 0 ? undefined : bytes * this.#ms / this.#bytes;
  }
}

/** What {@linkcode uploadOnce} needs to know about the blob and how to move it. */
export interface ClaimedUpload<T> {
  /** The store's claims; without them the blob is simply uploaded. */
  claims: UploadClaims | undefined;
  /** The repository it is uploaded into (the claim is for its registry). */
  target: Reference;
  /** The call's claim lifetime and signal. */
  config: Pick<RegistryConfig, "claimTtlMs" | "signal">;
  /** Stops a wait too (another blob failed). */
  stop: AbortSignal;
  /** The blob's digest. */
  digest: string;
  /** Its size in bytes. */
  size: number;
  /** The upload rate measured so far, which bounds a wait and which the upload adds to. */
  rate: UploadRate;
  /**
   * A session a mount attempt opened, which `upload` goes on in: cancelled when the blob is
   * adopted instead, or when waiting fails.
   */
  session: BlobWriter | null;
  /**
   * After another's claim ended: the blob taken from `repository`, where the holder put it
   * (a mount, or an existence check when it is the target), or `null` when it is not there.
   */
  adopt(repository: string): Promise<T | null>;
  /** Uploads the blob. */
  upload(): Promise<T>;
}

/**
 * Uploads a blob once per registry across every builder sharing the claims: claims it, and
 * uploads while renewing the claim, or waits for the holder's claim to end and adopts the
 * blob the holder put. A holder that uploaded marks its claim done (kept for
 * {@linkcode DONE_TTL_MS}, so that a builder that looked at the metadata before the upload
 * ended and claims after it still adopts it); one that failed releases it at once, so a
 * waiter claims and uploads. A claim the store fails to make or read never stops the push: it
 * uploads.
 *
 * @returns What the upload or the adoption gave, and whether another's claim was waited for.
 */
export async function uploadOnce<T>(blob: ClaimedUpload<T>): Promise<{
  result: T;
  waited: boolean;
}> {
  let outcome: { result: T; waited: boolean; uploaded: boolean };
  try {
    outcome = await claimedUpload(blob);
  } catch (error) {
    await blob.session?.cancel().catch(() => {});
    throw error;
  }
  // Taken from where another builder put it: the session a mount opened is not needed.
  if (!outcome.uploaded) await blob.session?.cancel().catch(() => {});
  return { result: outcome.result, waited: outcome.waited };
}

async function claimedUpload<T>(
  blob: ClaimedUpload<T>,
): Promise<{ result: T; waited: boolean; uploaded: boolean }> {
  const uploaded = async (waited: boolean) => ({
    result: await timedUpload(blob),
    waited,
    uploaded: true,
  });
  const { claims, target, config, stop } = blob;
  if (claims === undefined) return await uploaded(false);
  const key = `${target.domain}/${blob.digest.replace(":", "/")}`;
  const held: Holding = {
    key,
    ttlMs: config.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS,
    signal: config.signal ? AbortSignal.any([stop, config.signal]) : stop,
  };
  let waited = false;
  for (;;) {
    const mine: Claim = { owner: crypto.randomUUID(), note: noteOf(target.name, false) };
    let holder: Claim | null;
    try {
      holder = await claims.claim(key, mine, held.ttlMs);
    } catch {
      return await uploaded(waited);
    }
    if (holder === null) {
      return { result: await holding(claims, held, mine, blob), waited, uploaded: true };
    }
    if (!parseNote(holder)?.done) {
      // Each holder is waited for as long as uploading the blob would take: one that took
      // over from a dead holder started its upload only now.
      waited = true;
      const ended = await waitWhileHeld(claims, held, holder, Date.now(), blob);
      if (ended === TIMED_OUT) return await uploaded(waited);
      // Released after a failure, run out, or taken over: claim it (again) or wait on.
      if (ended === null || !parseNote(ended)?.done) continue;
      holder = ended;
    }
    const repository = parseNote(holder)?.repository;
    const adopted = repository === undefined ? null : await blob.adopt(repository);
    if (adopted !== null) return { result: adopted, waited, uploaded: false };
    // Done, yet not there (deleted since?): nobody else is uploading it, so upload.
    return await uploaded(waited);
  }
}

/** The claim's key, lifetime, and what stops a wait. */
interface Holding {
  key: string;
  ttlMs: number;
  signal: AbortSignal;
}

/** The upload, counted into the rate. */
async function timedUpload<T>(blob: ClaimedUpload<T>): Promise<T> {
  const start = Date.now();
  const result = await blob.upload();
  blob.rate.record(blob.size, Date.now() - start);
  return result;
}

/**
 * The upload while holding the claim, renewed every third of its life: marked done after, or
 * released at once when the upload failed.
 */
async function holding<T>(
  claims: UploadClaims,
  { key, ttlMs }: Holding,
  mine: Claim,
  blob: ClaimedUpload<T>,
): Promise<T> {
  const renewing = setInterval(() => {
    claims.renew(key, mine, ttlMs).then(
      // Lost (it ran out while this process stalled): take it again if it is free.
      (renewed) => renewed ? undefined : claims.claim(key, mine, ttlMs),
    ).catch(() => {});
  }, ttlMs / 3);
  let result: T;
  try {
    result = await timedUpload(blob);
  } catch (error) {
    clearInterval(renewing);
    await claims.release(key, mine.owner).catch(() => {});
    throw error;
  }
  clearInterval(renewing);
  const done = { owner: mine.owner, note: noteOf(blob.target.name, true) };
  await claims.renew(key, done, DONE_TTL_MS).catch(() => {});
  return result;
}

/** What {@linkcode waitWhileHeld} gives when waiting took as long as uploading would. */
const TIMED_OUT = Symbol("timed out");

/**
 * Waits until the holder's claim ends: then the claim on the key (`null` when none, another
 * owner's, or the holder's marked done). Or until waiting has taken as long as uploading the
 * blob would at the rate measured so far, within one claim lifetime and the cap, or the
 * store cannot be read: then {@linkcode TIMED_OUT}.
 */
async function waitWhileHeld<T>(
  claims: UploadClaims,
  { key, ttlMs, signal }: Holding,
  holder: Claim,
  waitStart: number,
  blob: ClaimedUpload<T>,
): Promise<Claim | null | typeof TIMED_OUT> {
  for (let delay = 5;; delay = Math.min(delay * 2, MAX_POLL_MS, ttlMs / 4)) {
    const upload = blob.rate.timeFor(blob.size) ?? CLAIM_WAIT_CAP_MS;
    const bound = Math.min(CLAIM_WAIT_CAP_MS, Math.max(ttlMs, upload));
    const left = waitStart + bound - Date.now();
    if (left <= 0) return TIMED_OUT;
    await sleep(Math.min(delay, left), signal);
    let current: Claim | null;
    try {
      current = await claims.get(key);
    } catch {
      return TIMED_OUT;
    }
    if (current === null || current.owner !== holder.owner) return current;
    if (parseNote(current)?.done) return current;
  }
}

function noteOf(repository: string, done: boolean): string {
  const note: ClaimNote = done ? { repository, done } : { repository };
  return JSON.stringify(note);
}

/** A claim's note, or `undefined` when it is not push's. */
function parseNote(claim: Claim): ClaimNote | undefined {
  try {
    const note = JSON.parse(claim.note) as Partial<ClaimNote>;
    if (typeof note.repository !== "string") return undefined;
    return { repository: note.repository, ...(note.done === true ? { done: true } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * After another builder's upload: the blob from the repository it went to, by an existence
 * check when that is `target` itself, else by a mount; `null` when it is not there (that
 * upload failed) or the note names no repository.
 *
 * @returns How the blob was taken, and the repository's full name.
 */
export async function takeFrom(
  blobs: BlobService,
  target: Reference,
  digest: string,
  repository: string,
): Promise<{ transfer: "exists" | "mounted"; from: string } | null> {
  let source: Reference;
  try {
    source = parseReference(repository, { defaultTag: false });
  } catch {
    return null;
  }
  // A repository of another registry cannot be mounted from (a note no push writes).
  if (source.domain !== target.domain) return null;
  try {
    if (source.name === target.name) {
      await blobs.stat(digest);
      return { transfer: "exists", from: source.name };
    }
    const created = await blobs.create({ mountFrom: { repository: source.path, digest } });
    if (created.kind === "mounted") return { transfer: "mounted", from: source.name };
    await created.writer.cancel().catch(() => {});
    return null;
  } catch (error) {
    // A registry that answers for another digest than the one asked is not believed further.
    if (isRegistryError(error, "DIGEST_INVALID", "ABORTED")) throw error;
    return null;
  }
}
