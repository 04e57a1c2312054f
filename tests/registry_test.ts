// Unit tests of the registry side: reference parsing, hashing, challenges, and the push
// algorithm's ordering/selection logic against an in-memory fetch stub (tests/registry/
// _fake_registry.ts). The real server is exercised in registry_integration_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  type AuthConfig,
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  MemoryFileSystem,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import {
  type ContentStore,
  type Descriptor,
  familiarName,
  formatReference,
  getRepositories,
  ociLayoutStore,
  parseReference,
  pull,
  push,
  type RegistryConfig,
  RegistryError,
  type RegistryErrorCode,
} from "../src/registry/mod.ts";
import { endpointsFor } from "../src/registry/repositories.ts";
import { parseAuthChallenges } from "../src/registry/transport/challenge.ts";
import { Sha256 } from "../src/registry/_sha256.ts";
import { attemptBudget, sortByLikenessAndAge } from "../src/registry/push_candidates.ts";
import { buildImage, noise, sha256 } from "./registry/_image_builder.ts";
import { type FakeRegistry, fakeRegistry } from "./registry/_fake_registry.ts";

const encoder = new TextEncoder();

/** An assert.rejects check: a RegistryError with this code. */
function typed(code: RegistryErrorCode): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, code);
    return true;
  };
}

test("./registry exports the curated API and nothing else", async () => {
  assert.deepEqual(Object.keys(await import("../src/registry/mod.ts")).sort(), [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_RETRY",
    "DEFAULT_USER_AGENT",
    "HELPER_TIMEOUT",
    "LIMITS",
    "MAX_CONCURRENT_HELPERS",
    "OciLayoutStore",
    "RegistryError",
    "copy",
    "copyFromArchive",
    "copyFromDockerd",
    "copyToArchive",
    "copyToDockerd",
    "dockerKeychain",
    "familiarName",
    "formatReference",
    "getRepositories",
    "hostPlatform",
    "isRegistryError",
    "keychainFromConfig",
    "link",
    "ociLayoutStore",
    "parsePlatform",
    "parseReference",
    "pull",
    "push",
    "tags",
  ]);
});

test("parseReference() normalises references as Docker does", () => {
  const cases: [string, string, string][] = [
    ["busybox", "docker.io/library/busybox:latest", "busybox"],
    ["library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox"],
    ["index.docker.io/user/app", "docker.io/user/app:latest", "user/app"],
    ["docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b"],
    ["localhost/app", "localhost/app:latest", "localhost/app"],
    ["localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0", "localhost:5000/team/app"],
    ["127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app:latest", "127.0.0.1:5000/team/app"],
    [
      "registry.example.com/a_b/c-d__e.f",
      "registry.example.com/a_b/c-d__e.f:latest",
      "registry.example.com/a_b/c-d__e.f",
    ],
    [`app@sha256:${"a".repeat(64)}`, `docker.io/library/app@sha256:${"a".repeat(64)}`, "app"],
    [`app:v1@sha256:${"a".repeat(64)}`, `docker.io/library/app:v1@sha256:${"a".repeat(64)}`, "app"],
    ["[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app"],
  ];
  for (const [input, canonical, familiar] of cases) {
    const ref = parseReference(input);
    assert.equal(formatReference(ref), canonical, input);
    assert.equal(familiarName(ref), familiar, input);
  }
  assert.deepEqual(parseReference("example.com:443/x", { defaultTag: false }), {
    domain: "example.com:443",
    path: "x",
    name: "example.com:443/x",
    tag: undefined,
    digest: undefined,
  });
});

test("parseReference() refuses what Docker refuses, with NAME_INVALID", () => {
  const cases: [string, RegExp][] = [
    ["", /at least one component/],
    ["Busybox", /must be lowercase/],
    ["example.com/Team/app", /must be lowercase/],
    ["a".repeat(64), /64-byte hexadecimal/],
    ["app:", /invalid reference format/],
    ["app:-x", /invalid reference format/],
    ["-app", /invalid reference format/],
    ["app@sha256:abc", /invalid reference format/],
    [`app@sha256:${"a".repeat(63)}`, /invalid reference format|length/],
    [`app@md5:${"a".repeat(32)}`, /unsupported digest algorithm/],
    [`app@sha256:${"a".repeat(65)}`, /length/],
    [`example.com/${"a".repeat(250)}`, /not be more than 255/],
  ];
  for (const [input, reason] of cases) {
    assert.throws(() => parseReference(input), (error: unknown) => {
      assert.ok(error instanceof RegistryError, input);
      assert.equal(error.code, "NAME_INVALID");
      assert.match(error.message, reason, input);
      assert.match(error.reason ?? "", reason, input);
      return true;
    });
  }
});

test("Sha256 hashes chunk by chunk as node:crypto does", () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_000]) {
    const data = noise(length, length + 1);
    const expected = createHash("sha256").update(data).digest("hex");
    for (const step of [1, 7, 64, 1000, length || 1]) {
      const hasher = new Sha256();
      for (let i = 0; i < length; i += step) hasher.update(data.subarray(i, i + step));
      assert.equal(hasher.hex(), expected, `${length} bytes in steps of ${step}`);
    }
  }
});

test("digests stream through the runtime's node:crypto on Deno, Bun and Node", async () => {
  const { createHasher, NATIVE_HASH } = await import("../src/registry/_verify.ts");
  assert.equal(NATIVE_HASH, true);
  const hasher = createHasher("sha256")!;
  for (const part of ["a", "bc"]) hasher.update(encoder.encode(part));
  assert.equal(hasher.hex(), createHash("sha256").update("abc").digest("hex"));
});

test("parseAuthChallenges() reads Basic and Bearer challenges", () => {
  assert.deepEqual(
    parseAuthChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/busybox:pull",
      },
    }],
  );
  assert.deepEqual(parseAuthChallenges('Basic realm="a \\"b\\"", Bearer realm=x'), [
    { scheme: "basic", params: { realm: 'a "b"' } },
    { scheme: "bearer", params: { realm: "x" } },
  ]);
  assert.deepEqual(parseAuthChallenges(null), []);
});

test("attemptBudget() gives 1/1, 3/1 and 4/3 attempts by layer size", () => {
  assert.deepEqual(attemptBudget(100 * 1024), {
    maxMountAttempts: 1,
    maxExistenceChecks: 1,
    checkOtherRepositories: false,
  });
  assert.deepEqual(attemptBudget(100 * 1024 + 1).maxMountAttempts, 3);
  assert.deepEqual(attemptBudget(10 * 1024 * 1024).maxMountAttempts, 3);
  assert.deepEqual(attemptBudget(10 * 1024 * 1024 + 1), {
    maxMountAttempts: 4,
    maxExistenceChecks: 3,
    checkOtherRepositories: true,
  });
});

const X = "sha256:" + "1".repeat(64);
const Y = "sha256:" + "2".repeat(64);
const Z = "sha256:" + "3".repeat(64);

async function entry(
  key: Uint8Array | null,
  digest: string,
  sourceRepository: string,
): Promise<V2Metadata> {
  const m = { digest, sourceRepository, hmac: "" };
  return { ...m, hmac: await computeV2MetadataHMAC(key, m) };
}

const alice = { username: "alice", password: "a" };
const bob = { username: "bob", password: "b" };

/** How dockerd talks to the fake registry as `auth`, keeping metadata in `service`. */
async function configFor(
  fake: FakeRegistry,
  service: V2MetadataService,
  auth: AuthConfig = alice,
): Promise<RegistryConfig> {
  return {
    plainHttp: true,
    fetch: fake.fetch,
    auth,
    hmacKey: await computeV2MetadataHMACKey(auth),
    metadataService: service,
  };
}

/** Six entries, oldest first, for DiffID D; target fake.test/team/app, user alice. */
async function sixEntries(X: string): Promise<V2Metadata[]> {
  const a = await computeV2MetadataHMACKey(alice);
  const b = await computeV2MetadataHMACKey(bob);
  return [
    await entry(null, X, "fake.test/other/a"), // e1
    await entry(a, X, "fake.test/team/b"), // e2
    await entry(a, Y, "fake.test/team/app"), // e3: the target, stale digest
    await entry(a, X, "other.test/team/c"), // e4: another registry
    await entry(b, X, "fake.test/x/y/z"), // e5
    await entry(null, Z, "fake.test/team/d"), // e6
  ];
}

test("sortByLikenessAndAge() orders by HMAC match, path likeness, then youngest first", async () => {
  const [e1, e2, e3, e4, e5, e6] = await sixEntries(X);
  const sorted = await sortByLikenessAndAge(
    "fake.test/team/app",
    await computeV2MetadataHMACKey(alice),
    [e1!, e2!, e3!, e4!, e5!, e6!],
  );
  assert.deepEqual(sorted, [e3, e2, e4, e6, e5, e1]);
  // Without a key, empty HMACs are the matching ones.
  assert.deepEqual(await sortByLikenessAndAge("fake.test/team/app", null, [e1!, e2!, e6!]), [
    e6,
    e1,
    e2,
  ]);
});

async function setup(
  layerSize: number | null,
  makeEntries: (layerDigest: string) => Promise<V2Metadata[]>,
): Promise<{
  store: ContentStore;
  service: V2MetadataService;
  diffID: string;
  layer: Descriptor;
  entries: V2Metadata[];
}> {
  const store = await ociLayoutStore("/layout", { fs: new MemoryFileSystem() });
  const image = await buildImage(store, "1.0", [[{ name: "f", data: encoder.encode("x") }]]);
  const layer = { ...image.layers[0]!, size: layerSize ?? image.layers[0]!.size };
  if (layerSize !== null) {
    // Same blobs, but the manifest declares a bigger layer: push budgets by declared size.
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: image.manifest.mediaType,
      config: image.config,
      layers: [layer],
    }));
    const descriptor = { ...image.manifest, digest: sha256(manifest), size: manifest.length };
    await store.put(descriptor.digest, manifest);
    await store.tag("1.0", descriptor);
  }
  const service = new V2MetadataService(
    await FSMetadataStore.open("/meta", { fs: new MemoryFileSystem() }),
  );
  const diffID = image.diffIDs[0]!;
  const entries = await makeEntries(layer.digest);
  for (const e of entries) await service.add(diffID, e);
  return { store, service, diffID, layer, entries };
}

function requests(log: ReturnType<typeof fakeRegistry>["log"], layerDigest: string): string[] {
  return log.map((r) => {
    const q = r.query.get("mount");
    const d = (s: string | null) =>
      s === layerDigest ? "X" : s === Y ? "Y" : s === Z ? "Z" : s === null ? "" : "?";
    if (r.method === "POST" && q !== null) {
      return `POST mount ${d(q)} from ${r.query.get("from")} → ${r.status}`;
    }
    if (r.method === "HEAD" && r.path.includes("/blobs/")) {
      return `HEAD ${d(r.path.split("/").pop()!)} → ${r.status}`;
    }
    if (r.method === "PUT" && r.path.includes("/uploads/")) {
      return `PUT ${d(r.query.get("digest"))} → ${r.status}`;
    }
    return `${r.method} ${r.path} → ${r.status}`;
  });
}

test("push() of a big layer: 1 check, 4 mounts in order, 2 more checks, then upload", async () => {
  const { store, service, diffID, layer, entries } = await setup(20 * 1024 * 1024, sixEntries);
  const fake = fakeRegistry();
  const key = await computeV2MetadataHMACKey(alice);
  await push("fake.test/team/app:1.0", store, await configFor(fake, service));
  const seen = requests(fake.log, layer.digest);
  const layerPart = seen.slice(0, seen.findIndex((s) => s.startsWith("PUT X")) + 1);
  assert.deepEqual(layerPart, [
    "GET /v2/ → 200",
    "HEAD Y → 404",
    "POST mount X from team/b → 202",
    "POST mount Z from team/d → 202",
    "DELETE /v2/team/app/blobs/uploads/u0 → 204",
    "POST mount X from x/y/z → 202",
    "DELETE /v2/team/app/blobs/uploads/u1 → 204",
    "POST mount X from other/a → 202",
    "DELETE /v2/team/app/blobs/uploads/u2 → 204",
    "HEAD X → 404",
    "HEAD Z → 404",
    "PUT X → 201",
  ]);
  // Removed: the stale target entry (404), and the failed mounts tagged with alice's key or
  // with none; kept: bob's and the other registry's. The upload is recorded last.
  const [, , , e4, e5] = entries;
  assert.deepEqual(await service.getMetadata(diffID), [
    e4,
    e5,
    await entry(key, layer.digest, "fake.test/team/app"),
  ]);
});

test("push() of a small layer tries one mount and no further checks", async () => {
  const { store, service, layer } = await setup(null, sixEntries);
  const fake = fakeRegistry();
  await push("fake.test/team/app:1.0", store, await configFor(fake, service));
  const seen = requests(fake.log, layer.digest);
  assert.deepEqual(seen.slice(0, seen.findIndex((s) => s.startsWith("PUT X")) + 1), [
    "GET /v2/ → 200",
    "HEAD Y → 404",
    "POST mount X from team/b → 202",
    "PUT X → 201",
  ]);
});

test("push() stops at an existing blob and records it only when not already known", async () => {
  const key = await computeV2MetadataHMACKey(alice);
  for (const [hmacKey, added] of [[key, false], [null, true]] as const) {
    const { store, service, diffID, layer, entries } = await setup(
      null,
      async (x) => [await entry(hmacKey, x, "fake.test/team/app")],
    );
    const fake = fakeRegistry();
    fake.blobs.set("team/app", new Map([[layer.digest, await store.get(layer.digest)]]));
    await push("fake.test/team/app:1.0", store, await configFor(fake, service));
    assert.ok(!fake.log.some((r) => r.query.has("mount")));
    const expected = [...entries];
    if (added) expected.push(await entry(key, layer.digest, "fake.test/team/app"));
    assert.deepEqual(await service.getMetadata(diffID), expected);
  }
});

test("push() mounts with 201 and records the target, cancelling no upload", async () => {
  const key = await computeV2MetadataHMACKey(alice);
  const { store, service, diffID, layer, entries } = await setup(
    null,
    async (x) => [await entry(key, x, "fake.test/team/src")],
  );
  const fake = fakeRegistry();
  fake.blobs.set("team/src", new Map([[layer.digest, await store.get(layer.digest)]]));
  await push("fake.test/team/app:1.0", store, await configFor(fake, service));
  const seen = requests(fake.log, layer.digest);
  assert.ok(seen.includes("POST mount X from team/src → 201"), seen.join("\n"));
  assert.ok(!seen.includes("PUT X → 201"));
  assert.deepEqual(await service.getMetadata(diffID), [
    entries[0],
    await entry(key, layer.digest, "fake.test/team/app"),
  ]);
});

test("a denied mount (403) removes the entry and is typed DENIED", async () => {
  const key = await computeV2MetadataHMACKey(alice);
  const { store, service, diffID, layer } = await setup(
    null,
    async (x) => [await entry(key, x, "fake.test/team/src")],
  );
  const fake = fakeRegistry();
  fake.hook = (req) =>
    req.query.has("mount") || req.path.includes("/manifests/")
      ? new Response(
        JSON.stringify({
          errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
        }),
        { status: 403 },
      )
      : null;
  const config = await configFor(fake, service);
  await assert.rejects(push("fake.test/team/app:1.0", store, config), typed("DENIED"));
  // The mount failed for other reasons than missing credentials: alice's entry is gone and the
  // upload went on (the manifest PUT was then denied).
  assert.deepEqual(await service.getMetadata(diffID), [
    await entry(key, layer.digest, "fake.test/team/app"),
  ]);
  await assert.rejects(pull("fake.test/team/app:1.0", store, config), (error: unknown) => {
    assert.ok(error instanceof RegistryError);
    assert.equal(error.code, "DENIED");
    assert.equal(error.status, 403);
    assert.equal(error.method, "GET");
    assert.equal(error.reason, "requested access to the resource is denied");
    return true;
  });
});

test("the Bearer token flow asks the realm for the scopes, with Basic credentials", async () => {
  const { store } = await setup(null, () => Promise.resolve([]));
  const fake = fakeRegistry();
  const tokenRequests: URL[] = [];
  fake.hook = (req) => {
    if (req.path === "/token") {
      tokenRequests.push(new URL(`http://auth.test${req.path}?${req.query}`));
      assert.equal(req.authorization, "Basic " + btoa("alice:a"));
      return Response.json({ token: `tok${tokenRequests.length}` });
    }
    if (!req.authorization?.startsWith("Bearer tok")) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="http://auth.test/token",service="fake"' },
      });
    }
    return null;
  };
  await push("fake.test/team/app:1.0", store, { plainHttp: true, fetch: fake.fetch, auth: alice });
  assert.ok(tokenRequests.length >= 1);
  const first = tokenRequests[0]!;
  assert.equal(first.searchParams.get("service"), "fake");
  assert.deepEqual(first.searchParams.getAll("scope"), ["repository:team/app:pull,push"]);
  assert.equal(first.searchParams.get("account"), "alice");
  assert.ok(fake.manifests.has("team/app:1.0"));
});

test("a Basic challenge without credentials fails with UNAUTHORIZED", async () => {
  const fake = fakeRegistry();
  fake.hook = () =>
    new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
  const store = await ociLayoutStore("/l", { fs: new MemoryFileSystem() });
  await assert.rejects(
    pull("fake.test/team/app:1.0", store, { plainHttp: true, fetch: fake.fetch }),
    typed("UNAUTHORIZED"),
  );
});

test("pull() refuses a schema 1 manifest with dockerd's deprecation error", async () => {
  const fake = fakeRegistry();
  fake.manifests.set("team/old:1.0", {
    type: "application/vnd.docker.distribution.manifest.v1+prettyjws",
    body: encoder.encode('{"schemaVersion":1,"name":"team/old","tag":"1.0","fsLayers":[]}'),
  });
  const store = await ociLayoutStore("/l", { fs: new MemoryFileSystem() });
  await assert.rejects(
    pull("fake.test/team/old:1.0", store, { plainHttp: true, fetch: fake.fetch }),
    (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, "SCHEMA1_DEPRECATED");
      assert.equal(
        (error as Error).message,
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. " +
          "Suggest the author of fake.test/team/old:1.0 to upgrade the image to the OCI Format or " +
          "Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/",
      );
      return true;
    },
  );
});

test("pull() verifies blob digests while streaming", async () => {
  const source = await ociLayoutStore("/src", { fs: new MemoryFileSystem() });
  const image = await buildImage(source, "1.0", [[{ name: "f", data: encoder.encode("x") }]]);
  const fake = fakeRegistry();
  await push("fake.test/team/app:1.0", source, { plainHttp: true, fetch: fake.fetch });
  fake.blobs.get("team/app")!.set(image.layers[0]!.digest, encoder.encode("tampered"));
  const target = await ociLayoutStore("/dst", { fs: new MemoryFileSystem() });
  await assert.rejects(
    pull("fake.test/team/app:1.0", target, { plainHttp: true, fetch: fake.fetch }),
    typed("DIGEST_INVALID"),
  );
  assert.equal(await target.has(image.layers[0]!.digest), false);
});

test("getRepositories() tries Docker Hub mirrors first and omits unreachable ones", async () => {
  assert.deepEqual(
    endpointsFor(parseReference("busybox"), { mirrors: ["mirror.test/", "http://m2.test"] }),
    [
      { url: "https://mirror.test", mirror: true },
      { url: "http://m2.test", mirror: true },
      { url: "https://registry-1.docker.io", mirror: false },
    ],
  );
  assert.deepEqual(endpointsFor(parseReference("busybox"), { mirrors: ["m.test"] }, true), [
    { url: "https://registry-1.docker.io", mirror: false },
  ]);
  const seen: string[] = [];
  const stub: typeof fetch = (input) => {
    const url = String(input);
    seen.push(url);
    if (url.startsWith("https://down.test")) return Promise.reject(new TypeError("fetch failed"));
    return Promise.resolve(new Response("{}", { status: 200 }));
  };
  const repos = await getRepositories("busybox", {
    mirrors: ["down.test", "up.test"],
    fetch: stub,
  });
  assert.deepEqual(repos.map((r) => [r.endpoint, r.mirror, r.name]), [
    ["https://up.test", true, "docker.io/library/busybox"],
    ["https://registry-1.docker.io", false, "docker.io/library/busybox"],
  ]);
  await assert.rejects(getRepositories("scratch", { fetch: stub }), typed("NAME_INVALID"));
  await assert.rejects(
    getRepositories("busybox", { fetch: () => Promise.reject(new TypeError("offline")) }),
    { code: "UNREACHABLE" },
  );
});

test("pull() falls back from a mirror that lacks the image, recording docker.io names", async () => {
  const source = await ociLayoutStore("/src", { fs: new MemoryFileSystem() });
  const image = await buildImage(source, "1.0", [[{ name: "f", data: encoder.encode("x") }]]);
  const hub = fakeRegistry("https://registry-1.docker.io");
  await push("busybox:1.0", source, { fetch: hub.fetch });
  const mirror = fakeRegistry("https://mirror.test");
  const stub: typeof fetch = (input, init) =>
    String(input).startsWith("https://mirror.test")
      ? mirror.fetch(input, init)
      : hub.fetch(input, init);
  const service = new V2MetadataService(
    await FSMetadataStore.open("/m", { fs: new MemoryFileSystem() }),
  );
  const target = await ociLayoutStore("/dst", { fs: new MemoryFileSystem() });
  const got = await pull("busybox:1.0", target, {
    mirrors: ["mirror.test"],
    fetch: stub,
    metadataService: service,
  });
  assert.equal(got.digest, image.manifest.digest);
  assert.ok(
    mirror.log.some((r) => r.path === "/v2/library/busybox/manifests/1.0" && r.status === 404),
  );
  assert.deepEqual(await service.getMetadata(image.diffIDs[0]!), [
    { digest: image.layers[0]!.digest, sourceRepository: "docker.io/library/busybox", hmac: "" },
  ]);
});

test("push() of a name the store lacks fails with ENOENT before any request", async () => {
  const fake = fakeRegistry();
  const store = await ociLayoutStore("/l", { fs: new MemoryFileSystem() });
  await assert.rejects(
    push("fake.test/team/app:9", store, { plainHttp: true, fetch: fake.fetch }),
    {
      code: "ENOENT",
    },
  );
  assert.equal(fake.log.length, 0);
});

/** Every directory and file under `root`, as the Go fixtures record trees. */
async function treeOf(
  fs: MemoryFileSystem,
  root: string,
  dir = root,
): Promise<{ path: string; kind: string; mode: number; base64?: string }[]> {
  const nodes = [];
  for (const name of fs.readDir(dir).sort()) {
    const path = `${dir}/${name}`;
    const info = fs.stat(path)!;
    const relative = path.slice(root.length + 1);
    if (info.kind === "directory") {
      nodes.push({ path: relative, kind: "dir", mode: info.mode });
      nodes.push(...await treeOf(fs, root, path));
    } else {
      const base64 = Buffer.from(fs.readFile(path)).toString("base64");
      nodes.push({ path: relative, kind: "file", mode: info.mode, base64 });
    }
  }
  return nodes;
}

test("push, pull, then a mounting push write the metadata Docker's Go package writes", async () => {
  // The same calls replayed on Go's package: scenario "registry-push-pull-mount" of
  // tests/fixtures/go_metadata.json (its digests are this image's: the gzip is deterministic).
  const source = await ociLayoutStore("/source", { fs: new MemoryFileSystem() });
  await buildImage(source, "1.0", [
    [{ name: "a.txt", data: encoder.encode("layer a\n") }],
    [{ name: "b.txt", data: encoder.encode("layer b\n") }],
  ]);
  const fs = new MemoryFileSystem();
  const metadataService = new V2MetadataService(await FSMetadataStore.open("/meta", { fs }));
  const fake = fakeRegistry();
  await push("fake.test/team/app:1.0", source, await configFor(fake, metadataService));
  const pulled = await ociLayoutStore("/pulled", { fs: new MemoryFileSystem() });
  await pull("fake.test/team/app:1.0", pulled, await configFor(fake, metadataService, bob));
  await push("fake.test/team/other:1.0", source, await configFor(fake, metadataService));
  assert.ok(fake.log.some((r) => r.query.get("from") === "team/app" && r.status === 201));
  const { scenarios } = JSON.parse(
    readFileSync(new URL("./fixtures/go_metadata.json", import.meta.url), "utf8"),
  );
  const scenario = scenarios.find((s: { name: string }) => s.name === "registry-push-pull-mount");
  assert.deepEqual(await treeOf(fs, "/meta"), scenario.tree);
});
