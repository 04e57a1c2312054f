// send()'s limits on an answer's body (src/registry/transport/http.ts), against real node:http
// servers on 127.0.0.1 through the runtime's default transport: a body that keeps trickling is
// never idle, one that stops fails with TIMEOUT about idleTimeout after its last byte, the
// caller's signal fails a pending read at once with ABORTED, a body cut short or too long is
// TRUNCATED, a cancel reaches the server, and all of it holds for a transport that ignores the
// signal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { RegistryError } from "../src/registry/mod.ts";
import { send } from "../src/registry/transport/http.ts";
import { defaultTransport } from "../src/registry/transport/default_transport.ts";
import type { Transport } from "../src/registry/transport/transport.ts";

const transport = defaultTransport();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Served {
  url: string;
  /** Resolves when the server sees the client close the connection. */
  closed: Promise<void>;
  close(): Promise<void>;
}

async function serve(handler: (res: ServerResponse) => void | Promise<void>): Promise<Served> {
  let closed!: () => void;
  const closedPromise = new Promise<void>((resolve) => closed = resolve);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.socket.once("close", closed);
    void handler(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/blob`,
    closed: closedPromise,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A server whose answer promises 100 bytes, sends 3 and then nothing. */
function serveStalled(): Promise<Served> {
  return serve((res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write(new Uint8Array([1, 2, 3]));
  });
}

/** Reads `body` to its end, noting when each chunk arrived. */
async function readAll(body: ReadableStream<Uint8Array>, times: number[] = []) {
  const bytes: number[] = [];
  for await (const chunk of body) {
    times.push(performance.now());
    bytes.push(...chunk);
  }
  return bytes;
}

function rejectsWith(error: unknown, code: string): RegistryError {
  assert.ok(error instanceof RegistryError, String(error));
  assert.equal(error.code, code, error.message);
  return error;
}

test("a body that trickles a byte every idleTimeout/2 ms never times out", async () => {
  const server = await serve(async (res) => {
    res.writeHead(200, { "content-length": "6" });
    for (let i = 0; i < 6; i++) {
      res.write(new Uint8Array([i]));
      await sleep(300);
    }
    res.end();
  });
  try {
    const started = performance.now();
    const response = await send(transport, { method: "GET", url: server.url }, {
      idleTimeout: 600,
    });
    assert.deepEqual(await readAll(response.body!), [0, 1, 2, 3, 4, 5]);
    // Three times the idle timeout in all: only the pauses count, not the whole read.
    assert.ok(performance.now() - started >= 1_500);
  } finally {
    await server.close();
  }
});

test("a request body of unknown length that trickles a chunk every idleTimeout/2 ms never times out", async () => {
  // The answer comes only once the whole body arrived, as a registry answers a PATCH.
  const server = createServer((req, res) => {
    let length = 0;
    req.on("data", (chunk: Uint8Array) => length += chunk.length);
    req.on("end", () => res.end(String(length)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 6) return controller.close();
      if (sent++ > 0) await sleep(300);
      controller.enqueue(new Uint8Array(1000));
    },
  });
  try {
    const started = performance.now();
    const response = await send(
      transport,
      { method: "PATCH", url: `http://127.0.0.1:${port}/upload`, body },
      { idleTimeout: 600 },
    );
    assert.equal(new TextDecoder().decode(new Uint8Array(await readAll(response.body!))), "6000");
    assert.ok(performance.now() - started >= 1_500);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a body that stops fails with TIMEOUT about idleTimeout after its last byte", async () => {
  const server = await serveStalled();
  try {
    const response = await send(transport, { method: "GET", url: server.url }, {
      idleTimeout: 400,
    });
    const times: number[] = [];
    const error = await readAll(response.body!, times).then(() => null, (e) => e);
    const waited = performance.now() - times.at(-1)!;
    const timeout = rejectsWith(error, "TIMEOUT");
    assert.match(timeout.message, /nothing received for 400 ms/);
    assert.equal(timeout.reason, "idle timeout 400 ms");
    assert.ok(waited >= 350 && waited < 1_400, `${waited} ms`);
    await server.closed; // the stalled connection is let go
  } finally {
    await server.close();
  }
});

test("the caller's signal fails a pending read at once with ABORTED, and closes the connection", async () => {
  const server = await serveStalled();
  try {
    const controller = new AbortController();
    const response = await send(transport, { method: "GET", url: server.url }, {
      signal: controller.signal,
      idleTimeout: 30_000,
    });
    const reader = response.body!.getReader();
    assert.deepEqual([...(await reader.read()).value!], [1, 2, 3]);
    const pending = reader.read();
    await sleep(50);
    const started = performance.now();
    controller.abort();
    const error = await pending.then(() => null, (e) => e);
    assert.ok(performance.now() - started < 500);
    rejectsWith(error, "ABORTED");
    await server.closed;
  } finally {
    await server.close();
  }
});

test("a body shorter than its Content-Length is TRUNCATED", async () => {
  const server = await serve((res) => {
    res.writeHead(200, { "content-length": "10" });
    res.write(new Uint8Array(4), () => res.socket!.end());
  });
  try {
    const response = await send(transport, { method: "GET", url: server.url }, {
      idleTimeout: 5_000,
    });
    const error = await readAll(response.body!).then(() => null, (e) => e);
    assert.match(rejectsWith(error, "TRUNCATED").message, /^Cannot read the answer to GET/);
  } finally {
    await server.close();
  }
});

test("a body longer than its Content-Length (a caller's transport) is TRUNCATED", async () => {
  let cancelled = false;
  const tooLong: Transport = () =>
    Promise.resolve({
      status: 200,
      url: "http://127.0.0.1:9/blob",
      headers: new Headers({ "content-length": "4" }),
      decoded: false,
      body: new ReadableStream<Uint8Array>({
        pull: (controller) => controller.enqueue(new Uint8Array(3)),
        cancel: () => void (cancelled = true),
      }),
    });
  const response = await send(tooLong, { method: "GET", url: "http://127.0.0.1:9/blob" }, {
    idleTimeout: 5_000,
  });
  const error = await readAll(response.body!).then(() => null, (e) => e);
  assert.match(rejectsWith(error, "TRUNCATED").message, /more than its 4 bytes/);
  assert.ok(cancelled);
});

test("cancelling the body reaches the server: its connection closes", async () => {
  const server = await serveStalled();
  try {
    const response = await send(transport, { method: "GET", url: server.url }, {
      idleTimeout: 30_000,
    });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    await server.closed;
  } finally {
    await server.close();
  }
});

// A transport that ignores the signal, whose body never ends and never errors.
function deafTransport(cancelled: unknown[]): Transport {
  return () =>
    Promise.resolve({
      status: 200,
      url: "http://127.0.0.1:9/blob",
      headers: new Headers(),
      decoded: false,
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array([7]));
        },
        pull: () => new Promise(() => {}),
        cancel: (reason) => void cancelled.push(reason),
      }),
    });
}

test("a transport that ignores the signal still times out and aborts, its body cancelled", async () => {
  for (const abort of [false, true]) {
    const cancelled: unknown[] = [];
    const controller = new AbortController();
    const response = await send(deafTransport(cancelled), {
      method: "GET",
      url: "http://127.0.0.1:9/blob",
    }, { signal: controller.signal, idleTimeout: abort ? 30_000 : 200 });
    const reader = response.body!.getReader();
    assert.deepEqual([...(await reader.read()).value!], [7]);
    const started = performance.now();
    const pending = reader.read();
    if (abort) setTimeout(() => controller.abort(), 50);
    // send()'s timer does not keep a process alive, and this transport does no I/O that would.
    const alive = setInterval(() => {}, 1_000);
    const error = await pending.then(() => null, (e) => e).finally(() => clearInterval(alive));
    const waited = performance.now() - started;
    rejectsWith(error, abort ? "ABORTED" : "TIMEOUT");
    assert.ok(waited >= 40 && waited < 1_000, `${waited} ms`);
    assert.equal(cancelled.length, 1);
  }
});
