// The shared CPU-bound cases under mitata, for Bun (`bun bench/run.ts`) and Node
// (`tsx bench/run.ts`); the fsync-bound ones are in durable.ts.
// `--json` prints one JSON line of results for bench/main.ts instead of mitata's report.
import { bench, group, run } from "mitata";
import { isDurable, makeCases } from "./cases.ts";

const json = process.argv.includes("--json");
const made = await makeCases();
const cases = made.cases.filter((c) => !isDurable(c));
const cleanup = made.cleanup;
// Registered group by group; mitata reports them in this order.
const ordered: typeof cases = [];
for (const name of new Set(cases.map((c) => c.group))) {
  group(name, () => {
    for (const c of cases.filter((c) => c.group === name)) {
      ordered.push(c);
      bench(c.name, c.fn).baseline(c.baseline ?? false);
    }
  });
}
try {
  const { benchmarks } = await run(json ? { format: "quiet" } : {});
  if (json) {
    const results = benchmarks.map((trial, i) => {
      const c = ordered[i]!;
      const avgNs = trial.runs[0]?.stats?.avg ?? NaN;
      return {
        group: c.group,
        name: c.name,
        baseline: c.baseline ?? false,
        ops: c.ops ?? 1,
        avgNs,
      };
    });
    console.log(JSON.stringify(results));
  }
} finally {
  cleanup();
}
