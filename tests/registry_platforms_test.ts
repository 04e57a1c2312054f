// Image indexes end to end against a real docker-registry on 127.0.0.1: push of an index pushes
// each child manifest the layout has (its blobs first), then the index; pull takes one platform
// (tagged as that image), a list or all (tagged as the index, which is stored every time), and
// a later push of what was pulled mounts every layer.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  type Descriptor,
  hostPlatform,
  type OciLayoutStore,
  ociLayoutStore,
  parsePlatform,
  pull,
  push,
  RegistryError,
} from "../src/registry/mod.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { buildImage, type BuiltImage, noise, sha256 } from "./registry/_image_builder.ts";
import { runCli } from "./_cli.ts";
import { holdsBlob, metadata, progressLog, removeTempDirs, tempDir } from "./registry/_engine.ts";

const INDEX = "application/vnd.oci.image.index.v1+json";
const encoder = new TextEncoder();
let registry: RegistryServer;
let images: Record<"amd64" | "arm64", BuiltImage>;
let index: Descriptor;

/** A layout with a linux/amd64 and a linux/arm64 image under one index tagged `multi`. */
async function multiPlatformLayout(): Promise<OciLayoutStore> {
  const store = await ociLayoutStore(tempDir());
  const build = (seed: number) =>
    buildImage(store, `seed-${seed}`, [
      [{ name: "a", data: noise(96 * 1024, seed) }],
      [{ name: "b", data: noise(32 * 1024, seed + 1) }],
    ], "oci");
  images = { amd64: await build(10), arm64: await build(20) };
  const payload = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: INDEX,
    manifests: (["amd64", "arm64"] as const).map((architecture) => ({
      ...images[architecture].manifest,
      platform: { os: "linux", architecture },
    })),
  }));
  index = { mediaType: INDEX, digest: sha256(payload), size: payload.length };
  await store.put(index.digest, payload);
  await store.tag("multi", index);
  return store;
}

before(async () => {
  registry = await startRegistry({ accessLog: true });
  await push(`${registry.host}/plat/app:multi`, await multiPlatformLayout(), { plainHttp: true });
});

after(async () => {
  await registry?.stop();
  removeTempDirs();
});

test("push of an index puts each child manifest after its blobs, then the index", async () => {
  const puts = (await registry.requests()).filter((r) => r.method === "PUT");
  const manifestPuts = puts.filter((r) => r.url.includes("/manifests/")).map((r) => r.url);
  assert.deepEqual(manifestPuts, [
    `/v2/plat/app/manifests/${images.amd64.manifest.digest}`,
    `/v2/plat/app/manifests/${images.arm64.manifest.digest}`,
    "/v2/plat/app/manifests/multi",
  ]);
  // Every blob upload of an image ends before its manifest goes up.
  const order = puts.map((r) => r.url);
  const amd64Manifest = order.indexOf(manifestPuts[0]!);
  for (const layer of images.amd64.layers) {
    const upload = order.findIndex((url) => url.includes(encodeURIComponent(layer.digest)));
    assert.ok(upload >= 0 && upload < amd64Manifest, `${layer.digest} after its manifest`);
  }
  const response = await fetch(`${registry.url}/v2/plat/app/manifests/multi`, {
    headers: { accept: INDEX },
  });
  assert.equal(response.headers.get("docker-content-digest"), index.digest);
  await response.body?.cancel();
});

test("hostPlatform() is this machine's, as Go names it", () => {
  const goArch: Record<string, string> = { x64: "amd64", arm64: "arm64" };
  assert.deepEqual(hostPlatform(), { os: "linux", architecture: goArch[process.arch] });
});

test("parsePlatform() reads os/arch[/variant] as docker does, and refuses anything else", () => {
  assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64" });
  assert.deepEqual(parsePlatform("Linux/ARM/v7"), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  for (const bad of ["linux", "linux/", "linux/amd64/v1/x", "linux/am d64", ""]) {
    assert.throws(
      () => parsePlatform(bad),
      (error) => error instanceof RegistryError && error.code === "NAME_INVALID",
    );
  }
});

test("pull of an index takes this machine's platform by default: that image tagged, the index stored", async () => {
  const host = hostPlatform().architecture as "amd64" | "arm64";
  const other = host === "amd64" ? "arm64" : "amd64";
  const store = await ociLayoutStore(tempDir());
  const result = await pull(`${registry.host}/plat/app:multi`, store, { plainHttp: true });
  assert.equal(result.digest, images[host].manifest.digest);
  assert.equal(result.manifests, undefined);
  assert.equal((await store.resolve("multi"))?.digest, images[host].manifest.digest);
  assert.ok(await store.has(index.digest));
  for (const layer of images[host].layers) assert.ok(holdsBlob(store.dir, layer.digest));
  for (const layer of images[other].layers) assert.equal(await store.has(layer.digest), false);
});

test("cli copy --platform takes that image of an index; with --all it is a usage error", async () => {
  const dir = tempDir();
  const options = { denoPermissions: ["--allow-write", "--allow-net"] };
  const source = `docker://${registry.host}/plat/app:multi`;
  const root = `${tempDir()}/store`;
  const copied = await runCli(
    ["copy", "--root", root, "--platform", "linux/arm64", source, `oci:${dir}`],
    options,
  );
  assert.equal(copied.code, 0, copied.stderr);
  assert.match(copied.stdout, new RegExp(images.arm64.manifest.digest));
  const layout = await ociLayoutStore(dir);
  assert.equal((await layout.resolve("multi"))?.digest, images.arm64.manifest.digest);
  const both = await runCli(
    ["copy", "--root", root, "--all", "--platform", "linux/arm64", source, `oci:${tempDir()}`],
    options,
  );
  assert.equal(both.code, 2);
  assert.match(both.stderr, /Pass either "--all" or "--platform"/);
});

test("pull of a list of platforms tags the index and fetches only the images listed", async () => {
  const store = await ociLayoutStore(tempDir());
  const result = await pull(`${registry.host}/plat/app:multi`, store, {
    plainHttp: true,
    platform: [{ os: "linux", architecture: "arm64" }],
  });
  assert.equal(result.digest, index.digest);
  assert.equal(result.mediaType, INDEX);
  assert.deepEqual(result.manifests?.map((m) => m.digest), [images.arm64.manifest.digest]);
  assert.equal((await store.resolve("multi"))?.digest, index.digest);
  for (const layer of images.arm64.layers) assert.ok(holdsBlob(store.dir, layer.digest));
  for (const layer of images.amd64.layers) assert.equal(await store.has(layer.digest), false);
});

test("pull of all platforms, then a push to another repository mounts every layer", async () => {
  const store = await ociLayoutStore(tempDir());
  const { service } = await metadata();
  const result = await pull(`${registry.host}/plat/app:multi`, store, {
    plainHttp: true,
    platform: "all",
    metadataService: service,
  });
  assert.deepEqual(result.manifests?.map((m) => m.digest), [
    images.amd64.manifest.digest,
    images.arm64.manifest.digest,
  ]);
  assert.deepEqual(
    result.layers.map((l) => l.status),
    ["recorded", "recorded", "recorded", "recorded"],
  );
  const { events, onProgress } = progressLog();
  const pushed = await push(`${registry.host}/plat/copy:multi`, store, {
    plainHttp: true,
    metadataService: service,
    onProgress,
  });
  assert.equal(pushed.digest, index.digest);
  const layers = [...images.amd64.layers, ...images.arm64.layers].map((l) => l.digest);
  assert.deepEqual(
    events.filter((e) => e.action === "mount").map((e) => [e.digest, e.from]).sort(),
    layers.map((digest) => [digest, `${registry.host}/plat/app`]).sort(),
  );
  assert.equal(events.filter((e) => e.action === "push" && layers.includes(e.digest)).length, 0);
});

test("pull of a platform the index lacks is MANIFEST_UNKNOWN, nothing tagged", async () => {
  const store = await ociLayoutStore(tempDir());
  await assert.rejects(
    pull(`${registry.host}/plat/app:multi`, store, {
      plainHttp: true,
      platform: [{ os: "linux", architecture: "arm64" }, { os: "windows", architecture: "amd64" }],
    }),
    (error) => error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN",
  );
  assert.equal(await store.resolve("multi"), null);
});
