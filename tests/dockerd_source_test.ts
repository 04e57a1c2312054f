// Copies out of a real dockerd (Debian's docker.io, 20.10) into docker-registry on 127.0.0.1,
// as `docker push` pushes: layers looked up by DiffID first, only the rest read from dockerd's
// save, gzipped and uploaded, every layer recorded in dockerd's own store, so that `docker
// push` afterwards uploads nothing and mounts into other repositories; a save whose layer is
// not the image's is refused, recording nothing. Needs root, as dockerd does.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { computeV2MetadataHMACKey, FSMetadataStore, V2MetadataService } from "../mod.ts";
import { copyFromDockerd, RegistryError } from "../src/registry/mod.ts";
import { DockerdApi } from "../src/registry/ends/dockerd_api.ts";
import { tarEntries } from "../src/registry/ends/_tar_reader.ts";
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
import type { LoggedRequest, RegistryServer } from "./registry/_registry_server.ts";
import { imageConfig, noise, sha256, tar } from "./registry/_image_builder.ts";
import { startFaultProxy } from "./registry/_fault_proxy.ts";

after(stopDaemons);

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));

/** An image `docker load` gives dockerd, tagged `name`: no registry digest known for it. */
async function loaded(dockerd: Dockerd, name: string, count = 3) {
  const image = dockerArchive(name, randomLayers(count));
  await dockerd.docker(["load"], image.archive);
  return image;
}

/** The registry's requests from `before` on, with their query taken apart. */
async function requestsSince(registry: RegistryServer, before: number) {
  return (await registry.requests()).slice(before).map((r: LoggedRequest) => ({
    ...r,
    query: new URL(r.url, registry.url).searchParams,
  }));
}

/** Request options with alice's credentials. */
const asAlice = {
  headers: { authorization: `Basic ${btoa(`${ALICE.username}:${ALICE.password}`)}` },
};

/** Layer digests whose upload was committed (a `PUT ?digest=`), config excluded. */
function committed(requests: Awaited<ReturnType<typeof requestsSince>>, config: string) {
  return requests.filter((r) => r.method === "PUT" && r.url.includes("/blobs/uploads/"))
    .map((r) => r.query.get("digest")).filter((digest) => digest !== config);
}

test("dockerd's save of an image ID: each layer's v1 directory, the configuration, in lexical order, manifest.json last", async () => {
  const { dockerd } = await daemons();
  const image = await loaded(dockerd, "save/order:1", 4);
  const api = new DockerdApi(dockerd.host);
  const names: string[] = [];
  for await (
    const entry of tarEntries(
      await api.request({ method: "GET", path: `/images/${image.imageID}/get` }),
      "save",
    )
  ) {
    names.push(entry.name);
    if (entry.kind === "file") await entry.body.cancel();
  }
  // Saved by ID: no name, so no `repositories`; the rest in lexical order, manifest.json last.
  assert.equal(names.at(-1), "manifest.json");
  assert.deepEqual(names.slice(0, -1), [...names.slice(0, -1)].sort(), names.join(" "));
  const config = `${image.imageID.slice("sha256:".length)}.json`;
  const layers = names.filter((name) => /^[0-9a-f]{64}\/layer\.tar$/.test(name));
  assert.equal(layers.length, 4);
  for (const layer of layers) {
    const dir = layer.slice(0, 64);
    assert.deepEqual(names.filter((name) => name.startsWith(dir)), [
      dir,
      `${dir}/VERSION`,
      `${dir}/json`,
      `${dir}/layer.tar`,
    ]);
  }
  assert.deepEqual(
    names.filter((name) =>
      !name.startsWith(layers.find((l) => name.startsWith(l.slice(0, 64)))?.slice(0, 64) ?? "-")
    ),
    [config, "manifest.json"],
  );
});

test("copyFromDockerd() pushes what docker pull gives back, recorded as docker push records", async () => {
  const { registry, dockerd } = await daemons();
  const name = "out/app:1";
  const image = await loaded(dockerd, name);
  const ref = `${registry.host}/out/app:1`;
  const repository = `${registry.host}/out/app`;
  const before = (await registry.requests()).length;
  const pushed = await copyFromDockerd(name, ref, {
    auth: ALICE,
    hmacKey: await computeV2MetadataHMACKey(ALICE),
    plainHttp: true,
    dockerHost: dockerd.host,
  });
  assert.deepEqual(pushed.layers.map((layer) => layer.transfer), [
    "uploaded",
    "uploaded",
    "uploaded",
  ]);
  assert.deepEqual(pushed.layers.map((layer) => layer.diffID), image.diffIDs);
  const requests = await requestsSince(registry, before);
  assert.deepEqual(
    committed(requests, image.imageID).sort(),
    pushed.layers.map((layer) => layer.digest).sort(),
  );

  // Into dockerd's own store, entry for entry what docker push writes (HMAC of alice).
  const service = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  for (const layer of pushed.layers) {
    assert.deepEqual(await service.getMetadata(layer.diffID), [
      {
        digest: layer.digest,
        sourceRepository: repository,
        hmac: dockerdHmac(layer.digest, repository),
      },
    ]);
    assert.equal(await service.getDiffID(layer.digest), layer.diffID);
  }
  // A real docker push of another image: its files have the same shape as ours.
  const other = await loaded(dockerd, `${registry.host}/out/pushed:1`, 1);
  await dockerd.docker(["push", `${registry.host}/out/pushed:1`]);
  const file = (diffID: string) =>
    readFileSync(
      join(dockerd.distribution, "v2metadata-by-diffid", "sha256", diffID.slice(7)),
      "utf8",
    );
  const shape = (text: string) => text.replace(/[0-9a-f]{64}/g, "H").replace(/out\/[a-z]+/, "R");
  assert.equal(shape(file(image.diffIDs[0]!)), shape(file(other.diffIDs[0]!)));

  // A dockerd that forgot the image pulls it back: the same image ID.
  await dockerd.docker(["rmi", name]);
  await dockerd.docker(["pull", ref]);
  const id = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", ref]);
  assert.equal(id.stdout.trim(), image.imageID);
});

test("cli copy docker-daemon: docker://: docker push then uploads nothing, mounts elsewhere, and a second copy moves nothing", async () => {
  const { registry, dockerd } = await daemons();
  const name = `${registry.host}/cli/app:1`;
  const image = await loaded(dockerd, name, 4);
  const env = { DOCKER_HOST: dockerd.host, DOCKER_CONFIG: dockerd.clientConfig };
  const options = { env, denoPermissions: ["--allow-write", "--allow-net"] };
  const copied = await runCli(["copy", `docker-daemon:${name}`, `docker://${name}`], options);
  assert.equal(copied.code, 0, copied.stderr);

  // docker push to the same repository: every layer found, nothing uploaded.
  let before = (await registry.requests()).length;
  await dockerd.docker(["push", name]);
  let requests = await requestsSince(registry, before);
  assert.deepEqual(committed(requests, image.imageID), []);
  assert.equal(requests.filter((r) => r.method === "POST").length, 0);

  // docker push to another repository: every layer mounted from ours.
  await dockerd.docker(["tag", name, `${registry.host}/cli/other:1`]);
  before = (await registry.requests()).length;
  await dockerd.docker(["push", `${registry.host}/cli/other:1`]);
  requests = await requestsSince(registry, before);
  const mounts = requests.filter((r) => r.query.has("mount"));
  assert.equal(mounts.length, 4);
  assert.ok(mounts.every((r) => r.query.get("from") === "cli/app" && r.status === 201));
  assert.deepEqual(committed(requests, image.imageID), []);

  // Our copy again: every layer found by an existence check, nothing compressed or uploaded.
  before = (await registry.requests()).length;
  const started = performance.now();
  const again = await runCli(
    ["copy", "--json", `docker-daemon:${name}`, `docker://${name}`],
    options,
  );
  const took = performance.now() - started;
  assert.equal(again.code, 0, again.stderr);
  requests = await requestsSince(registry, before);
  assert.equal(requests.filter((r) => r.method === "POST" || r.method === "PATCH").length, 0);
  assert.ok(requests.filter((r) => r.method === "HEAD").length >= 4);
  assert.ok(took < 5000, `${took} ms`); // the CLI's start included; the library's is timed in bench
});

test("copyFromDockerd() of an image sharing layers with one copied before: only the new layer is read and uploaded", async () => {
  const { registry, dockerd } = await daemons();
  const layers = randomLayers(4);
  const base = dockerArchive("shared/base:1", layers.slice(0, 3));
  const top = dockerArchive("shared/top:1", layers);
  await dockerd.docker(["load"], base.archive);
  await dockerd.docker(["load"], top.archive);
  const config = {
    auth: ALICE,
    hmacKey: await computeV2MetadataHMACKey(ALICE),
    plainHttp: true,
    dockerHost: dockerd.host,
  };
  await copyFromDockerd("shared/base:1", `${registry.host}/shared/base:1`, config);
  const before = (await registry.requests()).length;
  const pushed = await copyFromDockerd("shared/top:1", `${registry.host}/shared/top:1`, config);
  assert.deepEqual(pushed.layers.map((layer) => layer.transfer), [
    "mounted",
    "mounted",
    "mounted",
    "uploaded",
  ]);
  assert.deepEqual(pushed.layers.map((layer) => layer.diffID), top.diffIDs);
  const requests = await requestsSince(registry, before);
  assert.deepEqual(committed(requests, top.imageID), [pushed.layers[3]!.digest]);
});

test("cli copy docker-daemon: --root records into the store named, not dockerd's", async () => {
  const { registry, dockerd } = await daemons();
  const name = `${registry.host}/rooted/app:1`;
  const image = await loaded(dockerd, name, 1);
  const root = join(tempDir(), "store");
  const copied = await runCli(
    ["copy", "--root", root, `docker-daemon:${name}`, `docker://${name}`],
    {
      env: { DOCKER_HOST: dockerd.host, DOCKER_CONFIG: dockerd.clientConfig },
      denoPermissions: ["--allow-write", "--allow-net"],
    },
  );
  assert.equal(copied.code, 0, copied.stderr);
  const ours = new V2MetadataService(await FSMetadataStore.open(root));
  assert.equal((await ours.getMetadata(image.diffIDs[0]!)).length, 1);
  const dockerds = new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
  await assert.rejects(dockerds.getMetadata(image.diffIDs[0]!));
});

/**
 * A dockerd API on a socket of its own: one image of one layer, its configuration on disk as
 * dockerd keeps it, and a save whose layer is the layer's own bytes or, `lying`, others; the
 * save as dockerd 20.10 writes it (`<v1 id>/layer.tar`) or, `oci`, as dockerd 25 and later do
 * (`blobs/sha256/<hex>`, the layer's named by its DiffID); every path asked is kept. With
 * `containerd`, /info answers as the containerd image store.
 */
async function fakeDockerd(
  options: { lying?: boolean; containerd?: boolean; oci?: boolean; size?: number } = {},
) {
  const root = tempDir();
  const size = options.size ?? 3000;
  const honest = tar([{ name: "a", data: noise(size, 1) }]);
  const lying = tar([{ name: "a", data: noise(size, 2) }]);
  const diffID = sha256(honest);
  const config = imageConfig([diffID]);
  const id = sha256(config);
  const imagedb = join(root, "image", "vfs", "imagedb", "content", "sha256");
  mkdirSync(imagedb, { recursive: true });
  writeFileSync(join(imagedb, id.slice(7)), config);
  const socket = join(tempDir(), "docker.sock");
  const asked: string[] = [];
  const server = createServer((request, response) => {
    // Deno's fetch over a socket asks in absolute form (as a proxy is asked), which HTTP/1.1
    // servers take as dockerd does.
    const { pathname } = new URL(request.url!, "http://docker");
    asked.push(pathname);
    if (pathname === "/info") {
      const status = options.containerd ? [["driver-type", "io.containerd.snapshotter.v1"]] : [];
      response.end(JSON.stringify({ DockerRootDir: root, Driver: "vfs", DriverStatus: status }));
    } else if (pathname === `/images/${id}/get`) {
      const layer = options.lying ? lying : honest;
      response.end(tar(
        options.oci
          ? [
            { name: `blobs/sha256/${id.slice(7)}`, data: config },
            { name: `blobs/sha256/${diffID.slice(7)}`, data: layer },
            { name: "manifest.json", data: new TextEncoder().encode("[]") },
          ]
          : [{ name: `${"c".repeat(64)}/layer.tar`, data: layer }],
      ));
    } else {
      response.end(JSON.stringify({
        Id: id,
        RootFS: { Type: "layers", Layers: [diffID] },
        Os: "linux",
        Architecture: "amd64",
      }));
    }
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    root,
    diffID,
    lyingDiffID: sha256(lying),
    host: `unix://${socket}`,
    asked,
    close: () => {
      // Deno's fetch keeps its connection for its next request, which close() would wait for.
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

test("copyFromDockerd() of an image whose layers the registry has asks dockerd for no save", async () => {
  const { registry } = await daemons();
  const dockerd = await fakeDockerd();
  try {
    const service = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d")));
    const config = {
      auth: ALICE,
      plainHttp: true,
      dockerHost: dockerd.host,
      metadataService: service,
    };
    const first = await copyFromDockerd("app:1", `${registry.host}/nosave/app:1`, config);
    assert.deepEqual(first.layers.map((layer) => layer.transfer), ["uploaded"]);
    assert.equal(dockerd.asked.filter((path) => path.endsWith("/get")).length, 1);
    const again = await copyFromDockerd("app:1", `${registry.host}/nosave/app:1`, config);
    assert.deepEqual(again.layers.map((layer) => layer.transfer), ["exists"]);
    const elsewhere = await copyFromDockerd("app:1", `${registry.host}/nosave/other:1`, config);
    assert.deepEqual(elsewhere.layers.map((layer) => layer.transfer), ["mounted"]);
    assert.equal(again.digest, first.digest);
    assert.equal(elsewhere.digest, first.digest);
    assert.equal(dockerd.asked.filter((path) => path.endsWith("/get")).length, 1);
  } finally {
    await dockerd.close();
  }
});

test("copyFromDockerd() on the containerd image store says in one line it keeps no such store", async () => {
  const dockerd = await fakeDockerd({ containerd: true });
  try {
    const error = await copyFromDockerd("app:1", "127.0.0.1:1/app:1", { dockerHost: dockerd.host })
      .catch((error: unknown) => error);
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, "UNSUPPORTED");
    assert.match(
      error.message,
      /^Cannot copy "app:1" out of dockerd: dockerd uses the containerd image store[^\n]*$/,
    );
  } finally {
    await dockerd.close();
  }
});

test("copyFromDockerd() refuses a save whose layer is not the image's: DIGEST_INVALID, nothing committed or recorded", async () => {
  const { registry } = await daemons();
  const dockerd = await fakeDockerd({ lying: true });
  const temp = tempDir();
  const before = (await registry.requests()).length;
  try {
    const service = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d")));
    const error = await copyFromDockerd("lying:1", `${registry.host}/lying/app:1`, {
      auth: ALICE,
      plainHttp: true,
      dockerHost: dockerd.host,
      metadataService: service,
      tempDir: temp,
    }).catch((error: unknown) => error);
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, "DIGEST_INVALID", error.message);
    assert.match(error.message, new RegExp(`layer\\.tar" is ${dockerd.lyingDiffID}`));
    await assert.rejects(service.getMetadata(dockerd.diffID));
  } finally {
    await dockerd.close();
  }
  // Sent as it was made, the layer was never committed: its session was cancelled.
  const requests = await requestsSince(registry, before);
  assert.deepEqual(
    requests.filter((r) => !["GET", "HEAD", "PATCH"].includes(r.method)).map((r) => r.method),
    ["POST", "DELETE"],
  );
  assert.deepEqual(readdirSync(temp), []);
  assert.ok(
    !existsSync(join(dockerd.root, "image", "vfs", "distribution", "v2metadata-by-diffid")),
  );
});

/** copyFromDockerd() of a fake dockerd's image to `ref` as alice, recorded in a store of its own. */
async function copyFake(dockerd: { host: string }, ref: string) {
  return await copyFromDockerd("fake:1", ref, {
    auth: ALICE,
    plainHttp: true,
    dockerHost: dockerd.host,
    metadataService: new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d"))),
  });
}

/** The blob `digest` of `repository` as the registry serves it to alice. */
async function blobOf(registry: RegistryServer, repository: string, digest: string) {
  const answer = await fetch(`${registry.url}/v2/${repository}/blobs/${digest}`, asAlice);
  return new Uint8Array(await answer.arrayBuffer());
}

test("copyFromDockerd() sends a layer as it gzips it: one PATCH streamed as the save streams, the digest in the closing PUT", async () => {
  const { registry } = await daemons();
  const dockerd = await fakeDockerd({ size: 300_000 });
  const before = (await registry.requests()).length;
  try {
    const [layer] = (await copyFake(dockerd, `${registry.host}/asmade/app:1`)).layers;
    assert.equal(layer!.transfer, "uploaded");
    assert.equal(sha256(await blobOf(registry, "asmade/app", layer!.digest)), layer!.digest);
    const requests = await requestsSince(registry, before);
    const uploads = requests.filter((r) => r.url.includes("/blobs/uploads/"));
    // One session for the layer, its bytes in one PATCH; one for the configuration.
    assert.deepEqual(uploads.map((r) => r.method), ["POST", "PATCH", "PUT", "POST", "PUT"]);
    assert.equal(uploads[2]!.query.get("digest"), layer!.digest);
  } finally {
    await dockerd.close();
  }
});

test("copyFromDockerd(): the streamed PATCH refused, the layer is uploaded again from its spool file", async () => {
  const { registry } = await daemons();
  const proxy = await startFaultProxy(registry.url);
  const dockerd = await fakeDockerd({ size: 300_000 });
  try {
    proxy.plan({ method: "PATCH", fault: { kind: "status", status: 500 } });
    const [layer] = (await copyFake(dockerd, `${proxy.host}/asmade/again:1`)).layers;
    assert.equal(layer!.transfer, "uploaded");
    const methods = proxy.requests.map((r) => `${r.method} ${r.status}`);
    // The refused session is cancelled once.
    assert.ok(methods.includes("PATCH 500"), methods.join());
    assert.deepEqual(methods.filter((m) => m.startsWith("DELETE")), ["DELETE 204"]);
    assert.equal(sha256(await blobOf(registry, "asmade/again", layer!.digest)), layer!.digest);
  } finally {
    await dockerd.close();
    await proxy.stop();
  }
});

test("copyFromDockerd() reads dockerd 25's save: only the wanted layer's blob, checked against its name", async () => {
  const { registry } = await daemons();
  for (const lying of [false, true]) {
    const dockerd = await fakeDockerd({ oci: true, lying });
    try {
      const service = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d")));
      const pushing = copyFromDockerd("app:1", `${registry.host}/oci-save/app${lying}:1`, {
        auth: ALICE,
        plainHttp: true,
        dockerHost: dockerd.host,
        metadataService: service,
      });
      if (lying) {
        const error = await pushing.catch((error: unknown) => error);
        assert.ok(error instanceof RegistryError, String(error));
        assert.equal(error.code, "DIGEST_INVALID", error.message);
        assert.match(
          error.message,
          new RegExp(`blobs/sha256/${dockerd.diffID.slice(7)}" is ${dockerd.lyingDiffID}, not`),
        );
        await assert.rejects(service.getMetadata(dockerd.diffID));
      } else {
        const pushed = await pushing;
        assert.deepEqual(pushed.layers.map((layer) => [layer.diffID, layer.transfer]), [
          [dockerd.diffID, "uploaded"],
        ]);
        assert.equal((await service.getMetadata(dockerd.diffID)).length, 1);
      }
    } finally {
      await dockerd.close();
    }
  }
});

test("copyFromDockerd() as a user dockerd's socket admits but not its image store: dockerd's store refused in one line; with a store of the user's own, the save is pushed", async () => {
  const { registry, dockerd } = await daemons();
  const name = "nonroot/app:1";
  const image = await loaded(dockerd, name, 2);
  // The user: nobody, let through to the socket (as the docker group is), not into dockerd's root.
  const socket = dockerd.host.slice("unix://".length);
  chmodSync(dirname(socket), 0o711);
  chmodSync(socket, 0o666);
  const home = tempDir();
  chmodSync(home, 0o777);
  const script = join(home, "push.ts");
  writeFileSync(
    script,
    `import { copyFromDockerd } from ${JSON.stringify(join(REPO, "src/registry/mod.ts"))};
import { FSMetadataStore, V2MetadataService } from ${JSON.stringify(join(REPO, "mod.ts"))};
const [image, ref, host, password, store] = process.argv.slice(2);
try {
  const pushed = await copyFromDockerd(image, ref, {
    auth: { username: "alice", password },
    plainHttp: true,
    dockerHost: host,
    ...(store === undefined ? {} : {
      metadataService: new V2MetadataService(await FSMetadataStore.open(store)),
    }),
  });
  console.log(JSON.stringify({ digest: pushed.digest, layers: pushed.layers }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, message: error.message }));
}
`,
  );
  // Bundled where nobody may read it (the checkout may sit where only root enters), run by
  // the system's node as nobody.
  const bundle = join(home, "push.mjs");
  execFileSync(join(REPO, "node_modules", ".bin", "esbuild"), [
    script,
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--log-level=warning",
    `--outfile=${bundle}`,
  ]);
  chmodSync(bundle, 0o644);
  const asNobody = (...args: string[]) =>
    JSON.parse(
      execFileSync("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        `HOME=${home}`,
        `TMPDIR=${home}`,
        "node",
        bundle,
        name,
        `${registry.host}/nonroot/app:1`,
        dockerd.host,
        ALICE.password,
        ...args,
      ], { encoding: "utf8" }),
    );

  const refused = asNobody();
  assert.equal(refused.code, "EACCES");
  assert.match(
    refused.message,
    /dockerd's metadata store ".*\/distribution" is not open to this user/,
  );
  assert.match(refused.message, /--root or --store/);

  const store = join(home, "store");
  const pushed = asNobody(store);
  assert.deepEqual(pushed.layers.map((layer: { transfer: string }) => layer.transfer), [
    "uploaded",
    "uploaded",
  ]);
  assert.deepEqual(pushed.layers.map((layer: { diffID: string }) => layer.diffID), image.diffIDs);
  const service = new V2MetadataService(await FSMetadataStore.open(store));
  for (const layer of pushed.layers) {
    assert.equal(await service.getDiffID(layer.digest), layer.diffID);
  }
  // What the registry holds is dockerd's image: docker pull of it gives the same image ID.
  await dockerd.docker(["rmi", name]);
  await dockerd.docker(["pull", `${registry.host}/nonroot/app:1`]);
  const id = await dockerd.docker([
    "image",
    "inspect",
    "--format",
    "{{.Id}}",
    `${registry.host}/nonroot/app:1`,
  ]);
  assert.equal(id.stdout.trim(), image.imageID);
  // Nothing left behind in the temporary directory but what the test put there.
  assert.deepEqual(readdirSync(home).sort(), ["push.mjs", "push.ts", "store"]);
});
