// The fsync-bound cases (see isDurable), measured interleaved: in every round each case of a
// group runs for a slice of time, in rotating order, so all of them see the same disk. Each
// slice starts after sync(1), so none pays for the dirty pages of the one before (the peer
// without fsync leaves many). Runs on Deno and Bun alike; prints one JSON line of results,
// as `run.ts --json` does.
import { execFileSync } from "node:child_process";
import { type BenchCase, isDurable, makeCases } from "./cases.ts";

const ROUNDS = 30;
const SLICE_MS = 25;

/** Calls `c.fn` for `SLICE_MS`; returns [operations, milliseconds]. */
async function slice(c: BenchCase): Promise<[number, number]> {
  execFileSync("sync");
  const start = performance.now();
  let calls = 0;
  let elapsed = 0;
  do {
    const result = c.fn();
    if (result instanceof Promise) await result;
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < SLICE_MS);
  return [calls * (c.ops ?? 1), elapsed];
}

const { cases, cleanup } = await makeCases();
const durable = cases.filter(isDurable);
const totals = new Map(durable.map((c) => [c, { ops: 0, ms: 0 }]));
try {
  for (const group of new Set(durable.map((c) => c.group))) {
    const members = durable.filter((c) => c.group === group);
    for (const c of members) await slice(c); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < members.length; i++) {
        const c = members[(round + i) % members.length]!;
        const [ops, ms] = await slice(c);
        totals.get(c)!.ops += ops;
        totals.get(c)!.ms += ms;
      }
    }
  }
} finally {
  cleanup();
}
console.log(JSON.stringify(durable.map((c) => {
  const { ops, ms } = totals.get(c)!;
  return { group: c.group, name: c.name, baseline: c.baseline ?? false, ops, avgNs: ms * 1e6 };
})));
