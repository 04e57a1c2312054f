// Digests of blobs: computed with crypto.subtle on whole buffers, or incrementally (sha256)
// while a blob streams, and checked against the digest it was asked by.
import { toHex } from "../_bytes.ts";
import { ErrBlobInvalidDigest } from "./errors.ts";
import { Sha256 } from "./_sha256.ts";

const SUBTLE_NAMES: Record<string, string> = {
  sha256: "SHA-256",
  sha384: "SHA-384",
  sha512: "SHA-512",
};

/** `sha256:<hex>` (or another algorithm) of a whole buffer. */
export async function digestOf(data: Uint8Array, algorithm = "sha256"): Promise<string> {
  const name = SUBTLE_NAMES[algorithm];
  if (name === undefined) {
    throw new ErrBlobInvalidDigest(`Cannot hash with "${algorithm}": unsupported digest algorithm`);
  }
  return `${algorithm}:${toHex(await crypto.subtle.digest(name, data as Uint8Array<ArrayBuffer>))}`;
}

/** Throws ErrBlobInvalidDigest unless `data` hashes to `digest`. */
export async function verifyDigest(data: Uint8Array, digest: string, what: string): Promise<void> {
  const algorithm = digest.slice(0, digest.indexOf(":"));
  const actual = await digestOf(data, algorithm);
  if (actual !== digest) {
    throw new ErrBlobInvalidDigest(
      `Cannot accept ${what}: content has digest "${actual}", expected "${digest}"`,
      { path: digest },
    );
  }
}

/** Hashes a stream as it passes; sha256 incrementally, other algorithms at the end. */
export class StreamVerifier {
  readonly #digest: string;
  readonly #sha256: Sha256 | null;
  readonly #chunks: Uint8Array[] = [];

  constructor(digest: string) {
    this.#digest = digest;
    this.#sha256 = digest.startsWith("sha256:") ? new Sha256() : null;
  }

  update(chunk: Uint8Array): void {
    if (this.#sha256 !== null) this.#sha256.update(chunk);
    else this.#chunks.push(chunk.slice());
  }

  /** Throws ErrBlobInvalidDigest when the bytes seen do not match. */
  async finish(what: string): Promise<void> {
    if (this.#sha256 === null) return await verifyDigest(concat(this.#chunks), this.#digest, what);
    const actual = `sha256:${this.#sha256.hex()}`;
    if (actual !== this.#digest) {
      throw new ErrBlobInvalidDigest(
        `Cannot accept ${what}: content has digest "${actual}", expected "${this.#digest}"`,
        { path: this.#digest },
      );
    }
  }
}

/** One buffer of all chunks. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Whether `digest` looks like `<alg>:<hex>` with a known algorithm and length. */
export function isDigest(digest: string): boolean {
  return /^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/.test(digest);
}
