// cli.ts inspect, list-tags and delete against a real htpasswd docker-registry on 127.0.0.1,
// inspect matched against skopeo's, and copy's --digestfile and -q.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore, push } from "../src/registry/mod.ts";
import { runCli, tempDir } from "./_cli.ts";
import { buildImage, type BuiltImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";

const ALICE = { username: "alice", password: USERS.alice! };
const CREDS = ["--creds", `alice:${ALICE.password}`];
const NET = { denoPermissions: ["--allow-net", "--allow-write"] };
const temps: string[] = [];
let started: Promise<{ server: RegistryServer; image: BuiltImage; layout: string }> | undefined;

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

after(async () => {
  await (await started?.catch(() => null))?.server.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** An htpasswd registry holding `team/app` tagged 1.0 and 2.0 (the same two-layer image). */
function registry() {
  started ??= (async () => {
    const server = await startRegistry({ htpasswd: true });
    const layout = scratch();
    const store = await ociLayoutStore(layout, { fs: nodeFileSystem });
    const image = await buildImage(
      store,
      "1.0",
      [1, 2].map((n) => [{ name: `file${n}`, data: noise(20_000 * n, 60 + n) }]),
      "oci",
    );
    await store.tag("2.0", image.manifest);
    for (const tag of ["1.0", "2.0"]) {
      await push(`${server.host}/team/app:${tag}`, store, { auth: ALICE, plainHttp: true });
    }
    return { server, image, layout };
  })();
  return started;
}

test("cli.ts inspect docker://REF shows what skopeo inspect shows, and --raw, --config, -q", async () => {
  const { server, image } = await registry();
  const ref = `docker://${server.host}/team/app:1.0`;
  const run = await runCli(["inspect", "--format", "json", ...CREDS, ref], NET);
  assert.equal(run.code, 0, run.stderr);
  const ours = JSON.parse(run.stdout);
  assert.equal(ours.Digest, image.manifest.digest);
  assert.equal(ours.MediaType, image.manifest.mediaType);
  assert.deepEqual(ours.RepoTags.sort(), ["1.0", "2.0"]);
  assert.deepEqual(ours.Layers, image.layers.map((layer) => layer.digest));
  assert.deepEqual(
    ours.LayersData.map((layer: { Size: number }) => layer.Size),
    image.layers.map((l) => l.size),
  );
  // skopeo 1.9 on the same image: the same names for the same facts (it has no LayersData).
  const skopeo = JSON.parse(execFileSync("skopeo", [
    "inspect",
    "--tls-verify=false",
    "--creds",
    `alice:${ALICE.password}`,
    ref,
  ], { encoding: "utf8" }));
  for (
    const key of ["Name", "Digest", "RepoTags", "Created", "Architecture", "Os", "Layers", "Env"]
  ) {
    // RepoTags sorted above: the registry lists them in its own order.
    assert.deepEqual(ours[key], key === "RepoTags" ? skopeo[key].sort() : skopeo[key], key);
  }

  const raw = await runCli(["inspect", "--raw", ...CREDS, ref], NET);
  assert.equal(raw.code, 0, raw.stderr);
  assert.equal(
    `sha256:${createHash("sha256").update(raw.stdout).digest("hex")}`,
    image.manifest.digest,
  );
  const config = await runCli(["inspect", "--config", ...CREDS, ref], NET);
  assert.equal(config.code, 0, config.stderr);
  assert.deepEqual(JSON.parse(config.stdout).rootfs.diff_ids, image.diffIDs);
  const quiet = await runCli(["inspect", "-q", ...CREDS, ref], NET);
  assert.equal(quiet.stdout, `${image.manifest.digest}\n`);
  // Without credentials the registry refuses (exit 2); a missing tag is not found (exit 1).
  const anonymous = await runCli(["inspect", ref], NET);
  assert.equal(anonymous.code, 2, anonymous.stderr);
  const missing = await runCli(["inspect", ...CREDS, `docker://${server.host}/team/app:nope`], NET);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^error: Cannot GET .*manifest unknown/);
});

test("cli.ts list-tags docker://REPOSITORY lists the tags, one a line or skopeo's JSON", async () => {
  const { server } = await registry();
  const repository = `docker://${server.host}/team/app`;
  const run = await runCli(["list-tags", ...CREDS, repository], NET);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.split("\n").sort(), ["", "1.0", "2.0"]);
  const json = await runCli(["list-tags", "--json", ...CREDS, repository], NET);
  const listed = JSON.parse(json.stdout);
  assert.deepEqual({ ...listed, Tags: listed.Tags.sort() }, {
    Repository: `${server.host}/team/app`,
    Tags: ["1.0", "2.0"],
  });
  const tagged = await runCli(["list-tags", ...CREDS, `${repository}:1.0`], NET);
  assert.equal(tagged.code, 2);
  assert.ok(
    tagged.stderr.startsWith(
      `error: Command "list-tags" takes docker://REPOSITORY, not "${repository}:1.0"`,
    ),
  );
});

test("cli.ts copy --digestfile writes the digest; delete docker://REF resolves a tag and deletes its manifest", async () => {
  const { server, image, layout } = await registry();
  const digestFile = join(scratch(), "digest");
  const copied = await runCli([
    "copy",
    "-q",
    "--root",
    join(scratch(), "metadata"),
    "--digestfile",
    digestFile,
    ...["-u", "alice", "-p", ALICE.password],
    `oci:${layout}:1.0`,
    `docker://${server.host}/team/gone:1.0`,
  ], { denoPermissions: ["--allow-net", "--allow-write", "--allow-run"] });
  assert.equal(copied.code, 0, copied.stderr);
  assert.equal(copied.stdout, "");
  assert.equal(readFileSync(digestFile, "utf8"), image.manifest.digest);

  const ref = `docker://${server.host}/team/gone:1.0`;
  const deleted = await runCli(["delete", ...CREDS, ref], NET);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, `Deleted ${ref} (${image.manifest.digest})\n`);
  const after = await runCli(["inspect", ...CREDS, ref], NET);
  assert.equal(after.code, 1, after.stderr);
  const again = await runCli(["delete", ...CREDS, ref], NET);
  assert.equal(again.code, 1, again.stderr);
});
