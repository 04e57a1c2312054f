// `link` against a real dockerd (Debian's docker.io, 20.10) and docker-registry (htpasswd,
// access log kept) on 127.0.0.1: after `docker load` of an image the registry already has,
// `link` records what `docker pull` would have, so `docker push` uploads no layer byte and a
// push to another repository mounts every layer (moby#23684); a manifest pairing the image
// with other blobs is refused, and another image is told apart. Needs root, as dockerd does.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { computeV2MetadataHMACKey, FSMetadataStore, V2MetadataService } from "../mod.ts";
import { link, ociLayoutStore, push, RegistryError } from "../src/registry/mod.ts";
import { runCli } from "./_cli.ts";
import {
  ALICE,
  daemons,
  dockerdHmac,
  randomLayers,
  stopDaemons,
  tempDir,
} from "./registry/_daemons.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import type { Dockerd } from "./registry/_dockerd.ts";
import { buildImage, gzip, imageConfig, sha256, tar } from "./registry/_image_builder.ts";

after(stopDaemons);

/** The image pushed to the registry by the library and loaded into dockerd by `docker load`. */
async function inBoth(dockerd: Dockerd, ref: string) {
  const layers = randomLayers(3);
  const image = await buildImage(await ociLayoutStore(tempDir()), "1", layers);
  const source = await ociLayoutStore(tempDir());
  await buildImage(source, "1", layers);
  await push(ref, source, { auth: ALICE, plainHttp: true });
  const loaded = dockerArchive(ref, layers);
  await dockerd.docker(["load"], loaded.archive);
  assert.equal(loaded.imageID, image.config.digest);
  return { ...image, imageID: loaded.imageID };
}

/** Runs the CLI as the docker CLI runs: dockerd's socket, its config.json with alice's login. */
function linkCli(dockerd: Dockerd, args: string[]) {
  return runCli(["link", ...args], {
    env: { DOCKER_HOST: dockerd.host, DOCKER_CONFIG: dockerd.clientConfig },
    denoPermissions: ["--allow-write", "--allow-net"],
  });
}

/** Whether dockerd's store has any file for a DiffID. */
function recorded(dockerd: Dockerd, diffID: string): boolean {
  return existsSync(
    join(dockerd.distribution, "v2metadata-by-diffid", "sha256", diffID.slice("sha256:".length)),
  );
}

test("link: docker push then uploads no layer byte, and a push to another repository mounts every layer", async () => {
  const { registry, dockerd } = await daemons();
  const ref = `${registry.host}/linked/app:1`;
  const repository = `${registry.host}/linked/app`;
  const image = await inBoth(dockerd, ref);

  const linked = await linkCli(dockerd, [`docker-daemon:${ref}`, `docker://${ref}`]);
  assert.equal(linked.code, 0, linked.stderr);
  assert.match(linked.stdout, /: 3 of 3 layers recorded\n$/);
  // What `docker pull` records, tagged with alice's key as dockerd's push would tag it.
  const service = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  for (const [i, diffID] of image.diffIDs.entries()) {
    const digest = image.layers[i]!.digest;
    assert.deepEqual(await service.getMetadata(diffID), [
      { digest, sourceRepository: repository, hmac: dockerdHmac(digest, repository) },
    ]);
    assert.equal(await service.getDiffID(digest), diffID);
  }

  const before = (await registry.requests()).length;
  const pushed = await dockerd.docker(["push", ref]);
  assert.equal(pushed.stdout.match(/Layer already exists/g)?.length, 3, pushed.stdout);
  const other = `${registry.host}/linked/other:1`;
  await dockerd.docker(["tag", ref, other]);
  await dockerd.docker(["push", other]);
  const byDocker = (await registry.requests()).slice(before)
    .filter((r) => r.userAgent.startsWith("docker/"));
  const query = (url: string) => new URL(url, registry.url).searchParams;
  // Not one layer byte: no upload session of the first push, only mounts for the second.
  const app = byDocker.filter((r) => r.url.startsWith("/v2/linked/app/blobs/uploads/"));
  assert.deepEqual(app, []);
  const sessions = byDocker.filter((r) => r.url.startsWith("/v2/linked/other/blobs/uploads/"));
  for (const layer of image.layers) {
    const mounts = sessions.filter((r) => query(r.url).get("mount") === layer.digest);
    assert.deepEqual(mounts.map((r) => [r.method, query(r.url).get("from"), r.status]), [
      ["POST", "linked/app", 201],
    ]);
  }
  // The one upload: the configuration, a blob that is no layer (dockerd sends it in a PATCH
  // and its PUT).
  const puts = sessions.filter((r) => r.method === "PUT").map((r) => query(r.url).get("digest"));
  assert.deepEqual(puts, [image.config.digest]);
});

test("link: a manifest pairing the image with other blobs is refused, nothing recorded", async () => {
  const { registry, dockerd } = await daemons();
  // The victim's image is in dockerd only; someone else's repository serves a manifest with the
  // victim's exact configuration (so its digest is the image ID) and blobs of their own.
  const victim = dockerArchive(`${registry.host}/victim/app:1`, randomLayers(2));
  await dockerd.docker(["load"], victim.archive);
  const store = await ociLayoutStore(tempDir());
  const config = imageConfig(victim.diffIDs);
  await store.put(sha256(config), config);
  const blobs = randomLayers(2).map((files) => gzip(tar(files)));
  for (const blob of blobs) await store.put(sha256(blob), blob);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: config.length,
      digest: sha256(config),
    },
    layers: blobs.map((blob) => ({
      mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
      size: blob.length,
      digest: sha256(blob),
    })),
  }));
  const descriptor = {
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    size: manifest.length,
    digest: sha256(manifest),
  };
  await store.put(descriptor.digest, manifest);
  await store.tag("1", descriptor);
  const hostile = `${registry.host}/mallory/app:1`;
  await push(hostile, store, { auth: ALICE, plainHttp: true });

  const refused = await linkCli(dockerd, [
    `docker-daemon:${registry.host}/victim/app:1`,
    `docker://${hostile}`,
  ]);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /holds DiffID sha256:[a-f0-9]{64}, not the image's .*nothing recorded/,
  );
  for (const diffID of victim.diffIDs) assert.equal(recorded(dockerd, diffID), false);

  // The threat, shown: trusting the manifest records the other blobs under the victim's layers.
  const trusted = await linkCli(dockerd, [
    "--no-verify",
    `docker-daemon:${registry.host}/victim/app:1`,
    `docker://${hostile}`,
  ]);
  assert.equal(trusted.code, 0, trusted.stderr);
  const service = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  assert.equal((await service.getMetadata(victim.diffIDs[0]!))[0]!.digest, sha256(blobs[0]!));
});

test("link() fails with IMAGE_MISMATCH on another image and records nothing", async () => {
  const { registry, dockerd } = await daemons();
  const ref = `${registry.host}/mismatch/app:1`;
  await inBoth(dockerd, ref);
  const other = dockerArchive(`${registry.host}/mismatch/other:1`, randomLayers(1));
  await dockerd.docker(["load"], other.archive);
  const service = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  const auth = ALICE;
  const error = await link(`${registry.host}/mismatch/other:1`, ref, {
    auth,
    hmacKey: await computeV2MetadataHMACKey(auth),
    plainHttp: true,
    dockerHost: dockerd.host,
    metadataService: service,
  }).catch((error: unknown) => error);
  assert.ok(error instanceof RegistryError, String(error));
  assert.equal(error.code, "IMAGE_MISMATCH");
  assert.match(error.message, /the images differ \(dockerd's is sha256:[a-f0-9]{64}/);
  assert.equal(recorded(dockerd, other.diffIDs[0]!), false);

  const missing = await link("no-such-image:1", ref, { plainHttp: true, dockerHost: dockerd.host })
    .catch((error: unknown) => error);
  assert.ok(missing instanceof RegistryError);
  assert.deepEqual([missing.code, missing.status], ["DAEMON_ERROR", 404]);
});

test("link reports dockerd's refusal at once while the registry is silent, and exits", async () => {
  const { dockerd } = await daemons();
  // A registry that takes the connection and never answers (the idle timeout is 30 s).
  const held: Socket[] = [];
  const silent = createTcpServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const registry = `127.0.0.1:${(silent.address() as { port: number }).port}`;
  try {
    const started = performance.now();
    const error = await link("no-such-image:1", `${registry}/app:1`, {
      plainHttp: true,
      dockerHost: dockerd.host,
    }).catch((error: unknown) => error);
    assert.ok(error instanceof RegistryError, String(error));
    assert.deepEqual([error.code, error.status], ["DAEMON_ERROR", 404]);
    assert.ok(performance.now() - started < 5_000, "not waiting for the registry");
    // The process ends too: the registry's ping, asked at the same time, is stopped.
    const run = await runCli(
      ["link", "docker-daemon:no-such-image:1", `docker://${registry}/app:1`],
      { env: { DOCKER_HOST: dockerd.host }, denoPermissions: ["--allow-write", "--allow-net"] },
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /No such image: no-such-image:1/);
    assert.ok(run.elapsedMs < 10_000, `exited after ${run.elapsedMs} ms`);
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test("link refuses sides it cannot link, and a bad platform, before reaching anything", async () => {
  for (
    const [args, message] of [
      [
        ["oci:/tmp/app", "docker://127.0.0.1:1/app:1"],
        /name dockerd's image as docker-daemon:IMAGE/,
      ],
      [["docker-daemon:app:1", "oci:/tmp/app"], /name a registry image as docker:\/\/REF/],
      [
        ["--platform", "linux", "docker-daemon:app:1", "docker://127.0.0.1:1/app:1"],
        /expected os\/arch/,
      ],
    ] as const
  ) {
    const run = await runCli(["link", ...args], { env: { DOCKER_HOST: "unix:///nonexistent" } });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
  }
});

test("link() on a dockerd with the containerd image store says it keeps no such store", async () => {
  // dockerd 20.10 has no containerd image store, so a socket answers as a dockerd 24+ with it
  // does (its /info, an image of its own): the real daemon cannot be started here.
  const socket = join(tempDir(), "docker.sock");
  const server = createServer((request, response) => {
    response.setHeader("content-type", "application/json");
    // Deno's fetch over a socket asks in absolute form, which HTTP/1.1 servers take.
    if (new URL(request.url!, "http://docker").pathname === "/info") {
      response.end(JSON.stringify({
        DockerRootDir: "/var/lib/docker",
        Driver: "overlayfs",
        DriverStatus: [["driver-type", "io.containerd.snapshotter.v1"]],
      }));
    } else {
      response.end(JSON.stringify({
        Id: `sha256:${"a".repeat(64)}`,
        RootFS: { Type: "layers", Layers: [`sha256:${"b".repeat(64)}`] },
        Os: "linux",
        Architecture: "amd64",
      }));
    }
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const error = await link("app:1", "127.0.0.1:1/app:1", { dockerHost: `unix://${socket}` })
      .catch((error: unknown) => error);
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, "UNSUPPORTED");
    assert.match(error.message, /containerd image store, which keeps no distribution metadata/);
  } finally {
    // Deno's fetch keeps its connection to the socket for its next request (90 s idle), which
    // close() alone would wait for.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  const tcp = await link("app:1", "127.0.0.1:1/app:1", { dockerHost: "tcp://127.0.0.1:2375" })
    .catch((error: unknown) => error);
  assert.ok(tcp instanceof RegistryError);
  assert.match(tcp.message, /only a unix:\/\/ socket is supported/);
});
