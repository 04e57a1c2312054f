// The node:http transport (src/registry/transport/node_http.ts), Node's default, against real
// node:http servers and the real docker-registry on 127.0.0.1: redirects as fetch follows them
// (credentials never to another origin), aborts and backpressure both ways, kept-alive
// connections, https certificate checks, and a push and pull with every digest checked.
// The transport is Node's only: on Deno and Bun this file checks that their default stays
// fetch and runs itself under Node in a child process, so its cases pass or fail there too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ociLayoutStore, pull, push, RegistryError, tags } from "../src/registry/mod.ts";
import { send } from "../src/registry/transport/http.ts";
import { nodeHttpTransport } from "../src/registry/transport/node_http.ts";
import { defaultTransport } from "../src/registry/transport/default_transport.ts";
import type {
  Transport,
  TransportRequest,
  TransportResponse,
} from "../src/registry/transport/transport.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { startRegistry } from "./registry/_registry_server.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "node-transport-"));
  temps.push(dir);
  return dir;
}
test.after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface Logged {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
  port: number;
}

/** Runs the child helper under Node; resolves with its exit code and the JSON line it printed. */
async function runChild(args: string[], env: Record<string, string> = {}) {
  const [command, argv] = runtimeCommand(join(here, "registry", "_node_transport_child.ts"), args);
  const child = spawn(command, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  child.stdout.on("data", (chunk) => out += chunk);
  child.stderr.on("data", (chunk) => out += chunk);
  const code = await new Promise((resolve) => child.on("close", resolve));
  assert.equal(code, 0, out);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

/** A node:http server on a free port of 127.0.0.1 that logs each request with its body. */
async function serve(handler: Handler, server: Server = createServer()) {
  const log: Logged[] = [];
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on("data", (chunk: Buffer) => parts.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      const port = req.socket.remotePort ?? 0;
      log.push({ method: req.method!, url: req.url!, headers: req.headers, body, port });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const scheme = "key" in server ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function request(url: string, init: Partial<TransportRequest> = {}): TransportRequest {
  return { method: "GET", url, headers: {}, signal: new AbortController().signal, ...init };
}

async function text(response: TransportResponse): Promise<string> {
  return await new Response(response.body).text();
}

function hexSha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

if (runtimeName !== "node") {
  test(`defaultTransport() stays fetch on ${runtimeName}`, async () => {
    assert.notEqual(defaultTransport(), nodeHttpTransport);
    // A request through it carries what only fetch sends.
    const server = await serve((_req, res) => res.end("ok"));
    try {
      const response = await defaultTransport()(request(`${server.url}/x`));
      assert.equal(await text(response), "ok");
      assert.equal(server.log.length, 1);
      assert.equal(
        server.log[0]!.headers["user-agent"]?.startsWith(runtimeName === "deno" ? "Deno/" : "Bun/"),
        true,
      );
    } finally {
      await server.close();
    }
  });

  test("the node:http transport's cases pass under Node (this file, in a child process)", async () => {
    const child = spawn("node", [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=tap",
      fileURLToPath(import.meta.url),
    ], {
      cwd: dirname(here),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => out += chunk);
    child.stderr.on("data", (chunk) => out += chunk);
    const code = await new Promise((resolve) => child.on("close", resolve));
    const passed = Number(/^# pass (\d+)$/m.exec(out)?.[1] ?? 0);
    assert.equal(code, 0, out.slice(-4000));
    assert.match(out, /^# fail 0$/m);
    assert.ok(passed >= 10, `only ${passed} cases passed under Node:\n${out.slice(-4000)}`);
  });
}

test("a fetch given in the config carries every request, whatever the runtime", async () => {
  const server = await serve((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(req.url === "/v2/" ? "{}" : JSON.stringify({ name: "team/app", tags: ["1.0"] }));
  });
  try {
    const seen: string[] = [];
    const counting: typeof fetch = (input, init) => {
      seen.push(`${init?.method ?? "GET"} ${input}`);
      return fetch(input, init);
    };
    const host = server.url.slice("http://".length);
    assert.deepEqual(await tags(`${host}/team/app`, { plainHttp: true, fetch: counting }), ["1.0"]);
    assert.deepEqual(seen, [
      `GET ${server.url}/v2/`,
      `GET ${server.url}/v2/team/app/tags/list`,
    ]);
    assert.equal(server.log.length, 2);
  } finally {
    await server.close();
  }
});

if (runtimeName === "node") {
  const transport: Transport = nodeHttpTransport!;

  test("defaultTransport() is the node:http transport on Node", () => {
    assert.notEqual(nodeHttpTransport, null);
    assert.equal(defaultTransport(), nodeHttpTransport);
  });

  test("nodeHttpTransport follows a same-origin redirect with Authorization", async () => {
    const server = await serve((req, res) => {
      if (req.url === "/start") res.writeHead(307, { location: "/final?x=1" }).end("moved");
      else res.end(`at ${req.url}`);
    });
    try {
      const response = await transport(
        request(`${server.url}/start`, { headers: { authorization: "Bearer secret" } }),
      );
      assert.equal(response.status, 200);
      assert.equal(response.url, `${server.url}/final?x=1`);
      assert.equal(await text(response), "at /final?x=1");
      assert.deepEqual(server.log.map((r) => r.headers.authorization), [
        "Bearer secret",
        "Bearer secret",
      ]);
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport drops Authorization and Cookie on a redirect to another origin", async () => {
    const other = await serve((_req, res) => res.end("elsewhere"));
    const server = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.url}/layer` }).end();
    });
    try {
      const response = await transport(request(`${server.url}/v2/app/blobs/sha256:0`, {
        headers: { authorization: "Basic YWxpY2U6c2VjcmV0", cookie: "session=1", "x-kept": "y" },
      }));
      assert.equal(await text(response), "elsewhere");
      assert.equal(response.url, `${other.url}/layer`);
      assert.equal(server.log[0]!.headers.authorization, "Basic YWxpY2U6c2VjcmV0");
      assert.equal(other.log.length, 1);
      assert.equal(other.log[0]!.headers.authorization, undefined);
      assert.equal(other.log[0]!.headers.cookie, undefined);
      assert.equal(other.log[0]!.headers["x-kept"], "y");
    } finally {
      await Promise.all([server.close(), other.close()]);
    }
  });

  test("nodeHttpTransport turns a 303 after a PUT, and a 301 after a POST, into a GET without body", async () => {
    const server = await serve((req, res) => {
      if (req.url === "/put") res.writeHead(303, { location: "/see" }).end();
      else if (req.url === "/post") res.writeHead(301, { location: "/moved" }).end();
      else res.end(`${req.method} ${req.url}`);
    });
    try {
      const put = await transport(request(`${server.url}/put`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: '{"a":1}',
      }));
      assert.equal(await text(put), "GET /see");
      const post = await transport(request(`${server.url}/post`, {
        method: "POST",
        body: new Uint8Array([1, 2, 3]),
      }));
      assert.equal(await text(post), "GET /moved");
      const [first, see, second, moved] = server.log;
      assert.equal(first!.body.toString(), '{"a":1}');
      assert.equal(second!.body.length, 3);
      for (const followed of [see!, moved!]) {
        assert.equal(followed.method, "GET");
        assert.equal(followed.body.length, 0);
        assert.equal(followed.headers["content-type"], undefined);
        assert.equal(followed.headers["content-length"], undefined);
      }
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport sends a whole body again on a 307, refuses to with a streamed one", async () => {
    const server = await serve((req, res) => {
      if (req.url === "/temp") res.writeHead(307, { location: "/there" }).end();
      else res.end(`${req.method} ${req.url} ${req.headers["content-length"]}`);
    });
    try {
      const again = await transport(request(`${server.url}/temp`, {
        method: "PATCH",
        body: new Uint8Array(5),
      }));
      assert.equal(await text(again), "PATCH /there 5");
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(4));
          controller.close();
        },
      });
      await assert.rejects(
        transport(request(`${server.url}/temp`, { method: "PUT", body })),
        /streamed body cannot be sent again/,
      );
      // The streamed PUT reached /temp once, and nothing followed it to /there.
      assert.deepEqual(server.log.map((r) => `${r.method} ${r.url} ${r.body.length}`), [
        "PATCH /temp 5",
        "PATCH /there 5",
        "PUT /temp 4",
      ]);
    } finally {
      await server.close();
    }
  });

  test("send() over nodeHttpTransport gives up a redirect loop after 20: UNREACHABLE", async () => {
    const server = await serve((_req, res) => res.writeHead(302, { location: "/loop" }).end());
    try {
      const started = performance.now();
      await assert.rejects(
        send(transport, { method: "GET", url: `${server.url}/loop` }, { idleTimeout: 5_000 }),
        (error) => {
          assert.ok(error instanceof RegistryError, String(error));
          assert.equal(error.code, "UNREACHABLE");
          assert.match(error.message, /more than 20 redirects/);
          return true;
        },
      );
      assert.equal(server.log.length, 21);
      assert.ok(performance.now() - started < 5_000);
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport reuses a kept-alive connection", async () => {
    const server = await serve((_req, res) => res.end("x".repeat(1000)));
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal((await text(await transport(request(`${server.url}/${i}`)))).length, 1000);
      }
      const ports = new Set(server.log.map((r) => r.port));
      assert.equal(ports.size, 1, `connections from ports ${[...ports]}`);
      assert.equal(server.log[0]!.headers.connection, "keep-alive");
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport hands over the body's bytes as sent, decoding nothing", async () => {
    const raw = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
    const server = await serve((_req, res) => {
      res.writeHead(200, { "content-encoding": "gzip", "content-length": raw.length }).end(raw);
    });
    try {
      const response = await transport(request(`${server.url}/blob`));
      assert.equal(response.decoded, false);
      assert.deepEqual(new Uint8Array(await new Response(response.body).arrayBuffer()), raw);
      assert.equal(server.log[0]!.headers["accept-encoding"], undefined);
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport pauses the socket while the body's reader is behind", async () => {
    const total = 64 * MiB;
    let written = 0;
    const server = await serve((_req, res) => {
      res.writeHead(200, { "content-length": total });
      const chunk = new Uint8Array(256 * 1024).fill(7);
      const more = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        res.end();
      };
      more();
    });
    try {
      const response = await transport(request(`${server.url}/big`));
      const reader = response.body!.getReader();
      let received = (await reader.read()).value!.length;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Socket buffers on both sides plus the stream's 1 MiB: a few MiB, never the 64.
      assert.ok(written < 16 * MiB, `the server wrote ${written / MiB} MiB to a paused reader`);
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        received += r.value.length;
      }
      assert.equal(received, total);
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport aborts an answer's body midway: the read fails, the connection closes", async () => {
    let closed: Promise<void> = Promise.resolve();
    const server = await serve((req, res) => {
      closed = new Promise((resolve) => req.socket.once("close", () => resolve()));
      res.writeHead(200, { "content-length": 10 * MiB });
      res.write(new Uint8Array(MiB)); // then nothing more
    });
    try {
      const controller = new AbortController();
      const response = await transport(
        request(`${server.url}/stall`, { signal: controller.signal }),
      );
      const reader = response.body!.getReader();
      assert.ok((await reader.read()).value!.length > 0);
      const reason = new Error("stop");
      setTimeout(() => controller.abort(reason), 50);
      const started = performance.now();
      await assert.rejects(
        (async () => {
          while (!(await reader.read()).done) { /* until the abort */ }
        })(),
        (error) => error === reason,
      );
      await closed;
      assert.ok(performance.now() - started < 2_000);
    } finally {
      await server.close();
    }
  });

  test("nodeHttpTransport aborts a streamed request body midway: rejected, source cancelled, connection closed", async () => {
    let received = 0;
    let serverSawClose!: () => void;
    const closed = new Promise<void>((resolve) => serverSawClose = resolve);
    const server = createServer((req) => {
      req.on("data", (chunk: Buffer) => received += chunk.length);
      req.socket.once("close", serverSawClose);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/upload`;
    try {
      let cancelledWith: unknown = null;
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 4) return await new Promise(() => {}); // a source that stalls
          sent++;
          controller.enqueue(new Uint8Array(64 * 1024));
        },
        cancel(reason) {
          cancelledWith = reason;
        },
      }, { highWaterMark: 0 });
      const controller = new AbortController();
      const reason = new Error("stop");
      const pending = transport(request(url, {
        method: "PUT",
        headers: { "content-length": String(MiB) },
        body,
        signal: controller.signal,
      }));
      while (received < 4 * 64 * 1024) await new Promise((resolve) => setTimeout(resolve, 10));
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
      await closed;
      // The source is cancelled with the reason, though a read of it was still pending.
      for (let i = 0; i < 100 && cancelledWith === null; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(cancelledWith, reason);
      assert.equal(received, 4 * 64 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("nodeHttpTransport reads a 256 MiB streamed PUT only as a slow server takes it: peak RSS stays bounded", async () => {
    const mib = 256;
    let received = 0;
    // Takes ~100 MiB/s: pauses whenever it is ahead of that pace.
    const started = performance.now();
    const server = createServer((req, res) => {
      req.on("data", (chunk: Buffer) => {
        received += chunk.length;
        const ahead = received / (100 * MiB) * 1000 - (performance.now() - started);
        if (ahead > 5) {
          req.pause();
          setTimeout(() => req.resume(), ahead);
        }
      });
      req.on("end", () => res.writeHead(201).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blob`;
    try {
      const result = await runChild(["put", url, String(mib)]);
      assert.equal(result.status, 201);
      assert.equal(result.made, mib);
      assert.equal(received, mib * MiB);
      // Node starts at ~45 MiB; reading ahead of the socket would hold the 256 MiB.
      assert.ok(result.maxRssMiB < 128, `peak RSS ${result.maxRssMiB} MiB`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("nodeHttpTransport checks https certificates against Node's CAs (NODE_EXTRA_CA_CERTS adds one)", async () => {
    const dir = tempDir();
    const made = spawnSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const key = readFileSync(join(dir, "key.pem"));
    const cert = readFileSync(join(dir, "cert.pem"));
    const server = await serve((_req, res) => res.end("secret"), createHttpsServer({ key, cert }));
    try {
      await assert.rejects(
        send(transport, { method: "GET", url: `${server.url}/v2/` }, { idleTimeout: 5_000 }),
        (error) => {
          assert.ok(error instanceof RegistryError);
          assert.equal(error.code, "UNREACHABLE");
          assert.match(String(error.cause), /self[- ]signed|certificate/i);
          return true;
        },
      );
      assert.equal(server.log.length, 0);
      // Trusted by the process (Node's own way): the same request goes through.
      const trusted = await runChild(["get", `${server.url}/v2/`], {
        NODE_EXTRA_CA_CERTS: join(dir, "cert.pem"),
      });
      assert.deepEqual(trusted, { status: 200, body: "secret" });
      assert.equal(server.log.length, 1);
    } finally {
      await server.close();
    }
  });

  test("push() and pull() through docker-registry over node:http: one streamed PUT or PATCH chunks, digests checked", async () => {
    const registry = await startRegistry({ accessLog: true });
    try {
      const source = await ociLayoutStore(tempDir());
      const image = await buildImage(source, "1.0", [
        [{ name: "big", data: noise(6 * MiB, 1) }],
        [{ name: "small", data: new TextEncoder().encode("hello\n") }],
      ]);
      for (const [repo, chunkSize] of [["whole", 0], ["chunked", MiB]] as const) {
        const ref = `${registry.host}/node/${repo}:1.0`;
        const pushed = await push(ref, source, { plainHttp: true, chunkSize });
        assert.equal(pushed.digest, image.manifest.digest);
        const target = await ociLayoutStore(tempDir());
        const pulled = await pull(ref, target, { plainHttp: true });
        assert.equal(pulled.digest, image.manifest.digest);
        for (const blob of [image.config, ...image.layers]) {
          const bytes = await target.get(blob.digest);
          assert.equal(bytes.length, blob.size);
          assert.equal(`sha256:${hexSha256(bytes)}`, blob.digest);
        }
      }
      const logged = await registry.requests();
      const patches = logged.filter((r) =>
        r.method === "PATCH" && r.url.includes("/node/chunked/")
      );
      assert.ok(patches.length >= 6, `${patches.length} PATCH requests for 6 MiB in 1 MiB chunks`);
      assert.equal(
        logged.filter((r) => r.method === "PATCH" && r.url.includes("/node/whole/")).length,
        0,
      );
      // Not through Node's fetch, which names itself "node" (the server helper's own
      // requests, to /v2/ without a repository, do go through it).
      const ours = logged.filter((r) => r.url.includes("/node/"));
      assert.ok(ours.length > 10);
      assert.deepEqual(ours.filter((r) => r.userAgent === "node"), []);
    } finally {
      await registry.stop();
    }
  });
}

test(`a push given no chunkSize: one PUT, but 4 MiB PATCH chunks through a caller's fetch on Node (${runtimeName})`, async () => {
  const registry = await startRegistry({ accessLog: true });
  try {
    const source = await ociLayoutStore(tempDir());
    const image = await buildImage(source, "1.0", [[{ name: "big", data: noise(9 * MiB, 2) }]]);
    const ownFetch: typeof fetch = (input, init) => fetch(input, init);
    await push(`${registry.host}/default/own:1.0`, source, { plainHttp: true, fetch: ownFetch });
    await push(`${registry.host}/default/built-in:1.0`, source, { plainHttp: true });
    const logged = await registry.requests();
    const patchesTo = (repo: string) =>
      logged.filter((r) => r.method === "PATCH" && r.url.includes(`/default/${repo}/`)).length;
    // undici reads a streamed body without backpressure: 9 MiB go up as 4 + 4 + 1 MiB.
    assert.equal(patchesTo("own"), runtimeName === "node" ? 3 : 0);
    assert.equal(patchesTo("built-in"), 0);
    for (const repo of ["own", "built-in"]) {
      const pulled = await pull(
        `${registry.host}/default/${repo}:1.0`,
        await ociLayoutStore(tempDir()),
        {
          plainHttp: true,
        },
      );
      assert.equal(pulled.digest, image.manifest.digest);
    }
  } finally {
    await registry.stop();
  }
});
