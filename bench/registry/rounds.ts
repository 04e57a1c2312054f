/**
 * One measured round of one tool: cold push to a fresh registry, pull into an empty layout,
 * then a push of the same image to a second repository of that registry, which should mount
 * every layer from the first; for a runtime, also its floor: every layer fetched bare to a file
 * and hashed. Each step is its own process, measured by {@linkcode measure}, and checked: the
 * pushed manifest's digest, the pulled layers' sizes, the fetched layers' sizes and digests, the
 * blobs the registry's log says were mounted.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchImage, IMAGE_TAG } from "./image.ts";
import { measure, type Measured } from "./measure.ts";
import { type BenchRegistry, startBenchRegistry } from "./registry_server.ts";

/** The steps of a round, in order, that the goals are about. */
export const STEPS = ["push", "pull", "mount"] as const;
/**
 * A step of a round; `floor` (runtimes only, after `pull`) is no transfer of the library's: the
 * same layers fetched with a bare `fetch` to files and hashed, what the runtime itself costs to
 * move them (the memory goal is a ratio to it).
 */
export type Step = typeof STEPS[number] | "floor";

/** One step's outcome. */
export interface StepResult {
  /** Seconds the process took, start-up included. */
  wall: number;
  /** Its peak RSS in MiB. */
  rssMiB: number;
  /** Seconds the library's call took inside the process (not for skopeo). */
  call?: number;
  /** Layers the registry mounted (for `mount`; for `push`, should be 0). */
  mounted: number;
  /** Why the step failed; absent when it succeeded. */
  error?: string;
}

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const TRANSFER = join(root, "bench", "registry", "transfer.ts");

/** Every tool the benchmark knows: the runtimes, then skopeo. */
export const TOOLS: readonly string[] = ["deno", "bun", "node", "skopeo"];

/**
 * How each runtime runs a benchmark script (bench/registry/transfer.ts unless told). Node runs
 * JavaScript, as users of the npm package do (its `dist/` is compiled): the script bundled with
 * esbuild into `dir`; with `nodeLoader` `"tsx"`, through the tsx loader instead (a dev tool:
 * ~40 MiB and, loaded, up to 1.5× the call's time more).
 *
 * @param dir A directory for Node's bundle.
 * @param nodeLoader `"bundle"` or `"tsx"`.
 * @param script The script's path.
 * @returns The command per runtime, without the script's arguments.
 *
 * @example
 * ```ts ignore
 * const commands = runtimeCommands(mkdtempSync(join(tmpdir(), "bundle-")), "bundle");
 * ```
 */
export function runtimeCommands(
  dir: string,
  nodeLoader: "bundle" | "tsx",
  script: string = TRANSFER,
): RuntimeCommands {
  const commands: RuntimeCommands = {
    deno: [bin("deno"), "run", "-A", script],
    bun: [bin("bun"), script],
    node: ["node", "--import", "tsx", script],
  };
  if (nodeLoader === "bundle") {
    const name = basename(script, ".ts");
    const bundle = join(dir, `${name}.mjs`);
    const built = spawnSync(bin("esbuild"), [
      script,
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--log-level=warning",
      `--outfile=${bundle}`,
    ], { encoding: "utf8" });
    if (built.status !== 0) throw new Error(`esbuild cannot bundle ${name}.ts: ${built.stderr}`);
    commands.node = ["node", bundle];
  }
  return commands;
}

/** The command that runs transfer.ts, per runtime. */
export type RuntimeCommands = Record<string, string[]>;

interface Round {
  tool: string;
  commands: RuntimeCommands;
  image: BenchImage;
  registry: BenchRegistry;
  work: string;
}

function commandFor(round: Round, step: Step, ref: string): string[] {
  const { tool, image, work, commands } = round;
  const pulled = join(work, "pulled");
  if (step === "floor") {
    const base = `http://${round.registry.host}/v2/${
      ref.slice(ref.indexOf("/") + 1, ref.lastIndexOf(":"))
    }`;
    const urls = image.layers.map((layer) => `${base}/blobs/${layer.digest}`);
    return [...commands[tool]!, "fetch", join(work, "fetched"), ...urls];
  }
  if (tool === "skopeo") {
    const layout = `oci:${image.dir}:${IMAGE_TAG}`;
    return step === "pull"
      ? [
        "skopeo",
        "copy",
        "-q",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${pulled}:${IMAGE_TAG}`,
      ]
      : [
        "skopeo",
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--digestfile",
        join(work, `${step}.digest`),
        layout,
        `docker://${ref}`,
      ];
  }
  const [layout, metadata] = step === "pull"
    ? [pulled, join(work, "metadata-pull")]
    : [image.dir, join(work, "metadata-push")];
  return [...commands[tool]!, step === "pull" ? "pull" : "push", ref, layout, metadata];
}

/** Why a finished step's result is wrong, or `undefined`. */
function check(round: Round, step: Step, run: Measured, pushedDigest: string): string | undefined {
  if (run.code !== 0) {
    const last = run.stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-3).join(" / ");
    return `exit ${run.code}${run.code === 124 ? " (timed out)" : ""}: ${last.slice(0, 300)}`;
  }
  if (step === "floor") {
    const blobs = lastLine(run)?.blobs as { size: number; digest: string }[] | undefined;
    const ok = round.image.layers.every((layer, i) =>
      blobs?.[i]?.size === layer.size && blobs[i]!.digest === layer.digest
    );
    return ok ? undefined : `fetched ${JSON.stringify(blobs)} are not the layers`;
  }
  if (pushedDigest !== round.image.manifestDigest && step !== "pull") {
    return `pushed manifest ${pushedDigest}, expected ${round.image.manifestDigest}`;
  }
  if (step === "pull") {
    for (const layer of round.image.layers) {
      const path = join(round.work, "pulled", "blobs", "sha256", layer.digest.slice(7));
      if (!existsSync(path) || statSync(path).size !== layer.size) {
        return `pulled layout lacks ${layer.digest} (${layer.size} bytes)`;
      }
    }
  }
  return undefined;
}

/** The JSON line transfer.ts printed last, if any. */
function lastLine(run: Measured): Record<string, unknown> | undefined {
  try {
    return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    return undefined;
  }
}

function pushedDigestOf(round: Round, step: Step, run: Measured): string {
  if (round.tool === "skopeo") {
    const file = join(round.work, `${step}.digest`);
    return existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  }
  const digest = lastLine(run)?.digest;
  return typeof digest === "string" ? digest : "";
}

function callSeconds(run: Measured): number | undefined {
  const ms = lastLine(run)?.ms;
  return typeof ms === "number" ? ms / 1000 : undefined;
}

/**
 * Runs one round of `tool` against a registry of its own, removed afterwards.
 *
 * @param tool `deno`, `bun`, `node` or `skopeo`.
 * @param image The image to move.
 * @param commands From {@linkcode runtimeCommands}.
 * @param timeoutSeconds After this, a step's process group is ended and the step fails.
 * @returns Each step's result; a step after a failed one is not run.
 *
 * @example
 * ```ts ignore
 * const results = await runRound("deno", image, runtimeCommands(dir, "bundle"), 600);
 * console.log(results.push?.wall);
 * ```
 */
export async function runRound(
  tool: string,
  image: BenchImage,
  commands: RuntimeCommands,
  timeoutSeconds: number,
): Promise<Partial<Record<Step, StepResult>>> {
  const registry = await startBenchRegistry();
  const work = mkdtempSync(join(tmpdir(), "registry-bench-round-"));
  mkdirSync(join(work, "fetched"));
  const round: Round = { tool, commands, image, registry, work };
  const results: Partial<Record<Step, StepResult>> = {};
  const steps: Step[] = tool in commands ? ["push", "pull", "floor", "mount"] : [...STEPS];
  try {
    for (const step of steps) {
      const repository = step === "mount" ? "bench/second" : "bench/first";
      const ref = `${registry.host}/${repository}:${IMAGE_TAG}`;
      const run = await measure(commandFor(round, step, ref), { cwd: root, timeoutSeconds });
      await registry.settle();
      const layers = new Set(image.layers.map((layer) => layer.digest));
      const mounted = [...registry.log.mounted.get(repository) ?? []]
        .filter((digest) => layers.has(digest)).length;
      const error = check(round, step, run, pushedDigestOf(round, step, run));
      const call = callSeconds(run);
      results[step] = {
        wall: run.wall,
        rssMiB: run.rssMiB,
        mounted,
        ...(call === undefined ? {} : { call }),
        ...(error === undefined ? {} : { error }),
      };
      if (error !== undefined) break;
      // The floor's files are not needed, and page cache is better left to the next step.
      if (step === "floor") rmSync(join(work, "fetched"), { recursive: true, force: true });
    }
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return results;
}
