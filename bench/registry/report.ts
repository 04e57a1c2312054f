/**
 * Turns the rounds into medians and markdown: one table of times, peak RSS and mounts with
 * ratios against skopeo, and one of each runtime against the goals (push and pull wall time
 * ≤ 1.0× skopeo's, peak RSS of every step within 1.3× of the runtime's own bare fetch-and-hash
 * of the same layers, every layer mounted).
 *
 * @module
 */
import { type Step, type StepResult, STEPS } from "./rounds.ts";

/** The memory goal: peak RSS of any step against the runtime's floor (bare fetch-and-hash). */
export const RSS_GOAL_RATIO = 1.3;
/** The speed goal: wall time against skopeo's. */
export const WALL_GOAL_RATIO = 1.0;

/** A step's medians over the rounds that completed it. */
export interface StepSummary {
  /** Median seconds of the whole process. */
  wall: number;
  /** Median peak RSS, MiB. */
  rssMiB: number;
  /** Median seconds of the library call alone (runtimes only). */
  call?: number;
  /** Median layers mounted. */
  mounted: number;
  /** Rounds that completed the step, of those run. */
  completed: number;
  /** Rounds that tried it. */
  tried: number;
  /** The first failure's reason. */
  error?: string;
}

/** Every tool's steps. */
export type Summary = Record<string, Partial<Record<Step, StepSummary>>>;

/** The middle of `values` (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Medians per tool and step, over the rounds where the step succeeded.
 *
 * @param rounds Each tool's rounds.
 * @returns The summary.
 *
 * @example
 * ```ts ignore
 * const summary = summarize({ skopeo: [{ push: { wall: 4.7, rssMiB: 22, mounted: 0 } }] });
 * ```
 */
export function summarize(rounds: Record<string, Partial<Record<Step, StepResult>>[]>): Summary {
  const summary: Summary = {};
  for (const [tool, results] of Object.entries(rounds)) {
    summary[tool] = {};
    for (const step of [...STEPS, "floor"] as const) {
      const tried = results.map((round) => round[step]).filter((r) => r !== undefined);
      if (tried.length === 0) continue;
      const ok = tried.filter((r) => r.error === undefined);
      const calls = ok.flatMap((r) => r.call === undefined ? [] : [r.call]);
      const error = tried.find((r) => r.error !== undefined)?.error;
      summary[tool]![step] = {
        wall: ok.length ? median(ok.map((r) => r.wall)) : NaN,
        rssMiB: ok.length ? median(ok.map((r) => r.rssMiB)) : NaN,
        mounted: ok.length ? median(ok.map((r) => r.mounted)) : NaN,
        completed: ok.length,
        tried: tried.length,
        ...(calls.length ? { call: median(calls) } : {}),
        ...(error === undefined ? {} : { error }),
      };
    }
  }
  return summary;
}

const seconds = (s: StepSummary | undefined) =>
  s === undefined ? "–" : s.completed ? s.wall.toFixed(2) : "failed";
const mib = (s: StepSummary | undefined) =>
  s === undefined || !s.completed ? "–" : Math.round(s.rssMiB).toString();

function ratio(s: StepSummary | undefined, base: StepSummary | undefined): number {
  return s?.completed && base?.completed ? s.wall / base.wall : NaN;
}

const shown = (r: number) => Number.isNaN(r) ? "–" : `${r.toFixed(2)}×`;

/**
 * The two markdown tables, and a line per failure.
 *
 * @param summary From {@linkcode summarize}.
 * @param layerCount Layers in the image (what "every layer mounted" means).
 * @returns Markdown.
 *
 * @example
 * ```ts ignore
 * console.log(formatReport(summarize(rounds), 8));
 * ```
 */
export function formatReport(summary: Summary, layerCount: number): string {
  const skopeo = summary.skopeo;
  const lines = [
    "| tool | cold push s | × skopeo | pull s | × skopeo | mounted push s | × skopeo | " +
    "layers mounted | peak RSS MiB push / pull / mounted |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [tool, steps] of Object.entries(summary)) {
    const cells = [tool];
    for (const step of STEPS) {
      cells.push(seconds(steps[step]), shown(ratio(steps[step], skopeo?.[step])));
    }
    const mount = steps.mount;
    cells.push(mount?.completed ? `${mount.mounted}/${layerCount}` : "–");
    cells.push(STEPS.map((step) => mib(steps[step])).join(" / "));
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const runtimes = Object.keys(summary).filter((tool) => tool !== "skopeo");
  if (runtimes.length > 0) {
    lines.push(
      "",
      `| runtime | push ≤ ${WALL_GOAL_RATIO.toFixed(1)}× skopeo | pull ≤ ${
        WALL_GOAL_RATIO.toFixed(1)
      }× skopeo | peak RSS ≤ ${RSS_GOAL_RATIO.toFixed(1)}× floor | every layer mounted |`,
      "| --- | --- | --- | --- | --- |",
    );
    const mark = (ok: boolean, text: string) => `${ok ? "✓" : "✗"} ${text}`;
    for (const tool of runtimes) {
      const steps = summary[tool]!;
      const goal = (step: Step) => {
        const r = ratio(steps[step], skopeo?.[step]);
        return Number.isNaN(r) ? "–" : mark(r <= WALL_GOAL_RATIO, shown(r));
      };
      const peaks = STEPS.map((step) => steps[step]?.completed ? steps[step]!.rssMiB : NaN);
      const peak = Math.max(...peaks);
      const floor = steps.floor?.completed ? steps.floor.rssMiB : NaN;
      const memory = peak / floor;
      const mount = steps.mount;
      lines.push(
        `| ${tool} | ${goal("push")} | ${goal("pull")} | ${
          Number.isNaN(memory)
            ? "–"
            : mark(memory <= RSS_GOAL_RATIO, `${shown(memory)} (${Math.round(peak)} MiB)`)
        } | ${
          mount?.completed
            ? mark(mount.mounted === layerCount, `${mount.mounted}/${layerCount}`)
            : "–"
        } |`,
      );
    }
  }
  const calls = runtimes.filter((tool) => summary[tool]!.push?.call !== undefined);
  if (calls.length > 0) {
    lines.push(
      "",
      "Seconds inside the library call (start-up excluded), push / pull / mounted push: " +
        calls.map((tool) =>
          `${tool} ${
            STEPS.map((step) => summary[tool]![step]?.call?.toFixed(2) ?? "–").join(" / ")
          }`
        ).join("; ") + ".",
    );
  }
  const floors = runtimes.filter((tool) => summary[tool]!.floor?.completed);
  if (floors.length > 0) {
    lines.push(
      "",
      "Floor, every layer fetched bare to a file and hashed (3 at a time), s and peak RSS MiB, " +
        "and each step's peak RSS against it, push / pull / mounted push: " +
        floors.map((tool) => {
          const steps = summary[tool]!;
          const floor = steps.floor!;
          const ratios = STEPS.map((step) =>
            steps[step]?.completed ? shown(steps[step]!.rssMiB / floor.rssMiB) : "–"
          );
          return `${tool} ${seconds(floor)} s ${mib(floor)} MiB (${ratios.join(" / ")})`;
        }).join("; ") + ".",
    );
  }
  for (const [tool, steps] of Object.entries(summary)) {
    for (const step of [...STEPS, "floor"] as const) {
      const s = steps[step];
      if (s?.error !== undefined) {
        lines.push(`\n${tool} ${step}: ${s.completed}/${s.tried} rounds completed; ${s.error}`);
      }
    }
  }
  return lines.join("\n");
}
