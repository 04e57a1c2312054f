/**
 * A blob's bytes through an upload session: one streamed `PUT`, or `PATCH` chunks of
 * `chunkSize` each streamed from the source's own chunks; a source that ends early or grows
 * past its size fails with `SIZE_INVALID`.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { BlobSource, BlobWriter, Descriptor } from "../types.ts";
import { HttpBlobWriter } from "./blob_writer.ts";

/** Re-cuts a stream into chunks of exactly `size` bytes (the last one shorter). */
async function* rechunk(
  stream: ReadableStream<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let length = 0;
  for await (const chunk of stream) {
    for (let offset = 0; offset < chunk.length;) {
      const taken = Math.min(size - length, chunk.length - offset);
      buffer.set(chunk.subarray(offset, offset + taken), length);
      length += taken;
      offset += taken;
      if (length === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        length = 0;
      }
    }
  }
  if (length > 0) yield buffer.subarray(0, length);
}

function sizeChanged(source: BlobSource, detail: string): RegistryError {
  return new RegistryError(
    "SIZE_INVALID",
    `Cannot upload "${source.digest}": its source ${detail} the ${source.size} bytes it had`,
    { url: source.digest, reason: `source ${detail} ${source.size} bytes` },
  );
}

/**
 * `body` in `PATCH` requests of `chunkSize` bytes, each streamed from the source's own chunks
 * (one that straddles two requests is split, not copied): gathering each into a buffer cost
 * Node, whose `fetch` copies a buffer body twice more, ~40 MiB and ~10% of a push.
 */
async function patchStreamed(
  writer: HttpBlobWriter,
  body: ReadableStream<Uint8Array>,
  source: BlobSource,
  chunkSize: number,
): Promise<void> {
  const reader = body.getReader();
  // Both are set by the parts' pull, which TypeScript does not follow.
  let rest = null as Uint8Array | null;
  let failure = null as RegistryError | null;
  for (let sent = 0; sent < source.size;) {
    const length = Math.min(chunkSize, source.size - sent);
    let given = 0;
    let cancelled = false;
    const part = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk = rest;
        rest = null;
        if (chunk === null) {
          const result = await reader.read();
          // A read pending when the failed request cancelled the part ends too: not the source's.
          if (cancelled) return;
          if (result.done) {
            failure = sizeChanged(source, `ended after ${sent + given} of`);
            return controller.error(failure);
          }
          chunk = result.value;
        }
        const taken = Math.min(chunk.length, length - given);
        if (taken < chunk.length) rest = chunk.subarray(taken);
        controller.enqueue(taken < chunk.length ? chunk.subarray(0, taken) : chunk);
        given += taken;
        if (given === length) controller.close();
      },
      cancel: (reason) => {
        cancelled = true;
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    try {
      await writer.writeStream(part, length);
    } catch (error) {
      throw failure ?? error;
    }
    sent += length;
  }
  if ((rest !== null && rest.length > 0) || !(await reader.read()).done) {
    await reader.cancel().catch(() => {});
    throw sizeChanged(source, "grew past");
  }
}

/** A blob's bytes through a session: `PATCH` chunks of `chunkSize`, or one streamed `PUT`. */
export async function sendBlob(
  writer: BlobWriter,
  body: ReadableStream<Uint8Array>,
  source: BlobSource,
  chunkSize: number,
): Promise<Descriptor> {
  if (chunkSize > 0 && source.size > chunkSize) {
    if (writer instanceof HttpBlobWriter) await patchStreamed(writer, body, source, chunkSize);
    else for await (const chunk of rechunk(body, chunkSize)) await writer.write(chunk);
    return await writer.commit(source.digest);
  }
  return await writer.commit(source.digest, body, source.size);
}
