/**
 * When and how long to wait before trying again, and when to stop. Network failures, stalls,
 * cut bodies, `408`, `429` and `5xx` answers are retried with full-jitter exponential backoff,
 * never sooner than a `Retry-After` the registry sent. One operation (a request, a blob's
 * download with its resumes, a blob's upload with its sessions) spends one
 * {@linkcode RetryBudget}: its attempts are counted once across every loop nested in it, and
 * its waits add up to at most `maxWait`. Anything else (a `404`, a digest that does not
 * match, an abort) fails at once.
 *
 * @module
 */
import { isRegistryError, RegistryError, type RegistryErrorCode } from "../errors.ts";

/** How often and how patiently one operation is retried. */
export interface RetryPolicy {
  /**
   * Attempts in all for one operation, the first included, however its retries nest (default
   * 5, as dockerd's downloads and uploads).
   */
  attempts?: number;
  /** The first backoff ceiling in ms, doubled per attempt (default 500). */
  baseDelay?: number;
  /** The largest backoff ceiling in ms (default 10,000). */
  maxDelay?: number;
  /** The most time in ms one operation spends waiting between its attempts, in all (default 60,000). */
  maxWait?: number;
}

/** The policy used when a call gives none. */
export const DEFAULT_RETRY: Required<RetryPolicy> = {
  attempts: 5,
  baseDelay: 500,
  maxDelay: 10_000,
  maxWait: 60_000,
};

/** The longest `Retry-After` honoured, in ms: a registry asking for more is not retried. */
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
 * The policy with its defaults filled in.
 *
 * @param policy What the caller set.
 * @returns Every field.
 */
export function retryPolicy(policy: RetryPolicy | undefined): Required<RetryPolicy> {
  return { ...DEFAULT_RETRY, ...policy };
}

/** Told before each new attempt: the attempts made and the failure of the last one. */
export type OnRetry = (attempt: number, error: RegistryError) => void;

/** What a loop run by a {@linkcode RetryBudget} retries. */
export interface RetryOptions {
  /** Whether this loop tries again after `error` (default {@linkcode isRetryable}). */
  again?: (error: unknown) => boolean;
}

/** Failures a budget gave up on: a loop around the one that gave up throws them as they are. */
const givenUp = new WeakSet<object>();

/**
 * The attempts and the waiting one operation has left under a {@linkcode RetryPolicy}. The
 * loops nested in one operation share it, so that a request retried inside an upload retried
 * as a whole counts each request once.
 *
 * @example Retry a flaky step within a policy
 * ```ts
 * import { RetryBudget, retryPolicy } from "./retry.ts";
 * import { RegistryError } from "../errors.ts";
 *
 * let calls = 0;
 * const budget = new RetryBudget(retryPolicy({ attempts: 3, baseDelay: 1 }));
 * const value = await budget.run(async () => {
 *   if (++calls < 3) throw new RegistryError("UNREACHABLE", "no answer");
 *   return "done";
 * });
 * console.log(value, calls); // done 3
 * ```
 */
export class RetryBudget {
  readonly #policy: Required<RetryPolicy>;
  readonly #signal: AbortSignal | undefined;
  readonly #onRetry: OnRetry | undefined;
  #attempts = 1;
  #waited = 0;

  /**
   * @param policy The policy, every field set (see {@linkcode retryPolicy}).
   * @param signal Aborts a wait with `ABORTED`.
   * @param onRetry Told before each new attempt of the operation, whichever loop makes it.
   */
  constructor(policy: Required<RetryPolicy>, signal?: AbortSignal, onRetry?: OnRetry) {
    this.#policy = policy;
    this.#signal = signal;
    this.#onRetry = onRetry;
  }

  /** Attempts made so far, the one under way included. */
  get attempts(): number {
    return this.#attempts;
  }

  /**
   * Runs `attempt` until it succeeds or {@linkcode RetryBudget.after} throws.
   *
   * @param attempt One try.
   * @param options What is retried.
   * @returns What the successful try returned.
   */
  async run<T>(attempt: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        await this.after(error, options);
      }
    }
  }

  /**
   * After a failed attempt: waits until the next one may start, or throws. A failure that
   * `options.again` refuses is thrown as it is; one the budget cannot afford (no attempt
   * left, a `Retry-After` past {@linkcode MAX_RETRY_AFTER} or past the waiting left, no
   * waiting left) is thrown as a {@linkcode RegistryError} of the same code and status whose
   * message says why it gave up.
   *
   * @param error The failure.
   * @param options What is retried.
   * @returns When it is time for the next attempt.
   */
  async after(error: unknown, options: RetryOptions = {}): Promise<void> {
    if (typeof error === "object" && error !== null && givenUp.has(error)) throw error;
    if (!(options.again ?? isRetryable)(error) || !isRegistryError(error)) throw error;
    const wait = this.#nextWait(error);
    if (typeof wait === "string") throw this.#giveUp(error, wait);
    this.#onRetry?.(this.#attempts, error);
    this.#attempts++;
    this.#waited += wait;
    await sleep(wait, this.#signal);
  }

  /** The wait before the next attempt, or why there is none. */
  #nextWait(error: RegistryError): number | string {
    const policy = this.#policy;
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
    if (this.#attempts >= policy.attempts) {
      return `after ${this.#attempts} attempt${this.#attempts === 1 ? "" : "s"}`;
    }
    const left = policy.maxWait - this.#waited;
    const asked = error.retryAfter;
    if (asked !== undefined && asked > Math.min(MAX_RETRY_AFTER, left)) {
      return `as the registry asks to wait ${seconds(asked)}, more than the ${
        seconds(Math.min(MAX_RETRY_AFTER, left))
      } ${asked > MAX_RETRY_AFTER ? "honoured" : "of waiting left"}`;
    }
    if (left <= 0) {
      return `after ${this.#attempts} attempts and ${seconds(this.#waited)} of waiting`;
    }
    const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (this.#attempts - 1));
    return Math.min(Math.max(Math.random() * ceiling, asked ?? 0), left);
  }

  #giveUp(error: RegistryError, why: string): RegistryError {
    const final = new RegistryError(error.code, `${error.message} (gave up ${why})`, {
      status: error.status,
      method: error.method,
      url: error.url,
      errors: error.errors,
      reason: error.reason,
      retryAfter: error.retryAfter,
      cause: error,
    });
    givenUp.add(final);
    return final;
  }
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
