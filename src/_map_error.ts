// One place that turns whatever a runtime threw into a MetadataError.
import { MetadataError } from "./errors.ts";

const REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EISDIR: "it is a directory",
  ENOTDIR: "a parent is not a directory",
  EEXIST: "a directory is in the way",
  ENOTEMPTY: "the directory is not empty",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only filesystem",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  ENAMETOOLONG: "a name is too long",
  ELOOP: "too many levels of symbolic links",
  EIO: "input/output error",
};

/**
 * Deno's permission errors carry no errno: a missing `--allow-read`/`--allow-write` is, to
 * the caller, permission denied.
 */
const DENO_PERMISSION_ERRORS = new Set(["NotCapable", "PermissionDenied"]);

/** The errno name of a runtime error (`code` on Node, Bun and Deno errors), else `EIO`. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  return DENO_PERMISSION_ERRORS.has((error as Error | null)?.name!) ? "EACCES" : "EIO";
}

/**
 * A MetadataError whose message is `Cannot <action> "<what>" at "<path>": <reason>`, with
 * `reason` and `path` as fields.
 */
export function failure(
  code: string,
  action: string,
  what: string,
  path: string,
  reason: string,
  cause?: unknown,
): MetadataError {
  return new MetadataError(code, `Cannot ${action} "${what}" at "${path}": ${reason}`, {
    path,
    reason,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Wraps `error` as a MetadataError for `action` ("get", "set", …) on `what` at `path`;
 * a MetadataError passes through. `code` overrides the runtime's code.
 */
export function mapError(
  error: unknown,
  action: string,
  what: string,
  path: string,
  code: string = errorCode(error),
): MetadataError {
  if (error instanceof MetadataError) return error;
  const reason = REASONS[code] ?? (error instanceof Error ? error.message : String(error));
  return failure(code, action, what, path, reason, error);
}
