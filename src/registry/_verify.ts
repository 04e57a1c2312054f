// Checks content while it streams: a blob's digest as its bytes pass. Incremental hashing uses the
// runtime's node:crypto when it has one (Deno, Bun, Node, workerd with nodejs_compat), found at
// run time so this file loads anywhere, and the pure-JS SHA-256 otherwise.
import { concat } from "./transport/limits.ts";
import { digestMismatch, verifyDigest } from "./_digest.ts";
import { RegistryError } from "./errors.ts";
import { Sha256 } from "./_sha256.ts";
import { ReadTarget, type Relayed, relaySource, relayStream } from "../_relay.ts";
import { nodeBuiltin } from "../_runtime.ts";

interface Hasher {
  update(chunk: Uint8Array): void;
  hex(): string;
}

interface NodeCrypto {
  createHash(algorithm: string): {
    update(data: Uint8Array): unknown;
    digest(encoding: "hex"): string;
  };
}

const nodeCrypto = nodeBuiltin<NodeCrypto>("node:crypto", "createHash");

/** An incremental hasher for `algorithm`, or `null` when none is at hand (then hash whole). */
export function createHasher(algorithm: string): Hasher | null {
  if (nodeCrypto !== null && /^sha(256|384|512)$/.test(algorithm)) {
    const hash = nodeCrypto.createHash(algorithm);
    return { update: (chunk) => void hash.update(chunk), hex: () => hash.digest("hex") };
  }
  if (algorithm !== "sha256") return null;
  const hash = new Sha256();
  return { update: (chunk) => void hash.update(chunk), hex: () => hash.hex() };
}

/** Whether digests are hashed by the runtime's node:crypto (else by the pure-JS SHA-256). */
export const NATIVE_HASH: boolean = nodeCrypto !== null;

/**
 * `source`, hashed as it passes: it errors with `DIGEST_INVALID` at the end when it does not
 * hash to `digest`, or with `TOO_LARGE` as soon as more than `maxBytes` pass. It holds back the
 * latest bytes until the next ones (or the check) let them go, so a reader never has the whole
 * of a blob that fails the check: a file written from it is incomplete, an upload of it never
 * ends. A byte stream when `source` is one (see `_relay.ts`).
 */
export function verifying(
  source: ReadableStream<Uint8Array>,
  digest: string,
  what: string,
  maxBytes = Infinity,
): ReadableStream<Uint8Array> {
  return checking(source, digest, what, maxBytes, null);
}

/**
 * {@linkcode verifying} for bytes whose size is known (a blob to upload): it errors with
 * `SIZE_INVALID` as soon as more than `size` bytes pass, or at the end when fewer did, before
 * its last bytes are let go, so an upload streamed from it cannot end with other bytes than the
 * ones `digest` names, whatever the registry checks. `signal` cancels `source` and fails the
 * stream with its reason.
 */
export function verifyingSized(
  source: ReadableStream<Uint8Array>,
  digest: string,
  size: number,
  what: string,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  return checking(source, digest, what, size, size, signal);
}

function sizeInvalid(what: string, detail: string, size: number, digest: string): RegistryError {
  return new RegistryError("SIZE_INVALID", `Cannot accept ${what}: it ${detail} ${size} bytes`, {
    url: digest,
    reason: `${detail} ${size} bytes`,
  });
}

/** The checks of one blob as its bytes pass: size bounds, then the digest at the end. */
class BlobCheck {
  readonly #digest: string;
  readonly #what: string;
  readonly #maxBytes: number;
  readonly #size: number | null;
  readonly #algorithm: string;
  readonly #hasher: Hasher | null;
  readonly #kept: Uint8Array[] = [];
  #length = 0;

  constructor(digest: string, what: string, maxBytes: number, size: number | null) {
    this.#digest = digest;
    this.#what = what;
    this.#maxBytes = maxBytes;
    this.#size = size;
    this.#algorithm = digest.slice(0, digest.indexOf(":"));
    this.#hasher = createHasher(this.#algorithm);
  }

  /** Takes the next bytes (read, not kept: they may be overwritten afterwards). */
  update(chunk: Uint8Array): void {
    const size = this.#size;
    this.#length += chunk.length;
    if (this.#length > this.#maxBytes) {
      if (size !== null) throw sizeInvalid(this.#what, "has more than its", size, this.#digest);
      throw new RegistryError(
        "TOO_LARGE",
        `Cannot accept ${this.#what}: larger than the ${this.#maxBytes} bytes expected`,
        { url: this.#digest, reason: `limit ${this.#maxBytes} bytes` },
      );
    }
    if (this.#hasher !== null) this.#hasher.update(chunk);
    else this.#kept.push(chunk.slice());
  }

  /** Throws unless every byte came and they hash to the digest. */
  async end(): Promise<void> {
    const size = this.#size;
    if (size !== null && this.#length !== size) {
      throw sizeInvalid(this.#what, `ended after ${this.#length} of its`, size, this.#digest);
    }
    if (this.#hasher === null) await verifyDigest(concat(this.#kept), this.#digest, this.#what);
    else {
      const actual = `${this.#algorithm}:${this.#hasher.hex()}`;
      if (actual !== this.#digest) throw digestMismatch(this.#what, actual, this.#digest);
    }
  }
}

function checking(
  stream: ReadableStream<Uint8Array>,
  digest: string,
  what: string,
  maxBytes: number,
  size: number | null,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  const check = new BlobCheck(digest, what, maxBytes, size);
  const source = relaySource(stream);
  let stopped = () => {};
  const settle = () => signal?.removeEventListener("abort", stopped);
  let ended = false;
  const end = async () => {
    ended = true;
    await check.end();
    settle();
  };
  // Its own chunks: the latest one is held back whole.
  let heldChunk: Uint8Array | null = null;
  const pullChunk = async (): Promise<Relayed> => {
    for (;;) {
      if (ended) return { done: true };
      const result = await source.read();
      if (result.done) {
        await end();
        const last = heldChunk;
        heldChunk = null;
        return last === null ? result : { done: false, value: last };
      }
      check.update(result.value);
      const last = heldChunk;
      heldChunk = result.value;
      if (last !== null) return { done: false, value: last };
    }
  };
  // The reader's buffers: the latest byte is held back, put in front of the next read's bytes
  // once that read is done (a read that failed and was retried may bring other memory, with
  // only the bytes read in it).
  let heldByte: number | null = null;
  const pullInto = async (into: Uint8Array): Promise<Relayed> => {
    const target = new ReadTarget(into);
    for (;;) {
      if (ended) return { done: true };
      const front = heldByte === null ? 0 : 1;
      const result = await source.read(into.subarray(front));
      const filled = target.again(result.value);
      if (heldByte !== null) filled[0] = heldByte;
      if (result.done) {
        await end();
        if (heldByte === null) return { done: true, value: filled };
        heldByte = null;
        return { done: false, value: filled.subarray(0, 1) };
      }
      check.update(result.value);
      const passed = front + result.value.length - 1;
      heldByte = filled[passed]!;
      if (passed > 0) return { done: false, value: filled.subarray(0, passed) };
      into = filled;
    }
  };
  // Any failure (the source's, a check's) also cancels the source and drops the listener.
  const fail = (error: unknown): never => {
    settle();
    source.cancel(error).catch(() => {});
    throw error;
  };
  return relayStream(source.byob, {
    start(controller) {
      if (signal === undefined) return;
      stopped = () => {
        controller.error(signal.reason);
        source.cancel(signal.reason).catch(() => {});
      };
      if (signal.aborted) stopped();
      else signal.addEventListener("abort", stopped, { once: true });
    },
    pull: (into) => (into === undefined ? pullChunk() : pullInto(into)).catch(fail),
    cancel(reason) {
      settle();
      return source.cancel(reason);
    },
  });
}
