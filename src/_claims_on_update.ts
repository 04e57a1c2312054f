// Upload claims on any atomic read-modify-write of one key that the store keeps out of its
// listings (Deno KV, Durable Objects, the directory store with lock: true). A claim is a small
// JSON record with its owner and the time it runs out; Redis has claims of its own
// (_redis_claims.ts), timed out by the server.
import { TEMP_PREFIX } from "./_keys.ts";
import type { Claim, UploadClaims } from "./upload_claims.ts";

/**
 * Where claims live, beside the metadata: a name that starts like a temp file's, which no
 * namespace may (keys with a `.tmp-` segment are `EINVAL`), so no listing, `copy-store` or
 * dockerd lookup ever meets one.
 */
export const CLAIMS = `${TEMP_PREFIX}claims`;

/** An atomic read-modify-write of the record at a claim key (`null`: absent / delete). */
export type ClaimUpdate = (
  key: string,
  fn: (old: Uint8Array | null) => Uint8Array | null,
) => Promise<void>;

/** Reads the record at a claim key (`null` when absent). */
export type ClaimRead = (key: string) => Promise<Uint8Array | null>;

interface ClaimRecord extends Claim {
  /** When it runs out, in milliseconds since the epoch (the clock of whoever wrote it). */
  expires: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The record's claim; an unreadable record holds none. */
function parse(bytes: Uint8Array | null): ClaimRecord | null {
  if (bytes === null) return null;
  try {
    const record = JSON.parse(decoder.decode(bytes)) as Partial<ClaimRecord>;
    if (
      typeof record.owner !== "string" || typeof record.note !== "string" ||
      typeof record.expires !== "number"
    ) return null;
    return record as ClaimRecord;
  } catch {
    return null;
  }
}

/** The record's claim, if it has not run out. */
function live(bytes: Uint8Array | null): ClaimRecord | null {
  const record = parse(bytes);
  return record !== null && record.expires > Date.now() ? record : null;
}

function recordOf(claim: Claim, ttlMs: number): Uint8Array {
  const { owner, note } = claim;
  return encoder.encode(JSON.stringify({ owner, note, expires: Date.now() + ttlMs }));
}

/**
 * {@linkcode UploadClaims} over a store's atomic update of hidden keys: a claim is taken,
 * renewed or released only if the record read is still there when it is written.
 */
export function claimsOnUpdate(update: ClaimUpdate, read: ClaimRead): UploadClaims {
  return {
    async claim(key, claim, ttlMs) {
      let holder: ClaimRecord | null = null;
      await update(key, (old) => {
        holder = live(old);
        if (holder !== null && holder.owner !== claim.owner) return old;
        holder = null;
        return recordOf(claim, ttlMs);
      });
      const found = holder as ClaimRecord | null;
      return found === null ? null : { owner: found.owner, note: found.note };
    },
    async renew(key, claim, ttlMs) {
      let renewed = false;
      await update(key, (old) => {
        renewed = live(old)?.owner === claim.owner;
        return renewed ? recordOf(claim, ttlMs) : old;
      });
      return renewed;
    },
    async release(key, owner) {
      // The owner's record goes even when it ran out, so that none is left behind.
      await update(key, (old) => parse(old)?.owner === owner ? null : old);
    },
    async get(key) {
      const record = live(await read(key));
      return record === null ? null : { owner: record.owner, note: record.note };
    },
  };
}
