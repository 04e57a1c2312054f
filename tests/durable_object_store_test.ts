// DurableObjectMetadataStore in the real workerd runtime: tests/worker/durable_object_worker.ts
// is bundled with esbuild (node:test swapped for a recorder, so the shared conformance suite
// runs inside the Durable Object) and served by miniflare on 127.0.0.1.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { tempDir } from "./_adapters.ts";
import { fakeDigest } from "./_conformance.ts";

const bundle = await build({
  entryPoints: [fileURLToPath(new URL("./worker/durable_object_worker.ts", import.meta.url))],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  alias: { "node:test": fileURLToPath(new URL("./worker/_node_test_shim.ts", import.meta.url)) },
  external: ["node:assert", "node:assert/strict"],
});
/** Where the objects keep their storage, so that a second runtime sees the first one's data. */
const persist = tempDir("dm-durable-object-");

/** A workerd process serving the worker, with the storage kept in `persist`. */
async function startWorkerd(): Promise<{ miniflare: Miniflare; url: URL }> {
  const miniflare = new Miniflare({
    modules: true,
    script: bundle.outputFiles[0]!.text,
    compatibilityDate: "2025-01-01",
    compatibilityFlags: ["nodejs_compat"],
    durableObjects: { METADATA: "MetadataObject" },
    durableObjectsPersist: persist,
    host: "127.0.0.1",
    port: 0,
  });
  return { miniflare, url: await miniflare.ready };
}

let workerd = await startWorkerd();
after(() => workerd.miniflare.dispose());

async function call(path: string, body?: unknown): Promise<Response> {
  return await fetch(new URL(path, workerd.url), {
    // A new connection each time: Bun reusing one that workerd closed fails with ECONNRESET.
    keepalive: false,
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

const names: string[] = await (await call("/conformance?object=conformance")).json();

test("DurableObjectMetadataStore in workerd: the conformance suite is there to run", () => {
  // Every conformance test (20 and more), recorded inside the Durable Object.
  assert.ok(names.length >= 20, `only ${names.length} tests`);
  assert.ok(
    names.includes(
      "DurableObjectMetadataStore in workerd: keys() lists a namespace as get() takes its keys, sorted",
    ),
  );
});

for (const name of names) {
  test(name, async () => {
    const response = await call(
      `/conformance?object=conformance&name=${encodeURIComponent(name)}`,
      {},
    );
    assert.equal(response.status, 200);
    const result: { ok: boolean; message?: string } = await response.json();
    assert.ok(result.ok, result.message ?? "");
  });
}

test("DurableObjectMetadataStore in workerd: 4 × 45 concurrent requests adding to 4 DiffIDs lose nothing, and a new workerd reads them back", async () => {
  const diffIDs = [0, 1, 2, 3].map((d) => fakeDigest(0xd0 + d));
  const entry = (d: number, n: number) => ({
    digest: fakeDigest(d * 1000 + n),
    sourceRepository: `registry.example.com/builder/${n}`,
    hmac: "",
  });
  const responses = await Promise.all(
    diffIDs.flatMap((diffID, d) =>
      Array.from({ length: 45 }, (_, n) => call("/add", { diffID, metadata: entry(d, n) }))
    ),
  );
  assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([204]));

  const check = async () => {
    for (const [d, diffID] of diffIDs.entries()) {
      const list = await (await call(`/metadata?diffID=${diffID}`)).json();
      assert.deepEqual(
        list.map((m: { digest: string }) => m.digest).sort(),
        Array.from({ length: 45 }, (_, n) => entry(d, n).digest).sort(),
      );
      for (const n of [0, 44]) {
        assert.equal(await (await call(`/diffid?digest=${entry(d, n).digest}`)).text(), diffID);
      }
    }
  };
  await check();
  await workerd.miniflare.dispose();
  workerd = await startWorkerd();
  await check();
});

test("DurableObjectMetadataStore in workerd: a missing DiffID is ENOENT", async () => {
  const response = await call(`/metadata?diffID=${fakeDigest(0xdead)}`);
  assert.equal(response.status, 404);
  assert.match(
    await response.text(),
    /^ENOENT: Cannot get "v2metadata-by-diffid\/sha256\/0+dead" at "fleet:v2metadata-by-diffid\/sha256\/0+dead"/,
  );
});
