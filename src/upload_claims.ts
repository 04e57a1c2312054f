/**
 * Upload claims: how builders sharing one metadata store tell each other "I am uploading
 * this blob to this registry right now", so that a fleet starting together uploads each
 * layer once. A store that can create a key atomically (Redis, Deno KV, a Durable Object,
 * the directory store with `lock: true`) offers them as {@linkcode MetadataStore.claims};
 * `push` and `copy` use them when present.
 *
 * @module
 */

/** A claim as a store keeps it: who holds it, and what the holder tells those who wait. */
export interface Claim {
  /** Who holds the claim: an id of the uploader's own (no newline). */
  owner: string;
  /** What the holder tells waiters, opaque to the store (push's JSON: the repository). */
  note: string;
}

/**
 * Claims on keys, each held by one owner until it is released or its time runs out. Claims
 * are not metadata: they never show in {@linkcode MetadataStore.keys} or `copy-store`.
 * A claim whose time ran out counts as absent, so a crashed holder's claim is taken over.
 *
 * @example Upload once, even when several processes want to
 * ```ts ignore
 * const claims = store.claims;
 * const mine = { owner: crypto.randomUUID(), note: "registry.example.com/team/app" };
 * const holder = await claims.claim("registry.example.com/sha256/…", mine, 10_000);
 * if (holder === null) {
 *   // upload, calling claims.renew(key, mine, 10_000) every few seconds, then:
 *   await claims.release("registry.example.com/sha256/…", mine.owner);
 * } // else: wait until claims.get(key) is null, then mount from holder.note
 * ```
 */
export interface UploadClaims {
  /**
   * Takes `key` for `claim.owner` for `ttlMs` milliseconds, unless another owner holds it
   * and its time has not run out: atomic, so of many callers exactly one gets it. A claim
   * the owner already holds is renewed.
   *
   * @param key What is claimed, e.g. `<registry>/sha256/<hex>`.
   * @param claim The owner and its note.
   * @param ttlMs How long the claim lives unless renewed.
   * @returns `null` when the claim is now the caller's, else the live claim of its holder.
   */
  claim(key: string, claim: Claim, ttlMs: number): Promise<Claim | null>;
  /**
   * Gives the owner's claim `ttlMs` more from now, with a new note.
   *
   * @param key What is claimed.
   * @param claim The owner and its note.
   * @param ttlMs How long the claim lives from now unless renewed again.
   * @returns `false` when the claim is no longer the owner's (released, or run out).
   */
  renew(key: string, claim: Claim, ttlMs: number): Promise<boolean>;
  /**
   * Removes the owner's claim; nothing happens when another owner holds the key or none.
   *
   * @param key What is claimed.
   * @param owner The owner.
   */
  release(key: string, owner: string): Promise<void>;
  /**
   * The live claim on a key.
   *
   * @param key What is claimed.
   * @returns The claim, or `null` when none holds (released, run out, never made).
   */
  get(key: string): Promise<Claim | null>;
}
