// Runs the core in the real workerd runtime: tests/worker/worker.ts is bundled with esbuild
// and served by miniflare on 127.0.0.1; the tests talk to it over HTTP.
// @needs workerd (miniflare)
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { fakeDigest } from "./_conformance.ts";

let worker: Promise<{ miniflare: Miniflare; url: URL }> | undefined;

/** Bundles the worker and starts it once for the file. */
function start(): Promise<{ miniflare: Miniflare; url: URL }> {
  return worker ??= (async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("./worker/worker.ts", import.meta.url))],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2022",
    });
    const miniflare = new Miniflare({
      modules: true,
      script: bundle.outputFiles[0]!.text,
      compatibilityDate: "2025-01-01",
      host: "127.0.0.1",
      port: 0,
    });
    return { miniflare, url: await miniflare.ready };
  })();
}

after(async () => {
  if (worker) await (await worker).miniflare.dispose();
});

/** Calls the worker: GET without a body, POST with a JSON body. */
async function call(
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string; bytes: Uint8Array }> {
  const { url } = await start();
  const response = await fetch(new URL(path, url), {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, text: new TextDecoder().decode(bytes), bytes };
}

const diffID = fakeDigest(0xd1ff);
const digest = fakeDigest(0xb10b);
const auth = { username: "ci", password: "secret" };

test("worker: the core runs in workerd without Deno, Bun, process or require", async () => {
  const { status, text } = await call("/globals");
  assert.equal(status, 200);
  assert.deepEqual(JSON.parse(text), {
    Deno: "undefined",
    Bun: "undefined",
    process: "undefined",
    require: "undefined",
  });
});

test("worker: tls options and credential helpers fail with typed errors saying workerd cannot", async () => {
  const { status, text } = await call("/unsupported");
  assert.equal(status, 200);
  assert.deepEqual(JSON.parse(text), {
    tls: [
      "UNSUPPORTED",
      "Cannot use TLS options: this runtime has neither Deno.createHttpClient, Bun's fetch nor node:https (workers cannot set TLS per registry)",
    ],
    helper: [
      "ENOSYS",
      'Cannot run credential helper "desktop": this runtime cannot run programs; pass runProgram',
    ],
  });
});

test("worker: computeV2MetadataHMACKey() of {} is sha256:44136fa3…", async () => {
  assert.deepEqual(await call("/hmac-key", { auth: {} }), {
    status: 200,
    text: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    bytes: new TextEncoder().encode(
      "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    ),
  });
  assert.equal((await call("/hmac-key", { auth: null })).text, "null");
});

for (const store of ["fs", "kv"]) {
  const label = store === "fs" ? "FSMetadataStore + MemoryFileSystem" : "DenoKvMetadataStore";
  const rawList = (query = "") =>
    call(
      `/raw?store=${store}&namespace=v2metadata-by-diffid&key=sha256/${diffID.slice(7)}${query}`,
    );

  test(`worker, ${label}: V2MetadataService.tagAndAdd() writes dockerd's exact list bytes`, async () => {
    const entry = { digest, sourceRepository: "docker.io/library/busybox", hmac: "" };
    assert.equal(
      (await call("/tag-and-add", { store, diffID, auth, metadata: entry })).status,
      204,
    );
    const key = await call("/hmac-key", { auth });
    // The HMAC, recomputed here with WebCrypto, must match what the worker stored.
    const hmacKey = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(key.text),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(
      await crypto.subtle.sign(
        "HMAC",
        hmacKey,
        new TextEncoder().encode(digest + "docker.io/library/busybox"),
      ),
    );
    const hex = [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    const list = await rawList();
    assert.equal(list.status, 200);
    assert.equal(
      list.text,
      `[{"Digest":"${digest}","SourceRepository":"docker.io/library/busybox","HMAC":"${hex}"}]`,
    );
    assert.equal((await call(`/diffid?store=${store}&digest=${digest}`)).text, diffID);
  });

  test(`worker, ${label}: checkV2MetadataHMAC() accepts only the tagging credentials`, async () => {
    const [tagged] = JSON.parse((await call(`/metadata?store=${store}&diffID=${diffID}`)).text);
    assert.equal((await call("/check", { auth, metadata: tagged })).text, "true");
    assert.equal(
      (await call("/check", { auth: { ...auth, password: "other" }, metadata: tagged })).text,
      "false",
    );
  });

  test(`worker, ${label}: V2MetadataService.add() escapes like Go and remove() empties`, async () => {
    const odd = { digest: fakeDigest(7), sourceRepository: 'a<b>&\u2028"\\\n', hmac: "" };
    await call("/add", { store, diffID, metadata: odd });
    assert.ok(
      (await rawList()).text.endsWith(
        `{"Digest":"${odd.digest}","SourceRepository":"a\\u003cb\\u003e\\u0026\\u2028\\"\\\\\\n","HMAC":""}]`,
      ),
    );
    await call("/remove", { store, metadata: odd });
    const [tagged] = JSON.parse((await call(`/metadata?store=${store}&diffID=${diffID}`)).text);
    assert.equal((await call("/remove", { store, metadata: tagged })).status, 204);
    const gone = await rawList();
    assert.equal(gone.status, 404);
    assert.match(gone.text, /^ENOENT: Cannot get "v2metadata-by-diffid\/sha256\/[0-9a-f]{64}"/);
  });

  test(`worker, ${label}: unsafe keys are EINVAL`, async () => {
    const answer = await call(`/raw?store=${store}&namespace=v1id&key=../escape&value=x`, {});
    assert.deepEqual(
      { status: answer.status, text: answer.text },
      {
        status: 400,
        text: 'EINVAL: Cannot use key "v1id/../escape": it contains a ".." segment',
      },
    );
  });
}
