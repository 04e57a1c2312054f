// Turns a (namespace, key) pair into a relative file path, cleaned as Go's filepath.Join
// does, and refuses what could escape the store or collide with its temp files.
import { MetadataError } from "./errors.ts";

const encoder = new TextEncoder();
/** Linux NAME_MAX: longer segments would fail later with a less helpful error. */
const MAX_SEGMENT_BYTES = 255;
/** V2MetadataService's namespaces, as dockerd names them: DiffID → entries, digest → DiffID. */
export const BY_DIFFID = "v2metadata-by-diffid";
export const BY_DIGEST = "diffid-by-digest";
/** dockerd keeps this many entries per DiffID, dropping the oldest. */
export const MAX_ENTRIES = 50;
/** The prefix Docker's atomic writer gives its temp files. */
export const TEMP_PREFIX = ".tmp-";
/**
 * Names that need no cleaning or checks when at most 255 bytes long: ASCII segments, none
 * starting with `.` (so no `.`, `..` or `.tmp-`), no empty segment, no NUL or backslash.
 * Such a name passes every rule below unchanged; anything else takes the full path.
 */
const SIMPLE = /^[\w:,+@=-][\w.:,+@=-]*(?:\/[\w:,+@=-][\w.:,+@=-]*)*$/;

/**
 * Returns `namespace/key` cleaned like Go's `filepath.Join` (empty and `.` segments dropped),
 * or throws `EINVAL` for NUL, `\`, `..`, `.tmp-` segments or a key that cleans to nothing,
 * and `ENAMETOOLONG` for a segment over 255 bytes.
 */
export function keyPath(namespace: string, key: string): string {
  if (
    namespace.length <= MAX_SEGMENT_BYTES && key.length <= MAX_SEGMENT_BYTES &&
    SIMPLE.test(namespace) && SIMPLE.test(key)
  ) return `${namespace}/${key}`;
  const segments: string[] = [];
  addSegments(segments, namespace, namespace, key);
  const namespaceLength = segments.length;
  addSegments(segments, key, namespace, key);
  if (segments.length === namespaceLength) {
    throw invalid(namespace, key, "the key is empty after cleaning");
  }
  return segments.join("/");
}

/**
 * Returns a namespace cleaned as {@linkcode keyPath} cleans it, for listing its keys; `EINVAL`
 * for what `keyPath` refuses and for a namespace that cleans to nothing (the whole store).
 */
export function namespacePath(namespace: string): string {
  const segments: string[] = [];
  addSegments(segments, namespace, namespace, "");
  if (segments.length === 0) throw invalid(namespace, "", "the namespace is empty after cleaning");
  return segments.join("/");
}

function addSegments(
  into: string[],
  text: string,
  namespace: string,
  key: string,
): void {
  for (const segment of text.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") throw invalid(namespace, key, 'it contains a ".." segment');
    if (segment.startsWith(TEMP_PREFIX)) {
      throw invalid(namespace, key, `a segment starts with "${TEMP_PREFIX}"`);
    }
    if (segment.includes("\0")) throw invalid(namespace, key, "it contains NUL");
    if (segment.includes("\\")) throw invalid(namespace, key, "it contains a backslash");
    if (
      segment.length > MAX_SEGMENT_BYTES / 3 && encoder.encode(segment).length > MAX_SEGMENT_BYTES
    ) {
      throw new MetadataError(
        "ENAMETOOLONG",
        `Cannot use key "${namespace}/${key}": a segment is longer than ${MAX_SEGMENT_BYTES} bytes`,
        { path: `${namespace}/${key}` },
      );
    }
    into.push(segment);
  }
}

function invalid(namespace: string, key: string, why: string): MetadataError {
  return new MetadataError("EINVAL", `Cannot use key "${namespace}/${key}": ${why}`, {
    path: `${namespace}/${key}`,
  });
}

/**
 * Splits a digest or DiffID at its first `:` into the store key `<alg>/<encoded>`, as
 * Docker's `diffIDKey`/`digestKey` do; `EINVAL` where Go would panic (no `:`) and where the
 * part after `:` cleans to nothing (`sha256:`, `sha256:/`, `sha256:.`): Go would make the
 * file `<namespace>/sha256`, after which no `sha256:` key can be written.
 */
export function digestKey(digest: string): string {
  const colon = digest.indexOf(":");
  if (colon < 0) throw invalidDigest(digest, 'it has no ":"');
  const encoded = digest.slice(colon + 1);
  if (encoded.split("/").every((segment) => segment === "" || segment === ".")) {
    throw invalidDigest(digest, 'nothing follows the ":"');
  }
  return `${digest.slice(0, colon)}/${encoded}`;
}

function invalidDigest(digest: string, why: string): MetadataError {
  return new MetadataError("EINVAL", `Cannot use digest "${digest}": ${why}`, { path: digest });
}
