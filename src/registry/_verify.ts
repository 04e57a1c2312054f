// Checks content while it streams: a blob's digest as its bytes pass. Incremental hashing uses the
// runtime's node:crypto when it has one (Deno, Bun, Node, workerd with nodejs_compat), found at
// run time so this file loads anywhere, and the pure-JS SHA-256 otherwise.
import { concat } from "./transport/limits.ts";
import { digestMismatch, verifyDigest } from "./_digest.ts";
import { RegistryError } from "./errors.ts";
import { Sha256 } from "./_sha256.ts";
import { nodeBuiltin } from "../_builtin.ts";

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
 * A pass-through stream that hashes what passes and errors with `DIGEST_INVALID` at the end
 * when it does not hash to `digest`, or with `TOO_LARGE` as soon as more than `maxBytes` pass.
 * It holds back the latest chunk until the next one (or the check) lets it go, so a reader
 * never has the whole of a blob that fails the check: a file written from it is incomplete, an
 * upload of it never ends.
 */
export function verifyingStream(
  digest: string,
  what: string,
  maxBytes = Infinity,
): TransformStream<Uint8Array, Uint8Array> {
  return checkingStream(digest, what, maxBytes, null);
}

/**
 * {@linkcode verifyingStream} for bytes whose size is known (a blob to upload): it errors with
 * `SIZE_INVALID` as soon as more than `size` bytes pass, or at the end when fewer did, before
 * its last chunk is let go, so an upload streamed from it cannot end with other bytes than the
 * ones `digest` names, whatever the registry checks.
 */
export function verifyingSizedStream(
  digest: string,
  size: number,
  what: string,
): TransformStream<Uint8Array, Uint8Array> {
  return checkingStream(digest, what, size, size);
}

function sizeInvalid(what: string, detail: string, size: number, digest: string): RegistryError {
  return new RegistryError("SIZE_INVALID", `Cannot accept ${what}: it ${detail} ${size} bytes`, {
    url: digest,
    reason: `${detail} ${size} bytes`,
  });
}

function checkingStream(
  digest: string,
  what: string,
  maxBytes: number,
  size: number | null,
): TransformStream<Uint8Array, Uint8Array> {
  const algorithm = digest.slice(0, digest.indexOf(":"));
  const hasher = createHasher(algorithm);
  const kept: Uint8Array[] = [];
  let length = 0;
  let held: Uint8Array | null = null;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      length += chunk.length;
      if (length > maxBytes) {
        if (size !== null) throw sizeInvalid(what, "has more than its", size, digest);
        throw new RegistryError(
          "TOO_LARGE",
          `Cannot accept ${what}: larger than the ${maxBytes} bytes expected`,
          { url: digest, reason: `limit ${maxBytes} bytes` },
        );
      }
      if (hasher !== null) hasher.update(chunk);
      else kept.push(chunk.slice());
      if (held !== null) controller.enqueue(held);
      held = chunk;
    },
    async flush(controller) {
      if (size !== null && length !== size) {
        throw sizeInvalid(what, `ended after ${length} of its`, size, digest);
      }
      if (hasher === null) await verifyDigest(concat(kept), digest, what);
      else {
        const actual = `${algorithm}:${hasher.hex()}`;
        if (actual !== digest) throw digestMismatch(what, actual, digest);
      }
      if (held !== null) controller.enqueue(held);
    },
  });
}
