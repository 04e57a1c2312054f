// Archives as dockerd 25 and later save them (an OCI image layout inside the docker archive,
// manifest.json naming `blobs/sha256/<hex>` files), read by the docker-archive and oci-archive
// sources. Only dockerd 20.10 runs here: a real image it saved is rearranged as moby's save.go
// of 25+ writes it (tests/registry/_docker25_save.ts), then pushed to a real docker-registry.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { copyFromArchive, RegistryError } from "../src/registry/mod.ts";
import { runCli } from "./_cli.ts";
import { ALICE, daemons, randomLayers, stopDaemons, tempDir } from "./registry/_daemons.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import { type Docker25Save, docker25Save, docker25Tar } from "./registry/_docker25_save.ts";
import { imageConfig, sha256 } from "./registry/_image_builder.ts";

const ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, " +
  "application/vnd.oci.image.manifest.v1+json";
let saved: Docker25Save;
let path: string;

before(async () => {
  const { dockerd } = await daemons();
  const loaded = dockerArchive("archive25/app:1", randomLayers(3));
  await dockerd.docker(["load"], loaded.archive);
  const dir = tempDir();
  await dockerd.docker(["save", "--output", join(dir, "saved20.tar"), "archive25/app:1"]);
  saved = docker25Save(new Uint8Array(readFileSync(join(dir, "saved20.tar"))));
  assert.equal(saved.imageID, loaded.imageID);
  assert.deepEqual(saved.diffIDs, loaded.diffIDs);
  path = join(dir, "saved25.tar");
  writeFileSync(path, saved.archive);
});

after(stopDaemons);

/** The manifest the registry holds under `repo:tag`: its bytes, and what it names. */
async function manifestOf(repoTag: string) {
  const { registry } = await daemons();
  const [repo, tag] = repoTag.split(":");
  const response = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: ACCEPT, authorization: `Basic ${btoa(`alice:${ALICE.password}`)}` },
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    return null;
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  return {
    bytes,
    json: JSON.parse(new TextDecoder().decode(bytes)) as {
      mediaType: string;
      config: { digest: string };
      layers: { mediaType: string; digest: string }[];
    },
  };
}

async function blob(repo: string, digest: string): Promise<Uint8Array> {
  const { registry } = await daemons();
  const response = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, {
    headers: { authorization: `Basic ${btoa(`alice:${ALICE.password}`)}` },
  });
  return new Uint8Array(await response.arrayBuffer());
}

test("docker-archive: of a docker 25+ save: the image dockerd saved, its layers gzipped and recorded", async () => {
  const { registry } = await daemons();
  const service = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "store")));
  const temp = tempDir();
  const pushed = await copyFromArchive(path, `${registry.host}/from25/docker:1`, {
    tag: "archive25/app:1",
    metadataService: service,
    tempDir: temp,
    auth: ALICE,
    plainHttp: true,
  });
  assert.deepEqual(readdirSync(temp), []);
  const copied = (await manifestOf("from25/docker:1"))!;
  assert.equal(sha256(copied.bytes), pushed.digest);
  assert.equal(copied.json.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  assert.equal(copied.json.config.digest, saved.imageID);
  for (const [i, diffID] of saved.diffIDs.entries()) {
    const { digest, mediaType } = copied.json.layers[i]!;
    assert.equal(mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    assert.equal(sha256(gunzipSync(await blob("from25/docker", digest))), diffID);
    assert.deepEqual((await service.getMetadata(diffID)).map((r) => r.digest), [digest]);
  }
});

test("oci-archive: of a docker 25+ save: the OCI manifest docker wrote, byte for byte", async () => {
  const { registry } = await daemons();
  const temp = tempDir();
  const pushed = await copyFromArchive(path, `${registry.host}/from25/oci:1`, {
    format: "oci-archive",
    tag: "1",
    tempDir: temp,
    auth: ALICE,
    plainHttp: true,
  });
  assert.deepEqual(readdirSync(temp), []);
  assert.equal(pushed.digest, saved.manifestDigest);
  const copied = (await manifestOf("from25/oci:1"))!;
  assert.deepEqual(copied.bytes, saved.manifest);
  // The layers as docker saved them, uncompressed: the blobs are the DiffIDs.
  for (const [i, diffID] of saved.diffIDs.entries()) {
    assert.equal(sha256(await blob("from25/oci", copied.json.layers[i]!.digest)), diffID);
  }
});

test("cli.ts copy reads a docker 25+ save both ways", async () => {
  const { registry, dockerd } = await daemons();
  for (
    const [source, destination] of [
      [`docker-archive:${path}:archive25/app:1`, "cli25/docker:1"],
      [`oci-archive:${path}:1`, "cli25/oci:1"],
    ] as const
  ) {
    const run = await runCli(
      ["copy", "--dest-tls-verify=false", source, `docker://${registry.host}/${destination}`],
      {
        denoPermissions: ["--allow-write", "--allow-net", "--allow-run"],
        env: { DOCKER_CONFIG: dockerd.clientConfig, TMPDIR: tempDir() },
      },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await manifestOf(destination))!.json.config.digest, saved.imageID, source);
  }
});

/** The archive with the file `name` given other bytes, or manifest.json changed. */
function altered(change: (files: Map<string, Uint8Array>) => void): string {
  const files = new Map(saved.files);
  change(files);
  const hostile = join(tempDir(), "hostile25.tar");
  writeFileSync(hostile, docker25Tar([...files]));
  return hostile;
}

function changeManifest(
  files: Map<string, Uint8Array>,
  edit: (image: { Layers: string[] }) => void,
) {
  const list = JSON.parse(new TextDecoder().decode(files.get("manifest.json")));
  edit(list[0]);
  files.set("manifest.json", new TextEncoder().encode(JSON.stringify(list)));
}

const configName = () => `blobs/sha256/${saved.imageID.slice("sha256:".length)}`;

const HOSTILE: [string, () => string, "docker-archive" | "oci-archive", string, RegExp][] = [
  [
    "a manifest.json layer path climbing out of the archive",
    () =>
      altered((files) =>
        changeManifest(
          files,
          (image) => void (image.Layers[1] = "blobs/sha256/../../../etc/passwd"),
        )
      ),
    "docker-archive",
    "MALFORMED",
    /layer "blobs\/sha256\/\.\.\/\.\.\/\.\.\/etc\/passwd" is absolute or leaves the archive/,
  ],
  [
    "a manifest.json layer path that is absolute",
    () =>
      altered((files) => changeManifest(files, (image) => void (image.Layers[0] = "/etc/passwd"))),
    "docker-archive",
    "MALFORMED",
    /layer "\/etc\/passwd" is absolute or leaves the archive/,
  ],
  [
    "a configuration blob whose bytes are another image's",
    () => altered((files) => files.set(configName(), imageConfig([`sha256:${"e".repeat(64)}`]))),
    "docker-archive",
    "DIGEST_INVALID",
    /entry "blobs\/sha256\/[0-9a-f]{64}" is sha256:[0-9a-f]{64}, not the digest its name says/,
  ],
  [
    "a configuration blob whose bytes are another image's",
    () => altered((files) => files.set(configName(), imageConfig([`sha256:${"e".repeat(64)}`]))),
    "oci-archive",
    "DIGEST_INVALID",
    /content has digest "sha256:[0-9a-f]{64}", expected "sha256:[0-9a-f]{64}"/,
  ],
];

for (const [what, make, format, code, message] of HOSTILE) {
  test(`${format}: of a docker 25+ save with ${what} is refused (${code}), nothing pushed`, async () => {
    const { registry } = await daemons();
    const temp = tempDir();
    await assert.rejects(
      copyFromArchive(make(), `${registry.host}/hostile25/app:1`, {
        format,
        tag: format === "oci-archive" ? "1" : "archive25/app:1",
        tempDir: temp,
        auth: ALICE,
        plainHttp: true,
      }),
      (error) => {
        assert.ok(error instanceof RegistryError, String(error));
        assert.equal(error.code, code, error.message);
        assert.match(error.message, message);
        return true;
      },
    );
    assert.deepEqual(readdirSync(temp), []);
    assert.equal(await manifestOf("hostile25/app:1"), null);
  });
}
