/**
 * The one error type the library raises.
 *
 * @module
 */

/**
 * Every failure of the library: `code` is the errno name (`ENOENT`, `EISDIR`, `ENOTDIR`,
 * `EEXIST`, `ENOTEMPTY`, `EINVAL`, `EACCES`, `ENOSPC`, `ENAMETOOLONG`, …) on every runtime
 * and adapter alike, `path` the file or key concerned, and `cause` the runtime's own error.
 *
 * @example Tell a missing key from other failures
 * ```ts
 * import { FSMetadataStore, MemoryFileSystem, MetadataError } from "@distribution/metadata";
 *
 * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
 * try {
 *   await store.get("v1id", "missing");
 * } catch (error) {
 *   if (!(error instanceof MetadataError) || error.code !== "ENOENT") throw error;
 * }
 * ```
 */
export class MetadataError extends Error {
  /** The errno name of the failure, e.g. `ENOENT` or `EINVAL`. */
  readonly code: string;
  /** The path (or namespace/key) the failure concerns, when there is one. */
  readonly path: string | undefined;

  /**
   * Creates an error.
   *
   * @param code The errno name, e.g. `ENOENT`.
   * @param message What was attempted and why it failed.
   * @param options The path concerned and the underlying error.
   */
  constructor(
    code: string,
    message: string,
    options: { path?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MetadataError";
    this.code = code;
    this.path = options.path;
  }
}
