/**
 * The selection logic of dockerd's push (distribution/push_v2.go): attempt budgets by layer
 * size, the order of metadata entries by credentials, path likeness and age, and mount
 * candidates. Shared by {@linkcode push} and the CLI's `check`, which shows the same order.
 *
 * @module
 */
import { type AuthConfig, checkV2MetadataHMAC } from "../hmac.ts";
import type { V2Metadata } from "../v2_metadata_service.ts";
import { isRegistryError } from "./errors.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import { isRetryable } from "./transport/retry.ts";

/** Layers up to this size get 1 mount attempt and 1 existence check. */
const SMALL_LAYER_MAXIMUM_SIZE = 100 * 1024;
/** Layers up to this size get 3 mount attempts and 1 existence check. */
const MIDDLE_LAYER_MAXIMUM_SIZE = 10 * 1024 * 1024;

/** How hard to look for a layer before uploading it. */
export interface AttemptBudget {
  maxMountAttempts: number;
  maxExistenceChecks: number;
  checkOtherRepositories: boolean;
}

/** dockerd's getMaxMountAndExistenceCheckAttempts: 1/1, 3/1, 4/3 (+ other repositories). */
export function attemptBudget(size: number | undefined): AttemptBudget {
  if (size !== undefined && size > MIDDLE_LAYER_MAXIMUM_SIZE) {
    return { maxMountAttempts: 4, maxExistenceChecks: 3, checkOtherRepositories: true };
  }
  if (size === undefined || !Number.isFinite(size) || size > SMALL_LAYER_MAXIMUM_SIZE) {
    return { maxMountAttempts: 3, maxExistenceChecks: 1, checkOtherRepositories: false };
  }
  return { maxMountAttempts: 1, maxExistenceChecks: 1, checkOtherRepositories: false };
}

/**
 * dockerd's numOfMatchingPathComponents: how many leading `/`-separated components of `path`
 * equal those of `target`.
 */
function matchingPathComponents(path: string, target: string[]): number {
  const components = path.split("/");
  let i = 0;
  for (; i < components.length && i < target.length; i++) {
    if (components[i] !== target[i]) return i;
  }
  return i;
}

/**
 * dockerd's sortV2MetadataByLikenessAndAge on a copy: youngest first (the list's end), then
 * stably: entries whose HMAC checks against `hmacKey` first, then more leading path components
 * equal to `targetName` first.
 */
export async function sortByLikenessAndAge(
  targetName: string,
  hmacKey: Uint8Array | null,
  entries: readonly V2Metadata[],
): Promise<V2Metadata[]> {
  const checked = await Promise.all(entries.map(async (entry) => ({
    entry,
    hmacMatches: await checkV2MetadataHMAC(entry, hmacKey),
  })));
  return orderByLikenessAndAge(targetName, checked).map((item) => item.entry);
}

/** {@linkcode sortByLikenessAndAge}'s order, for entries whose HMAC check is already known. */
export function orderByLikenessAndAge<T extends { entry: V2Metadata; hmacMatches: boolean }>(
  targetName: string,
  checked: readonly T[],
): T[] {
  const target = targetName.split("/");
  const keyed = [...checked].reverse().map((item) => ({
    item,
    match: matchingPathComponents(item.entry.sourceRepository, target),
  }));
  // Array.prototype.sort is stable, as Go's sort.Stable.
  keyed.sort((a, b) =>
    a.item.hmacMatches !== b.item.hmacMatches ? (a.item.hmacMatches ? -1 : 1) : b.match - a.match
  );
  return keyed.map((k) => k.item);
}

/** Go's reference.ParseNamed: a canonical name (no normalisation applied), else null. */
function parseCanonicalName(name: string): Reference | null {
  try {
    const ref = parseReference(name, { defaultTag: false });
    return formatReference(ref) === name ? ref : null;
  } catch {
    return null;
  }
}

/**
 * dockerd's getRepositoryMountCandidates: entries on the target's registry, not the target
 * repository itself, sorted by likeness and age, at most `max`.
 */
export async function mountCandidates(
  target: Reference,
  hmacKey: Uint8Array | null,
  max: number,
  entries: readonly V2Metadata[],
): Promise<V2Metadata[]> {
  const candidates = entries.filter((entry) => {
    const source = parseCanonicalName(entry.sourceRepository);
    return source !== null && source.domain === target.domain &&
      entry.sourceRepository !== target.name;
  });
  const sorted = await sortByLikenessAndAge(target.name, hmacKey, candidates);
  return max >= 0 ? sorted.slice(0, max) : sorted;
}

/** dockerd's test for credentials to send: a registry token, or a username with a password. */
export function hasAuthInfo(auth: AuthConfig | undefined): boolean {
  return !!auth?.registrytoken || (!!auth?.username && !!auth?.password);
}

/**
 * Whether a failed mount ends the blob's transfer instead of moving on to the next candidate:
 * an answer for another digest than the one asked (the registry is not believed further), an
 * abort, or a failure the retry policy gave up on (the registry is not answering: each further
 * candidate would spend as many attempts again, and forget an entry that may well be good).
 */
export function mountFailureEnds(error: unknown): boolean {
  return isRegistryError(error, "DIGEST_INVALID", "ABORTED") || isRetryable(error);
}

/**
 * Whether a failed mount from `candidate` forgets it, as dockerd's push decides: the entry names
 * a repository, was made with these credentials (or with none), and the registry did not merely
 * ask for credentials the client has not got (`unauthorized` without `hasAuthInfo`).
 */
export async function forgetsFailedMount(
  candidate: V2Metadata,
  hmacKey: Uint8Array | null,
  unauthorized: boolean,
  hasAuthInfo: boolean,
): Promise<boolean> {
  return candidate.sourceRepository.length > 0 && !(unauthorized && !hasAuthInfo) &&
    (candidate.hmac.length === 0 || await checkV2MetadataHMAC(candidate, hmacKey));
}
