/**
 * A blob's upload: a session started (or a blob mounted from another repository), its bytes
 * sent, the session closed with the digest. A failure the policy retries (no answer, a cut,
 * `408`, `429`, `5xx`, an expired session) cancels the session and starts again from the
 * source in a new one; the source's own failure is never retried; a second stall in a row
 * ends it. Every request of the upload, the retries of each included, spends one
 * {@linkcode RetryBudget}.
 *
 * @module
 */
import { discard } from "../transport/http.ts";
import { isRetryable, type RetryBudget } from "../transport/retry.ts";
import { answeredUrl } from "../transport/url.ts";
import { digestOf } from "../_digest.ts";
import { uploadBlob } from "../_upload.ts";
import { isRegistryError, RegistryError } from "../errors.ts";
import type {
  BlobCreateOptions,
  BlobCreateResult,
  BlobSource,
  BlobUploadOptions,
  BlobWriter,
  Descriptor,
} from "../types.ts";
import { HttpBlobWriter } from "./blob_writer.ts";
import { sendBlob } from "./blob_send.ts";
import {
  apiPath,
  checkAnsweredDigest,
  declaredLength,
  OCTET_STREAM,
  type RepositoryContext,
  request,
} from "./context.ts";

/** Uploads `source` to the repository (see the module's description). */
export async function uploadFrom(
  ctx: RepositoryContext,
  source: BlobSource,
  options: BlobUploadOptions = {},
): Promise<Descriptor> {
  const retry = ctx.client.retryBudget(options.onRetry);
  let session: BlobWriter | null = options.session ?? null;
  let stalls = 0; // in a row
  let sourceFailed = false;
  return await retry.run(async () => {
    // The source's own failure (a file error, a digest check) must not pass for the
    // network's, which is how fetch reports it: it is remembered here and never retried.
    let sourceError: unknown = null;
    try {
      if (session === null) {
        const created = await createUpload(ctx, {}, retry);
        if (created.kind !== "upload") return created.descriptor;
        session = created.writer;
      }
      let reader: ReadableStreamDefaultReader<Uint8Array>;
      try {
        reader = (await source.open()).getReader();
      } catch (error) {
        sourceError = error;
        throw error;
      }
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          let result: ReadableStreamReadResult<Uint8Array>;
          try {
            result = await reader.read();
          } catch (error) {
            sourceError = error;
            return controller.error(error);
          }
          if (result.done) return controller.close();
          controller.enqueue(result.value);
          sent += result.value.length;
          options.onProgress?.(sent);
        },
        cancel: (reason) => reader.cancel(reason),
      }, { highWaterMark: 0 });
      const chunkSize = options.chunkSize ?? ctx.client.uploadChunkSize;
      return await sendBlob(session, body, source, chunkSize);
    } catch (error) {
      if (session !== null) await session.cancel();
      session = null;
      sourceFailed = sourceError !== null;
      stalls = isRegistryError(error, "TIMEOUT") ? stalls + 1 : 0;
      throw sourceError ?? error;
    }
  }, {
    // A registry that stalls twice in a row is not waited for again.
    again: (error) =>
      !sourceFailed && stalls < 2 &&
      (isRetryable(error) || isRegistryError(error, "BLOB_UPLOAD_UNKNOWN")),
  });
}

/**
 * Starts an upload session (`POST`), or mounts a blob from another repository; its requests
 * spend `retry` (default: a budget of its own).
 */
export async function createUpload(
  ctx: RepositoryContext,
  options: BlobCreateOptions = {},
  retry: RetryBudget = ctx.client.retryBudget(),
): Promise<BlobCreateResult> {
  let path = apiPath(ctx, "blobs", "uploads/");
  const scopes = [...ctx.scopes];
  const mount = options.mountFrom;
  if (mount !== undefined) {
    path += `?mount=${encodeURIComponent(mount.digest)}&from=${
      encodeURIComponent(mount.repository)
    }`;
    scopes.push(`repository:${mount.repository}:pull`);
  }
  const response = await request(ctx, "POST", path, { scopes, retry });
  await discard(response);
  if (response.status === 201 && mount !== undefined) {
    checkAnsweredDigest(response, mount.digest, `the mount of "${mount.digest}"`);
    return {
      kind: "mounted",
      status: 201,
      descriptor: {
        mediaType: OCTET_STREAM,
        size: declaredLength(response),
        digest: mount.digest,
      },
    };
  }
  const location = response.headers.get("location");
  if (response.status !== 202 || location === null) {
    throw new RegistryError(
      "UNKNOWN",
      `Cannot start an upload to "${ctx.name}": status ${response.status}` +
        (location === null ? " without a Location" : ""),
      { status: response.status, method: "POST", url: response.url },
    );
  }
  const url = answeredUrl(location, response.url, "upload Location");
  return {
    kind: "upload",
    status: 202,
    writer: new HttpBlobWriter(ctx.client, url, scopes, retry),
  };
}

/** Uploads a whole blob through a new session, in chunks of `chunkSize` when given. */
export async function putBlob(
  ctx: RepositoryContext,
  data: Uint8Array,
  mediaType = OCTET_STREAM,
  chunkSize?: number,
): Promise<Descriptor> {
  const digest = await digestOf(data);
  const created = await createUpload(ctx);
  if (created.kind !== "upload") return created.descriptor;
  return { ...(await uploadBlob(created.writer, data, digest, chunkSize)), mediaType };
}
