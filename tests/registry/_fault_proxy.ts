// An HTTP proxy on 127.0.0.1 in front of a registry that injects faults by plan: it cuts a
// response (or an upload) after N body bytes, answers bursts of 503/429/408 (with or without
// Retry-After), stalls a response after its head (or N body bytes), or drops a connection
// unanswered; and it
// logs every request.
//
//   const proxy = await startFaultProxy(registry.url);
//   proxy.plan({ method: "GET", path: /\/blobs\//, skip: 1, fault: { kind: "cut", afterBytes: 1000 } });
//   await pull(`${proxy.host}/team/app:1.0`, store, { plainHttp: true });
//
// It works on raw TCP (node:net behaves the same on Deno, Bun and Node; their node:http servers
// do not all let a response be cut mid-body). Each connection carries one request: the proxy
// sends `Connection: close` both ways, so a response ends where the registry closes and no
// HTTP framing has to be parsed. Heads go upstream unchanged otherwise (Host included), so the
// registry's Location headers point back at the proxy.
import { connect, createServer, type Server, type Socket } from "node:net";

/** What to do to a request a rule matches. */
export type Fault =
  /** Sends the response head and `afterBytes` bytes after it, then closes the connection
   * (`direction: "request"`: forwards `afterBytes` of the request body, then closes both). */
  | { kind: "cut"; afterBytes: number; direction?: "response" | "request" }
  /** Answers `status` itself (the request never reaches the registry), with a distribution
   * error body and, when given, a `Retry-After` header. */
  | { kind: "status"; status: number; retryAfter?: string }
  /** Sends the response head and `afterBytes` bytes after it (default 0), then waits `ms`
   * before the rest. */
  | { kind: "stall"; ms: number; afterBytes?: number }
  /** Closes the connection without an answer once the request head is read. */
  | { kind: "drop" };

/** Which requests a fault hits. Every rule counts every request it matches. */
export interface FaultRule {
  /** The HTTP method (any when absent). */
  method?: string;
  /** Tested against the path and query (any when absent). */
  path?: RegExp;
  /** Matching requests let through before the fault starts (default 0). */
  skip?: number;
  /** Matching requests faulted after those (default 1; `Infinity` for all). */
  times?: number;
  /** The fault. */
  fault: Fault;
}

/** One request the proxy saw. */
export interface ProxiedRequest {
  /** The method. */
  method: string;
  /** Path and query. */
  path: string;
  /** The status sent (the registry's, or the injected one); 0 when none was. */
  status: number;
  /** The fault applied, if any. */
  fault?: Fault["kind"];
}

/** A running proxy. */
export interface FaultProxy {
  /** `127.0.0.1:<port>`, for references. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Adds rules after the current ones. */
  plan(...rules: FaultRule[]): void;
  /** Removes every rule (the log stays). */
  clear(): void;
  /** Every request seen, oldest first (the last 10,000). */
  readonly requests: readonly ProxiedRequest[];
  /** How many requests matched `method` and `path` (every one when both are absent). */
  count(filter?: { method?: string; path?: RegExp }): number;
  /** Closes the server and every open connection. */
  stop(): Promise<void>;
}

const MAX_LOG = 10_000;
const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");
const ERROR_CODES: Record<number, string> = { 429: "TOOMANYREQUESTS", 503: "UNAVAILABLE" };
const REASONS: Record<number, string> = {
  408: "Request Timeout",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

interface ActiveRule {
  rule: FaultRule;
  skip: number;
  times: number;
}

function matches(rule: { method?: string; path?: RegExp }, method: string, path: string): boolean {
  return (rule.method === undefined || rule.method === method) &&
    (rule.path === undefined || rule.path.test(path));
}

/** Counts the request against every rule it matches; returns the first fault due, if any. */
function faultFor(rules: ActiveRule[], method: string, path: string): Fault | undefined {
  let due: Fault | undefined;
  for (const active of rules) {
    if (!matches(active.rule, method, path)) continue;
    if (active.skip > 0) {
      active.skip--;
    } else if (active.times > 0) {
      active.times--;
      due ??= active.rule.fault;
    }
  }
  return due;
}

/** The head with its connection headers replaced by `Connection: close`. */
function closingHead(head: string): Buffer {
  const lines = head.split("\r\n").filter((line) =>
    !/^(connection|keep-alive|proxy-connection):/i.test(line)
  );
  return Buffer.from([...lines, "Connection: close", "", ""].join("\r\n"), "latin1");
}

/**
 * Collects a socket's bytes until the end of an HTTP head; hands over the head and whatever
 * came after it. Calls `fail` when the head is too long or the socket ends first.
 */
function readHead(
  socket: Socket,
  done: (head: string, rest: Buffer) => void,
  fail: () => void,
): void {
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf(HEAD_END);
    if (end < 0) {
      if (buffered.length > MAX_HEAD) finish(fail);
      return;
    }
    finish(() =>
      done(buffered.subarray(0, end).toString("latin1"), buffered.subarray(end + HEAD_END.length))
    );
  };
  const onEnd = () => finish(fail);
  const finish = (then: () => void) => {
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.pause();
    then();
  };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.resume();
}

/**
 * Relays `from` to `to`, the first `limit` bytes only when `cut` is given (then calls it with
 * the bytes read past the limit; `from` stays paused). `first` is sent ahead of `from`'s bytes
 * and counts towards the limit.
 */
function relay(
  from: Socket,
  to: Socket,
  first: Buffer,
  limit: number,
  cut?: (rest: Buffer) => void,
): void {
  let sent = 0;
  let stopped = false;
  const send = (chunk: Buffer): boolean => {
    if (cut === undefined) return to.write(chunk);
    const room = limit - sent;
    if (chunk.length < room) {
      sent += chunk.length;
      return to.write(chunk);
    }
    stopped = true;
    from.off("data", onData);
    from.pause();
    // Once flushed, so the peer gets exactly `limit` bytes before the cut.
    to.write(chunk.subarray(0, room), () => cut(chunk.subarray(room)));
    return false;
  };
  const onData = (chunk: Buffer) => {
    if (!send(chunk)) from.pause();
  };
  if (cut !== undefined && limit <= 0) return cut(first);
  if (first.length > 0 && !send(first) && stopped) return;
  to.on("drain", () => stopped || from.resume());
  from.on("data", onData);
  from.on("end", () => stopped || to.end());
  from.resume();
}

/**
 * Relays `from` to `to`: the first `afterBytes` at once, then holds the rest until the release
 * that `stall` is given is called, and ends `to` once `from` has ended and all is sent. The rest
 * is held in memory rather than left unread in a paused `from`: Bun's node:net reports the close
 * of a paused socket whose peer has finished at once, which ended the client's response early.
 */
function stallRelay(
  from: Socket,
  to: Socket,
  first: Buffer,
  afterBytes: number,
  stall: (release: () => void) => void,
): void {
  let sent = 0;
  let stalled = false;
  let released = false;
  let ended = false;
  const held: Buffer[] = [];
  const release = () => {
    released = true;
    for (const chunk of held.splice(0)) to.write(chunk);
    if (ended || from.destroyed) to.end();
  };
  const push = (chunk: Buffer) => {
    if (released) return void to.write(chunk);
    const now = chunk.subarray(0, Math.max(0, afterBytes - sent));
    sent += now.length;
    if (now.length > 0) to.write(now);
    if (now.length < chunk.length) held.push(chunk.subarray(now.length));
    if (!stalled && sent >= afterBytes) {
      stalled = true;
      stall(release);
    }
  };
  push(first);
  from.on("data", push);
  from.on("end", () => {
    ended = true;
    if (released) to.end();
  });
  from.resume();
}

/**
 * Starts a fault proxy in front of `upstream`.
 *
 * @param upstream The registry's base URL, `http://127.0.0.1:<port>`.
 * @returns The running proxy.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: ActiveRule[] = [];
  const log: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const answer = (client: Socket, entry: ProxiedRequest, status: number, retryAfter?: string) => {
    entry.status = status;
    const body = JSON.stringify({
      errors: [{ code: ERROR_CODES[status] ?? "UNKNOWN", message: "injected by the fault proxy" }],
    });
    client.end(
      [
        `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`,
        "Content-Type: application/json",
        `Content-Length: ${Buffer.byteLength(body)}`,
        ...(retryAfter === undefined ? [] : [`Retry-After: ${retryAfter}`]),
        "Connection: close",
        "",
        body,
      ].join("\r\n"),
    );
    // Read (and drop) whatever body the client still sends, as a server that answered early.
    client.on("data", () => {});
    client.resume();
  };

  const handle = (client: Socket) => {
    track(client);
    readHead(client, (head, rest) => {
      const [method = "", path = ""] = head.slice(0, head.indexOf("\r\n")).split(" ");
      const fault = faultFor(rules, method, path);
      const entry: ProxiedRequest = { method, path, status: 0 };
      if (fault !== undefined) entry.fault = fault.kind;
      log.push(entry);
      if (log.length > MAX_LOG) log.shift();
      if (fault?.kind === "drop") return client.destroy();
      if (fault?.kind === "status") return answer(client, entry, fault.status, fault.retryAfter);

      const registry = connect(Number(target.port), target.hostname);
      track(registry);
      const closeBoth = () => {
        client.destroy();
        registry.destroy();
      };
      let holding = false; // a stall holds bytes the client is still owed
      registry.on("close", () => holding || client.end());
      client.on("close", () => registry.destroy());
      registry.write(closingHead(head));
      if (fault?.kind === "cut" && fault.direction === "request") {
        relay(client, registry, rest, fault.afterBytes, closeBoth);
      } else {
        relay(client, registry, rest, Infinity);
      }
      readHead(registry, (responseHead, body) => {
        entry.status = Number(responseHead.split(" ")[1]);
        client.write(closingHead(responseHead));
        if (fault?.kind === "cut" && fault.direction !== "request") {
          // end() rather than destroy(): what was written reaches the client before the FIN.
          relay(registry, client, body, fault.afterBytes, () => {
            client.end();
            registry.destroy();
          });
        } else if (fault?.kind === "stall") {
          holding = true;
          stallRelay(registry, client, body, fault.afterBytes ?? 0, (release) => {
            const timer = setTimeout(() => {
              timers.delete(timer);
              holding = false;
              release();
            }, fault.ms);
            timers.add(timer);
          });
        } else {
          relay(registry, client, body, Infinity);
        }
      }, closeBoth);
    }, () => client.destroy());
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const host = `127.0.0.1:${port}`;

  return {
    host,
    url: `http://${host}`,
    plan(...added) {
      for (const rule of added) rules.push({ rule, skip: rule.skip ?? 0, times: rule.times ?? 1 });
    },
    clear() {
      rules.length = 0;
    },
    get requests() {
      return log;
    },
    count(filter = {}) {
      return log.filter((r) => matches(filter, r.method, r.path)).length;
    },
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
