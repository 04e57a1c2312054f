/**
 * The one error type of the registry side, {@linkcode RegistryError}, whose `code` says what
 * failed: a registry error code from the OCI Distribution spec (`BLOB_UNKNOWN`, `DENIED`, …)
 * or one of the codes this library adds (`TIMEOUT`, `TOO_LARGE`, `MALFORMED`, …). Filesystem
 * failures of the content store stay {@linkcode MetadataError}s with errno names.
 *
 * @module
 */

/**
 * What a {@linkcode RegistryError} is about.
 *
 * Answered by the registry (OCI Distribution spec): `BLOB_UNKNOWN`, `BLOB_UPLOAD_INVALID`,
 * `BLOB_UPLOAD_UNKNOWN`, `DIGEST_INVALID` (also: content that does not hash to its digest),
 * `MANIFEST_BLOB_UNKNOWN`, `MANIFEST_INVALID`, `MANIFEST_UNKNOWN`, `MANIFEST_UNVERIFIED`,
 * `NAME_INVALID` (also: a reference that does not parse), `NAME_UNKNOWN`, `SIZE_INVALID`,
 * `TAG_INVALID`, `UNAUTHORIZED`, `DENIED`, `UNSUPPORTED`, `TOOMANYREQUESTS`, and `UNKNOWN` for
 * any other answer.
 *
 * Found here: `TAG_UNKNOWN` (a tag lookup answered 404), `SCHEMA1_DEPRECATED`, `MALFORMED` (an
 * answer, manifest, configuration or layout file that does not parse or has the wrong shape),
 * `TOO_LARGE` (over a size limit), `TRUNCATED` (a body that ended early), `LOOP` (a paging loop,
 * an index that contains itself), `TIMEOUT` (no byte within the idle timeout), `ABORTED` (the
 * caller's signal), `UNREACHABLE` (no HTTP answer at all), `INSECURE_REALM` (a token realm that
 * would receive credentials in clear text).
 */
export type RegistryErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "MANIFEST_UNVERIFIED"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "TAG_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "UNKNOWN"
  | "TAG_UNKNOWN"
  | "SCHEMA1_DEPRECATED"
  | "MALFORMED"
  | "TOO_LARGE"
  | "TRUNCATED"
  | "LOOP"
  | "TIMEOUT"
  | "ABORTED"
  | "UNREACHABLE"
  | "INSECURE_REALM";

/** The codes a registry may answer that carry their own meaning here. */
const REGISTRY_CODES: ReadonlySet<string> = new Set<RegistryErrorCode>([
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "MANIFEST_UNVERIFIED",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "TAG_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
  "TOOMANYREQUESTS",
]);

/** One entry of the registry's JSON error body (`{"errors":[{code,message,detail}]}`). */
export interface RegistryErrorEntry {
  /** The registry's code, as sent (e.g. `BLOB_UNKNOWN`, or a code this library does not know). */
  code: string;
  /** The registry's message (empty when it sent none). */
  message: string;
  /** Whatever detail the registry attached. */
  detail?: unknown;
}

/** What a {@linkcode RegistryError} carries besides its code and message. */
export interface RegistryErrorOptions {
  /** The HTTP status of the answer, when the error comes from one. */
  status?: number | undefined;
  /** The HTTP method of the request. */
  method?: string | undefined;
  /** The URL of the request, or the reference, digest or file concerned. */
  url?: string | undefined;
  /** The registry's error entries. */
  errors?: RegistryErrorEntry[] | undefined;
  /** A short machine-readable reason, e.g. `repository name must be lowercase`. */
  reason?: string | undefined;
  /** The wait in ms the answer's `Retry-After` asked for, when it had one. */
  retryAfter?: number | undefined;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Any failure of the registry side: `code` says what (see {@linkcode RegistryErrorCode}),
 * `status`, `method` and `url` where, `errors` the registry's own entries, `reason` a short
 * detail a program can show without parsing the message.
 *
 * @example Tell "not there" from other failures
 * ```ts
 * import { RegistryError } from "@distribution/metadata/registry";
 *
 * const error: unknown = new RegistryError("MANIFEST_UNKNOWN", "manifest unknown", { status: 404 });
 * if (error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN") console.log(error.status);
 * ```
 */
export class RegistryError extends Error {
  /** What failed. */
  readonly code: RegistryErrorCode;
  /** The HTTP status of the answer, when the error comes from one. */
  readonly status: number | undefined;
  /** The HTTP method of the request, when there was one. */
  readonly method: string | undefined;
  /** The URL of the request, or the reference, digest or file concerned. */
  readonly url: string | undefined;
  /** The registry's error entries (empty when the answer had none). */
  readonly errors: RegistryErrorEntry[];
  /** A short reason, e.g. `repository name must be lowercase`, when there is one. */
  readonly reason: string | undefined;
  /** The wait in ms the answer's `Retry-After` asked for, when it had one. */
  readonly retryAfter: number | undefined;

  /**
   * Creates an error.
   *
   * @param code What failed.
   * @param message What was attempted and why it failed.
   * @param options Status, method, URL, registry entries, reason, `Retry-After` and cause.
   */
  constructor(code: RegistryErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RegistryError";
    this.code = code;
    this.status = options.status;
    this.method = options.method;
    this.url = options.url;
    this.errors = options.errors ?? [];
    this.reason = options.reason;
    this.retryAfter = options.retryAfter;
  }
}

/**
 * Whether `error` is a {@linkcode RegistryError} with one of `codes`.
 *
 * @param error Anything caught.
 * @param codes The codes to look for.
 * @returns `true` when it is one.
 *
 * @example
 * ```ts
 * import { isRegistryError, RegistryError } from "@distribution/metadata/registry";
 * console.log(isRegistryError(new RegistryError("TIMEOUT", "stalled"), "TIMEOUT")); // true
 * ```
 */
export function isRegistryError(
  error: unknown,
  ...codes: RegistryErrorCode[]
): error is RegistryError {
  return error instanceof RegistryError && (codes.length === 0 || codes.includes(error.code));
}

/** dockerd's message for a schema 1 image (`DeprecatedSchema1ImageError`). */
export function schema1Deprecated(ref: string | null): RegistryError {
  let message =
    "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed.";
  if (ref !== null) {
    message += ` Suggest the author of ${ref} to upgrade the image to the OCI Format or ` +
      "Docker Image manifest v2, schema 2.";
  }
  message += " More information at https://docs.docker.com/go/deprecated-image-specs/";
  return new RegistryError("SCHEMA1_DEPRECATED", message, { url: ref ?? undefined });
}

/** The registry's entries in an error body; anything not shaped as one is dropped. */
function errorEntries(body: unknown): RegistryErrorEntry[] {
  const list = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(list)) return [];
  const entries: RegistryErrorEntry[] = [];
  for (const item of list) {
    const { code, message, detail } = (item ?? {}) as Record<string, unknown>;
    if (typeof code !== "string" || code === "") continue;
    entries.push({
      code,
      message: typeof message === "string" ? message : "",
      ...(detail === undefined ? {} : { detail }),
    });
  }
  return entries;
}

/** The code an HTTP error answer stands for: its first entry's, else its status's. */
function codeOf(
  status: number,
  entries: RegistryErrorEntry[],
  notFound: RegistryErrorCode,
): RegistryErrorCode {
  const first = entries[0]?.code;
  if (first !== undefined) {
    return REGISTRY_CODES.has(first) ? first as RegistryErrorCode : "UNKNOWN";
  }
  switch (status) {
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "DENIED";
    case 404:
      return notFound;
    case 405:
      return "UNSUPPORTED";
    case 429:
      return "TOOMANYREQUESTS";
  }
  return "UNKNOWN";
}

/** An HTTP error answer, its body read up to a limit. */
export interface ErrorAnswer {
  /** The HTTP status. */
  status: number;
  /** The headers. */
  headers: Headers;
  /** The first bytes of the body (the caller bounds how many). */
  body: Uint8Array;
}

/** How {@linkcode errorFromAnswer} names and codes an answer. */
export interface ErrorAnswerOptions {
  /** What was attempted, e.g. `fetch a token from "<realm>"` (default `<METHOD> "<url>"`). */
  what?: string;
  /** The code a 404 without a registry code means (default `UNKNOWN`). */
  notFound?: RegistryErrorCode;
  /** The code whatever the answer says. */
  code?: RegistryErrorCode;
}

/** The longest summary of an error body kept in a message, in characters. */
const MAX_SUMMARY = 200;

/**
 * Turns an HTTP error answer into a {@linkcode RegistryError}: the code of its first registry
 * error entry, else of its status; the message says what was attempted and what the server
 * itself said (see {@linkcode errorSummary}); a `Retry-After` is kept.
 *
 * @param answer Status, headers and the first bytes of the body.
 * @param request The request's method and URL.
 * @param options What was attempted, and how a 404 (or any answer) is coded.
 * @returns The error to throw.
 *
 * @example
 * ```ts
 * import { errorFromAnswer } from "./errors.ts";
 *
 * const body = new TextEncoder().encode('{"details":"incorrect username or password"}');
 * const error = errorFromAnswer(
 *   { status: 401, headers: new Headers(), body },
 *   { method: "GET", url: "https://auth.example/token" },
 * );
 * console.log(error.code, error.message);
 * // UNAUTHORIZED Cannot GET "https://auth.example/token": status 401: incorrect username or password
 * ```
 */
export function errorFromAnswer(
  answer: ErrorAnswer,
  request: { method: string; url: string },
  options: ErrorAnswerOptions = {},
): RegistryError {
  const { status, headers } = answer;
  const text = new TextDecoder().decode(answer.body);
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: summarised as text
  }
  const errors = errorEntries(json);
  const summary = errorSummary(json, text, headers.get("content-type") ?? "");
  const first = errors[0];
  const said = first === undefined
    ? `status ${status}${summary === "" ? "" : `: ${summary}`}`
    : `${first.code.toLowerCase().replaceAll("_", " ")}${summary === "" ? "" : `: ${summary}`}`;
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  const what = options.what ?? `${request.method} "${request.url}"`;
  return new RegistryError(
    options.code ?? codeOf(status, errors, options.notFound ?? "UNKNOWN"),
    `Cannot ${what}: ${said}`,
    {
      status,
      method: request.method,
      url: request.url,
      errors,
      ...(summary === "" ? {} : { reason: summary }),
      ...(retryAfter === null ? {} : { retryAfter }),
    },
  );
}

/**
 * The server's own words in an error body, on one line of at most {@linkcode MAX_SUMMARY}
 * characters ("" when it said nothing): the messages (and string details) of a registry's
 * `errors[]`; a token server's `details`, `detail`, `message` or OAuth 2 `error_description`
 * and `error`; an HTML page's title (or its text); else the body's first line.
 */
function errorSummary(json: unknown, text: string, contentType: string): string {
  if (json !== null && typeof json === "object") {
    return clip(jsonWords(json as Record<string, unknown>), MAX_SUMMARY);
  }
  if (/html/i.test(contentType) || /^\s*</.test(text)) {
    const title = /<title[^>]*>([^<]*)/i.exec(text)?.[1];
    const words = clip(
      (title ?? text.replace(/<(script|style)[\s\S]*?<\/\1>|<[^>]*>/gi, " "))
        .replace(/&[a-z]+;|&#\d+;/gi, " "),
      MAX_SUMMARY - 'HTML page ""'.length,
    );
    return words === "" ? "" : `HTML page "${words}"`;
  }
  return clip(text.trim().split(/\r?\n/, 1)[0] ?? "", MAX_SUMMARY);
}

/** `text` on one line, cut to `max` characters. */
function clip(text: string, max: number): string {
  // deno-lint-ignore no-control-regex
  const line = text.replace(/[\s\x00-\x1f\x7f]+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The words of a JSON error body, registry's or token server's. */
function jsonWords(body: Record<string, unknown>): string {
  const entries = errorEntries(body);
  if (entries.length > 0) {
    return entries.map((e) =>
      [e.message, typeof e.detail === "string" ? e.detail : ""].filter((s) => s !== "").join(": ")
    ).filter((s) => s !== "").join("; ");
  }
  for (const name of ["error_description", "details", "detail", "message", "error"]) {
    const value = body[name];
    if (typeof value === "string" && value.trim() !== "") return value;
  }
  return "";
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; `null` when absent or unreadable. */
function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(date - Date.now(), 0);
}
