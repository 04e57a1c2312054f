// The fleet benchmark, in two parts (both unless one is named):
// - adds: V2MetadataService.add() per second from 1, 4 and 8 processes, on one DiffID (every
//   writer rewrites the same list) and on disjoint DiffIDs, for each shared backend:
//   FSMetadataStore with lock: true, Deno KV on SQLite, and Redis (a redis-server started
//   here on 127.0.0.1, appendfsync always and everysec);
// - push: the cold start of 8 builders pushing at once through one Redis store, with upload
//   claims and with claims: false, on loopback and through a 50 MiB/s proxy (_fleet_push.ts).
// Prints markdown tables. Processes run on the runtime running this file:
//   deno run -A --unstable-kv bench/fleet.ts [adds|push]     (npm run bench:fleet)
//   node --import tsx bench/fleet.ts   |   bun bench/fleet.ts
// FLEET_SECONDS (default 3) is how long each cell of adds runs; FLEET_RUNS (default 3) how
// many times each case of push runs.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { coldStart } from "./_fleet_push.ts";

const durationMs = Number(process.env.FLEET_SECONDS ?? 3) * 1000;
const runs = Number(process.env.FLEET_RUNS ?? 3);
const parts = process.argv.slice(2);
const addsWanted = parts.length === 0 || parts.includes("adds");
const pushWanted = parts.length === 0 || parts.includes("push");
const PROCESSES = [1, 4, 8];
const MODES = ["one", "disjoint"] as const;
const worker = fileURLToPath(new URL("./_fleet_worker.ts", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "dm-fleet-bench-"));

/** The command that runs a TypeScript file on this runtime. */
function command(script: string, args: string[]): [string, string[]] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), ["run", "-A", "--unstable-kv", script, ...args]];
  if ((process.versions as { bun?: string }).bun) return [process.execPath, [script, ...args]];
  return [process.execPath, ["--import", "tsx", script, ...args]];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server with its files in the scratch dir; resolves once it serves. */
async function startRedis(fsync: "always" | "everysec"): Promise<[ChildProcess, string]> {
  const port = await freePort();
  const dir = mkdtempSync(join(scratch, "redis-"));
  const child = spawn("/usr/bin/redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    fsync,
    "--logfile",
    "",
  ], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    let log = "";
    child.stdout!.on("data", (chunk) => {
      log += chunk;
      if (log.includes("Ready to accept connections")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${log}`)));
  });
  return [child, `redis://127.0.0.1:${port}`];
}

/** Starts `count` writers on `location`, lets them go together, and sums their adds. */
async function cell(location: string, mode: string, count: number): Promise<number> {
  const children = Array.from({ length: count }, (_, i) => {
    const [cmd, args] = command(worker, [location, mode, String(i), String(durationMs)]);
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout! });
    const next = () => new Promise<string>((resolve) => lines.once("line", resolve));
    return { child, next };
  });
  await Promise.all(children.map(({ next }) => next())); // every writer has opened the store
  const reports = children.map(({ next }) => next());
  for (const { child } of children) child.stdin!.write("go\n");
  let adds = 0;
  for (const report of await Promise.all(reports)) adds += JSON.parse(report).adds;
  await Promise.all(
    children.map(({ child }) =>
      child.exitCode === null ? new Promise((resolve) => child.once("exit", resolve)) : null
    ),
  );
  return adds / (durationMs / 1000);
}

const redisAlways = await startRedis("always");
const redisEverysec = await startRedis("everysec");
let cells = 0;
const backends: { name: string; location: () => string }[] = [
  { name: "FS store, lock: true", location: () => join(scratch, `fs-${++cells}`) },
  { name: "Deno KV (SQLite)", location: () => join(scratch, `kv-${++cells}.sqlite`) },
  { name: "Redis, appendfsync always", location: () => `${redisAlways[1]}?prefix=c${++cells}:` },
  {
    name: "Redis, appendfsync everysec",
    location: () => `${redisEverysec[1]}?prefix=c${++cells}:`,
  },
];

const rows: string[] = [];
let coldStartTable: string | undefined;
try {
  for (const backend of addsWanted ? backends : []) {
    for (const mode of MODES) {
      const rates: string[] = [];
      for (const count of PROCESSES) {
        const rate = await cell(backend.location(), mode, count);
        console.error(`${backend.name}, ${mode} DiffID, ${count} processes: ${rate.toFixed(0)}/s`);
        rates.push(rate.toFixed(0));
      }
      rows.push(
        `| ${backend.name} | ${mode === "one" ? "one" : "disjoint"} | ${rates.join(" | ")} |`,
      );
    }
  }
  if (pushWanted) coldStartTable = await coldStart(command, redisEverysec[1], runs);
} finally {
  for (const [child] of [redisAlways, redisEverysec]) child.kill("SIGTERM");
  rmSync(scratch, { recursive: true, force: true });
}
const runtime = "Deno" in globalThis ? "deno" : process.versions.bun ? "bun" : "node";
if (coldStartTable !== undefined) console.log(`${coldStartTable}\n\n(${runtime})\n`);
if (addsWanted) {
  console.log(
    `adds per second (${runtime}, ${
      durationMs / 1000
    } s per cell, one add at a time per process)\n`,
  );
  console.log(`| backend | DiffIDs | ${PROCESSES.map((n) => `${n} proc`).join(" | ")} |`);
  console.log(`| --- | --- | ${PROCESSES.map(() => "---:").join(" | ")} |`);
  for (const row of rows) console.log(row);
}
