// cli.ts sync between two docker-registry servers on 127.0.0.1: every tag of a repository into
// DEST/<name>, one metadata store, and a second run that sends no blob again.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore, push, tags } from "../src/registry/mod.ts";
import { runCli, tempDir } from "./_cli.ts";
import { parseSyncYaml } from "../src/cli/sync_yaml.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const SYNC = { denoPermissions: ["--allow-net", "--allow-write", "--allow-run"] };
const temps: string[] = [];
const servers: Promise<RegistryServer>[] = [];

after(async () => {
  for (const server of servers) await (await server.catch(() => null))?.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

test("cli.ts sync copies every tag of a repository, records into one store, and resumes sending nothing twice", async () => {
  const [sourceStarted, targetStarted] = [startRegistry(), startRegistry({ accessLog: true })];
  servers.push(sourceStarted, targetStarted);
  const [source, target] = [await sourceStarted, await targetStarted];
  const layoutDir = tempDir();
  temps.push(layoutDir);
  const store = await ociLayoutStore(layoutDir, { fs: nodeFileSystem });
  const shared = [{ name: "base", data: noise(30_000, 81) }];
  const images = [];
  for (const [i, tag] of ["1.0", "2.0", "3.0"].entries()) {
    // Three images over one shared base layer.
    images.push(
      await buildImage(store, tag, [shared, [{ name: "app", data: noise(10_000, 90 + i) }]], "oci"),
    );
    await push(`${source.host}/team/app:${tag}`, store, { plainHttp: true });
  }
  const root = join(tempDir(), "metadata");
  temps.push(root);
  const args = [
    "sync",
    "--root",
    root,
    `docker://${source.host}/team/app`,
    `docker://${target.host}/mirror`,
  ];
  const run = await runCli(args, SYNC);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    new RegExp(
      `Synced 3 of 3 images from docker://${source.host}/team/app to docker://${target.host}/mirror/app\n$`,
    ),
  );
  assert.deepEqual((await tags(`${target.host}/mirror/app`, { plainHttp: true })).sort(), [
    "1.0",
    "2.0",
    "3.0",
  ]);
  // One store: the shared layer is recorded under both registries' repositories.
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  const sources = (await service.getMetadata(images[0]!.diffIDs[0]!)).map((e) => e.sourceRepository)
    .sort();
  assert.deepEqual(sources, [`${source.host}/team/app`, `${target.host}/mirror/app`].sort());
  // Again: every blob is there, none is uploaded.
  const before = (await target.requests()).length;
  const again = await runCli(args, SYNC);
  assert.equal(again.code, 0, again.stderr);
  const uploads = (await target.requests()).slice(before).filter((r) =>
    r.method === "POST" || r.method === "PATCH"
  );
  assert.deepEqual(uploads, []);
  // Not a repository: a usage error.
  const tagged = await runCli([
    "sync",
    `docker://${source.host}/team/app:1.0`,
    `docker://${target.host}/x`,
  ], SYNC);
  assert.equal(tagged.code, 2);
});

test("cli.ts sync --src yaml copies the images and tags skopeo's YAML list names", async () => {
  const [sourceStarted, targetStarted] = [startRegistry(), startRegistry()];
  servers.push(sourceStarted, targetStarted);
  const [source, target] = [await sourceStarted, await targetStarted];
  const dir = tempDir();
  temps.push(dir);
  const store = await ociLayoutStore(join(dir, "layout"), { fs: nodeFileSystem });
  for (const [i, tag] of ["1.0", "2.0", "3.0"].entries()) {
    await buildImage(store, tag, [[{ name: "f", data: noise(5_000, 120 + i) }]], "oci");
    await push(`${source.host}/team/app:${tag}`, store, { plainHttp: true });
    await push(`${source.host}/other/tool:${tag}`, store, { plainHttp: true });
  }
  const list = join(dir, "sync.yaml");
  writeFileSync(
    list,
    `# as skopeo sync reads it
${source.host}:
  images:
    team/app:
      - "1.0"
      - '3.0'
    other/tool: []   # every tag
  tls-verify: false
`,
  );
  const root = join(dir, "metadata");
  const run = await runCli(
    ["sync", "--root", root, "--src", "yaml", list, `docker://${target.host}/mirror`],
    SYNC,
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Synced 5 of 5 images from .*sync\.yaml to docker:\/\/.*\/mirror\n$/);
  assert.deepEqual((await tags(`${target.host}/mirror/app`, { plainHttp: true })).sort(), [
    "1.0",
    "3.0",
  ]);
  assert.deepEqual(
    (await tags(`${target.host}/mirror/tool`, { plainHttp: true })).sort(),
    ["1.0", "2.0", "3.0"],
  );
  writeFileSync(list, `${source.host}:\n  images:\n    team/app: []\n   tls-verify: false\n`);
  const bad = await runCli(["sync", "--src", "yaml", list, `docker://${target.host}/x`], SYNC);
  assert.equal(bad.code, 2);
  assert.ok(bad.stderr.startsWith(`error: Cannot read "${list}" line 4: `), bad.stderr);
});

test("parseSyncYaml() reads the subset skopeo's lists are written in, scalars kept as strings", () => {
  assert.deepEqual(
    parseSyncYaml(
      `r.test:   # a registry
  images:
    app: [1.0, "2.0"]
    "quoted/name":
    - latest
  credentials:
    username: ci
    password: 'it''s # not a comment'
`,
      "sync.yaml",
    ),
    {
      "r.test": {
        images: { app: ["1.0", "2.0"], "quoted/name": ["latest"] },
        credentials: { username: "ci", password: "it's # not a comment" },
      },
    },
  );
  assert.throws(() => parseSyncYaml("r.test:\n  images: {a: 1}\n", "sync.yaml"), {
    message: `Cannot read "sync.yaml" line 2: "{a: 1}" is not supported here`,
  });
});
