/**
 * One measured round of one tool: cold push to a fresh registry, pull into an empty layout,
 * then a push of the same image to a second repository of that registry, which should mount
 * every layer from the first. Each step is its own process, measured by {@linkcode measure},
 * and checked: the pushed manifest's digest, the pulled layers' sizes, the blobs the
 * registry's log says were mounted.
 *
 * @module
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchImage, IMAGE_TAG } from "./image.ts";
import { measure, type Measured } from "./measure.ts";
import { type BenchRegistry, startBenchRegistry } from "./registry_server.ts";

/** The steps of a round, in order. */
export const STEPS = ["push", "pull", "mount"] as const;
/** A step of a round. */
export type Step = typeof STEPS[number];

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

/** How each runtime runs bench/registry/transfer.ts. */
export const RUNTIME_COMMANDS: Record<string, string[]> = {
  deno: [bin("deno"), "run", "-A", TRANSFER],
  bun: [bin("bun"), TRANSFER],
  node: ["node", "--import", "tsx", TRANSFER],
};

/** Every tool the benchmark knows: the runtimes, then skopeo. */
export const TOOLS: readonly string[] = [...Object.keys(RUNTIME_COMMANDS), "skopeo"];

interface Round {
  tool: string;
  image: BenchImage;
  registry: BenchRegistry;
  work: string;
}

function commandFor(round: Round, step: Step, ref: string): string[] {
  const { tool, image, work } = round;
  const pulled = join(work, "pulled");
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
  return [...RUNTIME_COMMANDS[tool]!, step === "pull" ? "pull" : "push", ref, layout, metadata];
}

/** Why a finished step's result is wrong, or `undefined`. */
function check(round: Round, step: Step, run: Measured, pushedDigest: string): string | undefined {
  if (run.code !== 0) {
    const last = run.stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-3).join(" / ");
    return `exit ${run.code}${run.code === 124 ? " (timed out)" : ""}: ${last.slice(0, 300)}`;
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

function pushedDigestOf(round: Round, step: Step, run: Measured): string {
  if (round.tool === "skopeo") {
    const file = join(round.work, `${step}.digest`);
    return existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  }
  try {
    return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "").digest ?? "";
  } catch {
    return "";
  }
}

function callSeconds(run: Measured): number | undefined {
  try {
    const ms = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "").ms;
    return typeof ms === "number" ? ms / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs one round of `tool` against a registry of its own, removed afterwards.
 *
 * @param tool `deno`, `bun`, `node` or `skopeo`.
 * @param image The image to move.
 * @param timeoutSeconds After this, a step's process group is ended and the step fails.
 * @returns Each step's result; a step after a failed one is not run.
 *
 * @example
 * ```ts ignore
 * const results = await runRound("deno", image, 600);
 * console.log(results.push?.wall);
 * ```
 */
export async function runRound(
  tool: string,
  image: BenchImage,
  timeoutSeconds: number,
): Promise<Partial<Record<Step, StepResult>>> {
  const registry = await startBenchRegistry();
  const work = mkdtempSync(join(tmpdir(), "registry-bench-round-"));
  const round: Round = { tool, image, registry, work };
  const results: Partial<Record<Step, StepResult>> = {};
  try {
    for (const step of STEPS) {
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
    }
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return results;
}
