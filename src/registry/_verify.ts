// Checks content while it streams: a blob's digest as its bytes pass, and a layer's DiffID
// (the digest of its uncompressed tar) by decompressing a copy. Incremental hashing uses the
// runtime's node:crypto when it has one (Deno, Bun, Node, workerd with nodejs_compat), found at
// run time so this file loads anywhere, and the pure-JS SHA-256 otherwise.
import { concat } from "./transport/limits.ts";
import { digestMismatch, verifyDigest } from "./_digest.ts";
import { RegistryError } from "./errors.ts";
import { Sha256 } from "./_sha256.ts";

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

const nodeCrypto: NodeCrypto | null = (() => {
  try {
    const process = (globalThis as {
      process?: { getBuiltinModule?: (name: string) => unknown };
    }).process;
    const crypto = process?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
    return typeof crypto?.createHash === "function" ? crypto : null;
  } catch {
    return null;
  }
})();

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

interface NodeGunzip {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "drain", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "drain", listener: () => void): unknown;
}

/** Bytes node:zlib inflates per call: its 16 KiB default made Node's pull 20% slower. */
const GUNZIP_CHUNK = 256 << 10;

/**
 * node:zlib's gunzip, on Node and Deno: Node's `DecompressionStream` (20 and 22) reads its input
 * without backpressure, so a 256 MiB layer cost 360 MiB there; its zlib stream waits for
 * `drain`. Deno's node:zlib, fed chunk by chunk, pulled the image ~10% faster than its
 * `DecompressionStream` (two stream hops fewer per chunk). Bun's `DecompressionStream` is faster
 * than its node:zlib.
 */
const nodeGunzip: (() => NodeGunzip) | null = (() => {
  const globals = globalThis as {
    Bun?: unknown;
    process?: { getBuiltinModule?: (name: string) => unknown };
  };
  if (globals.Bun !== undefined) return null;
  try {
    const zlib = globals.process?.getBuiltinModule?.("node:zlib") as
      | { createGunzip?: (options: { chunkSize: number }) => NodeGunzip }
      | undefined;
    return typeof zlib?.createGunzip === "function"
      ? () => zlib.createGunzip!({ chunkSize: GUNZIP_CHUNK })
      : null;
  } catch {
    return null;
  }
})();

/** Inflates `gzip` into `hasher` with node:zlib, `drain` by `drain`; fails as the stream fails. */
async function gunzipInto(
  gzip: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array,
  hasher: Hasher,
  createGunzip: () => NodeGunzip,
): Promise<void> {
  const gunzip = createGunzip();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on("end", resolve);
    gunzip.on("error", (error) => {
      failure = error;
      wake?.();
      reject(error);
    });
  });
  done.catch(() => {});
  gunzip.on("data", (chunk) => hasher.update(chunk));
  try {
    for (let chunk: Uint8Array | undefined = first;;) {
      if (chunk !== undefined && chunk.length > 0 && !gunzip.write(chunk)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          gunzip.once("drain", resolve);
        });
      }
      if (failure !== null) throw failure;
      const next = await gzip.read();
      if (next.done) break;
      chunk = next.value;
    }
    gunzip.end();
    await done;
  } catch (error) {
    gunzip.destroy();
    throw error;
  }
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
  const algorithm = digest.slice(0, digest.indexOf(":"));
  const hasher = createHasher(algorithm);
  const kept: Uint8Array[] = [];
  let length = 0;
  let held: Uint8Array | null = null;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      length += chunk.length;
      if (length > maxBytes) {
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
      if (hasher === null) await verifyDigest(concat(kept), digest, what);
      else {
        const actual = `${algorithm}:${hasher.hex()}`;
        if (actual !== digest) throw digestMismatch(what, actual, digest);
      }
      if (held !== null) controller.enqueue(held);
    },
  });
}

/** The first bytes of compressed streams this cannot open (zstd, bzip2, xz). */
const UNREADABLE_MAGIC = [[0x28, 0xb5, 0x2f, 0xfd], [0x42, 0x5a, 0x68], [0xfd, 0x37, 0x7a, 0x58]];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return magic.every((byte, i) => head[i] === byte);
}

/**
 * The DiffID of a layer: `sha256` of its uncompressed bytes. gzip (sniffed from its first bytes,
 * as dockerd does, not trusted from the media type) is decompressed with node:zlib (on Node and
 * Deno) or `DecompressionStream`; anything else not compressed is hashed as is.
 *
 * @returns The DiffID, or `null` when it cannot be computed: a compression this runtime cannot
 * open, or a stream that fails (corrupt gzip, or the blob's own digest check).
 */
export async function diffIDOf(blob: ReadableStream<Uint8Array>): Promise<string | null> {
  const reader = blob.getReader();
  const head: Uint8Array[] = [];
  let headLength = 0;
  try {
    while (headLength < 4) {
      const { done, value } = await reader.read();
      if (done) break;
      head.push(value);
      headLength += value.length;
    }
  } catch {
    return null;
  }
  const first = concat(head, headLength);
  if (UNREADABLE_MAGIC.some((magic) => startsWith(first, magic))) {
    await reader.cancel().catch(() => {});
    return null;
  }
  const gzipped = startsWith(first, [0x1f, 0x8b]);
  if (gzipped && nodeGunzip !== null) {
    const hasher = createHasher("sha256")!;
    try {
      await gunzipInto(reader, first, hasher, nodeGunzip);
    } catch {
      await reader.cancel().catch(() => {});
      return null;
    }
    return `sha256:${hasher.hex()}`;
  }
  const restored = new ReadableStream<Uint8Array>({
    start(controller) {
      if (first.length > 0) controller.enqueue(first);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const plain = gzipped
    ? restored.pipeThrough(
      new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
    )
    : restored;
  const hasher = createHasher("sha256")!;
  const plainReader = plain.getReader();
  try {
    for (;;) {
      const { done, value } = await plainReader.read();
      if (done) break;
      hasher.update(value);
    }
  } catch {
    await plainReader.cancel().catch(() => {});
    return null;
  }
  return `sha256:${hasher.hex()}`;
}
