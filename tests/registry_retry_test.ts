// Retries stay bounded by `config.retry` however they nest (issue 25.1), URLs a registry hands
// over never escape as a raw TypeError (25.4), a challenge's scope never widens the token
// request (25.7), and errors carry the server's own words, an HTML page in one short line
// (24.6). Against the real docker-registry behind the fault proxy, which here never recovers,
// and the hostile server on 127.0.0.1. Counts are asserted exactly; times only as generous
// upper bounds.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  copy,
  ociLayoutStore,
  pull,
  push,
  type RegistryConfig,
  RegistryError,
  type RegistryErrorCode,
  tags,
} from "../src/registry/mod.ts";
import { type FaultProxy, startFaultProxy } from "./registry/_fault_proxy.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import {
  layoutWithImage,
  progressLog,
  QUICK_RETRY,
  removeTempDirs,
  tempDir,
} from "./registry/_engine.ts";
import { type HostileServer, startHostile } from "./registry/_hostile_server.ts";
import type { BuiltImage } from "./registry/_image_builder.ts";

const MiB = 1 << 20;
const UPLOADS = /\/blobs\/uploads\/$/;
let registry: RegistryServer;
let proxy: FaultProxy;
let image: BuiltImage;

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  const { store, image: built } = await layoutWithImage([2 * MiB], 31);
  image = built;
  await push(`${registry.host}/retry/app:1.0`, store, { plainHttp: true });
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
  removeTempDirs();
});

/** Clears the proxy's rules; the returned function counts the requests made since. */
function fresh(): (filter: { method: string; path: RegExp }) => number {
  proxy.clear();
  const mark = proxy.requests.length;
  return (filter) =>
    proxy.requests.slice(mark).filter((r) => r.method === filter.method && filter.path.test(r.path))
      .length;
}

/** Awaits `promise`, asserting it rejects with a RegistryError of `code` within `ms`. */
async function rejectsWithin(
  promise: Promise<unknown>,
  code: RegistryErrorCode,
  ms: number,
): Promise<RegistryError> {
  const started = performance.now();
  const error = await promise.then(() => null, (e) => e);
  const elapsed = performance.now() - started;
  assert.ok(error instanceof RegistryError, `expected RegistryError ${code}, got ${error}`);
  assert.equal(error.code, code, error.message);
  assert.ok(elapsed < ms, `took ${Math.round(elapsed)} ms, bound ${ms} ms`);
  return error;
}

/** Makes every upload start matching `path` answer 503 (with `retryAfter`); counts as fresh(). */
function uploadStartsFail(path: RegExp, retryAfter?: string): ReturnType<typeof fresh> {
  const seen = fresh();
  proxy.plan({
    method: "POST",
    path,
    times: Infinity,
    fault: { kind: "status", status: 503, ...(retryAfter === undefined ? {} : { retryAfter }) },
  });
  return seen;
}

function config(extra: RegistryConfig = {}): RegistryConfig {
  return { plainHttp: true, retry: QUICK_RETRY, ...extra };
}

/** A layout holding a one-layer image of its own. */
async function oneLayer(seed: number) {
  return (await layoutWithImage([64 * 1024], seed)).store;
}

// 1. Retries counted once however they nest ------------------------------------------------

test("push() to an upload start answering 503 for ever sends `attempts` POSTs in all", async () => {
  const seen = uploadStartsFail(UPLOADS);
  const { events, onProgress } = progressLog();
  const error = await rejectsWithin(
    push(`${proxy.host}/retry/down:1.0`, await oneLayer(41), config({ onProgress })),
    "UNKNOWN",
    15_000,
  );
  assert.equal(error.status, 503);
  assert.match(error.message, /gave up after 4 attempts/);
  assert.equal(seen({ method: "POST", path: UPLOADS }), QUICK_RETRY.attempts);
  assert.deepEqual(
    events.filter((e) => e.action === "retry").map((e) => e.attempt),
    [1, 2, 3],
  );
});

test("push() gives up at once on a Retry-After past the 60 s honoured: one POST, no wait", async () => {
  const seen = uploadStartsFail(UPLOADS, "999999");
  const error = await rejectsWithin(
    push(`${proxy.host}/retry/later:1.0`, await oneLayer(43), config()),
    "UNKNOWN",
    15_000,
  );
  assert.equal(error.retryAfter, 999_999_000);
  assert.match(error.message, /asks to wait 999999 s, more than the 60 s honoured/);
  assert.equal(seen({ method: "POST", path: UPLOADS }), 1);
});

test("maxWait bounds the waiting of one upload: Retry-After 1 s twice, then no time left", async () => {
  const seen = uploadStartsFail(UPLOADS, "1");
  const started = performance.now();
  const error = await rejectsWithin(
    push(`${proxy.host}/retry/slow:1.0`, await oneLayer(47), {
      plainHttp: true,
      retry: { attempts: 10, baseDelay: 20, maxDelay: 100, maxWait: 2_500 },
    }),
    "UNKNOWN",
    20_000,
  );
  assert.match(error.message, /more than the 0\.5 s of waiting left/);
  assert.equal(seen({ method: "POST", path: UPLOADS }), 3);
  assert.ok(performance.now() - started >= 1_900, "did not wait as the registry asked");
});

test("copy() to a destination whose upload start answers 503 for ever sends `attempts` POSTs", async () => {
  const seen = uploadStartsFail(/\/retry\/copied\/blobs\/uploads\/$/);
  const error = await rejectsWithin(
    copy(`${registry.host}/retry/app:1.0`, `${proxy.host}/retry/copied:1.0`, {
      source: { plainHttp: true },
      destination: { plainHttp: true },
      retry: QUICK_RETRY,
    }),
    "UNKNOWN",
    15_000,
  );
  assert.equal(error.status, 503);
  assert.equal(seen({ method: "POST", path: UPLOADS }), QUICK_RETRY.attempts);
});

test("pull() of a layer cut once, then answered 503 for ever, sends `attempts` GETs in all", async () => {
  const seen = fresh();
  const layer = image.layers[0]!.digest;
  const path = new RegExp(`/blobs/${layer}$`);
  proxy.plan(
    { method: "GET", path, fault: { kind: "cut", afterBytes: MiB } },
    { method: "GET", path, skip: 1, times: Infinity, fault: { kind: "status", status: 503 } },
  );
  const { events, onProgress } = progressLog();
  const error = await rejectsWithin(
    pull(`${proxy.host}/retry/app:1.0`, await ociLayoutStore(tempDir()), config({ onProgress })),
    "UNKNOWN",
    15_000,
  );
  assert.equal(error.status, 503);
  assert.match(error.message, /gave up after 4 attempts/);
  assert.equal(seen({ method: "GET", path }), QUICK_RETRY.attempts);
  assert.equal(events.filter((e) => e.action === "retry" && e.digest === layer).length, 3);
});

// 2. URLs from the registry inside the typed-error boundary ----------------------------------

/** Runs `fn` with a fresh hostile server, closing it whatever happens. */
async function withHostile(fn: (server: HostileServer) => Promise<void>): Promise<void> {
  const server = await startHostile();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

const BAD_URL = "http://[::1:bad/x";

// The runtime's default transport (node:http on Node, fetch elsewhere) and the global fetch.
for (const [transport, fetchOption] of [["default", {}], ["fetch", { fetch }]] as const) {
  test(`an upload Location "${BAD_URL}" from the POST is MALFORMED (${transport} transport)`, async () => {
    await withHostile(async (server) => {
      server.handler = (req, answer) => {
        if (req.method !== "POST") return false;
        answer.send(202, { location: BAD_URL });
        return true;
      };
      const error = await rejectsWithin(
        push(`${server.host}/team/app:1.0`, await oneLayer(53), config(fetchOption)),
        "MALFORMED",
        10_000,
      );
      assert.match(error.message, /upload Location/);
    });
  });

  test(`an upload Location "${BAD_URL}" from a chunk's PATCH is MALFORMED (${transport} transport)`, async () => {
    await withHostile(async (server) => {
      server.handler = (req, answer) => {
        if (req.method !== "PATCH") return false;
        answer.send(202, { location: BAD_URL });
        return true;
      };
      await rejectsWithin(
        push(`${server.host}/team/app:1.0`, await oneLayer(59), {
          ...config(fetchOption),
          chunkSize: 16 * 1024,
        }),
        "MALFORMED",
        10_000,
      );
      assert.equal(server.log.filter((r) => r.method === "PATCH").length, 1);
    });
  });

  test(`a tag list Link and a redirect to "${BAD_URL}" fail typed (${transport} transport)`, async () => {
    await withHostile(async (server) => {
      server.handler = (req, answer) => {
        if (req.url.pathname.endsWith("/tags/list")) {
          answer.json(200, { tags: ["1.0"] }, { link: `<${BAD_URL}>; rel="next"` });
        } else if (req.url.pathname.includes("/manifests/")) {
          answer.send(307, { location: BAD_URL });
        } else return false;
        return true;
      };
      await rejectsWithin(
        tags(`${server.host}/team/app`, config(fetchOption)),
        "MALFORMED",
        10_000,
      );
      const error = await pull(
        `${server.host}/team/app:1.0`,
        await ociLayoutStore(tempDir()),
        config(fetchOption),
      ).then(() => null, (e) => e);
      assert.ok(error instanceof RegistryError, `not a RegistryError: ${error}`);
    });
  });
}

// 3. The token request asks only what the operation needs --------------------------------

test("a challenge whose scope names other repositories does not widen the token request", async () => {
  await withHostile(async (server) => {
    const asked: string[][] = [];
    let refuseOnce = true;
    server.handler = (req, answer) => {
      if (req.url.pathname === "/token") {
        asked.push(req.url.searchParams.getAll("scope"));
        answer.json(200, { token: "t" });
        return true;
      }
      // The ping, and the first request of each call with a token, meet the greedy challenge.
      if (req.authorization !== "Bearer t" || refuseOnce) {
        if (req.authorization === "Bearer t") refuseOnce = false;
        answer.send(401, {
          "www-authenticate": `Bearer realm="${server.url}/token",service="hostile",` +
            `scope="repository:victim/secret:pull,push repository:*:*",error="insufficient_scope"`,
        });
        return true;
      }
      return false;
    };
    const alice = { username: "alice", password: "secret-a" };
    assert.deepEqual(await tags(`${server.host}/team/app`, { plainHttp: true, auth: alice }), []);
    assert.deepEqual(asked, [["repository:team/app:pull"], ["repository:team/app:pull"]]);
    asked.length = 0;
    refuseOnce = true;
    await push(`${server.host}/team/app:1.0`, await oneLayer(61), { plainHttp: true, auth: alice });
    assert.ok(asked.length >= 2, `${asked.length} token requests`);
    for (const scopes of asked) assert.deepEqual(scopes, ["repository:team/app:pull,push"]);
  });
});

// 4. Errors that say what to do ----------------------------------------------------------

test("a token server's own words reach the error: details, OAuth error_description", async () => {
  await withHostile(async (server) => {
    server.handler = (req, answer) => {
      if (req.url.pathname === "/token") {
        if (req.method === "POST") {
          answer.json(400, { error: "invalid_grant", error_description: "refresh token expired" });
        } else answer.json(401, { details: "incorrect username or password" });
      } else if (req.authorization === null) {
        answer.send(401, { "www-authenticate": `Bearer realm="${server.url}/token"` });
      } else return false;
      return true;
    };
    const ref = `${server.host}/team/app`;
    const wrong = await rejectsWithin(
      tags(ref, { plainHttp: true, auth: { username: "alice", password: "wrong" } }),
      "UNAUTHORIZED",
      10_000,
    );
    assert.match(wrong.message, /: status 401: incorrect username or password$/);
    assert.equal(wrong.reason, "incorrect username or password");
    const expired = await rejectsWithin(
      tags(ref, { plainHttp: true, auth: { identitytoken: "old" } }),
      "DENIED",
      10_000,
    );
    assert.match(expired.message, /: status 400: refresh token expired$/);
  });
});

test("an HTML error page is one short line in the error and in retry events; its body read bounded", async () => {
  await withHostile(async (server) => {
    const page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>" +
      "<p>nginx</p>\n".repeat(100_000) + "</body></html>";
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.send(502, { "content-type": "text/html" }, page);
      return true;
    };
    const { events, onProgress } = progressLog();
    const error = await rejectsWithin(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), config({ onProgress })),
      "UNKNOWN",
      10_000,
    );
    assert.match(
      error.message,
      /: status 502: HTML page "502 Bad Gateway" \(gave up after 4 attempts\)$/,
    );
    assert.ok(!error.message.includes("\n") && error.message.length < 300, error.message);
    for (const event of events.filter((e) => e.action === "retry")) {
      assert.ok((event.error?.message.length ?? 0) < 300, String(event.error?.message));
    }
  });
});

test("an error body without a title is summarised in at most 200 characters of text", async () => {
  await withHostile(async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.send(400, {}, "<html><body><h1>Bad\r\nrequest</h1>" + "x".repeat(5_000));
      return true;
    };
    const error = await rejectsWithin(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), config()),
      "UNKNOWN",
      10_000,
    );
    const said = /status 400: (.*)$/.exec(error.message)?.[1] ?? "";
    assert.ok(said.startsWith('HTML page "Bad request x'), error.message);
    assert.ok(said.length <= 200, `${said.length} characters`);
  });
});
