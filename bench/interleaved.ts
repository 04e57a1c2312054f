// The cases of one group, measured interleaved: in every round each case runs for a slice of
// time, in rotating order, so all of them see the same machine. Cases measured one after
// another compare different minutes here: fsync latency drifts 2x within a minute, and even a
// get's ratio to its raw read moved between 0.63 and 0.96 over four back-to-back mitata runs.
// A durable case's slice starts after sync(1), so none pays for the dirty pages of the one
// before (the peer without fsync leaves many). bench/main.ts runs every group in a process of
// its own: the JIT state one group leaves (FSMetadataStore.get specialised for another
// FileSystem) halved the next group's MemoryFileSystem gets on Bun.
// `interleaved.ts [group]` measures one group (the first when none is named) and prints one JSON
// line: every group's name, so the caller can ask for the rest, and this group's results. Runs
// on Deno, Bun and Node alike.
import { execFileSync } from "node:child_process";
import { type BenchCase, isDurable, makeCases } from "./cases.ts";

const ROUNDS = 30;
const SLICE_MS = 25;

/** Calls `c.fn` for `SLICE_MS`; returns [operations, milliseconds]. */
async function slice(c: BenchCase): Promise<[number, number]> {
  if (isDurable(c)) execFileSync("sync");
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

const made = await makeCases();
const groups = [...new Set(made.cases.map((c) => c.group))];
const group = process.argv[2] ?? groups[0];
try {
  const results = await measure(made.cases.filter((c) => c.group === group));
  console.log(JSON.stringify({ groups, results }));
} finally {
  made.cleanup();
}

/** Rotating slices of `members`, after one warm-up slice each. */
async function measure(members: BenchCase[]) {
  if (members.length === 0) throw new Error(`No bench group "${group}"`);
  const totals = members.map(() => ({ ops: 0, ms: 0 }));
  for (const c of members) await slice(c);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < members.length; i++) {
      const at = (round + i) % members.length;
      const [ops, ms] = await slice(members[at]!);
      totals[at]!.ops += ops;
      totals[at]!.ms += ms;
    }
  }
  return members.map((c, i) => ({
    group: c.group,
    name: c.name,
    baseline: c.baseline ?? false,
    target: c.target,
    ops: totals[i]!.ops,
    avgNs: totals[i]!.ms * 1e6,
  }));
}
