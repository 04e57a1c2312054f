/**
 * One HTTP exchange under the caller's `AbortSignal` and an idle timeout: the wait for the
 * answer and every pause between two chunks of its body are bounded, a body that ends before
 * its `Content-Length` is `TRUNCATED`, and every failure is a {@linkcode RegistryError}.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { UPLOAD_GRACE_RATE } from "./limits.ts";
import type { Transport, TransportResponse } from "./transport.ts";
import { type Relayed, relaySource, relayStream } from "../../_relay.ts";
import { describeNetworkFailure, tlsFailure } from "./_network_failure.ts";

/** The limits one call runs under. */
export interface CallLimits {
  /** Aborts everything the call does (`ABORTED`). */
  signal?: AbortSignal | undefined;
  /** Milliseconds without a byte before `TIMEOUT`. */
  idleTimeout: number;
}

/** An answer whose body is read under the call's limits. */
export interface HttpResponse {
  /** The HTTP status. */
  readonly status: number;
  /** The headers. */
  readonly headers: Headers;
  /** The final URL (after redirects). */
  readonly url: string;
  /** The body, or `null`; reading it can fail with `TIMEOUT`, `ABORTED` or `TRUNCATED`. */
  readonly body: ReadableStream<Uint8Array> | null;
}

/** A request as the transport sends it. */
export interface HttpRequest {
  /** The method. */
  method: string;
  /** The absolute URL. */
  url: string;
  /** The headers. */
  headers?: Record<string, string>;
  /**
   * The body: whole (it can be sent again, after a challenge or a failure), or a stream (sent
   * once, as it is read).
   */
  body?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** The size of a streamed body, when known (for the idle timeout's grace). */
  bodySize?: number;
}

/**
 * Discards an answer's body.
 *
 * @param response The answer.
 * @returns When the body is cancelled.
 */
export async function discard(response: HttpResponse): Promise<void> {
  await response.body?.cancel().catch(() => {});
}

/**
 * Sends a request with `transport`, failing with `TIMEOUT` when no byte arrives for
 * `limits.idleTimeout` ms (headers, then each body chunk) and with `ABORTED` when
 * `limits.signal` aborts; a network failure is `UNREACHABLE`.
 *
 * @param transport What carries the request.
 * @param request Method, URL, headers and body.
 * @param limits Signal and idle timeout.
 * @returns The answer, whatever its status.
 */
export async function send(
  transport: Transport,
  request: HttpRequest,
  limits: CallLimits,
): Promise<HttpResponse> {
  const { method, url } = request;
  const what = `${method} "${url}"`;
  const idle = new IdleTimer(limits, what, { method, url });
  idle.check();
  let payload = request.body;
  const bodySize = payload === undefined
    ? 0
    : payload instanceof ReadableStream
    ? request.bodySize ?? 0
    : payload.length;
  idle.arm(limits.idleTimeout + (bodySize / UPLOAD_GRACE_RATE) * 1000);
  if (payload instanceof ReadableStream && request.bodySize === undefined) {
    // A body of unknown length may take any time: the wait restarts with each chunk sent.
    payload = payload.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          idle.touch();
          controller.enqueue(chunk);
        },
      }),
    );
  }
  let response: TransportResponse;
  try {
    response = await idle.race(transport({
      method,
      url,
      headers: request.headers ?? {},
      body: payload,
      signal: idle.signal,
    }));
  } catch (cause) {
    idle.stop();
    const reason = tlsFailure(cause) ?? undefined;
    throw idle.failure(
      cause,
      "UNREACHABLE",
      `Cannot ${what}: ${describeNetworkFailure(cause)}`,
      reason,
    );
  }
  const headers = response.headers;
  if (response.body === null) {
    idle.stop();
    return { status: response.status, headers, url: response.url, body: null };
  }
  idle.arm(limits.idleTimeout);
  const source = relaySource(response.body);
  // A decoded Content-Encoding leaves a Content-Length that counts other bytes.
  const declared = response.decoded ? null : headers.get("content-length");
  const expected = declared === null || !/^\d+$/.test(declared) ? null : Number(declared);
  const where = { method, url, status: response.status };
  let received = 0;
  let controller!: { error(reason: unknown): void };
  let settled = false;
  let failure: unknown; // what failed the body: a read that was under way when it did throws it
  // Stops the timer and the abort listener once the body is closed, failed or cancelled.
  const settle = () => {
    settled = true;
    idle.stop();
    idle.signal.removeEventListener("abort", aborted);
  };
  const fail = (error: RegistryError): unknown => {
    if (settled) return failure;
    settle();
    failure = error;
    source.cancel(error).catch(() => {});
    controller.error(error);
    return error;
  };
  // One listener for the whole body, not a race per chunk: an abort or a timeout fails the body
  // at once, even while a read waits on a transport that ignores the signal.
  const aborted = () =>
    fail(idle.failure(idle.signal.reason, "ABORTED", `Cannot read the answer to ${what}`));
  const truncated = (detail: string) =>
    new RegistryError("TRUNCATED", `Cannot read the answer to ${what}: ${detail}`, where);
  const body = relayStream(source.byob, {
    start(c) {
      controller = c;
      if (idle.signal.aborted) aborted();
      else idle.signal.addEventListener("abort", aborted, { once: true });
    },
    async pull(into): Promise<Relayed> {
      idle.touch();
      let result: Relayed;
      try {
        result = await source.read(into);
      } catch (cause) {
        throw fail(idle.failure(cause, "TRUNCATED", `Cannot read the answer to ${what}: ${cause}`));
      }
      if (settled) throw failure;
      if (result.done) {
        if (expected !== null && received !== expected) {
          throw fail(truncated(`${received} bytes of ${expected}`));
        }
        settle();
        return result;
      }
      received += result.value.length;
      if (expected !== null && received > expected) {
        throw fail(truncated(`more than its ${expected} bytes`));
      }
      return result;
    },
    cancel(reason) {
      settle();
      return source.cancel(reason);
    },
  });
  return { status: response.status, headers, url: response.url, body };
}

/**
 * The abort controller of one exchange, fired by the caller's signal or by inactivity. Activity
 * only stamps a time ({@linkcode IdleTimer.touch}); one timer wakes at the earliest moment the
 * exchange could have been idle for its limit, so a busy transfer costs one timer per limit,
 * not one per chunk.
 */
class IdleTimer {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #outer: AbortSignal | undefined;
  readonly #what: string;
  readonly #where: { method: string; url: string };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ms = 0;
  #lastActive = 0;
  #timedOut = false;

  constructor(limits: CallLimits, what: string, where: { method: string; url: string }) {
    this.#outer = limits.signal;
    this.#what = what;
    this.#where = where;
    this.signal = limits.signal === undefined
      ? this.#controller.signal
      : AbortSignal.any([this.#controller.signal, limits.signal]);
  }

  check(): void {
    if (this.#outer?.aborted) throw this.failure(this.#outer.reason, "ABORTED", "");
  }

  /** Starts a wait of at most `ms` without activity, from now. */
  arm(ms: number): void {
    this.#ms = Math.round(ms);
    this.#lastActive = performance.now();
    this.stop();
    this.#wake(this.#ms);
  }

  /** Records activity: the idle wait restarts from now. */
  touch(): void {
    this.#lastActive = performance.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #wake(ms: number): void {
    this.#timer = setTimeout(() => {
      const idle = performance.now() - this.#lastActive;
      if (idle < this.#ms) return this.#wake(Math.ceil(this.#ms - idle));
      this.#timedOut = true;
      this.#controller.abort(new DOMException("idle timeout", "TimeoutError"));
    }, ms);
    // The timer alone must not keep a process alive (a body nobody reads any more).
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /**
   * `promise` (the answer's headers), or the signal's reason as soon as it aborts: a transport
   * that ignores the signal must not hold the call.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (signal.aborted) {
      promise.catch(() => {});
      return Promise.reject(signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const aborted = () => reject(signal.reason);
      signal.addEventListener("abort", aborted, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener("abort", aborted);
          resolve(value);
        },
        (error) => {
          signal.removeEventListener("abort", aborted);
          reject(error);
        },
      );
    });
  }

  failure(
    cause: unknown,
    otherwise: "UNREACHABLE" | "TRUNCATED" | "ABORTED",
    message: string,
    reason?: string,
  ): RegistryError {
    if (cause instanceof RegistryError) return cause;
    const options = { ...this.#where, cause, ...reason === undefined ? {} : { reason } };
    if (this.#outer?.aborted) {
      return new RegistryError("ABORTED", `Cannot ${this.#what}: aborted`, options);
    }
    if (this.#timedOut) {
      return new RegistryError(
        "TIMEOUT",
        `Cannot ${this.#what}: nothing received for ${this.#ms} ms`,
        { ...options, reason: `idle timeout ${this.#ms} ms` },
      );
    }
    return new RegistryError(otherwise, message, options);
  }
}
