/**
 * Every size limit and time limit of the registry side, in one place, and the bounded reads
 * that enforce them. The registry is a server nobody here controls: an answer is read only up
 * to its limit, so an endless manifest costs at most that much memory.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The size limits, in bytes (counts where named so).
 *
 * - `manifest`: 4 MiB, the distribution registry's own cap on the manifests it accepts.
 * - `config`: 8 MiB for an image configuration (real ones are a few KiB; 1,000 history
 *   entries stay far below it).
 * - `errorBody`: 64 KiB of an error answer are read; the rest is ignored.
 * - `token`: 1 MiB for a token answer (real tokens are a few KiB).
 * - `tagList`: 32 MiB for all pages of a tag list together, `tagPages` 10,000 pages.
 * - `layoutIndex`: 16 MiB for an OCI layout's `index.json`.
 * - `indexDepth`: 8 levels of image indexes within indexes on push.
 * - `indexEntries`: 1,000 manifests in one image index (real ones list a few dozen).
 * - `archiveEntry`: 64 GiB for one file in an archive read by `copy` (a layer; registries
 *   refuse far smaller ones), checked against its header before a byte of it is read.
 * - `archiveEntries`: 10,000 entries in one archive (`docker save` writes a few per image).
 */
export const LIMITS = {
  manifest: 4 * MiB,
  config: 8 * MiB,
  errorBody: 64 * KiB,
  token: 1 * MiB,
  tagList: 32 * MiB,
  tagPages: 10_000,
  layoutIndex: 16 * MiB,
  indexDepth: 8,
  indexEntries: 1_000,
  archiveEntry: 64 * 1024 * MiB,
  archiveEntries: 10_000,
} as const;

/**
 * How long a request may go without receiving a byte before it fails with `TIMEOUT`, in ms:
 * waiting for the answer's headers, and between two chunks of its body.
 */
export const DEFAULT_IDLE_TIMEOUT = 30_000;

/**
 * While a request body is being sent no byte comes back, so the wait for the headers of a
 * request with a body is extended by its size at this rate (bytes per second).
 */
export const UPLOAD_GRACE_RATE = 64 * KiB;

/** One buffer of all chunks. */
export function concat(chunks: Uint8Array[], length?: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.byteOffset === 0) return chunks[0]!;
  const out = new Uint8Array(length ?? chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Reads a whole stream, failing with `TOO_LARGE` as soon as it passes `limit` bytes (the
 * stream is cancelled, so the rest is never received).
 *
 * @param body The stream, or `null` for no body.
 * @param limit The most bytes accepted.
 * @param what What is read, for the message, e.g. `manifest "app:1.0"`.
 * @param url Where it comes from.
 * @returns The bytes.
 */
export async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  what: string,
  url?: string,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.length;
      if (length > limit) {
        await reader.cancel().catch(() => {});
        throw new RegistryError(
          "TOO_LARGE",
          `Cannot read ${what}: larger than the limit of ${limit} bytes`,
          { url, reason: `limit ${limit} bytes` },
        );
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concat(chunks, length);
}

/**
 * Parses JSON bytes, failing with `MALFORMED` (not a raw `SyntaxError`).
 *
 * @param bytes UTF-8 JSON.
 * @param what What is parsed, for the message.
 * @param url Where it comes from.
 * @returns The value.
 */
export function parseJson(bytes: Uint8Array, what: string, url?: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new RegistryError("MALFORMED", `Cannot parse ${what}: not JSON`, { url, cause });
  }
}
