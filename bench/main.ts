// Runs every benchmark (Deno, Bun, Node, Docker's Go store when built, memory) and prints one
// side-by-side markdown table with ratios: `deno task bench` or `npm run bench` (both run
// this file with Deno). Every case runs in bench/interleaved.ts, a group per process, on each
// runtime alike.
// GOREF_BENCH=<path> points at goref-bench (default /tmp/goref/bin/goref-bench);
// BENCH_RUNTIMES=deno,bun,node picks the runtimes; BENCH_GROUPS=<regexp> the groups whose names
// it matches, e.g. BENCH_GROUPS='^(get|set) ' (the first group is measured anyway, as its run
// names the others; the memory count and Go's rows come only with the groups they belong to).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sizeLabel, SIZES, type Target } from "./cases.ts";

interface Result {
  runtime: string;
  group: string;
  name: string;
  baseline: boolean;
  target?: Target;
  opsPerSec: number;
}

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const runtimes = (process.env.BENCH_RUNTIMES ?? "deno,bun,node").split(",");
const goref = process.env.GOREF_BENCH ?? "/tmp/goref/bin/goref-bench";
const filter = process.env.BENCH_GROUPS;
const selected = (group: string) => !filter || new RegExp(filter).test(group);

// Deno.Command, not node:child_process: Deno's spawnSync takes the deno binary for a Node
// script and tries to run it as one.
function exec(command: string, args: string[]): string {
  console.error(`$ ${[command, ...args].join(" ")}`);
  const run = new Deno.Command(command, { args, cwd: root, stdout: "piped", stderr: "piped" })
    .outputSync();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  if (!run.success) throw new Error(`${command} failed: ${text(run.stderr)}`);
  return text(run.stdout);
}

const results: Result[] = [];
/** How each runtime runs a TypeScript file, and its flags for a forced GC. */
const commands: Record<string, { run: string[]; gc: string[] }> = {
  deno: { run: [bin("deno"), "run", "-A"], gc: ["--v8-flags=--expose-gc"] },
  bun: { run: [bin("bun")], gc: [] }, // memory.ts collects with Bun.gc
  node: { run: ["node", "--import", "tsx"], gc: ["--expose-gc"] },
};
const memory: Record<string, number> = {};
for (const runtime of runtimes) {
  const command = commands[runtime];
  if (!command) throw new Error(`Unknown runtime "${runtime}": use deno, bun or node`);
  const run = (...args: string[]) => exec(command.run[0]!, [...command.run.slice(1), ...args]);
  // A process per group (see interleaved.ts); the first names the others. Each prints its
  // results as its last line.
  const measure = (...group: string[]) =>
    JSON.parse(run("bench/interleaved.ts", ...group).trim().split("\n").at(-1)!);
  const first = measure();
  for (const group of first.groups.filter(selected)) {
    const { results: measured } = group === first.groups[0] ? first : measure(group);
    for (const r of measured) results.push({ runtime, ...r, opsPerSec: (r.ops * 1e9) / r.avgNs });
  }
  if (!filter) memory[runtime] = JSON.parse(run(...command.gc, "bench/memory.ts")).bytesPerEntry;
}

// Docker's own Go FSMetadataStore, same key shape, sizes and key count, when built. One run
// times 2000 calls (~15 ms of gets), so the median of GO_RUNS runs is taken.
const GO_RUNS = 5;
const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
const go: Record<string, number> = {};
if (
  existsSync(goref) &&
  SIZES.some((size) => ["get", "set"].some((op) => selected(`${op} ${sizeLabel(size)}`)))
) {
  for (const size of SIZES) {
    const runs: { get_ops_per_sec: number; set_ops_per_sec: number }[] = [];
    for (let i = 0; i < GO_RUNS; i++) {
      const dir = mkdtempSync(join(tmpdir(), "goref-"));
      try {
        runs.push(JSON.parse(
          exec(goref, ["-dir", join(dir, "s"), "-n", "2000", "-keys", "256", "-size", `${size}`]),
        ));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    go[`get ${sizeLabel(size)}`] = median(runs.map((run) => run.get_ops_per_sec));
    go[`set ${sizeLabel(size)}`] = median(runs.map((run) => run.set_ops_per_sec));
  }
}

// How far this disk lets durable writes overlap at all, with no runtime in the way: Docker's
// write sequence on 1 and on 16 goroutines (bench/fsync_ceiling.go), when Go is installed.
for (const size of SIZES.filter((size) => selected(`set ${sizeLabel(size)}`))) {
  const dir = mkdtempSync(join(tmpdir(), "fsync-ceiling-"));
  try {
    const { one, sixteen } = JSON.parse(
      exec("go", ["run", "bench/fsync_ceiling.go", "-dir", dir, "-size", `${size}`]),
    );
    const group = `set ${sizeLabel(size)}`;
    results.push(
      { runtime: "go", group, name: "raw sequence, 1 goroutine", baseline: true, opsPerSec: one },
      {
        runtime: "go",
        group,
        name: "raw sequence, 16 goroutines",
        baseline: false,
        opsPerSec: sixteen,
      },
    );
  } catch (error) {
    console.error(`No Go fsync ceiling: ${error}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const hasGo = Object.keys(go).length > 0;
const lines = [
  `| runtime | group | case | ops/s | × baseline${hasGo ? " | × Go" : ""} |`,
  `| --- | --- | --- | ---: | ---: |${hasGo ? " ---: |" : ""}`,
];
for (const r of results) {
  const base = results.find((b) => b.runtime === r.runtime && b.group === r.group && b.baseline);
  const ratio = base ? (r.opsPerSec / base.opsPerSec).toFixed(2) : "";
  const vsGo = go[r.group] && r.name.startsWith("FSMetadataStore") && !r.name.includes("memory")
    ? (r.opsPerSec / go[r.group]!).toFixed(2)
    : "";
  lines.push(
    `| ${r.runtime} | ${r.group} | ${r.baseline ? `**${r.name}**` : r.name} | ${
      fmt(r.opsPerSec)
    } | ${ratio} |${hasGo ? ` ${vsGo} |` : ""}`,
  );
}
for (const [group, ops] of Object.entries(go)) {
  lines.push(
    `| go | ${group} | Docker FSMetadataStore (goref-bench, median of ${GO_RUNS}) | ${
      fmt(ops)
    } | |${hasGo ? " 1.00 |" : ""}`,
  );
}
console.log(lines.join("\n"));

// Issue 13's targets: each case against the physical floor it names, in this same run.
const targetLines = [
  "",
  "| runtime | group | case | against | target | measured | met |",
  "| --- | --- | --- | --- | ---: | ---: | :---: |",
];
for (const r of results) {
  if (!r.target) continue;
  const { against, atLeast, atMost } = r.target;
  const floor = results.find((b) =>
    b.runtime === r.runtime && b.group === r.group && b.name === against
  );
  if (!floor) throw new Error(`No case "${against}" in ${r.runtime} ${r.group}`);
  // atLeast compares throughput, atMost time per operation.
  const [target, measured, met] = atLeast !== undefined
    ? [
      `≥ ${atLeast}× ops/s`,
      r.opsPerSec / floor.opsPerSec,
      r.opsPerSec / floor.opsPerSec >= atLeast,
    ]
    : [
      `≤ ${atMost}× time`,
      floor.opsPerSec / r.opsPerSec,
      floor.opsPerSec / r.opsPerSec <= atMost!,
    ];
  targetLines.push(
    `| ${r.runtime} | ${r.group} | ${r.name} | ${against} | ${target} | ${measured.toFixed(2)} | ${
      met ? "yes" : "**no**"
    } |`,
  );
}
console.log(targetLines.join("\n"));
if (!filter) {
  console.log(
    `\nMemory, 100k entries (71-byte values) in MemoryFileSystem: ${
      Object.entries(memory).map(([rt, bytes]) => `${rt} ${Math.round(bytes)} B/entry`).join(", ")
    }`,
  );
}
