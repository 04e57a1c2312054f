// The progress events of a blob that moves no byte: found, mounted, or skipped as foreign.
import type { TransferProgress } from "../types.ts";

/**
 * Tells `onProgress` that the blob `digest` of `size` bytes was found (`exists`), mounted
 * (`mount`, `from` the repository) or skipped as foreign (`skip`: nothing done of it).
 *
 * @param onProgress The transfer's listener, if any.
 * @param action What became of the blob.
 * @param blob Its digest and size.
 * @param from For `mount`: the repository's full name.
 */
export function told(
  onProgress: ((event: TransferProgress) => void) | undefined,
  action: "exists" | "mount" | "skip",
  blob: { digest: string; size: number },
  from?: string,
): void {
  const { digest, size } = blob;
  const current = action === "skip" ? 0 : size;
  onProgress?.({ action, digest, current, total: size, ...(from === undefined ? {} : { from }) });
}
