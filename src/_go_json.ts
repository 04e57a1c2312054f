// JSON as Go's encoding/json writes and reads it, for the V2Metadata list files and the
// HMAC key input. JSON.stringify escapes differently (no \u003c, raw U+2028), so the
// encoder is our own; the decoder takes JSON.parse's fast path whenever Go would agree.
import { MetadataError } from "./errors.ts";
import type { V2Metadata } from "./v2_metadata.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Characters Go's encoder does not write raw (with escapeHTML, as json.Marshal uses). */
// deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b", // Go >= 1.22; older Go wrote \u0008
  "\f": "\\f", // Go >= 1.22; older Go wrote \u000c
};

/** A JSON string literal exactly as Go (>= 1.22) encodes `text`. Lone surrogates become U+FFFD. */
export function goQuote(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`;
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    const code = char.charCodeAt(0);
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (code < 0xdc00 && next >= 0xdc00 && next <= 0xdfff) {
        out += char + text[++i];
      } else {
        out += "\ufffd";
      }
    } else if (NEEDS_ESCAPE.test(char)) {
      out += SHORT_ESCAPES[char] ?? `\\u${code.toString(16).padStart(4, "0")}`;
    } else {
      out += char;
    }
  }
  return out + '"';
}

/**
 * What JSON.stringify writes differently from Go: `<`, `>`, `&`, U+2028 and U+2029 raw (Go
 * escapes them) and lone surrogates as `\udXXX` (Go writes U+FFFD). Everything else, control
 * characters included, comes out byte for byte as Go's. `\\ud8..` in a string also matches,
 * which only costs the slow path.
 */
const NOT_AS_GO = /[<>&\u2028\u2029]|\\ud[89a-f]/i;

/** The list file bytes: compact, keys `Digest`, `SourceRepository`, `HMAC` in Go's order. */
export function encodeV2MetadataList(list: readonly V2Metadata[]): Uint8Array {
  // JSON.stringify is native and several times faster than quoting field by field in JS.
  const text = JSON.stringify(
    list.map((m) => ({ Digest: m.digest, SourceRepository: m.sourceRepository, HMAC: m.hmac })),
  );
  if (!NOT_AS_GO.test(text)) return encoder.encode(text);
  const objects = list.map((m) =>
    `{"Digest":${goQuote(m.digest)},"SourceRepository":${goQuote(m.sourceRepository)},"HMAC":${
      goQuote(m.hmac)
    }}`
  );
  return encoder.encode(`[${objects.join(",")}]`);
}

/** Keys Go's decoder maps to each field: matched case-insensitively, as Go folds them. */
const FIELDS: Record<string, keyof V2Metadata> = {
  DIGEST: "digest",
  SOURCEREPOSITORY: "sourceRepository",
  HMAC: "hmac",
};
/** The exact field names: objects with only these keys can take the JSON.parse path. */
const EXACT: Record<string, keyof V2Metadata> = {
  Digest: "digest",
  SourceRepository: "sourceRepository",
  HMAC: "hmac",
};
/**
 * Non-ASCII letters whose simple case-folding orbit holds an ASCII letter: Go folds a name
 * to the smallest rune of each orbit. "ı" and "İ" fold only to themselves in Go.
 */
const FOLDS: Record<string, string> = { "ſ": "S", "\u212a": "K" };

function fieldOf(key: string): keyof V2Metadata | undefined {
  const folded = key.replace(/[^\0-\x7f]/g, (char) => FOLDS[char] ?? char);
  // Any other non-ASCII letter matches no field (toUpperCase would turn "ı" into "I").
  return /[^\0-\x7f]/.test(folded) ? undefined : FIELDS[folded.toUpperCase()];
}

/**
 * Decodes a list file as Go's `json.Unmarshal` into `[]V2Metadata` would: keys match
 * case-insensitively, unknown keys are ignored, `null` gives `""` (or an empty list for
 * the whole file), the last duplicate wins. Anything else is an `EBADMSG` MetadataError.
 */
export function decodeV2MetadataList(bytes: Uint8Array): V2Metadata[] {
  let value: unknown;
  try {
    value = JSON.parse(strictDecoder.decode(bytes));
  } catch {
    return goDecode(bytes); // invalid UTF-8 or JSON: Go's own rules decide
  }
  if (value === null) return [];
  if (!Array.isArray(value)) throw badList("it is not a JSON array");
  const list: V2Metadata[] = [];
  for (const item of value) {
    const entry = emptyEntry();
    if (item !== null) {
      if (typeof item !== "object" || Array.isArray(item)) {
        throw badList("an entry is not an object");
      }
      for (const key in item) {
        const field = EXACT[key];
        // Other spellings: Go's order of duplicates decides, which JSON.parse loses. A null
        // leaves a string as it was in Go, so it may hide an earlier duplicate that wins.
        if (field === undefined || (item as Record<string, unknown>)[key] === null) {
          return goDecode(bytes);
        }
        setField(entry, field, (item as Record<string, unknown>)[key]);
      }
    }
    list.push(entry);
  }
  return list;
}

/**
 * Decodes with {@linkcode GoDecoder}. Nesting deep enough to exhaust the stack before Go's
 * depth limit can never be a list of entries, so it is the same EBADMSG Go reports.
 */
function goDecode(bytes: Uint8Array): V2Metadata[] {
  try {
    return new GoDecoder(bytes).list();
  } catch (error) {
    if (error instanceof RangeError) throw badList("it is nested too deeply");
    throw error;
  }
}

function setField(entry: V2Metadata, field: keyof V2Metadata, value: unknown): void {
  if (typeof value === "string") entry[field] = value.toWellFormed();
  else if (value !== null) throw badList(`"${field}" is not a string`);
}

function emptyEntry(): V2Metadata {
  return { digest: "", sourceRepository: "", hmac: "" };
}

function badList(why: string): MetadataError {
  return new MetadataError("EBADMSG", `Cannot decode the metadata list: ${why}`, { reason: why });
}

/** Go's limit on nesting, past which it reports an error instead of recursing. */
const MAX_DEPTH = 10_000;

/** A byte-level JSON reader with Go's rules for the cases JSON.parse would get wrong. */
class GoDecoder {
  #bytes: Uint8Array;
  #at = 0;
  #depth = 0;
  /** Go reports a type mismatch only once the whole text has proved valid JSON. */
  #wrongType: string | undefined;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  list(): V2Metadata[] {
    const list: V2Metadata[] = [];
    this.#space();
    if (this.#peek() === 0x5b) {
      this.#array((entry) => entry && list.push(entry));
    } else if (!this.#literal("null")) {
      this.#value();
      this.#wrongType = "it is not a JSON array";
    }
    this.#space();
    if (this.#at < this.#bytes.length) throw this.#syntax("after the top-level value");
    if (this.#wrongType) throw badList(this.#wrongType);
    return list;
  }

  /** Reads an array; with `onEntry`, each element is decoded as a V2Metadata entry. */
  #array(onEntry?: (entry: V2Metadata) => unknown): void {
    this.#enter();
    this.#space();
    if (this.#peek() === 0x5d) {
      this.#at++;
    } else {
      do {
        this.#space();
        if (!onEntry) this.#value();
        else if (this.#peek() === 0x7b) onEntry(this.#object(emptyEntry()));
        else if (this.#literal("null")) onEntry(emptyEntry());
        else {
          this.#value();
          this.#wrongType = "an entry is not an object";
        }
        this.#space();
      } while (this.#next(0x5d, "in an array"));
    }
    this.#depth--;
  }

  /** Reads an object; with `entry`, known keys fill it (case-insensitively, last wins). */
  #object(entry?: V2Metadata): V2Metadata {
    this.#enter();
    this.#space();
    if (this.#peek() === 0x7d) {
      this.#at++;
    } else {
      do {
        this.#space();
        if (this.#peek() !== 0x22) throw this.#syntax("where an object key belongs");
        const key = this.#string();
        const field = entry && fieldOf(key);
        this.#space();
        if (this.#bytes[this.#at++] !== 0x3a) throw this.#syntax("after an object key");
        this.#space();
        if (field && this.#peek() === 0x22) entry[field] = this.#string();
        else if (!field || !this.#literal("null")) {
          this.#value();
          if (field) this.#wrongType = `"${field}" is not a string`;
        }
        this.#space();
      } while (this.#next(0x7d, "in an object"));
    }
    this.#depth--;
    return entry ?? emptyEntry();
  }

  /** Consumes `,` (true: more follow) or `close` (false); anything else is a syntax error. */
  #next(close: number, where: string): boolean {
    const byte = this.#bytes[this.#at++];
    if (byte === close) return false;
    if (byte !== 0x2c) throw this.#syntax(where);
    return true;
  }

  #enter(): void {
    this.#at++;
    if (++this.#depth > MAX_DEPTH) throw badList("it is nested too deeply");
  }

  /** Skips any JSON value, checking its syntax. */
  #value(): void {
    const byte = this.#peek();
    if (byte === 0x22) this.#string();
    else if (byte === 0x7b) this.#object();
    else if (byte === 0x5b) this.#array();
    else if (!this.#literal("true") && !this.#literal("false") && !this.#literal("null")) {
      this.#number();
    }
  }

  #number(): void {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(
      String.fromCharCode(...this.#bytes.subarray(this.#at, this.#at + 512)),
    );
    if (!match) throw this.#syntax("where a value belongs");
    this.#at += match[0].length;
  }

  /** Reads a string literal; invalid UTF-8 and lone surrogates become U+FFFD, as in Go. */
  #string(): string {
    const bytes = this.#bytes;
    let out = "";
    this.#at++;
    for (;;) {
      const byte = bytes[this.#at];
      if (byte === undefined) throw this.#syntax("in a string");
      if (byte === 0x22) {
        this.#at++;
        return out;
      }
      if (byte < 0x20) throw this.#syntax("in a string");
      if (byte === 0x5c) out += this.#escape();
      else if (byte < 0x80) {
        out += String.fromCharCode(byte);
        this.#at++;
      } else out += this.#utf8();
    }
  }

  #escape(): string {
    const kind = String.fromCharCode(this.#bytes[this.#at + 1] ?? 0);
    const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[
      kind
    ];
    if (simple !== undefined) {
      this.#at += 2;
      return simple;
    }
    if (kind !== "u") throw this.#syntax("in a string escape");
    const unit = this.#hex4(this.#at + 2);
    this.#at += 6;
    if (unit < 0xd800 || unit > 0xdfff) return String.fromCharCode(unit);
    if (unit < 0xdc00 && this.#bytes[this.#at] === 0x5c && this.#bytes[this.#at + 1] === 0x75) {
      const low = this.#hex4(this.#at + 2);
      if (low >= 0xdc00 && low <= 0xdfff) {
        this.#at += 6;
        return String.fromCharCode(unit, low);
      }
    }
    return "\ufffd";
  }

  #hex4(at: number): number {
    const text = String.fromCharCode(...this.#bytes.subarray(at, at + 4));
    if (!/^[0-9a-fA-F]{4}$/.test(text)) throw this.#syntax("in a \\u escape");
    return parseInt(text, 16);
  }

  /** Decodes one UTF-8 sequence like Go's utf8.DecodeRune: invalid → U+FFFD, one byte. */
  #utf8(): string {
    const b = this.#bytes;
    const at = this.#at;
    const b0 = b[at]!;
    const length = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : 2;
    const min = [0, 0, 0x80, 0x800, 0x10000][length]!;
    let point = b0 & (0xff >> (length + 1));
    let ok = b0 >= 0xc2 && b0 <= 0xf4;
    for (let i = 1; ok && i < length; i++) {
      const next = b[at + i];
      ok = next !== undefined && (next & 0xc0) === 0x80;
      point = (point << 6) | ((next ?? 0) & 0x3f);
    }
    if (!ok || point < min || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
      this.#at++;
      return "\ufffd";
    }
    this.#at += length;
    return String.fromCodePoint(point);
  }

  #literal(word: string): boolean {
    for (let i = 0; i < word.length; i++) {
      if (this.#bytes[this.#at + i] !== word.charCodeAt(i)) return false;
    }
    this.#at += word.length;
    return true;
  }

  #peek(): number | undefined {
    return this.#bytes[this.#at];
  }

  #space(): void {
    for (;;) {
      const byte = this.#bytes[this.#at];
      if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return;
      this.#at++;
    }
  }

  #syntax(where: string): MetadataError {
    return badList(`invalid JSON ${where} at byte ${this.#at}`);
  }
}
