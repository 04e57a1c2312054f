// Reading a tar archive entry by entry from a stream, as `docker load` and skopeo read theirs:
// ustar and GNU headers (prefix, long names, base-256 sizes), pax headers' `path` and `size`.
// Regular files, directories and symbolic links pass (a link as its target's name, never made
// on disk; the reader of the archive decides what it may point at): a hard link, device or
// FIFO, a name that is absolute or climbs with `..`, a header whose checksum or size is not a number, an entry over
// `LIMITS.archiveEntry` bytes and more than `LIMITS.archiveEntries` entries are refused with
// the entry named, and an archive that ends inside an entry is `TRUNCATED`.
import { RegistryError } from "../errors.ts";
import { LIMITS } from "../transport/limits.ts";
import { BLOCK } from "./_tar.ts";

/**
 * One entry: a regular file's bytes (read or cancel before the next entry), a directory, or a
 * symbolic link.
 */
export interface TarEntry {
  /** Its path, without `./` or a trailing `/`. */
  name: string;
  kind: "file" | "directory" | "symlink";
  /** A symbolic link's target, as written. */
  target?: string;
  size: number;
  /** Its bytes, exactly `size` of them. */
  body: ReadableStream<Uint8Array>;
}

/** The most bytes of a pax or GNU long-name header read (real ones are a few hundred). */
const META_BYTES = 64 * 1024;

const decoder = new TextDecoder();

/** Exact reads from a byte stream. */
class Bytes {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending: Uint8Array = new Uint8Array(0);
  #signal: AbortSignal | undefined;

  constructor(stream: ReadableStream<Uint8Array>, signal: AbortSignal | undefined) {
    this.#reader = stream.getReader();
    this.#signal = signal;
  }

  /** Up to `max` bytes (at least one), or `null` at the end of the stream. */
  async some(max: number): Promise<Uint8Array | null> {
    this.#signal?.throwIfAborted();
    while (this.#pending.length === 0) {
      const { done, value } = await this.#reader.read();
      if (done) return null;
      this.#pending = value;
    }
    const taken = this.#pending.subarray(0, max);
    this.#pending = this.#pending.subarray(taken.length);
    return taken;
  }

  /** Exactly `size` bytes in one buffer (`size` is small), or `null` if the stream ends first. */
  async exactly(size: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(size);
    for (let filled = 0; filled < size;) {
      const chunk = await this.some(size - filled);
      if (chunk === null) return null;
      out.set(chunk, filled);
      filled += chunk.length;
    }
    return out;
  }

  /** Skips `size` bytes; `false` if the stream ends first. */
  async skip(size: number): Promise<boolean> {
    for (let left = size; left > 0;) {
      const chunk = await this.some(Math.min(left, 1 << 20));
      if (chunk === null) return false;
      left -= chunk.length;
    }
    return true;
  }

  cancel(reason?: unknown): Promise<void> {
    return this.#reader.cancel(reason).catch(() => {});
  }
}

function refused(what: string, entry: string, detail: string): RegistryError {
  return new RegistryError("MALFORMED", `Cannot read ${what}: entry "${entry}" ${detail}`, {
    url: what,
    reason: detail,
  });
}

function truncated(what: string, entry: string): RegistryError {
  return new RegistryError("TRUNCATED", `Cannot read ${what}: it ends inside entry "${entry}"`, {
    url: what,
  });
}

function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/** A NUL-terminated field. */
function text(header: Uint8Array, offset: number, width: number): string {
  const field = header.subarray(offset, offset + width);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

/** An octal field (spaces and NULs around it), or a GNU base-256 one; `null` if neither. */
function number(header: Uint8Array, offset: number, width: number): number | null {
  if (header[offset]! & 0x80) {
    if (header[offset] !== 0x80) return null; // negative
    let value = 0;
    for (let i = offset + 1; i < offset + width; i++) value = value * 256 + header[i]!;
    return Number.isSafeInteger(value) ? value : null;
  }
  const digits = text(header, offset, width).trim();
  if (!/^[0-7]+$/.test(digits)) return null;
  return parseInt(digits, 8);
}

/** The header's own checksum matches (unsigned, its field counted as spaces). */
function checksumMatches(header: Uint8Array): boolean {
  const stored = number(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return stored === sum;
}

/**
 * A path as the entry's name: `./` and `.` parts and a trailing `/` dropped; `null` when it is
 * absolute, climbs with `..`, holds a NUL or is empty.
 *
 * @param name A path in an archive.
 * @returns The clean path, or `null`.
 */
export function cleanName(name: string): string | null {
  if (name.startsWith("/") || name.includes("\0")) return null;
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.length === 0 || parts.includes("..")) return null;
  return parts.join("/");
}

/**
 * Where a symbolic link `name` points in the archive: `target` taken from the link's
 * directory, `..` climbing within the archive; `null` when it is absolute or leaves it.
 *
 * @param name The link's clean name.
 * @param target Its target, as written.
 * @returns The clean path of the entry it names, or `null`.
 */
export function linkTarget(name: string, target: string): string | null {
  if (target.startsWith("/") || target.includes("\0")) return null;
  const parts = name.split("/").slice(0, -1);
  for (const part of target.split("/")) {
    if (part === "..") {
      if (parts.pop() === undefined) return null;
    } else if (part !== "" && part !== ".") parts.push(part);
  }
  return parts.length === 0 ? null : parts.join("/");
}

/** The `path` and `size` of a pax header's records (`<length> <key>=<value>\n`). */
function paxRecords(data: Uint8Array): Map<string, string> | null {
  const records = new Map<string, string>();
  const all = decoder.decode(data);
  for (let at = 0; at < all.length;) {
    const space = all.indexOf(" ", at);
    const length = Number(all.slice(at, space));
    if (space < 0 || !Number.isSafeInteger(length) || length <= space - at) return null;
    const record = all.slice(space + 1, at + length);
    const equals = record.indexOf("=");
    if (equals < 0 || !record.endsWith("\n")) return null;
    records.set(record.slice(0, equals), record.slice(equals + 1, -1));
    at += length;
  }
  return records;
}

/**
 * The entries of a tar archive, one at a time: each file's body must be read to its end or
 * cancelled before the next is asked for. Reading stops at the two empty blocks that end an
 * archive (or at the stream's end after a complete entry, as GNU tar accepts).
 *
 * @param stream The archive's bytes.
 * @param what The archive, for messages, e.g. `docker-archive "/tmp/app.tar"`.
 * @param signal Stops the reading, failing with its reason.
 * @returns The entries.
 */
export async function* tarEntries(
  stream: ReadableStream<Uint8Array>,
  what: string,
  signal?: AbortSignal,
): AsyncGenerator<TarEntry> {
  const bytes = new Bytes(stream, signal);
  let count = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;
  try {
    for (;;) {
      const header = await bytes.exactly(BLOCK);
      if (header === null || header.every((byte) => byte === 0)) return;
      if (++count > LIMITS.archiveEntries) {
        throw new RegistryError(
          "TOO_LARGE",
          `Cannot read ${what}: more than ${LIMITS.archiveEntries} entries`,
          { url: what },
        );
      }
      const magic = text(header, 257, 6);
      const prefix = magic === "ustar" ? text(header, 345, 155) : "";
      const raw = pax?.get("path") ?? longName ??
        (prefix === "" ? text(header, 0, 100) : `${prefix}/${text(header, 0, 100)}`);
      if (!checksumMatches(header)) throw refused(what, raw, "has a bad header checksum");
      const size = pax?.has("size") ? Number(pax.get("size")) : number(header, 124, 12);
      if (size === null || !Number.isSafeInteger(size) || size < 0) {
        throw refused(what, raw, "has a size that is not a number");
      }
      const type = String.fromCharCode(header[156]!);
      const padded = size + (BLOCK - size % BLOCK) % BLOCK;
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        if (size > META_BYTES) throw refused(what, raw, `has a header over ${META_BYTES} bytes`);
        const data = await bytes.exactly(padded);
        if (data === null) throw truncated(what, raw);
        if (type === "L") longName = text(data, 0, size);
        else if (type === "K") longLink = text(data, 0, size);
        else if (type === "x") {
          const records = paxRecords(data.subarray(0, size));
          if (records === null) throw refused(what, raw, "has a malformed pax header");
          pax = records;
        }
        continue;
      }
      const target = pax?.get("linkpath") ?? longLink ?? text(header, 157, 100);
      longName = undefined;
      longLink = undefined;
      pax = undefined;
      const name = cleanName(raw);
      if (name === null) throw refused(what, raw, "is absolute or leaves the archive");
      if (type === "5") {
        if (!await bytes.skip(padded)) throw truncated(what, raw);
        yield {
          name,
          kind: "directory",
          size: 0,
          body: emptyBody(),
        };
        continue;
      }
      if (type === "2") {
        if (!await bytes.skip(padded)) throw truncated(what, raw);
        yield { name, kind: "symlink", target, size: 0, body: emptyBody() };
        continue;
      }
      if (type !== "0" && type !== "\0" && type !== "7") {
        throw refused(what, raw, `is not a regular file (type "${type}")`);
      }
      if (size > LIMITS.archiveEntry) {
        throw new RegistryError(
          "TOO_LARGE",
          `Cannot read ${what}: entry "${raw}" claims ${size} bytes, over ${LIMITS.archiveEntry}`,
          { url: what },
        );
      }
      let left = size;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (left === 0) return controller.close();
          const chunk = await bytes.some(Math.min(left, 1 << 20));
          if (chunk === null) return controller.error(truncated(what, raw));
          left -= chunk.length;
          controller.enqueue(chunk.slice());
        },
      }, { highWaterMark: 0 });
      yield { name, kind: "file", size, body };
      // What the consumer did not read is skipped, then the padding.
      if (!await bytes.skip(left + padded - size)) throw truncated(what, raw);
    }
  } finally {
    await bytes.cancel();
  }
}
