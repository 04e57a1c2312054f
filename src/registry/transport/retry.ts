/**
 * When and how long to wait before trying a request again: network failures, stalls, cut
 * bodies, `408`, `429` and `5xx` answers are retried with full-jitter exponential backoff (a
 * `Retry-After` the registry sends is honoured, up to {@linkcode MAX_RETRY_AFTER}), as dockerd
 * retries a download 5 times. Anything else (a `404`, a digest that does not match, an abort)
 * fails at once.
 *
 * @module
 */
import { isRegistryError, RegistryError, type RegistryErrorCode } from "../errors.ts";

/** How often and how patiently a transfer is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5, as dockerd's downloads and uploads). */
  attempts?: number;
  /** The first backoff ceiling in ms, doubled per attempt (default 500). */
  baseDelay?: number;
  /** The largest backoff ceiling in ms (default 10,000). */
  maxDelay?: number;
}

/** The policy used when a call gives none. */
export const DEFAULT_RETRY: Required<RetryPolicy> = {
  attempts: 5,
  baseDelay: 500,
  maxDelay: 10_000,
};

/** The longest `Retry-After` honoured, in ms; a registry asking for more waits this long. */
export const MAX_RETRY_AFTER = 60_000;

/** Statuses that mean "try again later". */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Codes of failures without an answer, or with a cut one. */
const RETRY_CODES = new Set<RegistryErrorCode>(["UNREACHABLE", "TIMEOUT", "TRUNCATED"]);

/**
 * Whether an answer's status is worth another attempt.
 *
 * @param status The HTTP status.
 * @returns `true` for 408, 429 and 5xx but 501 and 505.
 */
export function isRetryStatus(status: number): boolean {
  return RETRY_STATUSES.has(status) || (status > 505 && status < 600);
}

/**
 * Whether a failure is worth another attempt: no answer, a stall, a cut body, or an answer
 * with a retryable status.
 *
 * @param error Anything caught.
 * @returns `true` when it is.
 */
export function isRetryable(error: unknown): error is RegistryError {
  if (!isRegistryError(error)) return false;
  if (RETRY_CODES.has(error.code)) return true;
  return error.status !== undefined && isRetryStatus(error.status);
}

/**
 * `Retry-After` in ms: delta-seconds or an HTTP date; `null` when absent or unreadable.
 *
 * @param value The header.
 * @returns The wait, at most {@linkcode MAX_RETRY_AFTER}.
 */
export function parseRetryAfter(value: string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const date = Date.parse(text);
    if (Number.isNaN(date)) return null;
    ms = date - Date.now();
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER);
}

/**
 * The wait before attempt `attempt + 1`: full jitter under an exponential ceiling, and never
 * less than the registry's `Retry-After`.
 *
 * @param policy The policy.
 * @param attempt Attempts made so far (1 after the first).
 * @param retryAfter The registry's `Retry-After` in ms, if any.
 * @returns Milliseconds.
 */
export function retryDelay(
  policy: Required<RetryPolicy>,
  attempt: number,
  retryAfter: number | null = null,
): number {
  const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** Math.max(0, attempt - 1));
  return Math.max(Math.random() * ceiling, retryAfter ?? 0);
}

/**
 * The policy with its defaults filled in.
 *
 * @param policy What the caller set.
 * @returns Every field.
 */
export function retryPolicy(policy: RetryPolicy | undefined): Required<RetryPolicy> {
  return { ...DEFAULT_RETRY, ...policy };
}

/**
 * Waits `ms`, or fails with `ABORTED` as soon as `signal` aborts.
 *
 * @param ms Milliseconds.
 * @param signal The call's signal.
 * @returns When the time is up.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => {
      clearTimeout(timer);
      reject(
        new RegistryError("ABORTED", "Cannot wait to try again: aborted", {
          cause: signal?.reason,
        }),
      );
    };
    if (signal?.aborted) return aborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }, ms);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
