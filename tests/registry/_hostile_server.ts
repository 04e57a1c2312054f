// A registry nobody should trust, on 127.0.0.1: a raw HTTP/1.1 server over node:net (the same
// bytes on Deno, Bun and Node) with a small well-behaved registry behind it — blobs, manifests,
// uploads, tags — that a test overrides request by request to stall, lie, loop or never end.
// One request per connection (every answer closes it), so a test sees each request alone.
import { createServer, type Socket } from "node:net";
import { createHash } from "node:crypto";

export interface HostileRequest {
  method: string;
  /** Path and query, as sent. */
  target: string;
  url: URL;
  headers: Record<string, string>;
  authorization: string | null;
  body: Uint8Array;
}

/** One connection's answer, written by hand. */
export class Answer {
  readonly #socket: Socket;
  /** Body bytes written so far. */
  written = 0;
  constructor(socket: Socket) {
    this.#socket = socket;
  }
  get closed(): boolean {
    return this.#socket.destroyed;
  }
  /** The status line and headers (with `connection: close`), nothing else. */
  head(status: number, headers: Record<string, string> = {}): void {
    const lines = [`HTTP/1.1 ${status} X`, "connection: close"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    this.#socket.write(lines.join("\r\n") + "\r\n\r\n");
  }
  /** Writes body bytes; resolves false once the peer is gone. */
  write(data: Uint8Array | string): Promise<boolean> {
    if (this.#socket.destroyed) return Promise.resolve(false);
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    this.written += bytes.length;
    return new Promise((resolve) => {
      const ok = this.#socket.write(bytes, (error) => {
        if (error) resolve(false);
      });
      if (ok) resolve(true);
      else {
        const done = () => resolve(!this.#socket.destroyed);
        this.#socket.once("drain", done);
        this.#socket.once("close", done);
      }
    });
  }
  /** A whole answer with Content-Length. */
  send(status: number, headers: Record<string, string> = {}, body: Uint8Array | string = ""): void {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    this.head(status, { "content-length": String(bytes.length), ...headers });
    if (bytes.length > 0) void this.write(bytes);
    this.#socket.end();
  }
  json(status: number, value: unknown, headers: Record<string, string> = {}): void {
    this.send(status, { "content-type": "application/json", ...headers }, JSON.stringify(value));
  }
  /** Writes `chunk` until the peer goes away (an endless body). */
  async forever(chunk: Uint8Array): Promise<void> {
    while (await this.write(chunk)) { /* until the client stops reading */ }
  }
  end(): void {
    this.#socket.end();
  }
  destroy(): void {
    this.#socket.destroy();
  }
}

export type Handler = (req: HostileRequest, answer: Answer) => boolean | void | Promise<unknown>;

export interface HostileServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>` */
  host: string;
  log: HostileRequest[];
  /** Body bytes the server wrote, over all answers. */
  sent(): number;
  /** Answers whose connection is still open. */
  open(): number;
  blobs: Map<string, Uint8Array>;
  manifests: Map<string, { type: string; body: Uint8Array }>;
  /** Tried first; return true (or a promise) when it answered. */
  handler: Handler | null;
  close(): Promise<void>;
}

export function sha256(data: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function parseHead(text: string) {
  const [requestLine, ...lines] = text.split("\r\n");
  const [method, target] = requestLine!.split(" ");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
  return { method: method!, target: target!, headers };
}

/** Starts a server on a free port of 127.0.0.1. */
export async function startHostile(): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const answers: Answer[] = [];
  const log: HostileRequest[] = [];
  const blobs = new Map<string, Uint8Array>();
  const manifests = new Map<string, { type: string; body: Uint8Array }>();
  const uploads = new Map<string, Uint8Array[]>();
  let next = 0;
  const state: HostileServer = {
    url: "",
    host: "",
    log,
    sent: () => answers.reduce((n, a) => n + a.written, 0),
    open: () => answers.filter((a) => !a.closed).length,
    blobs,
    manifests,
    handler: null,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const registry = (req: HostileRequest, answer: Answer) => {
    const path = req.url.pathname;
    if (path === "/v2/") return answer.json(200, {});
    let m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(path);
    if (m) {
      if (req.method === "POST") {
        const id = `u${next++}`;
        uploads.set(id, []);
        return answer.send(202, { location: `/v2/${m[1]}/blobs/uploads/${id}` });
      }
      const parts = uploads.get(m[2]!);
      if (parts === undefined) {
        return answer.json(404, { errors: [{ code: "BLOB_UPLOAD_UNKNOWN" }] });
      }
      parts.push(req.body);
      if (req.method === "PATCH") return answer.send(202, { location: path });
      if (req.method === "PUT") {
        const all = Buffer.concat(parts);
        const digest = req.url.searchParams.get("digest")!;
        if (sha256(all) !== digest) {
          return answer.json(400, { errors: [{ code: "DIGEST_INVALID" }] });
        }
        blobs.set(digest, new Uint8Array(all));
        return answer.send(201, { "docker-content-digest": digest });
      }
      return answer.send(204);
    }
    m = /^\/v2\/(.+)\/blobs\/(.+)$/.exec(path);
    if (m) {
      const data = blobs.get(m[2]!);
      if (data === undefined) return answer.json(404, { errors: [{ code: "BLOB_UNKNOWN" }] });
      const headers = { "docker-content-digest": m[2]!, "content-length": String(data.length) };
      if (req.method === "HEAD") {
        answer.head(200, headers);
        return answer.end();
      }
      return answer.send(200, headers, data);
    }
    m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(path);
    if (m) {
      if (req.method === "PUT") {
        const entry = { type: req.headers["content-type"] ?? "", body: req.body };
        manifests.set(m[2]!, entry);
        manifests.set(sha256(req.body), entry);
        return answer.send(201, { "docker-content-digest": sha256(req.body) });
      }
      const found = manifests.get(m[2]!);
      if (found === undefined) return answer.json(404, { errors: [{ code: "MANIFEST_UNKNOWN" }] });
      const headers = {
        "content-type": found.type,
        "docker-content-digest": sha256(found.body),
        "content-length": String(found.body.length),
      };
      if (req.method === "HEAD") {
        answer.head(200, headers);
        return answer.end();
      }
      return answer.send(200, headers, found.body);
    }
    m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
    if (m) {
      return answer.json(200, {
        name: m[1],
        tags: [...manifests.keys()].filter((k) => !k.includes(":")),
      });
    }
    return answer.json(404, { errors: [{ code: "NAME_UNKNOWN" }] });
  };

  // A chunked body (Deno's fetch streams a request body so): the bytes, or null until complete.
  const dechunk = (data: Buffer): Uint8Array | null => {
    const parts: Buffer[] = [];
    for (let at = 0;;) {
      const line = data.indexOf("\r\n", at);
      if (line === -1) return null;
      const size = parseInt(data.subarray(at, line).toString("latin1"), 16);
      if (size === 0) return new Uint8Array(Buffer.concat(parts));
      if (data.length < line + 2 + size + 2) return null;
      parts.push(data.subarray(line + 2, line + 2 + size));
      at = line + 2 + size + 2;
    }
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffer = Buffer.alloc(0);
    let handled = false;
    socket.on("data", (data: Buffer) => {
      if (handled) return;
      buffer = Buffer.concat([buffer, data]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = parseHead(buffer.subarray(0, end).toString("latin1"));
      let body: Uint8Array;
      if (/chunked/i.test(head.headers["transfer-encoding"] ?? "")) {
        const decoded = dechunk(buffer.subarray(end + 4));
        if (decoded === null) return;
        body = decoded;
      } else {
        const length = Number(head.headers["content-length"] ?? 0);
        if (buffer.length < end + 4 + length) return;
        body = new Uint8Array(buffer.subarray(end + 4, end + 4 + length));
      }
      handled = true;
      const req: HostileRequest = {
        ...head,
        url: new URL(head.target, "http://127.0.0.1"),
        authorization: head.headers["authorization"] ?? null,
        body,
      };
      log.push(req);
      const answer = new Answer(socket);
      answers.push(answer);
      Promise.resolve(state.handler?.(req, answer)).then((done) => {
        if (!done) registry(req, answer);
      }).catch(() => socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  state.host = `127.0.0.1:${port}`;
  state.url = `http://${state.host}`;
  return state;
}
