/**
 * An error answer read within its limit: at most {@linkcode LIMITS}`.errorBody` bytes of its
 * body are read (the rest is discarded), then {@linkcode errorFromAnswer} says what it means.
 *
 * @module
 */
import { type ErrorAnswerOptions, errorFromAnswer, type RegistryError } from "../errors.ts";
import { discard, type HttpResponse } from "./http.ts";
import { concat, LIMITS } from "./limits.ts";

/**
 * The {@linkcode RegistryError} an error answer stands for.
 *
 * @param response The answer (its body is consumed).
 * @param request The request's method and URL.
 * @param options What was attempted, and how the answer is coded.
 * @returns The error to throw.
 */
export async function errorFromResponse(
  response: HttpResponse,
  request: { method: string; url: string },
  options: ErrorAnswerOptions = {},
): Promise<RegistryError> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    try {
      while (length < LIMITS.errorBody) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value.subarray(0, LIMITS.errorBody - length));
        length += Math.min(value.length, LIMITS.errorBody - length);
      }
    } catch {
      // stalled or cut: what came tells what it can
    } finally {
      reader.releaseLock();
    }
    await discard(response);
  }
  return errorFromAnswer(
    {
      status: response.status,
      headers: response.headers,
      body: concat(chunks, length),
    },
    request,
    options,
  );
}
