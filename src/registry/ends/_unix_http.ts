// HTTP/1.1 over a unix socket, as dockerd's API is served. Two ways, found at run time so this
// file loads anywhere: `fetch`, where the runtime lets it dial a unix socket (Deno's
// `createHttpClient` with a unix proxy, Bun's `unix` option), else `node:http` with
// `socketPath`, which Node, Deno and Bun all have. On Deno, node:http read a 128 MiB save at
// half curl's speed and held up to 140 MiB doing it; its `fetch` keeps curl's pace in 66 MiB.
// Only what dockerd's API needs: one request, its answer's head, and the body as a stream.
import { denoNamespace, nodeBuiltin, runtimeName } from "../../_runtime.ts";
import { readThrough, type Relayed } from "../../_relay.ts";
import { bodyStream, drained, type NodeBody } from "../transport/node_http.ts";

/** What is used here of `node:http`. */
interface NodeHttp {
  request(options: {
    socketPath: string;
    path: string;
    method: string;
    headers: Record<string, string>;
  }): NodeRequest;
}

interface NodeRequest {
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "response", listener: (message: NodeMessage) => void): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): unknown;
  destroy(error?: unknown): unknown;
}

interface NodeMessage extends NodeBody {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
}

/** An answer of the API: its status, content type and body. */
export interface UnixAnswer {
  status: number;
  contentType: string;
  body: ReadableStream<Uint8Array>;
}

/** A request of the API. */
export interface UnixRequest {
  method: string;
  /** The path and query, e.g. `/images/app:1/json`. */
  path: string;
  headers?: Record<string, string>;
  /** Sent as the socket drains. */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  signal?: AbortSignal | undefined;
}

/** Writes `body` as the socket drains, then ends the request. */
async function send(request: NodeRequest, body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!request.write(value)) await drained(request);
    }
    request.end();
  } catch (error) {
    reader.cancel(error).catch(() => {});
    request.destroy(error);
  }
}

/** The ways to reach a unix socket: `fetch` (Deno, Bun) or `node:http`. */
export type UnixWay = "fetch" | "node-http";

type SocketFetch = (url: string, init: RequestInit) => Promise<Response>;

interface DenoHttp {
  createHttpClient?(options: { proxy: { transport: "unix"; path: string } }): unknown;
}

/** One Deno client per socket, its connections kept for the next request. */
const denoClients = new Map<string, unknown>();

/** Deno's `createHttpClient`, where this is Deno. */
function denoHttp(): DenoHttp["createHttpClient"] | undefined {
  const create = denoNamespace<DenoHttp>()?.createHttpClient;
  return typeof create === "function" ? create : undefined;
}

/** Whether this runtime's `fetch` dials unix sockets (Deno's with a client, Bun's own). */
function fetchDials(): boolean {
  return denoHttp() !== undefined || runtimeName() === "bun";
}

/** `fetch` dialling `socket` (where {@linkcode fetchDials}). */
function socketFetch(socket: string): SocketFetch {
  const create = denoHttp();
  if (create === undefined) {
    return (url, init) => fetch(url, { ...init, unix: socket } as RequestInit);
  }
  let client = denoClients.get(socket);
  if (client === undefined) {
    client = create({ proxy: { transport: "unix", path: socket } });
    denoClients.set(socket, client);
  }
  return (url, init) => fetch(url, { ...init, client } as RequestInit);
}

/** The ways this runtime has, the default first; tests force each. */
export function unixWays(): UnixWay[] {
  const ways: UnixWay[] = fetchDials() ? ["fetch"] : [];
  if (nodeBuiltin<NodeHttp>("node:http", "request") !== null) ways.push("node-http");
  return ways;
}

/** `body` as it is read, its own failure kept in `failure` (fetch reports it as another). */
function watched(
  body: ReadableStream<Uint8Array>,
  failure: { error?: unknown },
): ReadableStream<Uint8Array> {
  return readThrough(body, async (read) => {
    try {
      return await read();
    } catch (error) {
      failure.error = error;
      throw error;
    }
  });
}

async function fetchRequest(dial: SocketFetch, request: UnixRequest): Promise<UnixAnswer> {
  const { body, signal } = request;
  const failure: { error?: unknown } = {};
  let response: Response;
  try {
    response = await dial(`http://docker${request.path}`, {
      method: request.method,
      headers: request.headers ?? {},
      redirect: "manual",
      ...(signal === undefined ? {} : { signal }),
      ...(body === undefined
        ? {}
        : body instanceof ReadableStream
        ? { body: watched(body, failure), duplex: "half" }
        : { body }),
    } as RequestInit);
  } catch (error) {
    throw "error" in failure ? failure.error : error;
  }
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    body: answerBody(response.body ?? new Blob().stream(), failure, signal),
  };
}

/**
 * The answer's body as `fetch` gives it, except that the request body's own failure fails it
 * (dockerd may answer before the body ends), and so does an abort, however much of the answer
 * the runtime had already read ahead.
 */
function answerBody(
  body: ReadableStream<Uint8Array>,
  failure: { error?: unknown },
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  return readThrough(body, async (read) => {
    signal?.throwIfAborted();
    let result: Relayed;
    try {
      result = await read();
    } catch (error) {
      throw "error" in failure ? failure.error : error;
    }
    if ("error" in failure) throw failure.error;
    return result;
  });
}

/**
 * Sends one request to the HTTP server on a unix socket and resolves with its answer's head.
 *
 * @param socket The socket's path, e.g. `/var/run/docker.sock`.
 * @param request The method, path, headers, body and signal.
 * @param way How (default: `fetch` where the runtime has one that dials sockets).
 * @returns The status, content type and body stream.
 */
export function unixRequest(
  socket: string,
  request: UnixRequest,
  way: UnixWay = unixWays()[0] ?? "node-http",
): Promise<UnixAnswer> {
  if (way === "fetch" && fetchDials()) return fetchRequest(socketFetch(socket), request);
  const http = nodeBuiltin<NodeHttp>("node:http", "request");
  if (http === null) {
    return Promise.reject(new Error("this runtime has no node:http to reach a unix socket"));
  }
  const { signal, body } = request;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const headers: Record<string, string> = { host: "docker", ...request.headers };
    if (body instanceof Uint8Array) headers["content-length"] = String(body.length);
    const req = http.request({
      socketPath: socket,
      path: request.path,
      method: request.method,
      headers,
    });
    let message: NodeMessage | null = null;
    const abort = () => {
      message?.destroy(signal!.reason);
      req.destroy(signal!.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
    req.on("error", (error) => {
      signal?.removeEventListener("abort", abort);
      if (message === null) reject(error);
    });
    req.once("response", (answer) => {
      message = answer;
      answer.once("close", () => signal?.removeEventListener("abort", abort));
      const type = answer.headers["content-type"];
      resolve({
        status: answer.statusCode ?? 0,
        contentType: typeof type === "string" ? type : "",
        body: bodyStream(answer),
      });
    });
    if (body instanceof ReadableStream) void send(req, body);
    else req.end(body);
  });
}
