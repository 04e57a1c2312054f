/**
 * The registry benchmark (`npm run bench:registry`): builds the issue's image (8 gzip'd
 * layers of 1–512 MiB, 821 MiB; `--scale` shrinks it, `--big` adds a 2 GiB layer, `--layers`
 * replaces them), then for each tool — Deno, Bun and Node running the library, and skopeo when
 * installed — times a cold push, a pull and a push to a second repository (which should mount
 * every layer), and for each runtime its bare fetch-and-hash of the layers, each in its own
 * process against a fresh docker-registry on 127.0.0.1, and prints the medians with peak RSS,
 * ratios against skopeo and against the goals.
 *
 *     node --import tsx bench/registry/main.ts [--runs 3] [--scale 1] [--big] [--layers 2048]
 *       [--tools deno,bun,node,skopeo] [--node-loader bundle|tsx] [--image DIR] [--timeout 900]
 *       [--json]
 *
 * (`npm run bench:registry -- --scale 0.1` for a quick run.)
 *
 * `--image DIR` keeps the generated layout there and reuses it on the next run with the same
 * sizes; without it the layout goes to a temporary directory removed at the end. `--json`
 * ends the output with one line of JSON (the summary), for bench/main.ts to merge.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { BIG_LAYER_MIB, ISSUE_LAYERS_MIB, writeImage } from "./image.ts";
import { measure, TIME_BINARY } from "./measure.ts";
import { REGISTRY_BINARY } from "./registry_server.ts";
import { formatReport, summarize } from "./report.ts";
import { runRound, runtimeCommands, type Step, type StepResult, TOOLS } from "./rounds.ts";

const MiB = 1 << 20;
const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    scale: { type: "string", default: "1" },
    big: { type: "boolean", default: false },
    layers: { type: "string" },
    // bench/main.ts's BENCH_RUNTIMES picks the runtimes here too; skopeo always joins.
    tools: {
      type: "string",
      default: process.env.BENCH_RUNTIMES
        ? `${process.env.BENCH_RUNTIMES},skopeo`
        : TOOLS.join(","),
    },
    "node-loader": { type: "string", default: "bundle" },
    image: { type: "string" },
    timeout: { type: "string", default: "900" },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(flags.runs);
const scale = Number(flags.scale);
const timeoutSeconds = Number(flags.timeout);
if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error("--runs takes 1 to 20");
if (!(scale > 0 && scale <= 4)) throw new Error("--scale takes a number in (0, 4]");
if (!(timeoutSeconds > 0)) throw new Error("--timeout takes seconds");
const nodeLoader = flags["node-loader"];
if (nodeLoader !== "bundle" && nodeLoader !== "tsx") {
  throw new Error("--node-loader takes bundle or tsx");
}
for (const [what, path] of [["docker-registry", REGISTRY_BINARY], ["GNU time", TIME_BINARY]]) {
  if (!existsSync(path!)) throw new Error(`${what} is missing at ${path}: apt-get install it`);
}
const requested = flags.tools.split(",").filter((tool) => tool !== "");
for (const tool of requested) {
  if (!TOOLS.includes(tool)) throw new Error(`Unknown tool "${tool}": use ${TOOLS.join(", ")}`);
}
const hasSkopeo = spawnSync("skopeo", ["--version"]).status === 0;
if (requested.includes("skopeo") && !hasSkopeo) console.error("skopeo is not installed: skipped");
const tools = requested.filter((tool) => tool !== "skopeo" || hasSkopeo);
const say = (text: string) => console.error(`[bench:registry] ${text}`);

const layersMiB = flags.layers !== undefined
  ? flags.layers.split(",").map(Number)
  : [...ISSUE_LAYERS_MIB, ...(flags.big ? [BIG_LAYER_MIB] : [])];
if (!layersMiB.every((mib) => mib > 0 && mib <= 8192)) {
  throw new Error("--layers takes sizes in MiB, comma-separated, each in (0, 8192]");
}
const sizes = layersMiB.map((mib) => Math.max(1, Math.round(mib * scale * MiB)));
const imageDir = flags.image !== undefined
  ? resolve(flags.image)
  : mkdtempSync(join(tmpdir(), "registry-bench-image-"));
const bundleDir = mkdtempSync(join(tmpdir(), "registry-bench-bundle-"));
try {
  const commands = runtimeCommands(bundleDir, nodeLoader);
  let started = performance.now();
  const image = await writeImage(imageDir, sizes);
  const totalMiB = image.layers.reduce((n, layer) => n + layer.size, 0) / MiB;
  say(
    `image: ${image.layers.length} layers, ${totalMiB.toFixed(1)} MiB gzip'd, ready in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s at ${imageDir}`,
  );

  // One untimed start per runtime fills its compile caches; the second is its start-up time.
  const startup: Record<string, { wall: number; rssMiB: number }> = {};
  for (const tool of tools.filter((tool) => tool in commands)) {
    for (let i = 0; i < 2; i++) {
      const run = await measure([...commands[tool]!, "noop"], {
        cwd: process.cwd(),
        timeoutSeconds: 120,
      });
      if (run.code !== 0) throw new Error(`${tool} cannot start transfer.ts: ${run.stderr}`);
      startup[tool] = { wall: run.wall, rssMiB: run.rssMiB };
    }
  }

  // Tools take turns within a run, starting one later each run, so none always goes first.
  const rounds: Record<string, Partial<Record<Step, StepResult>>[]> = {};
  for (const tool of tools) rounds[tool] = [];
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < tools.length; i++) {
      const tool = tools[(i + run) % tools.length]!;
      started = performance.now();
      const result = await runRound(tool, image, commands, timeoutSeconds);
      rounds[tool]!.push(result);
      const shown = Object.entries(result).map(([step, r]) =>
        `${step} ${r.error ? "FAILED" : `${r.wall.toFixed(2)} s ${Math.round(r.rssMiB)} MiB`}`
      );
      say(`run ${run + 1}/${runs} ${tool}: ${shown.join(", ")}`);
    }
  }

  const summary = summarize(rounds);
  console.log(
    `Image: ${image.layers.length} layers (${
      layersMiB.map((mib) => +(mib * scale).toFixed(2)).join(", ")
    } MiB of file each), ${totalMiB.toFixed(1)} MiB gzip'd; median of ${runs} run${
      runs === 1 ? "" : "s"
    }; a fresh docker-registry on 127.0.0.1 per tool and run; Node runs ${
      nodeLoader === "bundle" ? "transfer.ts bundled by esbuild" : "through tsx"
    }.\n`,
  );
  console.log(formatReport(summary, image.layers.length));
  console.log(
    `\nStart-up (a no-op process that loads the library): ${
      Object.entries(startup).map(([tool, s]) =>
        `${tool} ${s.wall.toFixed(2)} s, ${Math.round(s.rssMiB)} MiB`
      ).join("; ")
    }.`,
  );
  if (flags.json) console.log(JSON.stringify({ scale, runs, startup, summary }));
} finally {
  rmSync(bundleDir, { recursive: true, force: true });
  if (flags.image === undefined) rmSync(imageDir, { recursive: true, force: true });
}
