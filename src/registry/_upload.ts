// A whole blob through an upload session: in PATCH chunks of `chunkSize` when it is larger,
// else in the closing PUT. A failed upload is cancelled.
import type { BlobWriter, Descriptor } from "./types.ts";

/** Sends `data` as `digest` through `writer`; `onProgress` hears the bytes sent so far. */
export async function uploadBlob(
  writer: BlobWriter,
  data: Uint8Array,
  digest: string,
  chunkSize = 0,
  onProgress?: (current: number) => void,
): Promise<Descriptor> {
  try {
    if (chunkSize > 0 && data.length > chunkSize) {
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        await writer.write(data.subarray(offset, offset + chunkSize));
        onProgress?.(Math.min(offset + chunkSize, data.length));
      }
      return await writer.commit(digest);
    }
    const descriptor = await writer.commit(digest, data);
    onProgress?.(data.length);
    return descriptor;
  } catch (error) {
    await writer.cancel().catch(() => {});
    throw error;
  }
}
