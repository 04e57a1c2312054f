// `deno bench -A bench/metadata_bench.ts`: the CPU-bound cases under Deno's bench runner, for
// its per-case statistics. bench/main.ts measures every case, fsync-bound ones included, in
// interleaved.ts instead.
import { displayName, isDurable, makeCases } from "./cases.ts";

const { cases, cleanup } = await makeCases();
globalThis.addEventListener("unload", cleanup);
for (const c of cases.filter((c) => !isDurable(c))) {
  // Deno awaits only `async` functions: wrap the cases that return a promise.
  const isAsync = c.fn() instanceof Promise;
  Deno.bench({
    name: displayName(c),
    group: c.group,
    baseline: c.baseline ?? false,
    fn: isAsync ? async () => void await c.fn() : c.fn as () => void,
  });
}
