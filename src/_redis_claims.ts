// Upload claims on Redis: a claim is the string `<owner>\n<note>` under
// `<prefix>.tmp-claims/<key>`, timed out by the server (PX), so a crashed holder's claim
// vanishes by itself. Taking, renewing and releasing compare the owner in a Lua script, which
// the server runs atomically.
import { CLAIMS } from "./_claims_on_update.ts";
import { MetadataError } from "./errors.ts";
import type { Claim, UploadClaims } from "./upload_claims.ts";

/** Sends one command for `action` on the claim at `path`, as the store sends its own. */
export type ClaimSend = (action: string, path: string, args: string[]) => Promise<unknown>;

/** Takes the key unless another owner (ARGV[1] is "<owner>\n") holds it: then its claim. */
const TAKE = `local held = redis.call("GET", KEYS[1])
if held and string.sub(held, 1, #ARGV[1]) ~= ARGV[1] then return held end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return false`;

/** Rewrites the owner's claim with a new expiry; 0 when the key is not the owner's. */
const RENEW = `local held = redis.call("GET", KEYS[1])
if not held or string.sub(held, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return 1`;

/** Deletes the owner's claim, and nobody else's. */
const RELEASE = `local held = redis.call("GET", KEYS[1])
if held and string.sub(held, 1, #ARGV[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
return 0`;

const decoder = new TextDecoder();

function ownerPrefix(owner: string): string {
  if (owner.length === 0 || owner.includes("\n")) {
    throw new MetadataError(
      "EINVAL",
      `Cannot claim for owner "${owner}": it is empty or has a newline`,
    );
  }
  return owner + "\n";
}

function claimOf(reply: unknown): Claim | null {
  if (!(reply instanceof Uint8Array)) return null;
  const text = decoder.decode(reply);
  const newline = text.indexOf("\n");
  // A value without a newline is held by somebody all the same.
  if (newline < 0) return { owner: text, note: "" };
  return { owner: text.slice(0, newline), note: text.slice(newline + 1) };
}

/** {@linkcode UploadClaims} on the Redis store's connection, under `prefix`. */
export function redisClaims(send: ClaimSend, prefix: string): UploadClaims {
  const pathOf = (key: string) => `${prefix}${CLAIMS}/${key}`;
  /** Runs TAKE or RENEW: both write the owner's claim with a new expiry. */
  const write = (action: string, script: string, key: string, claim: Claim, ttlMs: number) => {
    const owner = ownerPrefix(claim.owner);
    const path = pathOf(key);
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    return send(action, path, ["EVAL", script, "1", path, owner, owner + claim.note, ttl]);
  };
  return {
    claim: async (key, claim, ttlMs) => claimOf(await write("claim", TAKE, key, claim, ttlMs)),
    renew: async (key, claim, ttlMs) => await write("renew", RENEW, key, claim, ttlMs) === 1,
    async release(key, owner) {
      const path = pathOf(key);
      await send("release", path, ["EVAL", RELEASE, "1", path, ownerPrefix(owner)]);
    },
    async get(key) {
      const path = pathOf(key);
      return claimOf(await send("get claim", path, ["GET", path]));
    },
  };
}
