/**
 * A blob's download as one stream, checked as it is read: a body cut or stalled midway is
 * resumed with a `Range` request (or read again from its start and skipped to where it was)
 * while each attempt brings new bytes. The first `GET`, every resume and every retry of
 * those spend one {@linkcode RetryBudget}.
 *
 * @module
 */
import { discard, type HttpResponse } from "../transport/http.ts";
import { isRetryable } from "../transport/retry.ts";
import { verifying } from "../_verify.ts";
import { ReadTarget, type Relayed, relaySource, relayStream } from "../../_relay.ts";
import { RegistryError } from "../errors.ts";
import type { BlobOpenOptions } from "../types.ts";
import { apiPath, declaredLength, type RepositoryContext, request, tooLarge } from "./context.ts";

/** Opens blob `digest` of the repository as a stream (see the module's description). */
export async function openBlob(
  ctx: RepositoryContext,
  digest: string,
  options: BlobOpenOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const url = apiPath(ctx, "blobs", digest);
  const what = `blob "${digest}" from "${ctx.name}"`;
  const maxBytes = options.maxBytes ?? Infinity;
  const onProgress = ctx.onProgress;
  let received = 0;
  let total = 0;
  const retry = ctx.client.retryBudget((attempt, error) =>
    onProgress?.({ action: "retry", digest, current: received, total, attempt, error })
  );
  const get = (headers: Record<string, string>) =>
    request(ctx, "GET", url, { headers, notFound: "BLOB_UNKNOWN", retry });
  let response = await get({});
  total = declaredLength(response);
  if (total > maxBytes) {
    await discard(response);
    throw tooLarge(what, maxBytes, response.url);
  }
  let source = relaySource(response.body ?? emptyBody());
  let skip = 0; // bytes a restarted answer repeats
  let receivedAtFailure = -1;
  const body = relayStream(source.byob, {
    async pull(into): Promise<Relayed> {
      const target = into && new ReadTarget(into);
      for (;;) {
        let result: Relayed;
        try {
          result = await source.read(into);
          if (result.done) return result;
        } catch (error) {
          // A cut or stalled body resumes while the budget lasts and each attempt brings bytes.
          const progressed = received > receivedAtFailure;
          receivedAtFailure = received;
          await retry.after(error, { again: (e) => progressed && isRetryable(e) });
          response = await get(received > 0 ? { range: `bytes=${received}-` } : {});
          skip = resumedAt(response, received, what);
          source = relaySource(response.body ?? emptyBody());
          into = target?.again();
          continue;
        }
        let chunk = result.value;
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          // A reader's buffer is handed back from its start: the kept bytes move there.
          chunk = target === undefined
            ? chunk.subarray(dropped)
            : chunk.copyWithin(0, dropped).subarray(0, chunk.length - dropped);
          if (chunk.length === 0) {
            into = target?.again(chunk);
            continue;
          }
        }
        received += chunk.length;
        if (received > maxBytes) {
          await source.cancel().catch(() => {});
          throw tooLarge(what, maxBytes, response.url);
        }
        onProgress?.({ action: "pull", digest, current: received, total });
        return { done: false, value: chunk };
      }
    },
    cancel: (reason) => source.cancel(reason),
  });
  if (options.verify === false) return body;
  return verifying(body, digest, what, maxBytes);
}

function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/**
 * Where an answer to a resumed download starts: a `206` must start at `received` (nothing to
 * skip); any other answer is the whole blob again, whose first `received` bytes are skipped.
 */
function resumedAt(response: HttpResponse, received: number, what: string): number {
  if (response.status !== 206) return received;
  const range = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
  if (range === null || Number(range[1]) !== received) {
    throw new RegistryError(
      "MALFORMED",
      `Cannot resume ${what} at byte ${received}: the registry answered ` +
        `Content-Range "${response.headers.get("content-range")}"`,
      { status: 206, method: "GET", url: response.url },
    );
  }
  return 0;
}
