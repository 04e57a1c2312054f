// The registry side against a hostile registry (tests/registry/_hostile_server.ts, a raw HTTP
// server on 127.0.0.1) and crafted OCI layouts: credentials that must stay on their origin,
// DiffIDs that must be proven before they are recorded, answers that lie, never end, loop or
// stall. Each test asserts the typed error, that it came in bounded time and memory, and what
// was (not) written or sent. Every one of them failed on the code before issue 14 (run alone,
// each with a 25 s cap: the endless and stalled ones hung), except what the redirect test guards:
// fetch already dropped Authorization on a redirect to another origin.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import {
  type Descriptor,
  LIMITS,
  ociLayoutStore,
  pull,
  push,
  type RegistryConfig,
  RegistryError,
  type RegistryErrorCode,
  tags,
} from "../src/registry/mod.ts";
import { buildImage, gzip, noise, tar } from "./registry/_image_builder.ts";
import { type HostileServer, sha256, startHostile } from "./registry/_hostile_server.ts";

const encoder = new TextEncoder();
const alice = { username: "alice", password: "secret-a" };
const aliceBasic = "Basic " + btoa("alice:secret-a");
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "registry-hostile-"));
  temps.push(dir);
  return dir;
}

/** Runs `fn` with fresh servers, closing them whatever happens. */
async function withServers(
  count: number,
  fn: (...servers: HostileServer[]) => Promise<void>,
): Promise<void> {
  const servers = await Promise.all(Array.from({ length: count }, () => startHostile()));
  try {
    await fn(...servers);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

/**
 * Awaits `promise`, asserting it rejects with a RegistryError of `code` within `ms`, and that
 * the process grew by less than `maxGrowth` bytes of RSS meanwhile.
 */
async function rejectsBounded(
  promise: Promise<unknown>,
  code: RegistryErrorCode,
  { ms = 5_000, maxGrowth = 256 * 1024 * 1024 } = {},
): Promise<RegistryError> {
  const rss = process.memoryUsage().rss;
  const started = performance.now();
  let caught: unknown = null;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  const elapsed = performance.now() - started;
  assert.ok(caught instanceof RegistryError, `expected RegistryError ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(elapsed < ms, `took ${Math.round(elapsed)} ms, limit ${ms} ms`);
  const growth = process.memoryUsage().rss - rss;
  assert.ok(growth < maxGrowth, `RSS grew by ${growth} bytes`);
  return caught;
}

/** The entries recorded for a DiffID ([] when none: getMetadata is ENOENT then, as in Go). */
async function recorded(service: V2MetadataService, diffID: string) {
  try {
    return await service.getMetadata(diffID);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return [];
    throw error;
  }
}

async function metadata(): Promise<{ root: string; service: V2MetadataService }> {
  const root = tempDir();
  return { root, service: new V2MetadataService(await FSMetadataStore.open(root)) };
}

/** Serves an image on `server` under `repo:tag` whose configuration claims `diffIDs`. */
function serveImage(
  server: HostileServer,
  tag: string,
  layers: Uint8Array[],
  diffIDs: string[],
): { manifest: Uint8Array; layers: Descriptor[] } {
  const layerDescriptors = layers.map((data) => {
    server.blobs.set(sha256(data), data);
    return { mediaType: DOCKER_LAYER, size: data.length, digest: sha256(data) };
  });
  const config = encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIDs },
  }));
  server.blobs.set(sha256(config), config);
  const manifest = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: config.length,
      digest: sha256(config),
    },
    layers: layerDescriptors,
  }));
  server.manifests.set(tag, { type: DOCKER_MANIFEST, body: manifest });
  return { manifest, layers: layerDescriptors };
}

/** A layout with a one-layer image tagged `1.0`. */
async function sourceLayout() {
  const dir = tempDir();
  const store = await ociLayoutStore(dir);
  const image = await buildImage(store, "1.0", [[{ name: "f", data: encoder.encode("x") }]]);
  return { dir, store, image };
}

function blobPath(dir: string, digest: string): string {
  return join(dir, "blobs", "sha256", digest.slice("sha256:".length));
}

// 1. Credentials stay on their origin -------------------------------------------------------

/** Registry `a` challenges with Basic; its uploads live on `b` (another port: another origin). */
function uploadsElsewhere(a: HostileServer, b: HostileServer, challenge: string): void {
  a.handler = (req, answer) => {
    if (req.url.pathname === "/token") {
      answer.json(200, { token: "token-of-a" });
      return true;
    }
    if (req.authorization === null) {
      answer.send(401, { "www-authenticate": challenge });
      return true;
    }
    if (req.method === "POST" && req.url.pathname.endsWith("/blobs/uploads/")) {
      answer.send(202, { location: `${b.url}/v2/team/app/blobs/uploads/u9` });
      return true;
    }
    return false;
  };
  b.handler = (req, answer) => {
    // b stores the blob (as a storage backend would) and echoes the digest.
    const digest = req.url.searchParams.get("digest") ?? "";
    a.blobs.set(digest, req.body);
    answer.send(201, { "docker-content-digest": digest });
    return true;
  };
}

for (
  const [name, challenge, auth, secret] of [
    ["Basic credentials", 'Basic realm="a"', alice, aliceBasic],
    ["the registry's bearer token", "", alice, "Bearer token-of-a"],
    ["a registrytoken", "", { registrytoken: "rt-secret" }, "Bearer rt-secret"],
  ] as const
) {
  test(`push() sends ${name} to the registry's origin only, never to an upload Location elsewhere`, async () => {
    await withServers(2, async (a, b) => {
      uploadsElsewhere(a, b, challenge || `Bearer realm="${a.url}/token",service="a"`);
      const { store } = await sourceLayout();
      const started = performance.now();
      await push(`${a.host}/team/app:1.0`, store, { plainHttp: true, auth, idleTimeout: 2_000 });
      assert.ok(performance.now() - started < 5_000);
      assert.ok(b.log.length >= 1, "the upload went to b");
      for (const req of b.log) assert.equal(req.authorization, null, `${req.method} ${req.target}`);
      assert.ok(a.log.some((r) => r.authorization === secret), "a got the credentials");
    });
  });
}

test("push() does not answer a challenge from an upload Location on another origin", async () => {
  await withServers(2, async (a, b) => {
    uploadsElsewhere(a, b, 'Basic realm="a"');
    b.handler = (_req, answer) => {
      answer.send(401, { "www-authenticate": 'Basic realm="b"' });
      return true;
    };
    const { store } = await sourceLayout();
    const { service, root } = await metadata();
    const error = await rejectsBounded(
      push(`${a.host}/team/app:1.0`, store, {
        plainHttp: true,
        auth: alice,
        metadataService: service,
      }),
      "UNAUTHORIZED",
    );
    assert.equal(error.status, 401);
    assert.ok(error.url?.startsWith(b.url), String(error.url));
    assert.ok(b.log.length >= 1);
    for (const req of b.log) assert.equal(req.authorization, null);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
  });
});

test("tags() does not send credentials to a Link on another origin", async () => {
  await withServers(2, async (a, b) => {
    a.handler = (req, answer) => {
      if (req.authorization !== aliceBasic) {
        answer.send(401, { "www-authenticate": 'Basic realm="a"' });
      } else {
        answer.json(200, { tags: ["1.0"] }, {
          link: `<${b.url}/v2/team/app/tags/list?last=1.0>; rel="next"`,
        });
      }
      return true;
    };
    b.handler = (_req, answer) => {
      answer.json(200, { tags: ["2.0"] });
      return true;
    };
    assert.deepEqual(await tags(`${a.host}/team/app`, { plainHttp: true, auth: alice }), [
      "1.0",
      "2.0",
    ]);
    assert.equal(b.log.length, 1);
    assert.equal(b.log[0]!.authorization, null);
  });
});

test("a blob redirected to another origin is fetched without Authorization", async () => {
  await withServers(2, async (a, b) => {
    const layerTar = tar([{ name: "f", data: encoder.encode("redirected\n") }]);
    const layer = gzip(layerTar);
    serveImage(a, "1.0", [layer], [sha256(layerTar)]);
    a.handler = (req, answer) => {
      if (req.authorization !== aliceBasic) {
        answer.send(401, { "www-authenticate": 'Basic realm="a"' });
        return true;
      }
      if (req.method === "GET" && req.url.pathname.endsWith(`/blobs/${sha256(layer)}`)) {
        answer.send(307, { location: `${b.url}/storage/layer` });
        return true;
      }
      return false;
    };
    b.handler = (_req, answer) => {
      answer.send(200, {}, layer);
      return true;
    };
    const result = await pull(`${a.host}/team/app:1.0`, await ociLayoutStore(tempDir()), {
      plainHttp: true,
      auth: alice,
    });
    assert.equal(result.layers[0]!.status, "recorded");
    assert.equal(b.log.length, 1);
    assert.equal(b.log[0]!.authorization, null);
  });
});

test("URLs that are not http(s) and realms that are not URLs are MALFORMED, not followed", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (req.method === "POST") {
        answer.send(202, { location: "file:///etc/passwd" });
        return true;
      }
      return false;
    };
    const { store } = await sourceLayout();
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true }),
      "MALFORMED",
    );
    server.handler = (_req, answer) => {
      answer.send(401, { "www-authenticate": 'Bearer realm="::not a url::"' });
      return true;
    };
    await rejectsBounded(
      tags(`${server.host}/team/app`, { plainHttp: true, auth: alice }),
      "MALFORMED",
    );
  });
});

test("an https registry naming an http token realm is refused: INSECURE_REALM, nothing sent", async () => {
  await withServers(2, async (registry, realm) => {
    registry.handler = (_req, answer) => {
      answer.send(401, {
        "www-authenticate": `Bearer realm="${realm.url}/token",service="r"`,
      });
      return true;
    };
    // The registry is addressed as https://registry.test:<port>; this transport carries it to
    // the plain-http server on 127.0.0.1 (the realm's URL is left as the registry wrote it).
    const port = registry.host.split(":")[1];
    const viaTls: typeof fetch = (input, init) =>
      fetch(String(input).replace(`https://registry.test:${port}`, registry.url), init);
    const error = await rejectsBounded(
      tags(`registry.test:${port}/team/app`, { auth: alice, fetch: viaTls }),
      "INSECURE_REALM",
    );
    assert.match(error.message, /is not https/);
    assert.equal(realm.log.length, 0, "the realm received nothing");
  });
});

// 2. Pull records only DiffIDs the layer proves ---------------------------------------------

test("pull() records nothing for a layer whose configuration claims another image's DiffID", async () => {
  await withServers(1, async (server) => {
    const victimTar = tar([{ name: "victim", data: encoder.encode("victim's layer\n") }]);
    const victimDiffID = sha256(victimTar);
    const attackerLayer = gzip(tar([{ name: "evil", data: encoder.encode("attacker\n") }]));
    serveImage(server, "1.0", [attackerLayer], [victimDiffID]);
    const { service, root } = await metadata();
    const dir = tempDir();
    const result = await pull(`${server.host}/evil/app:1.0`, await ociLayoutStore(dir), {
      plainHttp: true,
      metadataService: service,
    });
    assert.deepEqual(result.layers, [{
      digest: sha256(attackerLayer),
      diffID: victimDiffID,
      status: "mismatch",
      actualDiffID: sha256(tar([{ name: "evil", data: encoder.encode("attacker\n") }])),
    }]);
    assert.deepEqual(await recorded(service, victimDiffID), []);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false, "no metadata written");
    // The image itself is stored: its blobs are what their digests say.
    assert.ok(existsSync(blobPath(dir, sha256(attackerLayer))));
  });
});

test("after pulling a crafted image, pushing the victim's image mounts nothing from it", async () => {
  await withServers(1, async (server) => {
    const { store, image } = await sourceLayout();
    const victimDiffID = image.diffIDs[0]!;
    const attackerLayer = gzip(tar([{ name: "evil", data: encoder.encode("attacker\n") }]));
    serveImage(server, "1.0", [attackerLayer], [victimDiffID]);
    const { service } = await metadata();
    const config = { plainHttp: true, metadataService: service };
    await pull(`${server.host}/evil/app:1.0`, await ociLayoutStore(tempDir()), config);
    await push(`${server.host}/victim/app:1.0`, store, config);
    assert.ok(!server.log.some((r) => r.url.searchParams.has("mount")), "no mount attempted");
    assert.deepEqual(await recorded(service, victimDiffID), [
      { digest: image.layers[0]!.digest, sourceRepository: `${server.host}/victim/app`, hmac: "" },
    ]);
  });
});

test("pull() never turns a DiffID that is not a digest into a key (sha256: alone)", async () => {
  await withServers(1, async (server) => {
    const layer = gzip(tar([{ name: "f", data: encoder.encode("f\n") }]));
    serveImage(server, "1.0", [layer], ["sha256:"]);
    const { service, root } = await metadata();
    const result = await pull(`${server.host}/evil/app:1.0`, await ociLayoutStore(tempDir()), {
      plainHttp: true,
      metadataService: service,
    });
    assert.equal(result.layers[0]!.status, "invalid");
    assert.equal(existsSync(join(root, "v2metadata-by-diffid", "sha256")), false);
    // A later record of a real DiffID still works (before: ENOTDIR for every add).
    const real = sha256(tar([{ name: "f", data: encoder.encode("f\n") }]));
    await service.add(real, { digest: sha256(layer), sourceRepository: "x/y", hmac: "" });
    assert.ok(statSync(join(root, "v2metadata-by-diffid", "sha256")).isDirectory());
  });
});

test("pull() records nothing for a layer it cannot decompress (zstd), and records a verified one", async () => {
  await withServers(1, async (server) => {
    const zstd = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, ...noise(64, 3)]);
    const goodTar = tar([{ name: "ok", data: encoder.encode("fine\n") }]);
    const good = gzip(goodTar);
    serveImage(server, "1.0", [zstd, good], [sha256(zstd), sha256(goodTar)]);
    const { service } = await metadata();
    const result = await pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), {
      plainHttp: true,
      metadataService: service,
    });
    assert.deepEqual(result.layers.map((l) => l.status), ["unverifiable", "recorded"]);
    assert.deepEqual(await recorded(service, sha256(zstd)), []);
    assert.deepEqual(await recorded(service, sha256(goodTar)), [
      { digest: sha256(good), sourceRepository: `${server.host}/team/app`, hmac: "" },
    ]);
  });
});

test("push() refuses a layout whose DiffID is not a digest before any request", async () => {
  await withServers(1, async (server) => {
    const dir = tempDir();
    const store = await ociLayoutStore(dir);
    const layer = gzip(tar([{ name: "f", data: encoder.encode("f\n") }]));
    const config = encoder.encode(
      JSON.stringify({ rootfs: { type: "layers", diff_ids: ["sha256:"] } }),
    );
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: "application/json", size: config.length, digest: sha256(config) },
      layers: [{ mediaType: DOCKER_LAYER, size: layer.length, digest: sha256(layer) }],
    }));
    for (const blob of [layer, config, manifest]) await store.put(sha256(blob), blob);
    await store.tag("1.0", {
      mediaType: DOCKER_MANIFEST,
      size: manifest.length,
      digest: sha256(manifest),
    });
    const { service, root } = await metadata();
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true, metadataService: service }),
      "MALFORMED",
    );
    assert.equal(server.log.length, 0);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
  });
});

// 3. Answers and layouts are checked, not trusted -------------------------------------------

test("push() does not believe a mount answered 201 for another digest", async () => {
  await withServers(1, async (server) => {
    const { store, image } = await sourceLayout();
    const { service } = await metadata();
    const diffID = image.diffIDs[0]!;
    const layer = image.layers[0]!.digest;
    await service.add(diffID, {
      digest: layer,
      sourceRepository: `${server.host}/team/src`,
      hmac: "",
    });
    const other = "sha256:" + "e".repeat(64);
    server.handler = (req, answer) => {
      if (req.url.searchParams.has("mount")) {
        answer.send(201, { "docker-content-digest": other });
        return true;
      }
      return false;
    };
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true, metadataService: service }),
      "DIGEST_INVALID",
    );
    assert.deepEqual(await recorded(service, diffID), [
      { digest: layer, sourceRepository: `${server.host}/team/src`, hmac: "" },
    ]);
    assert.equal(server.manifests.size, 0);
  });
});

test("push() does not believe a manifest PUT answered for another digest", async () => {
  await withServers(1, async (server) => {
    const { store } = await sourceLayout();
    server.handler = (req, answer) => {
      if (req.method !== "PUT" || !req.url.pathname.includes("/manifests/")) return false;
      answer.send(201, { "docker-content-digest": "sha256:" + "e".repeat(64) });
      return true;
    };
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true }),
      "DIGEST_INVALID",
    );
  });
});

test("push() verifies layout blobs against their names: nothing uploaded, nothing recorded", async () => {
  await withServers(1, async (server) => {
    const { dir, store, image } = await sourceLayout();
    const layer = image.layers[0]!.digest;
    writeFileSync(blobPath(dir, layer), gzip(tar([{ name: "f", data: encoder.encode("y") }])));
    const { service, root } = await metadata();
    const error = await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true, metadataService: service }),
      "DIGEST_INVALID",
    );
    assert.match(error.message, /in the content store/);
    assert.ok(
      !server.log.some((r) => (r.method === "PUT" || r.method === "PATCH") && r.body.length > 0),
    );
    assert.equal(server.blobs.size, 0);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
  });
});

test("push() of a layout index that names itself ends at once, before any request", async () => {
  await withServers(1, async (server) => {
    const dir = tempDir();
    const store = await ociLayoutStore(dir);
    // The index can only name itself through a file whose bytes are not its name.
    const name = "sha256:" + "a".repeat(64);
    const index = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{
        mediaType: "application/vnd.oci.image.index.v1+json",
        size: 300,
        digest: name,
      }],
    }));
    await ociLayoutStore(dir); // blobs/ exists
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    writeFileSync(blobPath(dir, name), index);
    await store.tag("1.0", {
      mediaType: "application/vnd.oci.image.index.v1+json",
      size: index.length,
      digest: name,
    });
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true }),
      "DIGEST_INVALID",
      {
        ms: 2_000,
      },
    );
    assert.equal(server.log.length, 0);
  });
});

test("push() refuses indexes nested deeper than LIMITS.indexDepth", async () => {
  await withServers(1, async (server) => {
    const store = await ociLayoutStore(tempDir());
    const image = await buildImage(store, "base", [[{ name: "f", data: encoder.encode("x") }]]);
    let top: Descriptor = image.manifest;
    for (let i = 0; i <= LIMITS.indexDepth + 1; i++) {
      const index = encoder.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [top],
      }));
      await store.put(sha256(index), index);
      top = {
        mediaType: "application/vnd.oci.image.index.v1+json",
        size: index.length,
        digest: sha256(index),
      };
    }
    await store.tag("1.0", top);
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, { plainHttp: true }),
      "TOO_LARGE",
    );
    assert.equal(server.log.length, 0);
  });
});

// 4. Every answer is bounded ----------------------------------------------------------------

/**
 * Asserts the client hung up on every answer within `ms`: an endless body stops at the client's
 * limit, whatever its runtime had buffered ahead (Bun's fetch reads ahead of its reader, so the
 * bytes the server got to write are not a measure of the client).
 */
async function assertHungUp(server: HostileServer, ms = 2_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (server.open() > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(server.open(), 0, `connections still open ${ms} ms after the client gave up`);
}

/** A fetch whose answer bodies count the bytes their reader pulled, one chunk per pull. */
function countingFetch() {
  let read = 0;
  let last = 0;
  const counted: typeof fetch = async (input, init) => {
    const answer = await fetch(input, init);
    if (answer.body === null) return answer;
    const reader = answer.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        read += value.length;
        last = value.length;
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
    return new Response(body, answer);
  };
  return { fetch: counted, read: () => read, readBeforeLast: () => read - last };
}

const MiB = 1024 * 1024;
const filler = encoder.encode(`{"x":"${"a".repeat(64 * 1024 - 8)}",`);

test("an endless manifest stops at LIMITS.manifest (4 MiB): TOO_LARGE, nothing stored", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.head(200, { "content-type": DOCKER_MANIFEST });
      void answer.forever(filler);
      return true;
    };
    const dir = tempDir();
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(dir), { plainHttp: true }),
      "TOO_LARGE",
    );
    await assertHungUp(server);
    assert.equal(existsSync(join(dir, "blobs", "sha256")), false);
    // Through a fetch that counts what the client pulled: not one chunk past the limit.
    const counting = countingFetch();
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(dir), {
        plainHttp: true,
        fetch: counting.fetch,
      }),
      "TOO_LARGE",
    );
    assert.ok(counting.read() > LIMITS.manifest, `read ${counting.read()} bytes`);
    assert.ok(counting.readBeforeLast() <= LIMITS.manifest, `read ${counting.read()} bytes`);
    await assertHungUp(server);
  });
});

test("a manifest whose Content-Length passes the limit is refused before its body", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.head(200, { "content-type": DOCKER_MANIFEST, "content-length": String(5 * MiB) });
      void answer.write(filler);
      return true;
    };
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), { plainHttp: true }),
      "TOO_LARGE",
    );
  });
});

for (
  const [what, path, call] of [
    ["an image configuration", "/blobs/", "pull"],
    ["an error body", "/manifests/", "pull"],
    ["a tag list", "/tags/list", "tags"],
    ["a token answer", "/token", "tags"],
  ] as const
) {
  test(`an endless ${what.replace(/^an? /, "")} is bounded`, async () => {
    await withServers(1, async (server) => {
      serveImage(server, "1.0", [gzip(tar([]))], [sha256(tar([]))]);
      server.handler = (req, answer) => {
        if (
          what === "a token answer" && req.url.pathname !== "/token" && req.authorization === null
        ) {
          answer.send(401, { "www-authenticate": `Bearer realm="${server.url}/token"` });
          return true;
        }
        if (!req.url.pathname.includes(path)) return false;
        answer.head(what === "an error body" ? 404 : 200, { "content-type": "application/json" });
        void answer.forever(filler);
        return true;
      };
      const config = { plainHttp: true };
      const ref = `${server.host}/team/app:1.0`;
      const expected: RegistryErrorCode = what === "an error body"
        ? "MANIFEST_UNKNOWN"
        : "TOO_LARGE";
      await rejectsBounded(
        call === "pull" ? pull(ref, await ociLayoutStore(tempDir()), config) : tags(ref, config),
        expected,
        { ms: 10_000 },
      );
      await assertHungUp(server);
    });
  });
}

test("a tag list whose Link points back at itself fails with LOOP", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.endsWith("/tags/list")) return false;
      answer.json(200, { tags: ["a"] }, { link: `<${req.target}>; rel="next"` });
      return true;
    };
    await rejectsBounded(tags(`${server.host}/team/app`, { plainHttp: true }), "LOOP");
    assert.equal(server.log.filter((r) => r.url.pathname.endsWith("/tags/list")).length, 1);
  });
});

// 5. Timeouts and cancellation --------------------------------------------------------------

test("a /v2/ ping that never answers fails with TIMEOUT after idleTimeout", async () => {
  await withServers(1, async (server) => {
    server.handler = () => true; // never answers
    const error = await rejectsBounded(
      tags(`${server.host}/team/app`, { plainHttp: true, idleTimeout: 300 }),
      "TIMEOUT",
      { ms: 3_000 },
    );
    assert.equal(error.reason, "idle timeout 300 ms");
  });
});

test("a manifest that stalls after its headers fails with TIMEOUT; nothing stored", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.head(200, { "content-type": DOCKER_MANIFEST, "content-length": "100" });
      void answer.write('{"schemaVersion":');
      return true;
    };
    const dir = tempDir();
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(dir), {
        plainHttp: true,
        idleTimeout: 300,
      }),
      "TIMEOUT",
      { ms: 3_000 },
    );
    assert.equal(existsSync(join(dir, "blobs", "sha256")), false);
  });
});

test("a layer that stalls mid-body fails with TIMEOUT; nothing recorded or stored", async () => {
  await withServers(1, async (server) => {
    const layerTar = tar([{ name: "big", data: noise(256 * 1024, 9) }]);
    const layer = gzip(layerTar);
    serveImage(server, "1.0", [layer], [sha256(layerTar)]);
    server.handler = (req, answer) => {
      if (!req.url.pathname.endsWith(sha256(layer)) || req.method !== "GET") return false;
      answer.head(200, { "content-length": String(layer.length) });
      void answer.write(layer.subarray(0, 1000));
      return true;
    };
    const { service, root } = await metadata();
    const dir = tempDir();
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(dir), {
        plainHttp: true,
        idleTimeout: 300,
        metadataService: service,
      }),
      "TIMEOUT",
      { ms: 3_000 },
    );
    assert.equal(existsSync(blobPath(dir, sha256(layer))), false);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
  });
});

test("an upload whose answer never comes fails with TIMEOUT; nothing recorded", async () => {
  await withServers(1, async (server) => {
    server.handler = (req) => req.method === "PUT" && req.url.pathname.includes("/uploads/");
    const { store } = await sourceLayout();
    const { service, root } = await metadata();
    await rejectsBounded(
      push(`${server.host}/team/app:1.0`, store, {
        plainHttp: true,
        idleTimeout: 300,
        metadataService: service,
      }),
      "TIMEOUT",
      { ms: 3_000 },
    );
    assert.equal(server.manifests.size, 0);
    assert.equal(existsSync(join(root, "v2metadata-by-diffid")), false);
  });
});

test("config.signal aborts a stalled call with ABORTED, and an aborted one sends nothing", async () => {
  await withServers(1, async (server) => {
    server.handler = () => true;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await rejectsBounded(
      tags(`${server.host}/team/app`, { plainHttp: true, signal: controller.signal }),
      "ABORTED",
      { ms: 3_000 },
    );
    const before = server.log.length;
    const config: RegistryConfig = { plainHttp: true, signal: AbortSignal.abort() };
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), config),
      "ABORTED",
    );
    assert.equal(server.log.length, before);
  });
});

// 8. Typed errors, never a raw SyntaxError or TypeError -------------------------------------

for (
  const [what, answer, code] of [
    ["a token endpoint's non-JSON", "token", "MALFORMED"],
    ["a tag list's non-JSON", "not json", "MALFORMED"],
    ['{"tags":"ABC"}', { tags: "ABC" }, "MALFORMED"],
    ["tags that are numbers and objects", { tags: [1, {}, "ok"] }, "MALFORMED"],
    ['{"errors":[{}]} on a 404', { errors: [{}] }, "NAME_UNKNOWN"],
  ] as const
) {
  test(`tags() turns ${what} into ${code}`, async () => {
    await withServers(1, async (server) => {
      server.handler = (req, res) => {
        if (what.startsWith("a token")) {
          if (req.url.pathname === "/token") res.send(200, {}, "not json");
          else res.send(401, { "www-authenticate": `Bearer realm="${server.url}/token"` });
          return true;
        }
        if (!req.url.pathname.endsWith("/tags/list")) return false;
        const status = code === "NAME_UNKNOWN" ? 404 : 200;
        if (typeof answer === "string") res.send(status, {}, answer);
        else res.json(status, answer);
        return true;
      };
      await rejectsBounded(tags(`${server.host}/team/app`, { plainHttp: true }), code);
    });
  });
}

test("a manifest body shorter than its Content-Length is TRUNCATED", async () => {
  await withServers(1, async (server) => {
    server.handler = (req, answer) => {
      if (!req.url.pathname.includes("/manifests/")) return false;
      answer.head(200, { "content-type": DOCKER_MANIFEST, "content-length": "1000" });
      void answer.write('{"schemaVersion":2}').then(() => answer.end());
      return true;
    };
    await rejectsBounded(
      pull(`${server.host}/team/app:1.0`, await ociLayoutStore(tempDir()), { plainHttp: true }),
      "TRUNCATED",
    );
  });
});

test("a layout whose index.json is not JSON is MALFORMED", async () => {
  const dir = tempDir();
  const store = await ociLayoutStore(dir);
  writeFileSync(join(dir, "index.json"), "{not json");
  await rejectsBounded(store.resolve("1.0"), "MALFORMED");
  writeFileSync(join(dir, "index.json"), '{"manifests":[{"digest":"../../etc/passwd"}]}');
  await rejectsBounded(store.resolve("1.0"), "MALFORMED");
});

test("a layout index.json over LIMITS.layoutIndex is refused (EFBIG) before it is read", async () => {
  const dir = tempDir();
  const store = await ociLayoutStore(dir);
  writeFileSync(join(dir, "index.json"), new Uint8Array(LIMITS.layoutIndex + 1));
  const rss = process.memoryUsage().rss;
  await assert.rejects(store.resolve("1.0"), { name: "MetadataError", code: "EFBIG" });
  assert.ok(process.memoryUsage().rss - rss < LIMITS.layoutIndex);
});

after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
