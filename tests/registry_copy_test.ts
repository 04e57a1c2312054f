// copy() straight from one real docker-registry to another on 127.0.0.1 (the destination with
// htpasswd): the same manifest digest and blobs, metadata for both sides under each side's
// HMAC key, every blob mounted within one registry (its access log), a corrupt source blob
// refused by digest with nothing under it at the destination, a cut download resumed, a cut
// upload started again from the source, an abort that cancels the upload sessions, an index
// (one platform, or all), each side's credentials sent to its own registry only; then the
// CLI's `copy docker://… docker://…` with nothing written under TMPDIR.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkV2MetadataHMAC, computeV2MetadataHMACKey } from "../mod.ts";
import { copy, type CopyConfig, ociLayoutStore, push, RegistryError } from "../src/registry/mod.ts";
import { type FaultProxy, startFaultProxy } from "./registry/_fault_proxy.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";
import { buildImage, type BuiltImage, noise, sha256 } from "./registry/_image_builder.ts";
import {
  layoutWithImage,
  metadata,
  progressLog,
  QUICK_RETRY,
  removeTempDirs,
  tempDir,
} from "./registry/_engine.ts";
import { runCli } from "./_cli.ts";

const MiB = 1 << 20;
const ALICE = { username: "alice", password: USERS.alice! };
const BASIC = `Basic ${btoa(`alice:${USERS.alice}`)}`;
/** The source: no authentication. */
let open: RegistryServer;
/** The destination: htpasswd. */
let locked: RegistryServer;
let proxy: FaultProxy;

before(async () => {
  [open, locked] = await Promise.all([
    startRegistry({ accessLog: true }),
    startRegistry({ htpasswd: true, accessLog: true }),
  ]);
  proxy = await startFaultProxy(open.url);
});

after(async () => {
  await proxy?.stop();
  await Promise.all([open?.stop(), locked?.stop()]);
  removeTempDirs();
});

/** An image of three layers (3 MiB, 256 KiB, 64 KiB of noise) pushed to `open` as `repo:1.0`. */
async function sourceImage(repo: string, seed: number, sizes = [3 * MiB, 256 * 1024, 64 * 1024]) {
  const { store, image } = await layoutWithImage(sizes, seed);
  await push(`${open.host}/${repo}:1.0`, store, { plainHttp: true });
  return image;
}

/** The configuration of a copy from `open` (plain) to `locked` (alice). */
async function config(extra: CopyConfig = {}): Promise<CopyConfig> {
  return {
    source: { plainHttp: true, hmacKey: await computeV2MetadataHMACKey({}) },
    destination: { plainHttp: true, auth: ALICE, hmacKey: await computeV2MetadataHMACKey(ALICE) },
    retry: QUICK_RETRY,
    ...extra,
  };
}

/** A blob of `locked` as its status and bytes. */
async function lockedBlob(repo: string, digest: string): Promise<[number, Uint8Array]> {
  const response = await fetch(`${locked.url}/v2/${repo}/blobs/${digest}`, {
    headers: { authorization: BASIC },
  });
  return [response.status, new Uint8Array(await response.arrayBuffer())];
}

/** The storage directory of a blob in a registry. */
function blobDir(server: RegistryServer, digest: string): string {
  const hex = digest.slice(7);
  return join(server.storage, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex);
}

function rejectsWith(error: unknown, code: string): RegistryError {
  assert.ok(error instanceof RegistryError, `not a RegistryError: ${error}`);
  assert.equal(error.code, code, error.message);
  return error;
}

/** Every blob of `image` at `locked/repo`, byte for byte as the source has it. */
async function assertCopied(repo: string, image: BuiltImage): Promise<void> {
  for (const blob of [image.config, ...image.layers]) {
    const [status, bytes] = await lockedBlob(repo, blob.digest);
    assert.equal(status, 200, blob.digest);
    assert.equal(sha256(bytes), blob.digest);
    assert.deepEqual(bytes, new Uint8Array(readFileSync(join(blobDir(open, blob.digest), "data"))));
  }
  const manifest = await fetch(`${locked.url}/v2/${repo}/manifests/1.0`, {
    headers: { authorization: BASIC, accept: image.manifest.mediaType },
  });
  assert.equal(manifest.status, 200);
  assert.equal(sha256(new Uint8Array(await manifest.arrayBuffer())), image.manifest.digest);
}

test("copy streams an image to another registry: same digest and blobs, metadata for both sides", async () => {
  const image = await sourceImage("team/app", 1);
  const { service } = await metadata();
  const { events, onProgress } = progressLog();
  const copied = await copy(
    `${open.host}/team/app:1.0`,
    `${locked.host}/copy/app:1.0`,
    await config({ metadataService: service, onProgress }),
  );
  assert.equal(copied.digest, image.manifest.digest);
  assert.equal(copied.mediaType, image.manifest.mediaType);
  assert.deepEqual(
    copied.layers,
    image.layers.map((layer, i) => ({
      digest: layer.digest,
      diffID: image.diffIDs[i],
      transfer: "copied",
      status: "recorded",
    })),
  );
  await assertCopied("copy/app", image);
  // A pull from the source under the empty key, a push to the destination under alice's.
  const none = await computeV2MetadataHMACKey({});
  const alice = await computeV2MetadataHMACKey(ALICE);
  for (const [i, layer] of image.layers.entries()) {
    assert.equal(await service.getDiffID(layer.digest), image.diffIDs[i]);
    const entries = await service.getMetadata(image.diffIDs[i]!);
    assert.deepEqual(entries.map((e) => [e.digest, e.sourceRepository]), [
      [layer.digest, `${open.host}/team/app`],
      [layer.digest, `${locked.host}/copy/app`],
    ]);
    assert.ok(await checkV2MetadataHMAC(entries[0]!, none));
    assert.ok(!(await checkV2MetadataHMAC(entries[0]!, alice)));
    assert.ok(await checkV2MetadataHMAC(entries[1]!, alice));
    // Progress: each layer's bytes as sent, ending at its size; no byte event of the source.
    const last = events.filter((e) => e.digest === layer.digest).at(-1);
    assert.deepEqual(last, {
      action: "push",
      digest: layer.digest,
      current: layer.size,
      total: layer.size,
    });
  }
  assert.deepEqual(events.filter((e) => e.action === "pull"), []);

  // Again: every blob is there already (HEAD), nothing moves.
  const again = await copy(
    `${open.host}/team/app:1.0`,
    `${locked.host}/copy/app:1.0`,
    await config({ metadataService: service }),
  );
  assert.deepEqual(again.layers.map((l) => [l.transfer, l.status]), [
    ["exists", "recorded"],
    ["exists", "recorded"],
    ["exists", "recorded"],
  ]);

  // A destination named by digest: another digest is refused before anything moves.
  const pinned = `${locked.host}/copy/pinned`;
  const wrong = await copy(`${open.host}/team/app:1.0`, `${pinned}@${image.config.digest}`, {
    ...await config(),
  }).then(() => null, (e) => e);
  rejectsWith(wrong, "DIGEST_INVALID");
  assert.equal((await lockedBlob("copy/pinned", image.layers[0]!.digest))[0], 404);
  const right = await copy(
    `${open.host}/team/app:1.0`,
    `${pinned}@${image.manifest.digest}`,
    await config(),
  );
  assert.equal(right.digest, image.manifest.digest);
});

test("copy within one registry mounts every blob from the source repository", async () => {
  const image = await sourceImage("team/base", 2);
  const { onProgress, events } = progressLog();
  const copied = await copy(`${open.host}/team/base:1.0`, `${open.host}/other/app:2.0`, {
    source: { plainHttp: true },
    destination: { plainHttp: true },
    onProgress,
  });
  assert.equal(copied.digest, image.manifest.digest);
  assert.deepEqual(copied.layers.map((l) => [l.transfer, l.status]), [
    ["mounted", "unchecked"],
    ["mounted", "unchecked"],
    ["mounted", "unchecked"],
  ]);
  const requests = (await open.requests()).filter((r) => r.url.startsWith("/v2/other/app/"));
  const mounts = requests.filter((r) => r.method === "POST" && r.status === 201)
    .map((r) => new URL(r.url, "http://x").searchParams)
    .map((params) => [params.get("from"), params.get("mount")]);
  assert.deepEqual(
    mounts.sort(),
    [image.config, ...image.layers].map((blob) => ["team/base", blob.digest]).sort(),
  );
  assert.deepEqual(
    requests.filter((r) =>
      r.method === "PATCH" || r.url.includes("/blobs/uploads/") && r.method === "PUT"
    ),
    [],
  );
  assert.deepEqual(
    events.filter((e) => e.action === "mount").map((e) => e.from),
    [...image.layers, image.config].map(() => `${open.host}/team/base`),
  );
  const manifest = await fetch(`${open.url}/v2/other/app/manifests/2.0`, {
    headers: { accept: image.manifest.mediaType },
  });
  assert.equal(sha256(new Uint8Array(await manifest.arrayBuffer())), image.manifest.digest);
});

test("a failed mount forgets the stale entry made with the destination's credentials or none, as push does", async () => {
  const image = await sourceImage("team/stale", 21);
  const { service } = await metadata();
  const aliceKey = await computeV2MetadataHMACKey(ALICE);
  const bobKey = await computeV2MetadataHMACKey({ username: "bob", password: "other" });
  const diffID = image.diffIDs[0]!;
  const digest = image.layers[0]!.digest;
  // Three repositories of the destination that never held the layer (3 MiB: 3 mount attempts).
  const stale = (path: string) => ({
    digest,
    sourceRepository: `${locked.host}/${path}`,
    hmac: "",
  });
  await service.tagAndAdd(diffID, bobKey, stale("gone/bobs"));
  await service.add(diffID, stale("gone/nobodys"));
  await service.tagAndAdd(diffID, aliceKey, stale("gone/alices"));
  const copied = await copy(`${open.host}/team/stale:1.0`, `${locked.host}/team/fresh:1.0`, {
    ...(await config()),
    metadataService: service,
  });
  assert.equal(copied.layers[0]!.transfer, "copied");
  const mountedFrom = (await locked.requests())
    .filter((r) => r.method === "POST" && r.url.startsWith("/v2/team/fresh/blobs/uploads/?"))
    .map((r) => new URL(r.url, "http://x").searchParams)
    .filter((params) => params.get("mount") === digest)
    .map((params) => params.get("from"));
  assert.deepEqual(mountedFrom, ["gone/alices", "gone/nobodys", "gone/bobs"]);
  assert.deepEqual(
    (await service.getMetadata(diffID)).map((e) => e.sourceRepository),
    [`${locked.host}/gone/bobs`, `${open.host}/team/stale`, `${locked.host}/team/fresh`],
  );
});

test("a corrupt source blob fails the copy naming its digest; the destination holds nothing under it", async () => {
  const image = await sourceImage("team/corrupt", 3, [2 * MiB]);
  const layer = image.layers[0]!.digest;
  const data = join(blobDir(open, layer), "data");
  const bytes = readFileSync(data);
  bytes[bytes.length >> 1]! ^= 0xff;
  writeFileSync(data, bytes);
  const { service } = await metadata();
  // Counts the body bytes each request to the destination carried.
  let sent = 0;
  const counting: typeof fetch = (input, init) => {
    const body = init?.body;
    if (body instanceof ReadableStream) {
      const counted = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        }),
      );
      return fetch(input, { ...init, body: counted } as RequestInit);
    }
    if (body instanceof Uint8Array) sent += body.length;
    return fetch(input, init);
  };
  const base = await config({ metadataService: service });
  const error = await copy(`${open.host}/team/corrupt:1.0`, `${locked.host}/corrupt/app:1.0`, {
    ...base,
    destination: { ...base.destination, fetch: counting },
  }).then(() => null, (e) => e);
  const failure = rejectsWith(error, "DIGEST_INVALID");
  assert.ok(failure.message.includes(layer), failure.message);
  // The last chunk was held back: the destination never had all of the blob's bytes.
  assert.ok(sent > 0 && sent < image.layers[0]!.size, `sent ${sent} bytes`);
  assert.equal((await lockedBlob("corrupt/app", layer))[0], 404);
  assert.equal(existsSync(blobDir(locked, layer)), false);
  const manifests = await fetch(`${locked.url}/v2/corrupt/app/manifests/1.0`, {
    headers: { authorization: BASIC },
  });
  assert.equal(manifests.status, 404);
  assert.equal(await service.getDiffID(layer).catch(() => null), null);
});

test("a download cut mid-blob resumes with Range; the copy completes with correct digests", async () => {
  const image = await sourceImage("team/cut", 4);
  const big = image.layers[0]!.digest;
  proxy.clear();
  const mark = proxy.requests.length;
  proxy.plan({
    method: "GET",
    path: new RegExp(`/blobs/${big}$`),
    fault: { kind: "cut", afterBytes: MiB },
  });
  const { events, onProgress } = progressLog();
  const copied = await copy(
    `${proxy.host}/team/cut:1.0`,
    `${locked.host}/cut/app:1.0`,
    await config({ onProgress }),
  );
  proxy.clear();
  assert.equal(copied.digest, image.manifest.digest);
  assert.deepEqual(copied.layers.map((l) => l.status), ["recorded", "recorded", "recorded"]);
  const gets = proxy.requests.slice(mark).filter((r) => r.method === "GET" && r.path.endsWith(big));
  assert.deepEqual(gets.map((r) => [r.status, r.fault]), [[200, "cut"], [206, undefined]]);
  assert.equal(events.filter((e) => e.action === "retry" && e.digest === big).length, 1);
  await assertCopied("cut/app", image);
});

test("an upload cut midway starts again in a new session, reading the source again", async () => {
  const image = await sourceImage("team/retry", 8, [3 * MiB]);
  const big = image.layers[0]!.digest;
  const front = await startFaultProxy(locked.url);
  try {
    front.plan({
      method: "PUT",
      path: /\/blobs\/uploads\//,
      fault: { kind: "cut", afterBytes: 512 * 1024, direction: "request" },
    });
    const { events, onProgress } = progressLog();
    // One streamed PUT per attempt on every runtime (no PATCH chunks).
    const base = await config({ onProgress, chunkSize: 0 });
    const copied = await copy(`${open.host}/team/retry:1.0`, `${front.host}/retry/app:1.0`, base);
    assert.equal(copied.digest, image.manifest.digest);
    assert.deepEqual(copied.layers.map((l) => l.status), ["recorded"]);
    const uploads = front.requests.filter((r) => r.path.includes("/blobs/uploads/"));
    // The cut session is cancelled (the registry may have dropped it already: 404).
    assert.deepEqual(
      uploads.filter((r) => r.method !== "POST").map((r) =>
        r.fault ?? (r.method === "DELETE" ? "DELETE" : `${r.method} ${r.status}`)
      ),
      ["cut", "DELETE", "PUT 201", "PUT 201"], // the layer cut, then whole; the configuration
    );
    const gets = (await open.requests()).filter((r) =>
      r.method === "GET" && r.url === `/v2/team/retry/blobs/${big}`
    );
    assert.equal(gets.length, 2, "the source was not read again");
    assert.equal(events.filter((e) => e.action === "retry" && e.digest === big).length, 1);
    await assertCopied("retry/app", image);
  } finally {
    await front.stop();
  }
});

test("abort mid-copy: ABORTED, the upload session cancelled, no blob committed, no manifest", async () => {
  const image = await sourceImage("team/abort", 5, [4 * MiB]);
  const big = image.layers[0]!.digest;
  proxy.clear();
  // The source stalls after 1 MiB: the upload has started and waits for the rest.
  proxy.plan({
    method: "GET",
    path: new RegExp(`/blobs/${big}$`),
    fault: { kind: "stall", ms: 20_000, afterBytes: MiB },
  });
  const controller = new AbortController();
  let aborted = false;
  const started = performance.now();
  const error = await copy(`${proxy.host}/team/abort:1.0`, `${locked.host}/abort/app:1.0`, {
    ...await config(),
    signal: controller.signal,
    onProgress: (event) => {
      if (event.action === "push" && event.current > 0 && !aborted) {
        aborted = true;
        setTimeout(() => controller.abort(), 100);
      }
    },
  }).then(() => null, (e) => e);
  proxy.clear();
  rejectsWith(error, "ABORTED");
  assert.ok(aborted, "no byte was sent before the abort");
  assert.ok(performance.now() - started < 5_000, "abort was not prompt");
  const requests = (await locked.requests()).filter((r) => r.url.startsWith("/v2/abort/app/"));
  assert.ok(
    requests.some((r) => r.method === "DELETE" && r.url.includes("/blobs/uploads/")),
    JSON.stringify(requests),
  );
  assert.deepEqual(requests.filter((r) => r.method === "PUT" && r.status < 300), []);
  assert.equal((await lockedBlob("abort/app", big))[0], 404);
  assert.equal(existsSync(blobDir(locked, big)), false);
});

test("an index: one platform by default (tagged as that image), or all (children, then the index)", async () => {
  const INDEX = "application/vnd.oci.image.index.v1+json";
  const store = await ociLayoutStore(tempDir());
  const build = (seed: number) =>
    buildImage(store, `seed-${seed}`, [[{ name: "a", data: noise(96 * 1024, seed) }]], "oci");
  const images = { amd64: await build(80), arm64: await build(90) };
  const payload = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: INDEX,
    manifests: (["amd64", "arm64"] as const).map((architecture) => ({
      ...images[architecture].manifest,
      platform: { os: "linux", architecture },
    })),
  }));
  const index = { mediaType: INDEX, digest: sha256(payload), size: payload.length };
  await store.put(index.digest, payload);
  await store.tag("multi", index);
  await push(`${open.host}/team/multi:multi`, store, { plainHttp: true });
  const tagged = async (repo: string) => {
    const response = await fetch(`${locked.url}/v2/${repo}/manifests/multi`, {
      headers: { authorization: BASIC, accept: `${INDEX}, ${images.amd64.manifest.mediaType}` },
    });
    await response.body?.cancel();
    return response.headers.get("docker-content-digest");
  };

  const one = await copy(
    `${open.host}/team/multi:multi`,
    `${locked.host}/multi/one:multi`,
    await config(),
  );
  assert.equal(one.digest, images.amd64.manifest.digest);
  assert.equal(await tagged("multi/one"), images.amd64.manifest.digest);
  assert.equal((await lockedBlob("multi/one", images.amd64.layers[0]!.digest))[0], 200);
  assert.equal((await lockedBlob("multi/one", images.arm64.layers[0]!.digest))[0], 404);

  const all = await copy(
    `${open.host}/team/multi:multi`,
    `${locked.host}/multi/all:multi`,
    await config({ platform: "all" }),
  );
  assert.equal(all.digest, index.digest);
  assert.deepEqual(all.manifests?.map((m) => m.digest), [
    images.amd64.manifest.digest,
    images.arm64.manifest.digest,
  ]);
  assert.equal(await tagged("multi/all"), index.digest);
  const manifestPuts = (await locked.requests())
    .filter((r) => r.method === "PUT" && r.url.startsWith("/v2/multi/all/manifests/"))
    .map((r) => r.url);
  assert.deepEqual(manifestPuts, [
    `/v2/multi/all/manifests/${images.amd64.manifest.digest}`,
    `/v2/multi/all/manifests/${images.arm64.manifest.digest}`,
    "/v2/multi/all/manifests/multi",
  ]);
});

test("each side's credentials go to its own registry only, both ways", async () => {
  const image = await sourceImage("team/creds", 6, [256 * 1024]);
  const sent: { host: string; authorization: string | null }[] = [];
  // Every request of both sides, as the transport hands it to fetch.
  const recording: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    sent.push({
      host: new URL(url).host,
      authorization: new Headers(init?.headers).get("authorization"),
    });
    return fetch(input, init);
  };
  // open → locked with alice on the destination, then locked → open with alice on the source.
  await copy(`${open.host}/team/creds:1.0`, `${locked.host}/creds/app:1.0`, {
    source: { plainHttp: true, fetch: recording },
    destination: { plainHttp: true, auth: ALICE, fetch: recording },
  });
  await copy(`${locked.host}/creds/app:1.0`, `${open.host}/back/app:1.0`, {
    source: { plainHttp: true, auth: ALICE, fetch: recording },
    destination: { plainHttp: true, fetch: recording },
  });
  const toOpen = sent.filter((r) => r.host === open.host);
  const toLocked = sent.filter((r) => r.host === locked.host);
  assert.ok(toOpen.length > 0 && toLocked.length > 0);
  assert.deepEqual(toOpen.filter((r) => r.authorization !== null), []);
  assert.ok(toLocked.some((r) => r.authorization === BASIC));
  assert.deepEqual(
    toLocked.filter((r) => r.authorization !== null && r.authorization !== BASIC),
    [],
  );
  const back = await fetch(`${open.url}/v2/back/app/manifests/1.0`, {
    headers: { accept: image.manifest.mediaType },
  });
  assert.equal(sha256(new Uint8Array(await back.arrayBuffer())), image.manifest.digest);
});

test("cli.ts copy docker:// docker:// streams through (TMPDIR stays empty); a bad destination exits 2", async () => {
  const image = await sourceImage("team/cli", 7, [MiB, 64 * 1024]);
  const tmp = tempDir("copy-tmp-");
  const root = join(tempDir("copy-root-"), "metadata");
  const docker = tempDir("copy-docker-");
  writeFileSync(
    join(docker, "config.json"),
    JSON.stringify({ auths: { [locked.host]: { auth: btoa(`alice:${USERS.alice}`) } } }),
  );
  const options = {
    denoPermissions: ["--allow-write", "--allow-net", "--allow-run"],
    env: { TMPDIR: tmp, DOCKER_CONFIG: docker },
  };
  const source = `docker://${open.host}/team/cli:1.0`;
  const run = await runCli(
    ["copy", "--root", root, source, `docker://${locked.host}/cli/app:1.0`],
    options,
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(
    run.stdout,
    `Copied ${source} to docker://${locked.host}/cli/app:1.0 (${image.manifest.digest})\n`,
  );
  assert.deepEqual(readdirSync(tmp), []);
  await assertCopied("cli/app", image);
  const service = (await import("../src/v2_metadata_service.ts")).V2MetadataService;
  const { FSMetadataStore } = await import("../mod.ts");
  const recorded = new service(await FSMetadataStore.open(root));
  for (const [i, diffID] of image.diffIDs.entries()) {
    assert.deepEqual((await recorded.getMetadata(diffID)).map((e) => e.sourceRepository), [
      `${open.host}/team/cli`,
      `${locked.host}/cli/app`,
    ]);
    assert.equal(await recorded.getDiffID(image.layers[i]!.digest), diffID);
  }

  // A destination without credentials: the registry refuses, exit 2, nothing under TMPDIR.
  const refused = await runCli(
    ["copy", "--root", root, source, `docker://${locked.host}/cli/app:1.0`],
    { ...options, env: { TMPDIR: tmp } },
  );
  assert.equal(refused.code, 2, refused.stderr);
  assert.equal(refused.stdout, "");
  assert.match(refused.stderr, /^error: .*(401|UNAUTHORIZED|unauthorized)/i);
  assert.deepEqual(readdirSync(tmp), []);
});
