// Digests of whole buffers (crypto.subtle) and the shape of a digest.
import { toHex } from "../_bytes.ts";
import { RegistryError } from "./errors.ts";

const SUBTLE_NAMES: Record<string, string> = {
  sha256: "SHA-256",
  sha384: "SHA-384",
  sha512: "SHA-512",
};

/** `sha256:<hex>` (or another algorithm) of a whole buffer. */
export async function digestOf(data: Uint8Array, algorithm = "sha256"): Promise<string> {
  const name = SUBTLE_NAMES[algorithm];
  if (name === undefined) {
    throw new RegistryError(
      "DIGEST_INVALID",
      `Cannot hash with "${algorithm}": unsupported digest algorithm`,
    );
  }
  return `${algorithm}:${toHex(await crypto.subtle.digest(name, data as Uint8Array<ArrayBuffer>))}`;
}

/** The error for content that does not hash to the digest it was asked by. */
export function digestMismatch(what: string, actual: string, expected: string): RegistryError {
  return new RegistryError(
    "DIGEST_INVALID",
    `Cannot accept ${what}: content has digest "${actual}", expected "${expected}"`,
    { url: expected, reason: `content has digest ${actual}` },
  );
}

/** Throws `DIGEST_INVALID` unless `data` hashes to `digest`. */
export async function verifyDigest(data: Uint8Array, digest: string, what: string): Promise<void> {
  const actual = await digestOf(data, digest.slice(0, digest.indexOf(":")));
  if (actual !== digest) throw digestMismatch(what, actual, digest);
}

/** Whether `digest` is `<alg>:<hex>` with a supported algorithm and its length. */
export function isDigest(digest: unknown): digest is string {
  return typeof digest === "string" &&
    /^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/.test(digest);
}

/**
 * A blob of a content store, checked against the digest it is stored under: a store is a
 * directory anyone may have written to, and its bytes go to registries and into the metadata.
 */
export async function readVerified(
  store: { get(digest: string, options?: { maxBytes?: number }): Promise<Uint8Array> },
  digest: string,
  what: string,
  maxBytes?: number,
): Promise<Uint8Array> {
  const data = await store.get(digest, maxBytes === undefined ? {} : { maxBytes });
  await verifyDigest(data, digest, `${what} in the content store`);
  return data;
}
