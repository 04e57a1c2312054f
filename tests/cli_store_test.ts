// cli.ts on any store (--store) and copy-store between stores, as a process of the runtime
// under test: a directory written by the library, a real redis-server on 127.0.0.1, and a
// Deno KV SQLite file (Deno.openKv on Deno, @deno/kv on Node and Bun).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore, V1IDService, V2MetadataService } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { RedisMetadataStore } from "../src/redis_store.ts";
import { tempDir } from "./_adapters.ts";
import { runCli } from "./_cli.ts";
import { fakeDigest } from "./_conformance.ts";
import { connect, freePort, RedisServer } from "./_redis_server.ts";

/** What cli.ts needs on Deno beyond --allow-read --allow-env to write, reach Redis and open KV. */
const denoPermissions = ["--allow-write", "--allow-net", "--unstable-kv"];
const cli = (args: string[]) => runCli(args, { denoPermissions });

const server = await RedisServer.start();
const client = await connect(server.url);
after(async () => {
  client.destroy();
  await server.stop();
});
let prefixes = 0;
/** A Redis URL with a prefix of its own, and the store it names. */
async function freshRedis(): Promise<{ url: string; store: RedisMetadataStore }> {
  const prefix = `cli${++prefixes}:`;
  return {
    url: `${server.url}?prefix=${prefix}`,
    store: await RedisMetadataStore.open(client, { prefix }),
  };
}

const diffIDs = [1, 2, 3].map((d) => fakeDigest(0xd00 + d));
const entry = (d: number, n: number) => ({
  digest: fakeDigest(d * 16 + n),
  sourceRepository: `docker.io/library/app${n}`,
  hmac: n === 1 ? "ab".repeat(32) : "",
});

/** A dockerd-style directory: 3 DiffIDs of 2 entries each, their 6 mappings, one v1id. */
async function sourceDirectory(): Promise<string> {
  const root = join(tempDir("dm-cli-store-"), "distribution");
  const store = await FSMetadataStore.open(root, { fs: nodeFileSystem });
  const service = new V2MetadataService(store);
  for (const [d, diffID] of diffIDs.entries()) {
    for (const n of [0, 1]) await service.add(diffID, entry(d, n));
  }
  await new V1IDService(store).set("1".repeat(64), "registry.example.com", diffIDs[0]!);
  return root;
}

/** Every file under `root`, relative path → [mode, bytes]. */
function tree(root: string): Map<string, [number, string]> {
  const files = new Map<string, [number, string]>();
  for (const relative of readdirSync(root, { recursive: true }).map(String).sort()) {
    const info = statSync(join(root, relative));
    const content = info.isFile() ? readFileSync(join(root, relative), "latin1") : "<dir>";
    files.set(relative, [info.mode & 0o777, content]);
  }
  return files;
}

const summary = (copied: number[], unchanged: number[]) =>
  ["v2metadata-by-diffid", "diffid-by-digest", "v1id"].map((namespace, i) =>
    `${namespace}: ${copied[i]! + unchanged[i]!} keys, ${copied[i]} copied, 0 merged, ${
      unchanged[i]
    } unchanged\n`
  ).join("");

test("copy-store: directory → Redis → Deno KV → directory gives back dockerd's files, byte for byte", async () => {
  const source = await sourceDirectory();
  const redis = await freshRedis();
  const kv = join(tempDir("dm-cli-kv-"), "fleet.sqlite");
  const copy = join(tempDir("dm-cli-copy-"), "distribution");
  for (const [from, to] of [[source, redis.url], [redis.url, kv], [kv, copy]]) {
    const run = await cli(["copy-store", from!, to!]);
    assert.equal(run.stderr, "");
    assert.equal(run.stdout, summary([3, 6, 1], [0, 0, 0]));
    assert.equal(run.code, 0);
  }
  assert.deepEqual(tree(copy), tree(source));
  assert.deepEqual(
    await redis.store.keys("diffid-by-digest"),
    await (await FSMetadataStore.open(source, { fs: nodeFileSystem })).keys("diffid-by-digest"),
  );
});

test("copy-store: a second run writes nothing, and a run cut short is finished by the next", async () => {
  const source = await sourceDirectory();
  const redis = await freshRedis();
  // As if a first run had stopped after one list and one mapping.
  const from = await FSMetadataStore.open(source, { fs: nodeFileSystem });
  const listKey = `sha256/${diffIDs[1]!.slice(7)}`;
  await redis.store.set(
    "v2metadata-by-diffid",
    listKey,
    await from.get("v2metadata-by-diffid", listKey),
  );
  const mappingKey = `sha256/${entry(1, 0).digest.slice(7)}`;
  await redis.store.set(
    "diffid-by-digest",
    mappingKey,
    await from.get("diffid-by-digest", mappingKey),
  );

  const resumed = await cli(["copy-store", "--progress", source, redis.url]);
  assert.equal(resumed.code, 0);
  assert.equal(resumed.stdout, summary([2, 5, 1], [1, 1, 0]));
  // Not a terminal: a progress line when each namespace is done.
  assert.equal(
    resumed.stderr,
    "copy v2metadata-by-diffid: 3/3\ncopy diffid-by-digest: 6/6\ncopy v1id: 1/1\n",
  );
  const again = await cli(["copy-store", source, redis.url]);
  assert.equal(again.stdout, summary([0, 0, 0], [3, 6, 1]));
  assert.equal(again.code, 0);
});

test("copy-store: a list the destination has gains the missing entries; a different mapping is kept and reported", async () => {
  const source = await sourceDirectory();
  const redis = await freshRedis();
  const fleet = new V2MetadataService(redis.store);
  const builder = { digest: fakeDigest(0xbbb), sourceRepository: "ci.example.com/other", hmac: "" };
  await fleet.add(diffIDs[0]!, builder);
  await redis.store.set(
    "diffid-by-digest",
    `sha256/${entry(2, 1).digest.slice(7)}`,
    new TextEncoder().encode("sha256:elsewhere"),
  );

  const run = await cli(["copy-store", "--json", source, redis.url]);
  assert.equal(run.code, 1);
  const report = JSON.parse(run.stdout);
  assert.equal(report.source, source);
  assert.equal(report.destination, server.url);
  assert.deepEqual(
    report.namespaces.map((n: { copied: number; merged: number; unchanged: number }) => [
      n.copied,
      n.merged,
      n.unchanged,
    ]),
    [[2, 1, 0], [5, 0, 0], [1, 0, 0]],
  );
  assert.deepEqual(report.namespaces[1].conflicts, [`sha256/${entry(2, 1).digest.slice(7)}`]);
  assert.equal(
    run.stderr,
    `conflict: "diffid-by-digest/sha256/${
      entry(2, 1).digest.slice(7)
    }" holds another value in the destination (kept)\n`,
  );
  assert.deepEqual(await fleet.getMetadata(diffIDs[0]!), [builder, entry(0, 0), entry(0, 1)]);
  assert.equal(await fleet.getDiffID(entry(2, 1).digest), "sha256:elsewhere");
});

test("--store: ls, metadata, diffid, verify and check on Redis and on Deno KV print what they print for the directory", async () => {
  const source = await sourceDirectory();
  const redis = await freshRedis();
  const kv = join(tempDir("dm-cli-kv-"), "fleet.sqlite");
  assert.equal((await cli(["copy-store", source, redis.url])).code, 0);
  assert.equal((await cli(["copy-store", source, kv])).code, 0);
  for (
    const command of [
      ["ls"],
      ["metadata", diffIDs[2]!],
      ["diffid", entry(1, 1).digest],
      ["--no-trunc", "metadata", diffIDs[0]!],
      ["verify"],
      ["check", "--target", "docker.io/library/app2", "-u", "ci", "-p", "secret"],
    ]
  ) {
    const expected = await cli(["--root", source, ...command]);
    assert.equal(expected.code, 0, expected.stderr);
    for (const store of [redis.url, kv, `kv:${kv}`]) {
      const run = await cli(["--store", store, ...command]);
      assert.deepEqual({ ...run, maxRssKiB: 0, elapsedMs: 0 }, {
        ...expected,
        maxRssKiB: 0,
        elapsedMs: 0,
      });
    }
  }
});

test("--store: a missing key is exit status 1, a Redis server that is not there exit status 2 without its password", async () => {
  const redis = await freshRedis();
  const missing = await cli(["--store", redis.url, "diffid", fakeDigest(0x404)]);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /^No DiffID is recorded for "sha256:0+404"\nerror: Cannot get "diffid-by-digest\/sha256\/0+404"/,
  );

  const port = await freePort();
  const down = await cli(["--store", `redis://ci:s3cret@127.0.0.1:${port}`, "ls"]);
  assert.equal(down.code, 2);
  assert.equal(
    down.stderr,
    `error: Cannot connect to Redis at "redis://ci:***@127.0.0.1:${port}": connect ECONNREFUSED 127.0.0.1:${port}\n`,
  );
  assert.ok(down.elapsedMs < 10_000, `${down.elapsedMs} ms`);
});

test("--store: verify finds corrupt lists and mappings and mappings without a list through keys(), as in a directory", async () => {
  const redis = await freshRedis();
  const encode = (text: string) => new TextEncoder().encode(text);
  const [good, bad] = diffIDs.map((id) => id.replace(":", "/"));
  await redis.store.set("v2metadata-by-diffid", good!, encode("[]"));
  await redis.store.set("v2metadata-by-diffid", bad!, encode("[{"));
  await redis.store.set("diffid-by-digest", "sha256/" + "e".repeat(64), encode("nodiffid"));
  await redis.store.set("diffid-by-digest", "sha256/" + "f".repeat(64), encode(diffIDs[2]!));
  const run = await cli(["--store", redis.url, "--json", "verify"]);
  assert.equal(run.code, 1, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.root, redis.url.replace(/\?prefix=.*/, ""));
  assert.deepEqual(
    report.problems.map((p: { kind: string; relative: string }) => [p.kind, p.relative]),
    [
      ["corrupt-list", `v2metadata-by-diffid/${bad}`],
      ["corrupt-mapping", `diffid-by-digest/sha256/${"e".repeat(64)}`],
      ["missing-list", `diffid-by-digest/sha256/${"f".repeat(64)}`],
    ],
  );
  assert.equal(report.lists, 2);
  assert.equal(report.mappings, 2);
});

test("--store and copy-store refuse what they cannot do (usage errors, a missing source)", async () => {
  const redis = await freshRedis();
  const both = await cli(["--store", redis.url, "--root", "/tmp", "ls"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^error: Pass either "--root" or "--store", not both/);
  const missing = await cli(["copy-store", join(tempDir(), "absent"), redis.url]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: Cannot use store ".*absent": no such file or directory/);
  const one = await cli(["copy-store", redis.url]);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /^error: Command "copy-store" needs a source and a destination store/);
});
