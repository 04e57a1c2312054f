// `deno bench -A bench/metadata_bench.ts`: the shared CPU-bound cases under Deno's bench
// runner (the fsync-bound ones are in durable.ts).
import { isDurable, makeCases } from "./cases.ts";

const { cases, cleanup } = await makeCases();
globalThis.addEventListener("unload", cleanup);
for (const { group, name, fn, baseline, ops } of cases.filter((c) => !isDurable(c))) {
  // Deno awaits only `async` functions: wrap the cases that return a promise.
  const isAsync = fn() instanceof Promise;
  Deno.bench({
    // Deno reports time per call: say how many operations a call makes (bench/main.ts reads it).
    name: ops && !name.endsWith(`×${ops}`) ? `${name} (${ops} in a row)` : name,
    group,
    baseline: baseline ?? false,
    fn: isAsync ? async () => void await fn() : fn as () => void,
  });
}
