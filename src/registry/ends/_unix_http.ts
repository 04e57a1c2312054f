// HTTP/1.1 over a unix socket, as dockerd's API is served: `node:http` with `socketPath`, which
// Node, Deno and Bun all implement (found at run time, so this file loads anywhere; where it is
// missing, a call fails with one clear error). Only what dockerd's API needs: one request, its
// answer's head, and the body as the registry transport streams one (node_http.ts).
import { nodeBuiltin } from "../../_runtime.ts";
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

/**
 * Sends one request to the HTTP server on a unix socket and resolves with its answer's head.
 *
 * @param socket The socket's path, e.g. `/var/run/docker.sock`.
 * @param request The method, path, headers, body and signal.
 * @returns The status, content type and body stream.
 */
export function unixRequest(socket: string, request: UnixRequest): Promise<UnixAnswer> {
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
