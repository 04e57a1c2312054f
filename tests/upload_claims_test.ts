// Upload claims across processes (issue 27): builders started together on one shared
// metadata store and one real docker-registry on 127.0.0.1 upload each distinct layer once
// (counted in the registry's access log) and every image completes; a builder killed with
// SIGKILL mid-upload leaves a claim that another takes over once it ran out. On Redis, Deno KV
// (one SQLite file) and a directory opened with lock: true. Claims never show as metadata.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { FSMetadataStore, type MetadataStore, V2MetadataService } from "../mod.ts";
import { DenoKvMetadataStore } from "../src/kv_store.ts";
import { RedisMetadataStore } from "../src/redis_store.ts";
import { ociLayoutStore, push, type PushedLayer } from "../src/registry/mod.ts";
import type { PusherSpec } from "./_fleet_pusher.ts";
import { openKv } from "./_open_kv.ts";
import { connect, RedisServer } from "./_redis_server.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";
import { tempDir } from "./_adapters.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { onExit } from "./registry/_on_exit.ts";
import { remoteStore } from "./_remote_store.ts";
import { runCli } from "./_cli.ts";
import { fakeDigest } from "./_conformance.ts";
import { Workerd } from "./worker/_workerd.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const KiB = 1024;
const pusher = fileURLToPath(new URL("./_fleet_pusher.ts", import.meta.url));
let registry: RegistryServer;
let redis: RedisServer;
let client: Awaited<ReturnType<typeof connect>>;
let workerd: Workerd;
/** Builders still running, killed should the test process end first. */
const running = new Set<ChildProcess>();
onExit(() => {
  for (const child of running) child.kill("SIGKILL");
});

before(async () => {
  [registry, redis, workerd] = await Promise.all([
    startRegistry({ accessLog: true }),
    RedisServer.start(),
    Workerd.start(tempDir("dm-fleet-do-"), true),
  ]);
  client = await connect(redis.url);
});

after(async () => {
  await client?.close();
  await Promise.all([registry?.stop(), redis?.stop(), workerd?.miniflare.dispose()]);
});

let seeds = 0;

/**
 * `count` OCI layouts, image i with three shared layers (of `sharedSizes`) and one of its
 * own: fresh bytes for each call, so no test finds another's blobs.
 */
async function fleetLayouts(count: number, sharedSizes: number[], uniqueSize: number) {
  const seed = ++seeds * 1000;
  const layouts: string[] = [];
  let shared: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = tempDir("dm-fleet-");
    const layers = [
      ...sharedSizes.map((size, n) => noise(size, seed + n)),
      noise(uniqueSize, seed + 100 + i),
    ];
    const image = await buildImage(
      await ociLayoutStore(dir),
      "1.0",
      layers.map((data, n) => [{ name: `f${n}`, data }]),
    );
    layouts.push(dir);
    if (i === 0) shared = image.layers.slice(0, sharedSizes.length).map((layer) => layer.digest);
  }
  return { layouts, shared };
}

/** A builder process, started and waiting for "go". */
interface Builder {
  child: ChildProcess;
  lines: Interface;
  next(): Promise<string>;
  done: Promise<number | null>;
  stderr(): string;
}

function startBuilder(spec: PusherSpec): Builder {
  let [command, args] = runtimeCommand(pusher, [JSON.stringify(spec)]);
  if (runtimeName === "deno") args = ["run", "-A", "--unstable-kv", ...args.slice(2)];
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr!.on("data", (chunk) => stderr += chunk);
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (line) => {
    const wake = waiting.shift();
    if (wake) wake(line);
    else queue.push(line);
  });
  const done = new Promise<number | null>((resolve) => {
    child.on("close", (code) => {
      running.delete(child);
      for (const wake of waiting.splice(0)) wake("");
      resolve(code);
    });
  });
  return {
    child,
    lines,
    next: () =>
      queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise((resolve) => waiting.push(resolve)),
    done,
    stderr: () => stderr,
  };
}

/** Starts every builder, lets them go together, and returns each one's pushed layers. */
async function runTogether(specs: PusherSpec[]): Promise<PushedLayer[][]> {
  const builders = specs.map(startBuilder);
  try {
    for (const builder of builders) assert.equal(await builder.next(), "ready", builder.stderr());
    for (const builder of builders) builder.child.stdin!.write("go\n");
    return await Promise.all(builders.map(finished));
  } finally {
    for (const builder of builders) builder.child.kill("SIGKILL");
  }
}

async function finished(builder: Builder): Promise<PushedLayer[]> {
  const line = await builder.next();
  assert.equal(await builder.done, 0, builder.stderr());
  return JSON.parse(line) as PushedLayer[];
}

/** How many uploads of each digest a registry completed (`PUT …?digest=` answered 201). */
async function completedUploads(server = registry): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const request of await server.requests()) {
    const match = /[?&]digest=(sha256(?::|%3A)[0-9a-f]{64})/i.exec(request.url);
    if (request.method !== "PUT" || request.status !== 201 || !match) continue;
    const digest = decodeURIComponent(match[1]!);
    counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

async function manifestExists(ref: string): Promise<boolean> {
  const [host, rest] = [ref.slice(0, ref.indexOf("/")), ref.slice(ref.indexOf("/") + 1)];
  const [name, tag] = rest.split(":");
  const response = await fetch(`http://${host}/v2/${name}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  return response.ok;
}

/** The stores under test: how a builder opens one, and how the test reads it. */
const stores: {
  name: string;
  spec(): PusherSpec["store"];
  open(spec: PusherSpec["store"]): Promise<[MetadataStore, () => Promise<void>]>;
  /** How the CLI names it (`--store`, `copy-store`), when it can. */
  location?(spec: PusherSpec["store"]): string;
}[] = [
  {
    name: "Redis",
    spec: () => ({ kind: "redis", url: redis.url, prefix: `fleet${++seeds}:` }),
    open: async (spec) => [
      await RedisMetadataStore.open(client, { prefix: (spec as { prefix: string }).prefix }),
      () => Promise.resolve(),
    ],
    location: (spec) => `${redis.url}?prefix=${(spec as { prefix: string }).prefix}`,
  },
  {
    name: "Deno KV",
    spec: () => ({ kind: "kv", path: join(tempDir("dm-fleet-kv-"), "metadata.sqlite") }),
    open: async (spec) => {
      const kv = await openKv((spec as { path: string }).path);
      return [await DenoKvMetadataStore.open(kv), () => Promise.resolve(kv.close())];
    },
    location: (spec) => `kv:${(spec as { path: string }).path}`,
  },
  {
    name: "FS store, lock: true",
    spec: () => {
      const root = tempDir("dm-fleet-fs-");
      mkdirSync(root, { recursive: true });
      return { kind: "fs", root };
    },
    open: async (spec) => [
      await FSMetadataStore.open((spec as { root: string }).root, { lock: true }),
      () => Promise.resolve(),
    ],
    location: (spec) => (spec as { root: string }).root,
  },
  {
    name: "a Durable Object in workerd",
    spec: () => ({ kind: "durable-object", url: workerd.url.href, object: `fleet${++seeds}` }),
    open: (spec) =>
      Promise.resolve([
        remoteStore(workerd.url.href, (spec as { object: string }).object),
        () => Promise.resolve(),
      ]),
  },
];

for (const backend of stores) {
  test(`push on ${backend.name}: 8 builders started together upload each layer once`, async () => {
    const { layouts, shared } = await fleetLayouts(8, [96 * KiB, 192 * KiB, 384 * KiB], 48 * KiB);
    const store = backend.spec();
    const refs = layouts.map((_, i) => `${registry.host}/fleet${seeds}/app${i}:1.0`);
    const results = await runTogether(
      layouts.map((layout, i) => ({ store, layout, ref: refs[i]! })),
    );
    const uploads = await completedUploads();
    for (const [n, digest] of shared.entries()) {
      const outcomes = JSON.stringify(results.map((layers) => layers[n]));
      assert.equal(uploads.get(digest), 1, `uploads of ${digest}: ${outcomes}`);
    }
    for (const [i, layers] of results.entries()) {
      assert.equal(layers.length, 4);
      assert.equal(layers[3]!.transfer, "uploaded");
      assert.equal(uploads.get(layers[3]!.digest), 1);
      assert.ok(await manifestExists(refs[i]!), refs[i]!);
    }
    for (const [n, digest] of shared.entries()) {
      const outcomes = results.map((layers) => layers[n]!);
      assert.ok(outcomes.every((layer) => layer.digest === digest));
      assert.equal(outcomes.filter((layer) => layer.transfer === "uploaded").length, 1);
      // The others mounted it: from the uploader's repository after waiting for its claim, or
      // from another builder's that the metadata named.
      const names = refs.map((ref) => ref.slice(0, ref.lastIndexOf(":")));
      for (const [i, layer] of outcomes.entries()) {
        if (layer.transfer === "uploaded") continue;
        assert.equal(layer.transfer, "mounted");
        assert.ok(names.includes(layer.from!) && layer.from !== names[i], String(layer.from));
      }
    }
    const [opened, close] = await backend.open(store);
    try {
      for (const namespace of ["v2metadata-by-diffid", "diffid-by-digest", "v1id"]) {
        for (const key of await opened.keys!(namespace)) assert.ok(!key.includes("claims"), key);
      }
      // Every claim was marked done: none is held by an upload.
      for (const digest of shared) {
        const claim = await opened.claims!.get(`${registry.host}/${digest.replace(":", "/")}`);
        assert.equal(claim === null || JSON.parse(claim.note).done, true);
      }
    } finally {
      await close();
    }
  });

  test(`push on ${backend.name}: a builder killed mid-upload is taken over once its claim ran out`, async () => {
    const { layouts, shared } = await fleetLayouts(4, [64 * KiB, 128 * KiB, 256 * KiB], 32 * KiB);
    const store = backend.spec();
    // Renewed every 2 s, so the claim outlives the kill by 4 s at least: long enough for the
    // others to find it live, on a loaded machine too.
    const claimTtlMs = 6000;
    const refs = layouts.map((_, i) => `${registry.host}/fleet${seeds}/app${i}:1.0`);
    // Builder 0 claims every layer and hangs in the upload of the biggest: then SIGKILL.
    const victim = startBuilder({
      store,
      layout: layouts[0]!,
      ref: refs[0]!,
      claimTtlMs,
      stall: shared[2]!.slice("sha256:".length),
    });
    try {
      assert.equal(await victim.next(), "ready", victim.stderr());
      victim.child.stdin!.write("go\n");
      assert.equal(await victim.next(), "stalled", victim.stderr());
      const others = layouts.slice(1).map((layout, i) =>
        startBuilder({ store, layout, ref: refs[i + 1]!, claimTtlMs })
      );
      for (const builder of others) assert.equal(await builder.next(), "ready", builder.stderr());
      // Killed as the others go: its claim runs out within one lifetime of their start, so
      // they wait for it rather than give up (a wait lasts one lifetime at least).
      process.kill(victim.child.pid!, "SIGKILL");
      for (const builder of others) builder.child.stdin!.write("go\n");
      await victim.done;
      const results = await Promise.all(others.map(finished));
      const uploads = await completedUploads();
      assert.equal(uploads.get(shared[2]!), 1);
      const outcomes = results.map((layers) => layers[2]!);
      const uploaded = outcomes.filter((layer) => layer.transfer === "uploaded");
      assert.equal(uploaded.length, 1);
      // The one that uploaded it had waited for the dead builder's claim.
      assert.equal(uploaded[0]!.waited, true);
      for (const [i, ref] of refs.slice(1).entries()) {
        assert.ok(await manifestExists(ref), ref);
        assert.equal(results[i]!.length, 4);
      }
    } finally {
      victim.child.kill("SIGKILL");
    }
  });
}

/** Every file under `dir`, relative. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

for (const backend of stores) {
  test(`${backend.name}: a live claim is no metadata: keys() and copy-store pass it over`, async () => {
    const spec = backend.spec();
    const [store, close] = await backend.open(spec);
    const key = `${registry.host}/sha256/${"c".repeat(64)}`;
    try {
      assert.equal(await store.claims!.claim(key, { owner: "me", note: "{}" }, 60_000), null);
      await new V2MetadataService(store).add(fakeDigest(1), {
        digest: fakeDigest(2),
        sourceRepository: `${registry.host}/team/app`,
        hmac: "",
      });
      assert.deepEqual(await store.keys!("v2metadata-by-diffid"), [
        `sha256/${fakeDigest(1).slice(7)}`,
      ]);
      assert.deepEqual(await store.keys!("diffid-by-digest"), [`sha256/${fakeDigest(2).slice(7)}`]);
      assert.deepEqual(await store.keys!("v1id"), []);
      if (backend.location) {
        const cli = (args: string[]) =>
          runCli(args, { denoPermissions: ["--allow-write", "--allow-net", "--unstable-kv"] });
        // The CLI's listings show no claim (no temp file left by a write, for a directory).
        const verify = await cli(["--store", backend.location(spec), "verify"]);
        assert.equal(verify.code, 0, verify.stdout + verify.stderr);
        assert.doesNotMatch(verify.stdout, /claims|c{64}/);
        const destination = tempDir("dm-fleet-copy-");
        const run = await cli(["copy-store", backend.location(spec), destination]);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(filesUnder(destination).sort(), [
          `diffid-by-digest/sha256/${fakeDigest(2).slice(7)}`,
          `v2metadata-by-diffid/sha256/${fakeDigest(1).slice(7)}`,
        ]);
      }
      // Still held, and still the owner's.
      assert.deepEqual(await store.claims!.get(key), { owner: "me", note: "{}" });
      assert.equal(await store.claims!.claim(key, { owner: "you", note: "" }, 1000) !== null, true);
    } finally {
      await close();
    }
  });
}

test("push on Redis: a failed upload releases its claim at once, and a waiter uploads", async () => {
  const { layouts, shared } = await fleetLayouts(3, [64 * KiB, 128 * KiB, 256 * KiB], 32 * KiB);
  const store = stores[0]!.spec();
  // A claim that would outlive the test's waiters by far: only its release lets them on.
  const claimTtlMs = 60_000;
  const refs = layouts.map((_, i) => `${registry.host}/fleet${seeds}/app${i}:1.0`);
  const failing = startBuilder({
    store,
    layout: layouts[0]!,
    ref: refs[0]!,
    claimTtlMs,
    fail: shared[2]!.slice("sha256:".length),
  });
  const others = layouts.slice(1).map((layout, i) =>
    startBuilder({ store, layout, ref: refs[i + 1]!, claimTtlMs })
  );
  try {
    for (const builder of [failing, ...others]) {
      assert.equal(await builder.next(), "ready", builder.stderr());
    }
    failing.child.stdin!.write("go\n");
    assert.equal(await failing.next(), "failing", failing.stderr());
    for (const builder of others) builder.child.stdin!.write("go\n");
    const results = await Promise.all(others.map(finished));
    assert.notEqual(await failing.done, 0);
    assert.equal((await completedUploads()).get(shared[2]!), 1);
    const outcomes = results.map((layers) => layers[2]!);
    assert.deepEqual(outcomes.map((layer) => layer.waited), [true, true]);
    assert.deepEqual(outcomes.map((layer) => layer.transfer).sort(), ["mounted", "uploaded"]);
  } finally {
    failing.child.kill("SIGKILL");
  }
});

test("copy on Redis: 4 builders copying images that share layers upload each layer once", async () => {
  const destination = await startRegistry({ accessLog: true });
  try {
    const { layouts, shared } = await fleetLayouts(4, [96 * KiB, 192 * KiB, 384 * KiB], 48 * KiB);
    const sources = await Promise.all(layouts.map(async (layout, i) => {
      const ref = `${registry.host}/copy${seeds}/app${i}:1.0`;
      await push(ref, await ociLayoutStore(layout), { plainHttp: true });
      return ref;
    }));
    const store = stores[0]!.spec();
    const refs = sources.map((_, i) => `${destination.host}/fleet${seeds}/app${i}:1.0`);
    const results = await runTogether(
      sources.map((source, i) => ({ store, layout: layouts[i]!, ref: refs[i]!, source })),
    );
    const uploads = await completedUploads(destination);
    for (const digest of shared) assert.equal(uploads.get(digest), 1, `uploads of ${digest}`);
    for (const [n] of shared.entries()) {
      const outcomes = results.map((layers) => layers[n]!);
      assert.equal(outcomes.filter((layer) => layer.transfer === ("copied" as string)).length, 1);
      assert.ok(outcomes.every((layer) => ["copied", "mounted"].includes(layer.transfer)));
    }
  } finally {
    await destination.stop();
  }
});

test("push reports each layer: uploaded, then mounted from the first repository, then there already", async () => {
  const { layouts } = await fleetLayouts(1, [32 * KiB, 64 * KiB], 16 * KiB);
  const layout = await ociLayoutStore(layouts[0]!);
  const metadataService = new V2MetadataService(await FSMetadataStore.open(tempDir("dm-push-")));
  const config = { plainHttp: true, metadataService };
  const first = `${registry.host}/report${seeds}/first`;
  const second = `${registry.host}/report${seeds}/second`;
  const transfers = (layers: PushedLayer[]) =>
    layers.map(({ transfer, from, waited }) => ({ transfer, from, waited }));
  const uploaded = await push(`${first}:1.0`, layout, config);
  assert.deepEqual(
    transfers(uploaded.layers),
    Array(3).fill({ transfer: "uploaded", from: undefined, waited: undefined }),
  );
  const mounted = await push(`${second}:1.0`, layout, config);
  assert.deepEqual(
    transfers(mounted.layers),
    Array(3).fill({ transfer: "mounted", from: first, waited: undefined }),
  );
  assert.equal(mounted.digest, uploaded.digest);
  const again = await push(`${first}:1.0`, layout, config);
  assert.deepEqual(
    transfers(again.layers),
    Array(3).fill({ transfer: "exists", from: undefined, waited: undefined }),
  );
  assert.deepEqual(
    again.layers.map((layer) => layer.digest),
    uploaded.layers.map((layer) => layer.digest),
  );
});
