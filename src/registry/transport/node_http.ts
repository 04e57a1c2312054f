/**
 * A {@linkcode Transport} on Node's own `node:http` and `node:https`, found at run time through
 * `process.getBuiltinModule` (so this file loads in any runtime; where they are not at hand,
 * {@linkcode nodeHttpTransport} is `null`). Node's `fetch` (undici) moved half the bytes per
 * second of Deno's and Bun's on this machine (a bare 512 MiB `GET`: 1.9–2.1 s against 1.4 s
 * here), and reads a streamed request body as fast as its source gives it, whatever the socket
 * takes (a 256 MiB `PUT` held 390 MiB).
 *
 * What fetch gave is kept: a streamed request body is read only as the socket drains, an
 * answer's body pauses the socket while its reader is behind, the signal aborts both,
 * connections are kept alive and reused, https checks certificates against Node's CAs, and
 * redirects are followed as fetch's `"follow"` ({@linkcode redirectTarget}). Unlike fetch it
 * decodes no `Content-Encoding` and asks for none: a body is the bytes that were sent.
 *
 * @module
 */
import { concat } from "./limits.ts";
import { MAX_REDIRECTS, redirectTarget } from "./redirect.ts";
import type { Transport, TransportRequest, TransportResponse } from "./transport.ts";
import { nodeBuiltin } from "../../_runtime.ts";

type Listener = (...args: never[]) => void;

/** What is used here of a Node stream or emitter. */
interface NodeEmitter {
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  destroy(error?: unknown): unknown;
}

/** What is used here of `http.IncomingMessage`. */
interface NodeResponse extends NodeBody {
  statusCode?: number;
  rawHeaders: string[];
  complete: boolean;
}

/** What {@linkcode bodyStream} uses of an answer (also dockerd's, on a unix socket). */
export interface NodeBody extends NodeEmitter {
  pause(): unknown;
  resume(): unknown;
}

/** What is used here of `http.ClientRequest`. */
interface NodeRequest extends NodeEmitter {
  readonly destroyed: boolean;
  strictContentLength: boolean;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): unknown;
}

/** What is used here of `node:http` and `node:https`. */
interface NodeHttpModule {
  request(
    url: URL,
    options: { method: string; headers: Record<string, string>; agent: unknown },
  ): NodeRequest;
  Agent: new (options: { keepAlive: boolean; timeout: number } & NodeTlsOptions) => unknown;
}

/** `node:https` agent options for one registry's TLS (`tls.connect`'s names). */
export interface NodeTlsOptions {
  /** The CAs trusted: when given, instead of Node's own. */
  ca?: string[];
  /** A client certificate (PEM). */
  cert?: string;
  /** Its private key (PEM). */
  key?: string;
  /** `false`: any certificate is accepted. */
  rejectUnauthorized?: boolean;
}

/** One scheme's module and its agent, made on first use. */
interface Scheme {
  module: NodeHttpModule;
  agent: unknown;
}

/**
 * Kept-alive connections, idle ones closed after 5 s (Node's global agent's settings; a server
 * closing an idle connection as a request goes out on it would fail that request).
 */
function scheme(module: NodeHttpModule, tls: NodeTlsOptions = {}): Scheme {
  return { module, agent: new module.Agent({ keepAlive: true, timeout: 5_000, ...tls }) };
}

/** Statuses whose answers have no body (fetch's "null body status"). */
const NULL_BODY: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/**
 * The answer's body bytes a reader may be behind before the socket pauses, and so the most
 * {@linkcode bodyStream} joins into one chunk: 3 downloads at once hold at most 1.5 MiB here.
 * On a pull of 821 MiB in 8 layers, joining up to 512 KiB took Node's CPU from 6.0–6.2 s to
 * 5.0–5.3 s for 5–10 MiB more peak RSS; up to 1 MiB saved no more and held 35–60 MiB more
 * (each later step holds a chunk), 256 KiB saved less.
 */
const BODY_HIGH_WATER_MARK = 512 << 10;

/** The head of an answer, its body still to read. */
interface Answered {
  message: NodeResponse;
  headers: Headers;
  /** Stops listening to the signal (once the answer is done with). */
  release: () => void;
}

/** Where a streamed request body stands. */
interface Upload {
  state: "sending" | "sent" | "stopped";
}

/** One request on the wire, no redirect followed. */
function exchange(scheme: Scheme, request: TransportRequest): Promise<Answered> {
  const { method, signal } = request;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const headers: Record<string, string> = { ...request.headers };
    const has = (name: string) => Object.keys(headers).some((key) => key.toLowerCase() === name);
    if (!has("accept")) headers["accept"] = "*/*";
    let body = request.body;
    if (typeof body === "string") {
      body = new TextEncoder().encode(body);
      if (!has("content-type")) headers["content-type"] = "text/plain;charset=UTF-8";
    }
    if (body instanceof Uint8Array) headers["content-length"] = String(body.length);
    else if (body === undefined && /^(POST|PUT|PATCH)$/.test(method)) {
      headers["content-length"] = "0";
    }
    let req: NodeRequest;
    try {
      req = scheme.module.request(new URL(request.url), { method, headers, agent: scheme.agent });
    } catch (error) {
      return reject(error);
    }
    // A streamed body longer or shorter than its Content-Length fails instead of desyncing the
    // connection.
    req.strictContentLength = true;
    const upload: Upload = { state: body instanceof ReadableStream ? "sending" : "sent" };
    let message: NodeResponse | null = null;
    const abort = () => {
      message?.destroy(signal.reason);
      req.destroy(signal.reason);
    };
    const release = () => signal.removeEventListener("abort", abort);
    signal.addEventListener("abort", abort, { once: true });
    req.on("error", (error: unknown) => {
      if (message !== null) return; // the answer's body fails on its own
      release();
      reject(error);
    });
    req.once("response", (answer: NodeResponse) => {
      message = answer;
      answer.on("error", release);
      answer.once("close", release);
      if (upload.state === "sending") {
        // Answered before its body was all sent: nothing more goes out, and the connection,
        // which still expects the rest, closes once the answer is read.
        upload.state = "stopped";
        answer.once("end", () => req.destroy());
      }
      try {
        const responseHeaders = new Headers();
        const raw = answer.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!);
        resolve({ message: answer, headers: responseHeaders, release });
      } catch (error) {
        answer.destroy(error);
        req.destroy(error);
        reject(error);
      }
    });
    if (body instanceof ReadableStream) void pump(body, req, upload, signal);
    else req.end(body);
  });
}

/**
 * Writes `body` to `req` as the socket drains, then ends it; stops when the answer comes first.
 * A failing body destroys the request: it is never ended, so the server never takes a body
 * that was not all there. When the request closes before its body was sent (aborted, the
 * connection lost), the body is cancelled at once, even while a read of it is pending.
 */
async function pump(
  body: ReadableStream<Uint8Array>,
  req: NodeRequest,
  upload: Upload,
  signal: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  req.once("close", () => {
    if (upload.state === "sent") return;
    const reason = signal.aborted
      ? signal.reason
      : new Error("the request closed before its body was sent");
    reader.cancel(reason).catch(() => {});
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      // Answered first, or closed: nothing more goes out.
      if (upload.state === "stopped" || req.destroyed) {
        await reader.cancel();
        return;
      }
      if (done) break;
      if (!req.write(value)) await drained(req);
    }
    upload.state = "sent";
    req.end();
  } catch (error) {
    reader.cancel(error).catch(() => {});
    req.destroy(error);
  }
}

/** The part of a `node:http` request {@linkcode drained} waits on. */
export interface Drainable {
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * Resolves on the request's next `drain`; rejects when it closes first.
 *
 * @param req A `node:http` request whose `write` returned `false`.
 * @returns When the socket takes more.
 */
export function drained(req: Drainable): Promise<void> {
  return new Promise((resolve, reject) => {
    const drain = () => {
      req.off("close", close);
      resolve();
    };
    const close = () => {
      req.off("drain", drain);
      reject(new Error("the connection closed while the body was being sent"));
    };
    req.once("drain", drain);
    req.once("close", close);
  });
}

/**
 * The answer's body as a Web stream that pauses the socket while its reader is more than
 * {@linkcode BODY_HIGH_WATER_MARK} bytes behind. A read waiting for bytes gets the next chunk as
 * it comes, a plain `Uint8Array` view of Node's buffer (a `Buffer`'s `slice` would not copy);
 * chunks that came while the reader was busy are joined into one: every step after this one
 * (idle timer, resume, digest, DiffID, file write) costs promises and calls per chunk, and
 * Node's Web streams are JavaScript, so fewer, bigger chunks cut a pull's CPU more than the
 * copy costs.
 */
export function bodyStream(message: NodeBody): ReadableStream<Uint8Array> {
  let ended = false;
  let paused = false;
  let waiting = false; // a read is waiting for the next chunk
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  const takeHeld = () => {
    const chunk = held.length === 1 ? held[0]! : concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    return chunk;
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      message.on("data", (chunk: Uint8Array) => {
        if (ended) return; // cancelled: the rest is dropped with the connection
        const view = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (waiting) {
          waiting = false;
          controller.enqueue(view);
          return;
        }
        held.push(view);
        heldBytes += view.length;
        if (heldBytes >= BODY_HIGH_WATER_MARK && !paused) {
          paused = true;
          message.pause();
        }
      });
      message.once("end", () => {
        if (!ended) {
          if (heldBytes > 0) controller.enqueue(takeHeld());
          controller.close();
        }
        ended = true;
      });
      message.once("error", (error: unknown) => {
        if (!ended) controller.error(error);
        ended = true;
      });
      message.once("close", () => {
        if (!ended) controller.error(new Error("the connection closed before the body's end"));
        ended = true;
      });
    },
    pull(controller) {
      if (heldBytes > 0) controller.enqueue(takeHeld());
      else waiting = true;
      if (paused) {
        paused = false;
        message.resume();
      }
    },
    cancel() {
      ended = true;
      held = [];
      message.destroy();
    },
  }, { highWaterMark: 0 });
}

/** The transport on the given `node:http` and `node:https` modules, https with `tls`. */
function transportOn(
  http: NodeHttpModule,
  https: NodeHttpModule | null,
  tls?: NodeTlsOptions,
): Transport {
  let plain: Scheme | null = null;
  let secure: Scheme | null = null;
  const schemeOf = (url: string): Scheme => {
    if (url.startsWith("http:")) return plain ??= scheme(http);
    if (https === null) throw new TypeError(`cannot request "${url}": node:https is missing`);
    return secure ??= scheme(https, tls);
  };
  return async (request: TransportRequest): Promise<TransportResponse> => {
    let current = request;
    for (let redirects = 0;; redirects++) {
      const { message, headers, release } = await exchange(schemeOf(current.url), current);
      const status = message.statusCode ?? 0;
      let next: TransportRequest | null;
      try {
        next = redirectTarget(current, status, headers.get("location"));
      } catch (error) {
        message.destroy();
        release();
        throw error;
      }
      if (next === null) {
        const url = new URL(current.url);
        url.hash = "";
        const empty = NULL_BODY.has(status) || current.method === "HEAD";
        if (empty) message.resume();
        return {
          status,
          headers,
          url: url.toString(),
          body: empty ? null : bodyStream(message),
          decoded: false,
        };
      }
      // The redirect's own body, when it has all come, is read away so its connection serves
      // again; one still coming (it could be endless) goes with its connection.
      if (message.complete) message.resume();
      else message.destroy();
      release();
      if (redirects === MAX_REDIRECTS) {
        throw new TypeError(`more than ${MAX_REDIRECTS} redirects, the last to "${next.url}"`);
      }
      current = next;
    }
  };
}

/**
 * The `node:http` transport, or `null` where `process.getBuiltinModule("node:http")` gives
 * nothing (browsers, workers without Node compatibility). Every request of a process shares
 * one kept-alive agent per scheme.
 *
 * @example
 * ```ts
 * import { nodeHttpTransport } from "./node_http.ts";
 *
 * if (nodeHttpTransport !== null) {
 *   const controller = new AbortController();
 *   controller.abort();
 *   await nodeHttpTransport({
 *     method: "GET",
 *     url: "http://127.0.0.1:1/v2/",
 *     headers: {},
 *     signal: controller.signal,
 *   }).catch(() => {}); // rejects at once: the signal has aborted
 * }
 * ```
 */
export const nodeHttpTransport: Transport | null = nodeHttpTransportWith();

/**
 * A `node:http` transport of its own, whose https connections use `tls` (CAs, a client
 * certificate, or no verification), or `null` where the runtime has no `node:http`.
 *
 * @param tls The agent's TLS options.
 * @returns The transport, with kept-alive agents of its own.
 * @example
 * ```ts
 * import { nodeHttpTransportWith } from "./node_http.ts";
 *
 * const transport = nodeHttpTransportWith({ ca: ["-----BEGIN CERTIFICATE-----\n…"] });
 * ```
 */
export function nodeHttpTransportWith(tls?: NodeTlsOptions): Transport | null {
  const http = nodeBuiltin<NodeHttpModule>("node:http", "request");
  return http === null
    ? null
    : transportOn(http, nodeBuiltin<NodeHttpModule>("node:https", "request"), tls);
}
