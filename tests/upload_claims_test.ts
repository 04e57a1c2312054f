// Upload claims across processes (issue 27): builders started together on one shared
// metadata store and one real docker-registry on 127.0.0.1 upload each distinct layer once
// (counted in the registry's access log) and every image completes; a builder killed with
// SIGKILL mid-upload leaves a claim that another takes over once it ran out. On Redis, Deno KV
// (one SQLite file) and a directory opened with lock: true. Claims never show as metadata.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { FSMetadataStore, type MetadataStore } from "../mod.ts";
import { DenoKvMetadataStore } from "../src/kv_store.ts";
import { RedisMetadataStore } from "../src/redis_store.ts";
import { ociLayoutStore, type PushedLayer } from "../src/registry/mod.ts";
import type { PusherSpec } from "./_fleet_pusher.ts";
import { openKv } from "./_open_kv.ts";
import { connect, RedisServer } from "./_redis_server.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";
import { tempDir } from "./_adapters.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { onExit } from "./registry/_on_exit.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const KiB = 1024;
const pusher = fileURLToPath(new URL("./_fleet_pusher.ts", import.meta.url));
let registry: RegistryServer;
let redis: RedisServer;
let client: Awaited<ReturnType<typeof connect>>;

before(async () => {
  [registry, redis] = await Promise.all([
    startRegistry({ accessLog: true }),
    RedisServer.start(),
  ]);
  client = await connect(redis.url);
});

after(async () => {
  await client?.close();
  await Promise.all([registry?.stop(), redis?.stop()]);
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
  const cancel = onExit(() => child.kill("SIGKILL"));
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
      cancel();
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

/** How many uploads of each digest the registry completed (`PUT …?digest=` answered 201). */
async function completedUploads(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const request of await registry.requests()) {
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
}[] = [
  {
    name: "Redis",
    spec: () => ({ kind: "redis", url: redis.url, prefix: `fleet${++seeds}:` }),
    open: async (spec) => [
      await RedisMetadataStore.open(client, { prefix: (spec as { prefix: string }).prefix }),
      () => Promise.resolve(),
    ],
  },
  {
    name: "Deno KV",
    spec: () => ({ kind: "kv", path: join(tempDir("dm-fleet-kv-"), "metadata.sqlite") }),
    open: async (spec) => {
      const kv = await openKv((spec as { path: string }).path);
      return [await DenoKvMetadataStore.open(kv), () => Promise.resolve(kv.close())];
    },
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
      // The others mounted it from the uploader's repository, after waiting or from the
      // metadata the uploader recorded.
      const uploader = refs[outcomes.findIndex((layer) => layer.transfer === "uploaded")]!;
      for (const layer of outcomes.filter((layer) => layer.transfer !== "uploaded")) {
        assert.equal(layer.transfer, "mounted");
        assert.equal(layer.from, uploader.slice(0, uploader.lastIndexOf(":")));
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
    const claimTtlMs = 1500;
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
      // Killed before the others go: its claim runs out within one lifetime of their start.
      process.kill(victim.child.pid!, "SIGKILL");
      await victim.done;
      for (const builder of others) builder.child.stdin!.write("go\n");
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
