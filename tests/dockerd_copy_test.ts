// Copies from a registry into a real dockerd (Debian's docker.io, 20.10): the image streams into
// `POST /images/load` and its layers are recorded as dockerd's pull records them, so the files
// are those `docker pull` leaves, and `docker push` afterwards mounts every layer. Needs root.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import {
  copyFromArchive,
  copyToDockerd,
  ociLayoutStore,
  push,
  RegistryError,
} from "../src/registry/mod.ts";
import { runCli } from "./_cli.ts";
import {
  ALICE,
  daemons,
  dockerdHmac,
  randomLayers,
  stopDaemons,
  tempDir,
} from "./registry/_daemons.ts";
import { buildImage, sha256 } from "./registry/_image_builder.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";

after(stopDaemons);

test("copyToDockerd() loads the registry's image; its records are the files docker pull leaves", async () => {
  const { registry, dockerd } = await daemons();
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", randomLayers(3));
  const ref = `${registry.host}/into/app:1`;
  await push(ref, source, { auth: ALICE, plainHttp: true });

  // dockerd's own pull first (our load of the same image would make it "up to date").
  await dockerd.docker(["pull", ref]);
  const ours = join(tempDir(), "distribution");
  const service = new V2MetadataService(await FSMetadataStore.open(ours));
  const copied = await copyToDockerd(ref, "loaded/app:1", {
    auth: ALICE,
    plainHttp: true,
    dockerHost: dockerd.host,
    metadataService: service,
  });
  assert.equal(copied.imageID, image.config.digest);
  assert.deepEqual(copied.layers.map((layer) => layer.status), [
    "recorded",
    "recorded",
    "recorded",
  ]);
  const inspected = await dockerd.docker([
    "image",
    "inspect",
    "--format",
    "{{.Id}}",
    "loaded/app:1",
  ]);
  assert.equal(inspected.stdout.trim(), image.config.digest);

  // File for file the bytes dockerd's pull wrote, as no HMAC key was given.
  for (const [i, diffID] of image.diffIDs.entries()) {
    for (
      const file of [
        join("v2metadata-by-diffid", "sha256", diffID.slice("sha256:".length)),
        join("diffid-by-digest", "sha256", image.layers[i]!.digest.slice("sha256:".length)),
      ]
    ) {
      assert.equal(
        readFileSync(join(ours, file), "utf8"),
        readFileSync(join(dockerd.distribution, file), "utf8"),
        file,
      );
    }
  }
});

test("cli copy docker:// docker-daemon: records into dockerd's store; docker push then mounts every layer", async () => {
  const { registry, dockerd } = await daemons();
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", randomLayers(3));
  const ref = `${registry.host}/into/cli:1`;
  const repository = `${registry.host}/into/cli`;
  await push(ref, source, { auth: ALICE, plainHttp: true });

  const name = `${registry.host}/into/loaded:1`;
  const copied = await runCli(["copy", `docker://${ref}`, `docker-daemon:${name}`], {
    env: { DOCKER_HOST: dockerd.host, DOCKER_CONFIG: dockerd.clientConfig },
    denoPermissions: ["--allow-write", "--allow-net"],
  });
  assert.equal(copied.code, 0, copied.stderr);
  const service = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  for (const [i, diffID] of image.diffIDs.entries()) {
    const digest = image.layers[i]!.digest;
    assert.deepEqual(await service.getMetadata(diffID), [
      { digest, sourceRepository: repository, hmac: dockerdHmac(digest, repository) },
    ]);
  }
  const before = (await registry.requests()).length;
  await dockerd.docker(["push", name]);
  const query = (url: string) => new URL(url, registry.url).searchParams;
  const sessions = (await registry.requests()).slice(before)
    .filter((r) => r.url.startsWith("/v2/into/loaded/blobs/uploads/"));
  for (const layer of image.layers) {
    const mounts = sessions.filter((r) => query(r.url).get("mount") === layer.digest);
    assert.deepEqual(mounts.map((r) => [query(r.url).get("from"), r.status]), [["into/cli", 201]]);
  }
  const puts = sessions.filter((r) => r.method === "PUT").map((r) => query(r.url).get("digest"));
  assert.deepEqual(puts, [image.config.digest]);
});

test("copyToDockerd() refuses a layer whose manifest lies about its size; dockerd loads nothing", async () => {
  const { registry, dockerd } = await daemons();
  const layers = randomLayers(1);
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", layers);
  const stored = new TextDecoder().decode(await source.get(image.manifest.digest));
  // One byte short: more bytes come than said; one byte over: fewer come (same digest).
  for (const [lie, code] of [[-1, "TOO_LARGE"], [1, "SIZE_INVALID"]] as const) {
    const manifest = JSON.parse(stored);
    manifest.layers[0].size += lie;
    const payload = new TextEncoder().encode(JSON.stringify(manifest));
    const descriptor = { ...image.manifest, size: payload.length, digest: sha256(payload) };
    await source.put(descriptor.digest, payload);
    await source.tag("1", descriptor);
    const ref = `${registry.host}/into/lying:1`;
    await push(ref, source, { auth: ALICE, plainHttp: true });

    const service = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d")));
    const error = await copyToDockerd(ref, "lying/app:1", {
      auth: ALICE,
      plainHttp: true,
      dockerHost: dockerd.host,
      metadataService: service,
    }).catch((error: unknown) => error);
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, code, error.message);
    const listed = await dockerd.docker(["image", "ls", "--quiet", "lying/app"]);
    assert.equal(listed.stdout.trim(), "");
    await assert.rejects(service.getMetadata(image.diffIDs[0]!));
  }
});

test("cli copy docker:// docker-archive: writes the archive docker load and skopeo read", async () => {
  const { registry, dockerd } = await daemons();
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", randomLayers(2));
  const ref = `${registry.host}/into/archived:1`;
  await push(ref, source, { auth: ALICE, plainHttp: true });

  const path = join(tempDir(), "app.tar");
  const copied = await runCli(
    ["copy", `docker://${ref}`, `docker-archive:${path}:archived/app:1`],
    {
      env: { DOCKER_CONFIG: dockerd.clientConfig },
      denoPermissions: ["--allow-write", "--allow-net"],
    },
  );
  assert.equal(copied.code, 0, copied.stderr);
  assert.match(copied.stdout, new RegExp(`to docker-archive:${path}:archived/app:1 `));
  const inspected = spawnSync("skopeo", ["inspect", `docker-archive:${path}`], {
    encoding: "utf8",
  });
  assert.equal(inspected.status, 0, inspected.stderr);
  assert.deepEqual(
    (JSON.parse(inspected.stdout) as { Layers: string[] }).Layers,
    image.diffIDs, // skopeo names an archive's layers by their uncompressed digests
  );
  await dockerd.docker(["load", "--input", path]);
  const id = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", "archived/app:1"]);
  assert.equal(id.stdout.trim(), image.config.digest);
});

test("cli copy docker:// oci-archive: writes the OCI layout in a tar that skopeo reads", async () => {
  const { registry, dockerd } = await daemons();
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", randomLayers(2), "oci");
  const ref = `${registry.host}/into/oci-archived:1`;
  await push(ref, source, { auth: ALICE, plainHttp: true });

  const path = join(tempDir(), "app.tar");
  const copied = await runCli(["copy", `docker://${ref}`, `oci-archive:${path}:v1`], {
    env: { DOCKER_CONFIG: dockerd.clientConfig },
    denoPermissions: ["--allow-write", "--allow-net"],
  });
  assert.equal(copied.code, 0, copied.stderr);
  const inspected = spawnSync("skopeo", ["inspect", "--raw", `oci-archive:${path}:v1`], {
    encoding: "utf8",
  });
  assert.equal(inspected.status, 0, inspected.stderr);
  // The registry's manifest, byte for byte.
  assert.equal(sha256(new TextEncoder().encode(inspected.stdout)), image.manifest.digest);
  const config = spawnSync("skopeo", ["inspect", "--config", `oci-archive:${path}:v1`], {
    encoding: "utf8",
  });
  assert.equal(config.status, 0, config.stderr);
  assert.deepEqual(
    (JSON.parse(config.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids,
    image.diffIDs,
  );
});

test("copyFromArchive() reads what docker save writes; docker pull of the pushed image gives the same image ID", async () => {
  const { registry, dockerd } = await daemons();
  const built = dockerArchive("saved/app:1", randomLayers(2));
  await dockerd.docker(["load"], built.archive);
  const path = join(tempDir(), "saved.tar");
  await dockerd.docker(["save", "--output", path, "saved/app:1"]);
  const ref = `${registry.host}/from/saved:1`;
  const temp = tempDir();
  await copyFromArchive(path, ref, {
    tag: "saved/app:1",
    auth: ALICE,
    plainHttp: true,
    tempDir: temp,
  });
  assert.deepEqual(readdirSync(temp), []);
  await dockerd.docker(["rmi", "saved/app:1"]);
  await dockerd.docker(["pull", ref]);
  const id = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", ref]);
  assert.equal(id.stdout.trim(), built.imageID);
});
