// Integration tests of the registry side against the real Distribution registry server
// (Debian's `docker-registry`, /usr/bin/docker-registry), started on 127.0.0.1 by the tests
// (the test set-up installs it).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuthConfig,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  V2MetadataService,
} from "../mod.ts";
import {
  getRepositories,
  type OciLayoutStore,
  ociLayoutStore,
  pull,
  push,
  type RegistryConfig,
  RegistryError,
  type RegistryErrorCode,
  tags,
} from "../src/registry/mod.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";

/** An assert.rejects check: a RegistryError with this code. */
function typed(code: RegistryErrorCode): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, code);
    return true;
  };
}
const temps: string[] = [];
const servers = new Map<string, Promise<RegistryServer>>();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "registry-it-"));
  temps.push(dir);
  return dir;
}

/** One server per variant, started on first use and stopped by the last test. */
function server(variant: "open" | "htpasswd" | "readonly"): Promise<RegistryServer> {
  let started = servers.get(variant);
  if (started === undefined) {
    started = startRegistry({
      htpasswd: variant === "htpasswd",
      readOnly: variant === "readonly",
    });
    servers.set(variant, started);
  }
  return started;
}

async function metadata(): Promise<{ root: string; service: V2MetadataService }> {
  const root = tempDir();
  return { root, service: new V2MetadataService(await FSMetadataStore.open(root)) };
}

async function layout(): Promise<OciLayoutStore> {
  return await ociLayoutStore(tempDir());
}

/** Every file of a directory, relative path → bytes. */
function tree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    files.set(path.slice(dir.length + 1), readFileSync(path));
  }
  return files;
}

function hex(digest: string): string {
  return digest.slice("sha256:".length);
}

/** The file dockerd keeps for a DiffID: read raw. */
function listFile(root: string, diffID: string): string {
  return readFileSync(join(root, "v2metadata-by-diffid", "sha256", hex(diffID)), "utf8");
}

/** What dockerd writes for a list: compact JSON, keys Digest, SourceRepository, HMAC. */
function expectedList(entries: [string, string, string][]): string {
  return "[" +
    entries.map(([d, r, h]) => `{"Digest":"${d}","SourceRepository":"${r}","HMAC":"${h}"}`)
      .join(",") +
    "]";
}

/** dockerd's key, computed independently: sha256:<hex of sha256(JSON of the auth)>. */
function hmacKeyOf(username: string, password: string): string {
  const json = `{"username":"${username}","password":"${password}"}`;
  return "sha256:" + createHash("sha256").update(json).digest("hex");
}

/** dockerd's HMAC of an entry, computed independently. */
function hmacOf(key: string, digest: string, repository: string): string {
  return createHmac("sha256", key).update(digest + repository).digest("hex");
}

interface Recorded {
  method: string;
  url: string;
  status: number;
}

function recordingFetch(log: Recorded[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    log.push({ method: init?.method ?? "GET", url: String(input), status: response.status });
    return response;
  };
}

async function authConfig(
  user: string,
): Promise<RegistryConfig & { auth: AuthConfig; hmacKey: Uint8Array | null }> {
  const auth = { username: user, password: USERS[user]! };
  return { auth, hmacKey: await computeV2MetadataHMACKey(auth), plainHttp: true };
}

const smallLayers = [
  [{ name: "etc/hello.txt", data: new TextEncoder().encode("hello from layer one\n") }],
  [{ name: "usr/bin/tool", data: noise(4096, 7) }],
];

test("push() uploads an image and pull() brings it back byte-identical", async () => {
  const registry = await server("open");
  const source = await layout();
  const image = await buildImage(source, "1.0", smallLayers);
  const pushed = await metadata();
  const ref = `${registry.host}/team/app:1.0`;
  const descriptor = await push(ref, source, { plainHttp: true, metadataService: pushed.service });
  assert.equal(descriptor.digest, image.manifest.digest);

  const target = await layout();
  const pulled = await metadata();
  const { layers, ...got } = await pull(ref, target, {
    plainHttp: true,
    metadataService: pulled.service,
  });
  assert.deepEqual(got, image.manifest);
  assert.deepEqual(
    layers,
    image.layers.map((l, i) => ({
      digest: l.digest,
      diffID: image.diffIDs[i],
      status: "recorded",
    })),
  );
  for (const blob of [image.manifest, image.config, ...image.layers]) {
    assert.deepEqual(await target.get(blob.digest), await source.get(blob.digest));
  }
  assert.equal((await target.resolve("1.0"))?.digest, image.manifest.digest);

  // The metadata both sides wrote, byte for byte as dockerd writes it (no credentials: HMAC "").
  const repo = `${registry.host}/team/app`;
  for (const root of [pushed.root, pulled.root]) {
    for (const [i, diffID] of image.diffIDs.entries()) {
      assert.equal(listFile(root, diffID), expectedList([[image.layers[i]!.digest, repo, ""]]));
      assert.equal(
        readFileSync(
          join(root, "diffid-by-digest", "sha256", hex(image.layers[i]!.digest)),
          "utf8",
        ),
        diffID,
      );
    }
  }
  assert.deepEqual([...tree(pushed.root).keys()].sort(), [...tree(pulled.root).keys()].sort());
});

test("pull() into an OCI layout matches the pushed layout file for file", async () => {
  const registry = await server("open");
  const source = await layout();
  const image = await buildImage(source, "oci", smallLayers, "oci");
  const ref = `${registry.host}/team/oci:oci`;
  await push(ref, source, { plainHttp: true });
  const target = await layout();
  await pull(ref, target, { plainHttp: true });
  const a = tree(source.dir);
  const b = tree(target.dir);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [path, bytes] of a) {
    if (path !== "index.json") assert.deepEqual(b.get(path), bytes, path);
  }
  assert.equal((await target.resolve("oci"))?.mediaType, image.manifest.mediaType);
});

test("tags() lists every tag of a repository", async () => {
  const registry = await server("open");
  const source = await layout();
  await buildImage(source, "a", smallLayers);
  await buildImage(source, "b", [smallLayers[0]!]);
  await push(`${registry.host}/team/tagged:a`, source, { plainHttp: true });
  await push(`${registry.host}/team/tagged:b`, source, { plainHttp: true });
  assert.deepEqual(
    (await tags(`${registry.host}/team/tagged`, { plainHttp: true })).sort(),
    ["a", "b"],
  );
  const [repo] = await getRepositories(`${registry.host}/team/tagged`, { plainHttp: true });
  assert.equal(repo?.name, `${registry.host}/team/tagged`);
  assert.equal(
    (await repo!.tags().get("b")).mediaType,
    "application/vnd.docker.distribution.manifest.v2+json",
  );
});

test("push() mounts known layers into a second repository: 201, no upload", async () => {
  const registry = await server("open");
  const source = await layout();
  const image = await buildImage(source, "1.0", smallLayers);
  const { root, service } = await metadata();
  await push(`${registry.host}/team/first:1.0`, source, {
    plainHttp: true,
    metadataService: service,
  });

  const log: Recorded[] = [];
  const config = { plainHttp: true, metadataService: service, fetch: recordingFetch(log) };
  await push(`${registry.host}/team/second:1.0`, source, config);
  for (const layer of image.layers) {
    const mount = log.filter((r) =>
      r.method === "POST" && r.url.includes(`mount=${encodeURIComponent(layer.digest)}`)
    );
    assert.equal(mount.length, 1, `one mount of ${layer.digest}`);
    assert.equal(mount[0]!.status, 201);
    assert.ok(mount[0]!.url.includes("from=team%2Ffirst"), mount[0]!.url);
    assert.ok(
      !log.some((r) =>
        r.method === "PUT" && r.url.includes(`digest=${encodeURIComponent(layer.digest)}`)
      ),
    );
    assert.ok(!log.some((r) => r.method === "PATCH"));
  }
  // dockerd records the mount under the target, after the source entry.
  for (const [i, diffID] of image.diffIDs.entries()) {
    const digest = image.layers[i]!.digest;
    assert.equal(
      listFile(root, diffID),
      expectedList([[digest, `${registry.host}/team/first`, ""], [
        digest,
        `${registry.host}/team/second`,
        "",
      ]]),
    );
  }
  // The mounted repository serves the image.
  const target = await layout();
  assert.equal(
    (await pull(`${registry.host}/team/second:1.0`, target, { plainHttp: true })).digest,
    image.manifest.digest,
  );

  // A third push to the same repository finds every layer by one HEAD each: no POST at all.
  log.length = 0;
  await push(`${registry.host}/team/second:1.0`, source, config);
  assert.ok(!log.some((r) => r.method === "POST"), JSON.stringify(log));
});

test("push() uploads in chunks when chunkSize is set", async () => {
  const registry = await server("open");
  const source = await layout();
  const image = await buildImage(
    source,
    "big",
    [[{ name: "blob", data: noise(300 * 1024, 3) }]],
    "oci",
  );
  const log: Recorded[] = [];
  await push(`${registry.host}/team/chunked:big`, source, {
    plainHttp: true,
    chunkSize: 64 * 1024,
    fetch: recordingFetch(log),
  });
  const patches = log.filter((r) => r.method === "PATCH");
  assert.ok(patches.length >= 4, `${patches.length} PATCH requests`);
  assert.ok(patches.every((r) => r.status === 202));
  const target = await layout();
  await pull(`${registry.host}/team/chunked:big`, target, { plainHttp: true });
  assert.deepEqual(
    await target.get(image.layers[0]!.digest),
    await source.get(image.layers[0]!.digest),
  );
});

test("push() with credentials records the HMAC dockerd computes", async () => {
  const registry = await server("htpasswd");
  const source = await layout();
  const image = await buildImage(source, "1.0", smallLayers);
  const { root, service } = await metadata();
  const config = { ...(await authConfig("alice")), metadataService: service };
  await push(`${registry.host}/alice/app:1.0`, source, config);
  const key = hmacKeyOf("alice", USERS.alice!);
  const repo = `${registry.host}/alice/app`;
  for (const [i, diffID] of image.diffIDs.entries()) {
    const digest = image.layers[i]!.digest;
    assert.equal(listFile(root, diffID), expectedList([[digest, repo, hmacOf(key, digest, repo)]]));
  }
  const target = await layout();
  await pull(`${registry.host}/alice/app:1.0`, target, await authConfig("bob"));
  assert.deepEqual(
    await target.get(image.manifest.digest),
    await source.get(image.manifest.digest),
  );
});

test("a failed mount removes a stale entry only when its HMAC is the current user's or empty", async () => {
  const registry = await server("htpasswd");
  const source = await layout();
  // > 100 KiB compressed: a middle-sized layer, 3 mount attempts.
  const image = await buildImage(source, "1.0", [[{ name: "data", data: noise(150 * 1024, 11) }]]);
  const [diffID] = image.diffIDs;
  const [layer] = image.layers;
  const { root, service } = await metadata();
  const alice = await authConfig("alice");
  const bobKey = await computeV2MetadataHMACKey({ username: "bob", password: USERS.bob! });
  const ghost = (name: string) => `${registry.host}/ghost/${name}`;
  // Entries pointing at repositories that never had the blob (stale).
  await service.tagAndAdd(diffID!, bobKey, {
    digest: layer!.digest,
    sourceRepository: ghost("bob"),
    hmac: "",
  });
  await service.add(diffID!, {
    digest: layer!.digest,
    sourceRepository: ghost("nobody"),
    hmac: "",
  });
  await service.tagAndAdd(diffID!, alice.hmacKey, {
    digest: layer!.digest,
    sourceRepository: ghost("alice"),
    hmac: "",
  });

  const log: Recorded[] = [];
  await push(`${registry.host}/alice/fresh:1.0`, source, {
    ...alice,
    metadataService: service,
    fetch: recordingFetch(log),
  });
  // Tried in dockerd's order: alice's HMAC first, then youngest first.
  const mounts = log.filter((r) =>
    r.method === "POST" && r.url.includes("mount=") && r.status !== 401
  );
  assert.deepEqual(
    mounts.map((r) => new URL(r.url).searchParams.get("from")),
    ["ghost/alice", "ghost/nobody", "ghost/bob"],
  );
  assert.ok(mounts.every((r) => r.status === 202));
  const key = hmacKeyOf("alice", USERS.alice!);
  const bob = hmacKeyOf("bob", USERS.bob!);
  const target = `${registry.host}/alice/fresh`;
  assert.equal(
    listFile(root, diffID!),
    expectedList([
      [layer!.digest, ghost("bob"), hmacOf(bob, layer!.digest, ghost("bob"))],
      [layer!.digest, target, hmacOf(key, layer!.digest, target)],
    ]),
  );
});

test("a mount refused for lack of credentials forgets nothing", async () => {
  const registry = await server("htpasswd");
  const source = await layout();
  const image = await buildImage(source, "1.0", [smallLayers[0]!]);
  const { root, service } = await metadata();
  const entry = {
    digest: image.layers[0]!.digest,
    sourceRepository: `${registry.host}/alice/app`,
    hmac: "",
  };
  await service.add(image.diffIDs[0]!, entry);
  await assert.rejects(
    push(`${registry.host}/anon/app:1.0`, source, { plainHttp: true, metadataService: service }),
    typed("UNAUTHORIZED"),
  );
  assert.equal(
    listFile(root, image.diffIDs[0]!),
    expectedList([[entry.digest, entry.sourceRepository, ""]]),
  );
});

test("wrong credentials fail with UNAUTHORIZED", async () => {
  const registry = await server("htpasswd");
  const source = await layout();
  await buildImage(source, "1.0", smallLayers);
  const config = { plainHttp: true, auth: { username: "alice", password: "wrong" } };
  await assert.rejects(
    push(`${registry.host}/alice/app:1.0`, source, config),
    typed("UNAUTHORIZED"),
  );
  await assert.rejects(
    pull(`${registry.host}/alice/app:1.0`, await layout(), config),
    typed("UNAUTHORIZED"),
  );
  await assert.rejects(
    tags(`${registry.host}/alice/app`, { plainHttp: true }),
    typed("UNAUTHORIZED"),
  );
});

test("unknown tags and repositories fail with typed errors", async () => {
  const registry = await server("open");
  const source = await layout();
  await buildImage(source, "1.0", smallLayers);
  await push(`${registry.host}/team/known:1.0`, source, { plainHttp: true });
  await assert.rejects(
    pull(`${registry.host}/team/known:nope`, await layout(), { plainHttp: true }),
    typed("MANIFEST_UNKNOWN"),
  );
  await assert.rejects(
    tags(`${registry.host}/team/missing`, { plainHttp: true }),
    typed("NAME_UNKNOWN"),
  );
  const [repo] = await getRepositories(`${registry.host}/team/known`, { plainHttp: true });
  await assert.rejects(repo!.blobs().stat("sha256:" + "0".repeat(64)), { code: "BLOB_UNKNOWN" });
  await assert.rejects(repo!.tags().get("nope"), { code: "TAG_UNKNOWN" });
});

test("a read-only registry refuses pushes with UNSUPPORTED", async () => {
  const registry = await server("readonly");
  const source = await layout();
  await buildImage(source, "1.0", smallLayers);
  await assert.rejects(
    push(`${registry.host}/team/ro:1.0`, source, { plainHttp: true }),
    typed("UNSUPPORTED"),
  );
});

after(async () => {
  for (const started of servers.values()) {
    const running = await started.catch(() => null);
    await running?.stop();
  }
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
