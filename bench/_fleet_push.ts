// The fleet benchmark's cold start (issue 27): 8 builder processes (tests/_fleet_pusher.ts)
// push 8 images sharing 3 base layers (2, 4 and 8 MiB) plus one 1 MiB layer each, all at
// the same moment, through one RedisMetadataStore that starts empty, to a docker-registry
// that starts empty: with upload claims and with `claims: false`, straight on loopback and
// through a proxy on 127.0.0.1 that limits the bandwidth to 50 MiB/s each way. Measures the
// layer bytes uploaded (completed uploads in the registry's access log, times their sizes)
// over the distinct layer bytes, and the fleet's wall time from "go" to the last push done.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ociLayoutStore } from "../src/registry/mod.ts";
import type { PusherSpec } from "../tests/_fleet_pusher.ts";
import { buildImage, noise } from "../tests/registry/_image_builder.ts";
import { type RegistryServer, startRegistry } from "../tests/registry/_registry_server.ts";

const MiB = 1 << 20;
const BUILDERS = 8;
const SHARED_MIB = [2, 4, 8];
const UNIQUE_MIB = 1;
const PROXY_BYTES_PER_SECOND = 50 * MiB;
const pusher = fileURLToPath(new URL("../tests/_fleet_pusher.ts", import.meta.url));

/** How the benchmark starts a TypeScript file on its runtime. */
export type Command = (script: string, args: string[]) => [string, string[]];

/** One case's numbers for one run. */
interface Run {
  seconds: number;
  uploadedBytes: number;
  uploads: number;
  mounts: number;
}

/** The 8 images in OCI layouts, and the sizes of their layers by digest. */
async function writeImages(scratch: string) {
  const sizes = new Map<string, number>();
  const layouts: string[] = [];
  for (let i = 0; i < BUILDERS; i++) {
    const dir = mkdtempSync(join(scratch, "layout-"));
    const layers = [
      ...SHARED_MIB.map((mib, n) => noise(mib * MiB, 7000 + n)),
      noise(UNIQUE_MIB * MiB, 7100 + i),
    ];
    const image = await buildImage(
      await ociLayoutStore(dir),
      "1.0",
      layers.map((data, n) => [{ name: `f${n}`, data }]),
    );
    for (const layer of image.layers) sizes.set(layer.digest, layer.size);
    layouts.push(dir);
  }
  return { layouts, sizes };
}

/**
 * A TCP proxy to `port` that sends at most `bytesPerSecond` each way, over all its
 * connections together (one shared link), pausing a side while its bytes wait for the link.
 */
function throttlingProxy(port: number, bytesPerSecond: number): Promise<Server> {
  const links = [0, 0]; // when each direction's link is free again, in ms
  const pipe = (from: Socket, to: Socket, direction: number) => {
    const untilFree = () => Math.max(0, links[direction]! - performance.now());
    from.on("data", (chunk: Uint8Array) => {
      const start = Math.max(performance.now(), links[direction]!);
      links[direction] = start + chunk.length / bytesPerSecond * 1000;
      from.pause();
      setTimeout(() => {
        to.write(chunk);
        from.resume();
      }, untilFree());
    });
    from.on("end", () => setTimeout(() => to.end(), untilFree()));
    from.on("error", () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connectTcp(port, "127.0.0.1");
    pipe(client, upstream, 0);
    pipe(upstream, client, 1);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Starts the builders, lets them go together, and waits for every push. */
async function fleet(command: Command, specs: PusherSpec[]): Promise<{
  seconds: number;
  layers: { transfer: string }[][];
}> {
  const children = specs.map((spec) => {
    const [cmd, args] = command(pusher, [JSON.stringify(spec)]);
    const child: ChildProcess = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout! });
    const next = () => new Promise<string>((resolve) => lines.once("line", resolve));
    return { child, next };
  });
  await Promise.all(children.map(({ next }) => next())); // every builder is "ready"
  const results = children.map(({ next }) => next());
  const start = performance.now();
  for (const { child } of children) child.stdin!.write("go\n");
  const layers = (await Promise.all(results)).map((line) => JSON.parse(line));
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(
    children.map(({ child }) =>
      child.exitCode === null ? new Promise((resolve) => child.once("exit", resolve)) : null
    ),
  );
  return { seconds, layers };
}

/** Bytes of the layer uploads the registry completed (`PUT …?digest=` answered 201). */
async function uploadedBytes(registry: RegistryServer, sizes: Map<string, number>) {
  let bytes = 0;
  for (const request of await registry.requests()) {
    const match = /[?&]digest=(sha256(?::|%3A)[0-9a-f]{64})/i.exec(request.url);
    if (request.method !== "PUT" || request.status !== 201 || !match) continue;
    bytes += sizes.get(decodeURIComponent(match[1]!)) ?? 0;
  }
  return bytes;
}

let prefixes = 0;

async function oneRun(
  command: Command,
  redisUrl: string,
  layouts: string[],
  sizes: Map<string, number>,
  claims: boolean,
  throttled: boolean,
): Promise<Run> {
  const registry = await startRegistry({ accessLog: true });
  const proxy = throttled
    ? await throttlingProxy(Number(new URL(registry.url).port), PROXY_BYTES_PER_SECOND)
    : undefined;
  try {
    const host = proxy ? `127.0.0.1:${(proxy.address() as { port: number }).port}` : registry.host;
    const store = { kind: "redis" as const, url: redisUrl, prefix: `cold${++prefixes}:` };
    const { seconds, layers } = await fleet(
      command,
      layouts.map((layout, i) => ({
        store,
        layout,
        ref: `${host}/fleet/app${i}:1.0`,
        ...(claims ? {} : { noClaims: true }),
      })),
    );
    const all = layers.flat();
    return {
      seconds,
      uploadedBytes: await uploadedBytes(registry, sizes),
      uploads: all.filter((layer) => layer.transfer === "uploaded").length,
      mounts: all.filter((layer) => layer.transfer === "mounted").length,
    };
  } finally {
    proxy?.close();
    await registry.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Runs every case `runs` times, alternating, and returns a markdown table of the medians.
 *
 * @param command How to start the builders on this runtime.
 * @param redisUrl The Redis server the builders share (a fresh prefix per run).
 * @param runs Runs per case.
 */
export async function coldStart(command: Command, redisUrl: string, runs: number) {
  const scratch = mkdtempSync(join(tmpdir(), "dm-fleet-cold-"));
  try {
    return await measureCases(command, redisUrl, runs, await writeImages(scratch));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function measureCases(
  command: Command,
  redisUrl: string,
  runs: number,
  { layouts, sizes }: Awaited<ReturnType<typeof writeImages>>,
): Promise<string> {
  const distinct = [...sizes.values()].reduce((total, size) => total + size, 0);
  const cases = [
    { link: "loopback", throttled: false, claims: true },
    { link: "loopback", throttled: false, claims: false },
    { link: "proxy, 50 MiB/s", throttled: true, claims: true },
    { link: "proxy, 50 MiB/s", throttled: true, claims: false },
  ];
  const results = cases.map(() => [] as Run[]);
  for (let run = 0; run < runs; run++) {
    for (const [i, { throttled, claims, link }] of cases.entries()) {
      const result = await oneRun(command, redisUrl, layouts, sizes, claims, throttled);
      results[i]!.push(result);
      console.error(
        `${link}, claims ${claims ? "on" : "off"}, run ${run + 1}: ${
          result.seconds.toFixed(2)
        } s, ` +
          `${(result.uploadedBytes / distinct).toFixed(2)}× the distinct bytes`,
      );
    }
  }
  const rows = [
    `cold start: ${BUILDERS} builders, shared layers of ${SHARED_MIB.join(", ")} MiB + ` +
    `${UNIQUE_MIB} MiB each, one Redis store, median of ${runs} runs\n`,
    "| link | claims | layer uploads | mounts | bytes uploaded / distinct | wall time (s) |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ];
  for (const [i, { link, claims }] of cases.entries()) {
    const runsOf = results[i]!;
    rows.push(
      `| ${link} | ${claims ? "on" : "`claims: false`"} | ` +
        `${median(runsOf.map((r) => r.uploads))} | ${median(runsOf.map((r) => r.mounts))} | ` +
        `${(median(runsOf.map((r) => r.uploadedBytes)) / distinct).toFixed(2)}× | ` +
        `${median(runsOf.map((r) => r.seconds)).toFixed(2)} |`,
    );
  }
  return rows.join("\n");
}
