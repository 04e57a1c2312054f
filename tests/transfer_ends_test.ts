// `copy` between ends that are no registry, each pair one transfer of the same engine: out of a
// real dockerd (Debian's docker.io, 20.10) into archives, layouts and dockerd again, from
// archives and layouts into dockerd, and between layouts and archives. The image that arrives is
// the same (image ID, DiffIDs, layer bytes), and dockerd's distribution metadata stays true:
// an image from no registry records nothing. Needs root.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ociLayoutStore } from "../src/registry/mod.ts";
import { runCli } from "./_cli.ts";
import { daemons, randomLayers, stopDaemons, tempDir } from "./registry/_daemons.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import { buildImage, imageConfig, noise, sha256, tar } from "./registry/_image_builder.ts";

after(stopDaemons);

const OPTIONS = { denoPermissions: ["--allow-write", "--allow-net"] };

/** The CLI's `copy` against the shared dockerd. */
async function runCopy(args: string[]) {
  const { dockerd } = await daemons();
  return await runCli(["copy", ...args], { ...OPTIONS, env: { DOCKER_HOST: dockerd.host } });
}

/** `copy FROM TO` by the CLI against the shared dockerd; returns the digest it reports. */
async function copy(from: string, to: string, ...flags: string[]): Promise<string> {
  const run = await runCopy([...flags, from, to]);
  assert.equal(run.code, 0, run.stderr);
  const printed = /^Copied \S+ to \S+ \((sha256:[0-9a-f]{64})\)\n$/.exec(run.stdout);
  assert.ok(printed !== null, run.stdout);
  return printed[1]!;
}

/** dockerd's image ID and DiffIDs of `name`. */
async function inspect(name: string): Promise<{ id: string; diffIDs: string[] }> {
  const { dockerd } = await daemons();
  const run = await dockerd.docker(["image", "inspect", "--format", "{{json .}}", name]);
  const image = JSON.parse(run.stdout) as { Id: string; RootFS: { Layers: string[] } };
  return { id: image.Id, diffIDs: image.RootFS.Layers };
}

/** Whether dockerd's metadata holds anything for `diffID`. */
async function recorded(diffID: string): Promise<boolean> {
  const { dockerd } = await daemons();
  const hex = diffID.slice("sha256:".length);
  return existsSync(join(dockerd.distribution, "v2metadata-by-diffid", "sha256", hex));
}

/** `skopeo inspect` of `location`, as JSON. */
function skopeo(args: string[]): Record<string, unknown> {
  const run = spawnSync("skopeo", ["inspect", ...args], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** An image of `count` random layers loaded into dockerd as `name`. */
async function loaded(name: string, count: number) {
  const { dockerd } = await daemons();
  const built = dockerArchive(name, randomLayers(count));
  await dockerd.docker(["load"], built.archive);
  return built;
}

test("cli copy docker-daemon: docker-archive: writes what docker load and skopeo read; nothing recorded", async () => {
  const { dockerd } = await daemons();
  const image = await loaded("ends/saved:1", 3);
  const path = join(tempDir(), "saved.tar");
  const digest = await copy("docker-daemon:ends/saved:1", `docker-archive:${path}:ends/archived:1`);
  // The digest reported: the OCI manifest an oci: copy of it writes (layers uncompressed).
  const oci = join(tempDir(), "layout");
  assert.equal(await copy("docker-daemon:ends/saved:1", `oci:${oci}:1`), digest);

  const listed = skopeo([`docker-archive:${path}`]) as { Layers: string[] };
  assert.deepEqual(listed.Layers, image.diffIDs);
  await dockerd.docker(["rmi", "ends/saved:1"]);
  await dockerd.docker(["load", "--input", path]);
  assert.deepEqual(await inspect("ends/archived:1"), { id: image.imageID, diffIDs: image.diffIDs });
  for (const diffID of image.diffIDs) assert.equal(await recorded(diffID), false);
});

test("cli copy docker-daemon: oci: stores the layers uncompressed, each named by its DiffID", async () => {
  const image = await loaded("ends/layout:1", 2);
  const dir = join(tempDir(), "layout");
  await copy("docker-daemon:ends/layout:1", `oci:${dir}`);
  const layout = await ociLayoutStore(dir);
  const descriptor = await layout.resolve("1"); // the source's tag names it
  assert.ok(descriptor !== null);
  const manifest = JSON.parse(new TextDecoder().decode(await layout.get(descriptor.digest))) as {
    mediaType: string;
    config: { digest: string };
    layers: { mediaType: string; digest: string }[];
  };
  assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assert.equal(manifest.config.digest, image.imageID);
  assert.deepEqual(manifest.layers.map((layer) => layer.digest), image.diffIDs);
  assert.ok(manifest.layers.every((l) => l.mediaType === "application/vnd.oci.image.layer.v1.tar"));
  for (const diffID of image.diffIDs) assert.equal(sha256(await layout.get(diffID)), diffID);
  const config = skopeo(["--config", `oci:${dir}:1`]) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(config.rootfs.diff_ids, image.diffIDs);
});

test("cli copy docker-daemon: docker-daemon: loads the same image under another name", async () => {
  const image = await loaded("ends/twice:1", 2);
  await copy("docker-daemon:ends/twice:1", "docker-daemon:ends/twice-again:2");
  assert.deepEqual(await inspect("ends/twice-again:2"), {
    id: image.imageID,
    diffIDs: image.diffIDs,
  });
  for (const diffID of image.diffIDs) assert.equal(await recorded(diffID), false);
});

test("cli copy docker-archive: docker-daemon: and oci: load the archive's image; dockerd records nothing", async () => {
  const built = dockerArchive("ends/file:1", randomLayers(3));
  const path = join(tempDir(), "built.tar");
  writeFileSync(path, built.archive);
  await copy(`docker-archive:${path}:ends/file:1`, "docker-daemon:ends/from-file:1");
  assert.deepEqual(await inspect("ends/from-file:1"), {
    id: built.imageID,
    diffIDs: built.diffIDs,
  });
  for (const diffID of built.diffIDs) assert.equal(await recorded(diffID), false);

  const dir = join(tempDir(), "layout");
  await copy(`docker-archive:${path}`, `oci:${dir}:v2`);
  const config = skopeo(["--config", `oci:${dir}:v2`]) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(config.rootfs.diff_ids, built.diffIDs);
  assert.equal(
    sha256(readFileSync(join(dir, "blobs", "sha256", built.imageID.slice(7)))),
    built.imageID,
  );
});

test("cli copy oci: docker-daemon:, oci: oci:, oci: oci-archive: docker-archive:: the manifest's bytes kept, gzipped layers loaded", async () => {
  const dir = join(tempDir(), "source");
  const image = await buildImage(await ociLayoutStore(dir), "1", randomLayers(2), "oci");
  await copy(`oci:${dir}:1`, "docker-daemon:ends/from-layout:1");
  assert.deepEqual(await inspect("ends/from-layout:1"), {
    id: image.config.digest,
    diffIDs: image.diffIDs,
  });

  const copied = join(tempDir(), "copied");
  assert.equal(await copy(`oci:${dir}:1`, `oci:${copied}:2`), image.manifest.digest);
  const tagged = await (await ociLayoutStore(copied)).resolve("2");
  assert.equal(tagged?.digest, image.manifest.digest);

  const archive = join(tempDir(), "oci.tar");
  await copy(`oci:${copied}:2`, `oci-archive:${archive}:v3`);
  const raw = spawnSync("skopeo", ["inspect", "--raw", `oci-archive:${archive}:v3`]);
  assert.equal(sha256(raw.stdout), image.manifest.digest);
  const docker = join(tempDir(), "docker.tar");
  await copy(`oci-archive:${archive}:v3`, `docker-archive:${docker}:ends/from-oci-archive:1`);
  const { dockerd } = await daemons();
  await dockerd.docker(["load", "--input", docker]);
  assert.deepEqual(await inspect("ends/from-oci-archive:1"), {
    id: image.config.digest,
    diffIDs: image.diffIDs,
  });
});

test("cli copy --platform oci: docker-archive: takes that image of the layout's index", async () => {
  const dir = join(tempDir(), "multi");
  const store = await ociLayoutStore(dir);
  const build = (seed: number) =>
    buildImage(store, `seed-${seed}`, [[{ name: "a", data: noise(4096, seed) }]], "oci");
  const images = { amd64: await build(31), arm64: await build(32) };
  const mediaType = "application/vnd.oci.image.index.v1+json";
  const payload = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    manifests: (["amd64", "arm64"] as const).map((architecture) => ({
      ...images[architecture].manifest,
      platform: { os: "linux", architecture },
    })),
  }));
  const index = { mediaType, digest: sha256(payload), size: payload.length };
  await store.put(index.digest, payload);
  await store.tag("multi", index);

  const path = join(tempDir(), "arm64.tar");
  const digest = await copy(
    `oci:${dir}:multi`,
    `docker-archive:${path}:ends/arm64:1`,
    "--platform",
    "linux/arm64",
  );
  assert.equal(digest, images.arm64.manifest.digest);
  const listed = skopeo([`docker-archive:${path}`]) as { Layers: string[] };
  assert.deepEqual(listed.Layers, images.arm64.diffIDs);
});

test("cli copy docker-archive: docker-daemon: refuses a layer that is not its DiffID; dockerd loads nothing", async () => {
  const { dockerd } = await daemons();
  const layer = tar(randomLayers(1)[0]!);
  const config = imageConfig([sha256(tar(randomLayers(1)[0]!))]); // another layer's DiffID
  const configName = `${sha256(config).slice("sha256:".length)}.json`;
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const path = join(tempDir(), "lying.tar");
  writeFileSync(
    path,
    tar([
      { name: "layer/layer.tar", data: layer },
      { name: configName, data: config },
      {
        name: "manifest.json",
        data: json([{
          Config: configName,
          RepoTags: ["ends/lying:1"],
          Layers: ["layer/layer.tar"],
        }]),
      },
    ]),
  );
  const run = await runCopy([`docker-archive:${path}`, "docker-daemon:ends/lying:1"]);
  assert.equal(run.code, 2);
  assert.match(
    run.stderr,
    new RegExp(
      `^error: Cannot read docker-archive "${path}": layer "layer/layer.tar" is ${
        sha256(layer)
      }, not the DiffID`,
    ),
  );
  const listed = await dockerd.docker(["image", "ls", "--quiet", "ends/lying"]);
  assert.equal(listed.stdout.trim(), "");
});
