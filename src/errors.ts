/**
 * The one error type the library raises.
 *
 * @module
 */

/**
 * Every failure of the library: `code` is the errno name (`ENOENT`, `EISDIR`, `ENOTDIR`,
 * `EEXIST`, `ENOTEMPTY`, `EINVAL`, `EACCES`, `ENOSPC`, `ENAMETOOLONG`, …) on every runtime
 * and adapter alike, `path` the file or key concerned, `reason` why without what or where (for
 * display beside a path; never parse `message`), and `cause` the runtime's own error.
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
   * Why it failed, without what was attempted or where (e.g. `no such file or directory`,
   * `it is a FIFO, socket or device, not a regular file`): what to show beside a path that is
   * already shown. The whole message when the error has no shorter form.
   */
  readonly reason: string;

  /**
   * Creates an error.
   *
   * @param code The errno name, e.g. `ENOENT`.
   * @param message What was attempted and why it failed.
   * @param options The path concerned, the underlying error, and the reason alone (default:
   * the message).
   */
  constructor(
    code: string,
    message: string,
    options: { path?: string; cause?: unknown; reason?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MetadataError";
    this.code = code;
    this.path = options.path;
    this.reason = options.reason ?? message;
  }
}
