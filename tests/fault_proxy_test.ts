// The fault proxy (tests/registry/_fault_proxy.ts) does what the pull and push fault tests will
// rely on, against a real docker-registry on 127.0.0.1: cuts at exactly N bytes (responses and
// uploads), bursts of injected statuses then the registry's own answer, a stall between head
// and body, dropped connections, and a request log.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type AddressInfo, connect, createServer } from "node:net";
import { type FaultProxy, startFaultProxy } from "./registry/_fault_proxy.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const BLOB = new Uint8Array(256 * 1024).map((_, i) => (i * 7919) % 251);
const DIGEST = "sha256:" + createHash("sha256").update(BLOB).digest("hex");
const BLOB_PATH = `/v2/proxy/test/blobs/${DIGEST}`;

let started: Promise<{ registry: RegistryServer; proxy: FaultProxy }> | undefined;

/** One registry holding BLOB in `proxy/test`, and one proxy in front of it. */
function setup(): Promise<{ registry: RegistryServer; proxy: FaultProxy }> {
  started ??= (async () => {
    const registry = await startRegistry();
    const begun = await fetch(`${registry.url}/v2/proxy/test/blobs/uploads/`, { method: "POST" });
    await begun.body?.cancel();
    assert.equal(begun.status, 202);
    const location = new URL(begun.headers.get("location")!, registry.url);
    location.searchParams.set("digest", DIGEST);
    const put = await fetch(location, { method: "PUT", body: BLOB });
    await put.body?.cancel();
    assert.equal(put.status, 201);
    return { registry, proxy: await startFaultProxy(registry.url) };
  })();
  return started;
}

/** A raw HTTP/1.1 GET: the head, and every body byte that arrived before the connection closed. */
function rawGet(host: string, path: string): Promise<{ head: string; body: Uint8Array }> {
  const [hostname, port] = host.split(":");
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname!);
    const chunks: Uint8Array[] = [];
    socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      if (end < 0) return reject(new Error(`no response head: ${all.toString("latin1")}`));
      resolve({
        head: all.subarray(0, end).toString("latin1"),
        body: new Uint8Array(all.subarray(end + 4)),
      });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

test("fault proxy: requests pass through unchanged and are logged", async () => {
  const { proxy } = await setup();
  proxy.clear();
  const before = proxy.count({ method: "GET", path: /\/blobs\/sha256:/ });
  const response = await fetch(`${proxy.url}${BLOB_PATH}`);
  assert.equal(response.status, 200);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BLOB);
  const head = await fetch(`${proxy.url}${BLOB_PATH}`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(BLOB.length));
  assert.equal(proxy.count({ method: "GET", path: /\/blobs\/sha256:/ }), before + 1);
  assert.deepEqual(proxy.requests.at(-1), { method: "HEAD", path: BLOB_PATH, status: 200 });
});

test("fault proxy: a cut ends the N-th matching response after exactly N bytes", async () => {
  const { proxy } = await setup();
  proxy.clear();
  proxy.plan({
    method: "GET",
    path: /\/blobs\//,
    skip: 1,
    fault: { kind: "cut", afterBytes: 1000 },
  });
  // A HEAD does not match; the first GET is let through; the second is cut.
  await (await fetch(`${proxy.url}${BLOB_PATH}`, { method: "HEAD" })).body?.cancel();
  assert.deepEqual((await rawGet(proxy.host, BLOB_PATH)).body, BLOB);
  const cut = await rawGet(proxy.host, BLOB_PATH);
  assert.match(cut.head, /^HTTP\/1\.1 200 /);
  assert.match(cut.head, new RegExp(`\r\nContent-Length: ${BLOB.length}\r\n`, "i"));
  assert.deepEqual(cut.body, BLOB.subarray(0, 1000));
  assert.equal(proxy.requests.at(-1)?.fault, "cut");
  // The rule is spent: the next GET is whole again.
  assert.deepEqual((await rawGet(proxy.host, BLOB_PATH)).body, BLOB);
});

test("fault proxy: fetch sees a cut response as a failed body read", async () => {
  const { proxy } = await setup();
  proxy.clear();
  proxy.plan({ path: /\/blobs\//, fault: { kind: "cut", afterBytes: 4096 } });
  const response = await fetch(`${proxy.url}${BLOB_PATH}`);
  assert.equal(response.status, 200);
  let received = 0;
  const reader = response.body!.getReader();
  await assert.rejects(async () => {
    for (let i = 0; i <= BLOB.length; i++) {
      const { done, value } = await reader.read();
      if (done) return;
      received += value.length;
    }
  });
  // Node and Deno hand over the 4096 bytes before the error; Bun may drop a chunk that arrived
  // with the close, so a resuming reader must count what it got, not what was sent.
  assert.ok(received <= 4096, `received ${received} bytes`);
});

test(
  "fault proxy: a burst of 503 with Retry-After, then the registry answers",
  async () => {
    const { proxy } = await setup();
    proxy.clear();
    proxy.plan({
      path: /\/blobs\//,
      times: 3,
      fault: { kind: "status", status: 503, retryAfter: "2" },
    });
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${proxy.url}${BLOB_PATH}`);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "2");
      assert.equal((await response.json()).errors[0].code, "UNAVAILABLE");
    }
    const response = await fetch(`${proxy.url}${BLOB_PATH}`);
    assert.equal(response.status, 200);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BLOB);
    assert.deepEqual(proxy.requests.slice(-4).map((r) => [r.status, r.fault]), [
      [503, "status"],
      [503, "status"],
      [503, "status"],
      [200, undefined],
    ]);
  },
);

test("fault proxy: 429 and 408 without Retry-After, on uploads too", async () => {
  const { proxy } = await setup();
  proxy.clear();
  proxy.plan(
    { method: "POST", fault: { kind: "status", status: 429 } },
    { method: "POST", skip: 1, fault: { kind: "status", status: 408 } },
  );
  const tooMany = await fetch(`${proxy.url}/v2/proxy/test/blobs/uploads/`, { method: "POST" });
  assert.equal(tooMany.status, 429);
  assert.equal(tooMany.headers.get("retry-after"), null);
  assert.equal((await tooMany.json()).errors[0].code, "TOOMANYREQUESTS");
  const timeout = await fetch(`${proxy.url}/v2/proxy/test/blobs/uploads/`, {
    method: "POST",
    body: BLOB,
  });
  assert.equal(timeout.status, 408);
  await timeout.body?.cancel();
  const begun = await fetch(`${proxy.url}/v2/proxy/test/blobs/uploads/`, { method: "POST" });
  await begun.body?.cancel();
  assert.equal(begun.status, 202);
  // The registry's Location points back at the proxy: the Host header went upstream unchanged.
  assert.equal(new URL(begun.headers.get("location")!, proxy.url).host, proxy.host);
});

test("fault proxy: a stall holds the body back for T ms after the head", async () => {
  const { proxy } = await setup();
  proxy.clear();
  const STALL_MS = 1500;
  proxy.plan({ path: /\/blobs\//, fault: { kind: "stall", ms: STALL_MS } });
  const start = performance.now();
  const response = await fetch(`${proxy.url}${BLOB_PATH}`);
  const headersAfter = performance.now() - start;
  const body = new Uint8Array(await response.arrayBuffer());
  const bodyAfter = performance.now() - start;
  assert.equal(response.status, 200);
  assert.deepEqual(body, BLOB);
  assert.ok(headersAfter < STALL_MS * 2 / 3, `head after ${headersAfter} ms`);
  assert.ok(bodyAfter >= STALL_MS - 20, `body after ${bodyAfter} ms`);
});

test("fault proxy: a stall after N body bytes holds the rest back for T ms", async () => {
  const { proxy } = await setup();
  proxy.clear();
  const STALL_MS = 1500;
  const AFTER = 100_000;
  proxy.plan({ path: /\/blobs\//, fault: { kind: "stall", ms: STALL_MS, afterBytes: AFTER } });
  const start = performance.now();
  const response = await fetch(`${proxy.url}${BLOB_PATH}`);
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  let reachedStall = Infinity; // when the first AFTER bytes were in
  let pastStall = Infinity; // when the first byte after them came
  for (let i = 0; i <= BLOB.length; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    const now = performance.now() - start;
    if (received >= AFTER && pastStall === Infinity) pastStall = now;
    chunks.push(value);
    received += value.length;
    assert.ok(received <= AFTER || now >= STALL_MS - 20, `${received} bytes after ${now} ms`);
    if (received >= AFTER && reachedStall === Infinity) reachedStall = now;
  }
  assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), BLOB);
  assert.ok(reachedStall < STALL_MS * 2 / 3, `first ${AFTER} bytes after ${reachedStall} ms`);
  assert.ok(pastStall >= STALL_MS - 20, `the rest after ${pastStall} ms`);
});

test("fault proxy: Range requests pass through (the registry answers 206)", async () => {
  const { proxy } = await setup();
  proxy.clear();
  const response = await fetch(`${proxy.url}${BLOB_PATH}`, { headers: { range: "bytes=1000-" } });
  assert.equal(response.status, 206);
  assert.equal(
    response.headers.get("content-range"),
    `bytes 1000-${BLOB.length - 1}/${BLOB.length}`,
  );
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BLOB.subarray(1000));
});

test("fault proxy: an upload cut after N bytes never completes at the registry", async () => {
  const { proxy, registry } = await setup();
  proxy.clear();
  const data = new Uint8Array(1024 * 1024).fill(7);
  const digest = "sha256:" + createHash("sha256").update(data).digest("hex");
  const upload = async () => {
    const begun = await fetch(`${proxy.url}/v2/proxy/test/blobs/uploads/`, { method: "POST" });
    await begun.body?.cancel();
    const location = new URL(begun.headers.get("location")!, proxy.url);
    location.searchParams.set("digest", digest);
    const response = await fetch(location, { method: "PUT", body: data });
    await response.body?.cancel();
    return response.status;
  };
  const blobStatus = async () => {
    const response = await fetch(`${registry.url}/v2/proxy/test/blobs/${digest}`, {
      method: "HEAD",
    });
    return response.status;
  };
  proxy.plan({
    method: "PUT",
    fault: { kind: "cut", afterBytes: 64 * 1024, direction: "request" },
  });
  await assert.rejects(upload());
  assert.equal(proxy.requests.at(-1)?.fault, "cut");
  assert.equal(await blobStatus(), 404);
  // The same upload, uncut, is whole.
  assert.equal(await upload(), 201);
  assert.equal(await blobStatus(), 200);
});

test("fault proxy: an upload cut after N bytes delivers exactly N body bytes", async () => {
  // A TCP sink records what arrives upstream, byte for byte.
  const received: Uint8Array[] = [];
  let sinkClosed: () => void;
  const closed = new Promise<void>((resolve) => sinkClosed = resolve);
  const sink = createServer((socket) => {
    let total = 0;
    socket.on("data", (chunk: Uint8Array) => {
      received.push(chunk);
      // Far more than the cut lets through: hang up, or an uncut upload would wait forever.
      if ((total += chunk.length) > 64 * 1024) socket.destroy();
    });
    socket.on("close", () => sinkClosed());
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const { port } = sink.address() as AddressInfo;
  const proxy = await startFaultProxy(`http://127.0.0.1:${port}`);
  try {
    proxy.plan({ fault: { kind: "cut", afterBytes: 5000, direction: "request" } });
    const data = new Uint8Array(100_000).map((_, i) => i % 256);
    await assert.rejects(fetch(`${proxy.url}/upload`, { method: "PUT", body: data }));
    await closed;
    const all = Buffer.concat(received);
    const end = all.indexOf("\r\n\r\n") + 4;
    assert.match(all.subarray(0, end).toString("latin1"), /^PUT \/upload HTTP\/1\.1\r\n/);
    assert.match(all.subarray(0, end).toString("latin1"), /\r\nConnection: close\r\n/);
    assert.deepEqual(new Uint8Array(all.subarray(end)), data.subarray(0, 5000));
  } finally {
    await proxy.stop();
    await new Promise((resolve) => sink.close(resolve));
  }
});

test("fault proxy: a dropped connection gets no answer", async () => {
  const { proxy } = await setup();
  proxy.clear();
  proxy.plan({ method: "GET", path: /\/v2\/$/, fault: { kind: "drop" } });
  await assert.rejects(fetch(`${proxy.url}/v2/`));
  assert.deepEqual(proxy.requests.at(-1), {
    method: "GET",
    path: "/v2/",
    status: 0,
    fault: "drop",
  });
  const again = await fetch(`${proxy.url}/v2/`);
  await again.body?.cancel();
  assert.equal(again.status, 200);
});

test("fault proxy: a stopped proxy refuses connections", async () => {
  const { registry } = await setup();
  const proxy = await startFaultProxy(registry.url);
  const before = await fetch(`${proxy.url}/v2/`);
  await before.body?.cancel();
  assert.equal(before.status, 200);
  await proxy.stop();
  await assert.rejects(fetch(`${proxy.url}/v2/`));
});

after(async () => {
  const running = await started?.catch(() => null);
  await running?.proxy.stop();
  await running?.registry.stop();
});
