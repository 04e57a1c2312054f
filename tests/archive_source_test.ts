// docker-archive and oci-archive as sources of copy, against a real docker-registry on
// 127.0.0.1: round trips (registry → archive → registry: the same configuration, every layer
// recorded; an OCI archive's manifest byte-exact), an archive skopeo wrote, the CLI, and
// hostile archives refused with a typed error, the temporary directory removed and nothing
// written beside it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  copyFromArchive,
  copyToArchive,
  LIMITS,
  push,
  RegistryError,
  type RegistryErrorCode,
} from "../src/registry/mod.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";
import { imageConfig, noise, sha256, tar, tarHeader } from "./registry/_image_builder.ts";
import { layoutWithImage, metadata, removeTempDirs, tempDir } from "./registry/_engine.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import { gunzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { assertPeakRssUnder, runCli } from "./_cli.ts";

const ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, " +
  "application/vnd.oci.image.manifest.v1+json";
const encoder = new TextEncoder();
let server: RegistryServer;

before(async () => {
  server = await startRegistry();
  const { store } = await layoutWithImage([300_000, 70_000, 1_000]);
  await push(`${server.host}/src/app:1.0`, store, { plainHttp: true });
});

after(async () => {
  await server?.stop();
  removeTempDirs();
});

/** The manifest a registry holds under `repo:tag`, its bytes and digest. */
async function manifestOf(repoTag: string) {
  const [repo, tag] = repoTag.split(":");
  const response = await fetch(`${server.url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: ACCEPT },
  });
  assert.equal(response.status, 200, repoTag);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const json = JSON.parse(new TextDecoder().decode(bytes)) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  return { digest: sha256(bytes), json };
}

/** The DiffIDs a configuration in the registry names. */
async function diffIDsOf(repo: string, config: string): Promise<string[]> {
  const response = await fetch(`${server.url}/v2/${repo}/blobs/${config}`);
  return (await response.json() as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

test("docker-archive round trip: the same configuration, every layer recorded, temp dir removed", async () => {
  const path = join(tempDir(), "app.tar");
  await copyToArchive(`${server.host}/src/app:1.0`, path, { tag: "app:1", plainHttp: true });
  const { service } = await metadata();
  const temp = tempDir();
  const pushed = await copyFromArchive(path, `${server.host}/dst/app:1`, {
    tag: "app:1",
    metadataService: service,
    tempDir: temp,
    plainHttp: true,
  });
  assert.deepEqual(readdirSync(temp), []);
  const source = await manifestOf("src/app:1.0");
  const copied = await manifestOf("dst/app:1");
  assert.equal(pushed.digest, copied.digest);
  assert.equal(copied.json.config.digest, source.json.config.digest);
  // Our archives keep the registry's gzipped blobs: they go back as they are.
  assert.deepEqual(copied.json.layers, source.json.layers);
  const diffIDs = await diffIDsOf("dst/app", copied.json.config.digest);
  assert.equal(diffIDs.length, 3);
  for (const [i, diffID] of diffIDs.entries()) {
    const records = await service.getMetadata(diffID);
    assert.ok(
      records.some((r) =>
        r.digest === copied.json.layers[i]!.digest && r.sourceRepository ===
          `${server.host}/dst/app`
      ),
      `layer ${i} recorded: ${JSON.stringify(records)}`,
    );
  }
});

test("a docker save archive (uncompressed layers, manifest.json last): layers gzipped, DiffIDs recorded", async () => {
  const saved = dockerArchive("app:1", [
    [{ name: "a", data: encoder.encode("first layer") }],
    [{ name: "b", data: new Uint8Array(200_000).fill(7) }],
  ]);
  const path = join(tempDir(), "saved.tar");
  writeFileSync(path, saved.archive);
  const { service } = await metadata();
  await copyFromArchive(path, `${server.host}/saved/app:1`, {
    metadataService: service,
    tempDir: tempDir(),
    plainHttp: true,
  });
  const copied = await manifestOf("saved/app:1");
  assert.equal(copied.json.config.digest, saved.imageID);
  for (const [i, diffID] of saved.diffIDs.entries()) {
    const digest = copied.json.layers[i]!.digest;
    const blob = await fetch(`${server.url}/v2/saved/app/blobs/${digest}`);
    assert.equal(sha256(gunzipSync(new Uint8Array(await blob.arrayBuffer()))), diffID);
    assert.deepEqual(
      (await service.getMetadata(diffID)).map((r) => r.digest),
      [digest],
      `layer ${i} recorded`,
    );
  }
});

test("a docker save archive pushed again: layers found or mounted by DiffID, none compressed or uploaded", async () => {
  const saved = dockerArchive("again:1", [
    [{ name: "a", data: noise(300_000, 11) }],
    [{ name: "b", data: noise(20_000_000, 12) }],
  ]);
  const path = join(tempDir(), "saved.tar");
  writeFileSync(path, saved.archive);
  const { service } = await metadata();
  const pushTo = async (repo: string) => {
    const pushed = new Set<string>();
    const result = await copyFromArchive(path, `${server.host}/${repo}:1`, {
      metadataService: service,
      tempDir: tempDir(),
      plainHttp: true,
      onProgress: (event) => {
        // The configuration is uploaded into the new repository; no layer is.
        if (event.action === "push" && event.digest !== saved.imageID) pushed.add(event.digest);
      },
    });
    return { transfers: result.layers.map((layer) => layer.transfer), pushed: [...pushed], result };
  };
  const first = await pushTo("again/app");
  assert.deepEqual(first.transfers, ["uploaded", "uploaded"]);
  const second = await pushTo("again/app");
  assert.deepEqual(second.transfers, ["exists", "exists"]);
  assert.deepEqual(second.pushed, []);
  assert.equal(second.result.digest, first.result.digest);
  const elsewhere = await pushTo("again/other");
  assert.deepEqual(elsewhere.transfers, ["mounted", "mounted"]);
  assert.deepEqual(elsewhere.pushed, []);
  assert.equal(elsewhere.result.digest, first.result.digest);
});

test("oci-archive round trip: the manifest byte-exact (same digest)", async () => {
  const path = join(tempDir(), "app-oci.tar");
  await copyToArchive(`${server.host}/src/app:1.0`, path, {
    format: "oci-archive",
    plainHttp: true,
  });
  const temp = tempDir();
  const pushed = await copyFromArchive(path, `${server.host}/oci/app:1`, {
    format: "oci-archive",
    tag: "1.0",
    tempDir: temp,
    plainHttp: true,
  });
  assert.deepEqual(readdirSync(temp), []);
  const source = await manifestOf("src/app:1.0");
  assert.equal(pushed.digest, source.digest);
  assert.equal((await manifestOf("oci/app:1")).digest, source.digest);
});

test("an archive skopeo wrote (docker-archive, oci-archive) is read", async () => {
  const dir = tempDir();
  const source = await manifestOf("src/app:1.0");
  for (const format of ["docker-archive", "oci-archive"] as const) {
    const path = join(dir, `${format}.tar`);
    execFileSync("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${server.host}/src/app:1.0`,
      `${format}:${path}:${format === "docker-archive" ? "app:2" : "two"}`,
    ], { stdio: "pipe" });
    const pushed = await copyFromArchive(path, `${server.host}/skopeo/${format}:1`, {
      format,
      tempDir: tempDir(),
      plainHttp: true,
    });
    const copied = await manifestOf(`skopeo/${format}:1`);
    assert.equal(pushed.digest, copied.digest);
    assert.equal(copied.json.config.digest, source.json.config.digest, format);
  }
});

test("cli.ts copy docker-archive:PATH:NAME:TAG docker://… pushes the image, nothing left under TMPDIR", async () => {
  const path = join(tempDir(), "cli.tar");
  await copyToArchive(`${server.host}/src/app:1.0`, path, { tag: "app:1", plainHttp: true });
  const tmp = tempDir();
  const run = await runCli(
    [
      "copy",
      "--dest-tls-verify=false",
      `docker-archive:${path}:app:1`,
      `docker://${server.host}/cli/app:1`,
    ],
    {
      denoPermissions: ["--allow-write", "--allow-net", "--allow-run"],
      env: { TMPDIR: tmp },
    },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^Copied docker-archive:/);
  assert.deepEqual(readdirSync(tmp), []);
  const source = await manifestOf("src/app:1.0");
  assert.equal((await manifestOf("cli/app:1")).json.config.digest, source.json.config.digest);
});

/** A tar header with its fields changed, its checksum recomputed. */
function header(name: string, size: number, change: (h: Uint8Array) => void): Uint8Array {
  const h = tarHeader(name, size);
  change(h);
  h.fill(0x20, 148, 156);
  const sum = h.reduce((n, b) => n + b, 0);
  h.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return h;
}

/** The parts one after the other. */
function join_(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** A valid docker archive of one layer, and its pieces to break. */
function dockerArchiveParts(layerName = "l/layer.tar") {
  const layer = tar([{ name: "file", data: encoder.encode("hello") }]);
  const config = imageConfig([sha256(layer)]);
  const manifest = (layers: string[]) =>
    encoder.encode(JSON.stringify([{ Config: "c.json", RepoTags: ["app:1"], Layers: layers }]));
  return {
    layer,
    config,
    manifest,
    files: [
      { name: layerName, data: layer },
      { name: "c.json", data: config },
      { name: "manifest.json", data: manifest([layerName]) },
    ],
  };
}

test("cli.ts copy streams a docker archive: a 160 MiB layer, peak RSS below the layer's size", async () => {
  const dir = tempDir();
  const path = join(dir, "big.tar");
  // The layer is a tar holding one file of noise: written to the archive as it is made.
  const size = 160 << 20;
  const content = noise(size, 9);
  const layer = join_([tarHeader("noise", size), content, new Uint8Array(1024)]);
  const diffID = sha256(layer);
  const config = imageConfig([diffID]);
  const manifest = encoder.encode(
    JSON.stringify([{ Config: "c.json", RepoTags: ["big:1"], Layers: ["l.tar"] }]),
  );
  writeFileSync(
    path,
    join_([
      tarHeader("l.tar", layer.length),
      layer,
      tar([{ name: "c.json", data: config }, { name: "manifest.json", data: manifest }]),
    ]),
  );
  const run = await runCli(
    [
      "copy",
      "--dest-tls-verify=false",
      `docker-archive:${path}`,
      `docker://${server.host}/big/app:1`,
    ],
    {
      denoPermissions: ["--allow-write", "--allow-net", "--allow-run"],
      env: { TMPDIR: tempDir() },
      timeoutMs: 120_000,
    },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await manifestOf("big/app:1")).json.config.digest, sha256(config));
  assertPeakRssUnder(run, size / 1024, "copy");
});

const TYPE = (flag: string) => (h: Uint8Array) => void (h[156] = flag.charCodeAt(0));

const HOSTILE: [string, () => Uint8Array, RegistryErrorCode][] = [
  [
    "an entry leaving with ..",
    () => tar([{ name: "../evil", data: encoder.encode("x") }]),
    "MALFORMED",
  ],
  ["an absolute entry", () => tar([{ name: "/tmp/evil", data: encoder.encode("x") }]), "MALFORMED"],
  ["a symlink", () => join_([header("link", 0, TYPE("2")), new Uint8Array(1024)]), "MALFORMED"],
  ["a hard link", () => join_([header("link", 0, TYPE("1")), new Uint8Array(1024)]), "MALFORMED"],
  ["a device", () => join_([header("dev", 0, TYPE("3")), new Uint8Array(1024)]), "MALFORMED"],
  [
    "a link leading out of the archive",
    () => {
      const link = header("l/layer.tar", 0, (h) => {
        TYPE("2")(h);
        h.set(encoder.encode("../../etc/passwd"), 157);
      });
      return join_([link, tar(dockerArchiveParts().files.slice(1))]);
    },
    "MALFORMED",
  ],
  [
    "a bad header checksum",
    () => {
      const bad = tar([{ name: "file", data: encoder.encode("x") }]);
      bad[0] = "g".charCodeAt(0);
      return bad;
    },
    "MALFORMED",
  ],
  [
    "a pax header naming a path with ..",
    () => {
      const record = "path=../../evil\n";
      const length = record.length + 3; // two digits and a space
      const data = encoder.encode(`${length} ${record}`);
      return join_([
        header("pax", data.length, TYPE("x")),
        data,
        new Uint8Array(512 - data.length),
        tar([{ name: "innocent", data: encoder.encode("x") }]),
      ]);
    },
    "MALFORMED",
  ],
  ["no manifest.json", () => tar(dockerArchiveParts().files.slice(0, 2)), "MALFORMED"],
  [
    "a manifest.json naming a layer that is not there",
    () => {
      const parts = dockerArchiveParts();
      return tar([...parts.files.slice(0, 2), {
        name: "manifest.json",
        data: parts.manifest(["missing.tar"]),
      }]);
    },
    "MALFORMED",
  ],
  [
    "a layer that is not its DiffID",
    () => {
      const parts = dockerArchiveParts();
      const other = tar([{ name: "file", data: encoder.encode("other") }]);
      return tar([{ name: "l/layer.tar", data: other }, ...parts.files.slice(1)]);
    },
    "DIGEST_INVALID",
  ],
  [
    "a manifest.json over LIMITS.manifest",
    () =>
      tar([{
        name: "manifest.json",
        data: encoder.encode(`[${" ".repeat(LIMITS.manifest)}]`),
      }]),
    "TOO_LARGE",
  ],
  [
    "a size that lies (the archive ends early)",
    () => join_([tarHeader("big", 1_000_000), new Uint8Array(4096)]),
    "TRUNCATED",
  ],
  [
    "a header claiming a 100 GB entry",
    () =>
      join_([
        header("huge", 0, (h) => {
          h.fill(0, 124, 136);
          h[124] = 0x80;
          let rest = 100e9;
          for (let i = 135; i > 124; i--) {
            h[i] = rest % 256;
            rest = Math.floor(rest / 256);
          }
        }),
        new Uint8Array(1 << 20),
      ]),
    "TOO_LARGE",
  ],
  [
    "a size that is not a number",
    () =>
      join_([
        header("nan", 0, (h) => h.set(encoder.encode("12345678zz\0"), 124)),
        new Uint8Array(1024),
      ]),
    "MALFORMED",
  ],
  [
    "more entries than LIMITS.archiveEntries",
    () => {
      const directory = header("d", 0, TYPE("5"));
      return join_([...Array(LIMITS.archiveEntries + 1).fill(directory), new Uint8Array(1024)]);
    },
    "TOO_LARGE",
  ],
];

/** What each refusal says: the entry named. */
const MESSAGES: Record<string, RegExp> = {
  "an entry leaving with ..": /entry "\.\.\/evil" is absolute or leaves the archive/,
  "an absolute entry": /entry "\/tmp\/evil" is absolute or leaves the archive/,
  "a symlink": /link "link" points outside the archive/,
  "a hard link": /entry "link" is not a regular file \(type "1"\)/,
  "a device": /entry "dev" is not a regular file \(type "3"\)/,
  "a link leading out of the archive": /link "l\/layer.tar" points outside the archive/,
  "a bad header checksum": /has a bad header checksum/,
  "a pax header naming a path with ..": /entry "\.\.\/\.\.\/evil" is absolute or leaves/,
  "no manifest.json": /"manifest.json" is not in the archive/,
  "a manifest.json naming a layer that is not there": /layer "missing.tar" is not in the archive/,
  "a layer that is not its DiffID": /layer "l\/layer.tar" is sha256:\w+, not the DiffID/,
  "a size that lies (the archive ends early)": /ends inside entry "big"/,
  "a manifest.json over LIMITS.manifest": /the file "manifest.json" is larger than the limit/,
  "a header claiming a 100 GB entry": /entry "huge" claims 100000000000 bytes, over 68719476736/,
  "a size that is not a number": /entry "nan" has a size that is not a number/,
  "more entries than LIMITS.archiveEntries": /more than 10000 entries/,
};

for (const [what, archive, code] of HOSTILE) {
  test(`a docker archive with ${what} is refused (${code}), nothing written, temp dir removed`, async () => {
    const dir = tempDir();
    const path = join(dir, "hostile.tar");
    writeFileSync(path, archive());
    const temp = join(dir, "temp");
    await assert.rejects(
      copyFromArchive(path, `${server.host}/hostile/app:1`, { tempDir: temp, plainHttp: true }),
      (error) => {
        assert.ok(error instanceof RegistryError, String(error));
        assert.equal(error.code, code, error.message);
        assert.match(error.message, MESSAGES[what]!, what);
        return true;
      },
    );
    assert.deepEqual(readdirSync(temp), []);
    assert.deepEqual(readdirSync(dir).sort(), ["hostile.tar", "temp"]);
    const response = await fetch(`${server.url}/v2/hostile/app/manifests/1`);
    await response.body?.cancel();
    assert.equal(response.status, 404);
  });
}

test("an oci archive whose blob is not its digest is refused (DIGEST_INVALID)", async () => {
  const dir = tempDir();
  const path = join(dir, "bad-oci.tar");
  writeFileSync(
    path,
    tar([
      { name: "oci-layout", data: encoder.encode('{"imageLayoutVersion":"1.0.0"}') },
      { name: `blobs/sha256/${"a".repeat(64)}`, data: encoder.encode("not that") },
      { name: "index.json", data: encoder.encode('{"schemaVersion":2,"manifests":[]}') },
    ]),
  );
  const temp = join(dir, "temp");
  await assert.rejects(
    copyFromArchive(path, `${server.host}/hostile/oci:1`, {
      format: "oci-archive",
      tempDir: temp,
      plainHttp: true,
    }),
    (error) => error instanceof RegistryError && error.code === "DIGEST_INVALID",
  );
  assert.deepEqual(readdirSync(temp), []);
});

test("an oci archive holding a link, or naming a manifest it lacks, is refused (MALFORMED)", async () => {
  const dir = tempDir();
  const link = join_([
    header("blobs/sha256/x", 0, (h) => {
      TYPE("2")(h);
      h.set(encoder.encode("../../index.json"), 157);
    }),
    new Uint8Array(1024),
  ]);
  const missing = tar([{
    name: "index.json",
    data: encoder.encode(JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: `sha256:${"b".repeat(64)}`,
        size: 10,
      }],
    })),
  }]);
  for (
    const [name, bytes, message] of [
      ["link.tar", link, /entry "blobs\/sha256\/x" is a link/],
      ["missing.tar", missing, /names manifest sha256:b{64} that is not in it/],
    ] as const
  ) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const temp = join(dir, `temp-${name}`);
    await assert.rejects(
      copyFromArchive(path, `${server.host}/hostile/oci:1`, {
        format: "oci-archive",
        tempDir: temp,
        plainHttp: true,
      }),
      (error) => {
        assert.ok(error instanceof RegistryError && error.code === "MALFORMED", String(error));
        assert.match(error.message, message);
        return true;
      },
    );
    assert.deepEqual(readdirSync(temp), []);
  }
});

test("an aborted signal stops the reading with its reason, temp dir removed", async () => {
  const dir = tempDir();
  const path = join(dir, "app.tar");
  writeFileSync(path, dockerArchive("app:1", [[{ name: "a", data: encoder.encode("a") }]]).archive);
  const stop = new AbortController();
  const reason = new Error("stopped by the test");
  stop.abort(reason);
  const temp = join(dir, "temp");
  // A registry nobody listens on: only the reading can fail with the reason.
  await assert.rejects(
    copyFromArchive(path, "127.0.0.1:1/app:1", {
      tempDir: temp,
      plainHttp: true,
      signal: stop.signal,
    }),
    (error) => error === reason,
  );
  assert.deepEqual(readdirSync(temp), []);
});

test("names from pax headers and GNU long names are read (an OCI archive written so)", async () => {
  const path = join(tempDir(), "app-oci.tar");
  await copyToArchive(`${server.host}/src/app:1.0`, path, {
    format: "oci-archive",
    plainHttp: true,
  });
  // Rewrite each entry's name: odd ones through a pax `path`, even ones through a GNU `L`.
  const bytes = new Uint8Array(readFileSync(path));
  const parts: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length && bytes[at] !== 0; i++) {
    const name = new TextDecoder().decode(bytes.subarray(at, at + 100)).replace(/\0.*$/s, "");
    const size = parseInt(new TextDecoder().decode(bytes.subarray(at + 124, at + 135)), 8);
    const padded = size + (512 - size % 512) % 512;
    const record = `path=./${name}\n`;
    let length = record.length + 2;
    if (String(length).length + record.length + 1 !== length) length++;
    const meta = i % 2 === 0 ? encoder.encode(`${name}\0`) : encoder.encode(`${length} ${record}`);
    parts.push(
      header(
        i % 2 === 0 ? "././@LongLink" : "PaxHeader",
        meta.length,
        TYPE(i % 2 === 0 ? "L" : "x"),
      ),
      meta,
      new Uint8Array((512 - meta.length % 512) % 512),
      header("x", size, () => {}),
      bytes.subarray(at + 512, at + 512 + padded),
    );
    at += 512 + padded;
  }
  parts.push(new Uint8Array(1024));
  writeFileSync(path, join_(parts));
  const pushed = await copyFromArchive(path, `${server.host}/long/app:1`, {
    format: "oci-archive",
    tempDir: tempDir(),
    plainHttp: true,
  });
  assert.equal(pushed.digest, (await manifestOf("src/app:1.0")).digest);
});
