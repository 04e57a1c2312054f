// The CPU-bound cases under mitata, for its per-case statistics: `bun bench/run.ts` or
// `node --import tsx bench/run.ts`. bench/main.ts measures every case, fsync-bound ones
// included, in interleaved.ts instead.
import { bench, group, run } from "mitata";
import { displayName, isDurable, makeCases } from "./cases.ts";

const { cases, cleanup } = await makeCases();
const cpuBound = cases.filter((c) => !isDurable(c));
for (const name of new Set(cpuBound.map((c) => c.group))) {
  group(name, () => {
    for (const c of cpuBound.filter((c) => c.group === name)) {
      bench(displayName(c), c.fn).baseline(c.baseline ?? false);
    }
  });
}
try {
  await run();
} finally {
  cleanup();
}
