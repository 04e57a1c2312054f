#!/usr/bin/env node
// Runs the tests on Deno, Bun and Node (tsx) and ends with "N passed, N failed".
//
//     node tests/run_all.mjs            the whole suite (npm test): first the set-up (_setup.mjs)
//                                       installs the programs the integration tests start, or
//                                       stops with one line; then each file in a process of its
//                                       own per runtime, two processes at a time (TEST_JOBS), each
//                                       one's output shown whole once it is done; the summary shows
//                                       every file's seconds per runtime
//     node tests/run_all.mjs --quick    the quick tier (npm run test:quick): every file that needs
//                                       no service and no root, in two processes per runtime
//                                       (every other file), and Deno's doc examples, all side by
//                                       side, no set-up, no type check (deno task check has it),
//                                       with fewer crash kills and property runs, a shorter huge
//                                       list and shorter rename races (QUICK_COUNTS); the line
//                                       before the last names what it left out
//     node tests/run_all.mjs FILE...    those files only, in processes as the quick tier's (with
//                                       or without --quick)
//
// On Deno, one `deno check` of the files (and of the documentation examples, when they run)
// comes first and counts as one test; the test processes then skip their own type check, which
// cost each of them about 2 CPU-seconds here for the same result. The quick tier leaves the
// check to `deno task check`: it is a sixth of the tier's CPU time here. The documentation
// examples (_doc_examples.mjs) run in one worker, where `deno test --doc` starts one per example.
//
// TEST_RUNTIMES=deno,bun limits the runtimes. A file with a line `// @once` checks the sources,
// not the runtime (the docs, the import graph): it runs on the first runtime only. A file needs
// a service or root when it, or a test module it imports, has a line `// @needs <what>`
// (tests/registry/_registry_server.ts has `// @needs docker-registry`): so a new test that
// starts docker-registry through that module is left out of the quick tier without being listed
// anywhere.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { writeDocExamples } from "./_doc_examples.mjs";
import { setUp } from "./_setup.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const named = args.filter((arg) => arg !== "--quick");
const all = named.length > 0 ? named : readdirSync(join(root, "tests"), { recursive: true })
  .filter((file) => String(file).endsWith("_test.ts"))
  .map((file) => join("tests", String(file)))
  .sort();

/** What `file` and the test modules it imports, transitively, say they need (`// @needs`). */
function needs(file, seen = new Set()) {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = readFileSync(join(root, file), "utf8");
  const found = [...text.matchAll(/^\/\/ @needs (.+)$/gm)].map((m) => m[1].trim());
  for (const [, specifier] of text.matchAll(/^import\s[^;]*?from\s*"(\.\.?\/[^"]+)"/gm)) {
    const target = normalize(join(dirname(file), specifier));
    if (target.startsWith("tests") && existsSync(join(root, target))) {
      found.push(...needs(target, seen));
    }
  }
  return [...new Set(found)];
}

/** Whether `/usr/bin/time` is GNU time, by which the CLI tests bound peak RSS (tests/_cli.ts). */
function gnuTime() {
  const run = spawnSync("/usr/bin/time", ["--version"], { encoding: "utf8" });
  return /GNU Time/.test(`${run.stdout ?? ""}${run.stderr ?? ""}`);
}

/** The quick tier's repetition counts and durations, unless the caller sets them. */
const QUICK_COUNTS = {
  CRASH_KILLS: "5",
  PROPERTY_RUNS: "500",
  RACE_MS: "300",
  HUGE_LIST_ENTRIES: "20000",
};

/** Whether `file` checks the sources rather than the runtime (`// @once`). */
const once = (file) => /^\/\/ @once$/m.test(readFileSync(join(root, file), "utf8"));

const leftOut = quick
  ? all.map((file) => [file, needs(file)]).filter(([, what]) => what.length)
  : [];
const files = all.filter((file) => !leftOut.some(([out]) => out === file));

if (!quick) {
  const notReady = setUp();
  if (notReady !== null) {
    console.error(`test set-up: ${notReady}`);
    process.exit(1);
  }
}

// Every documentation example runs (and is type-checked) on Deno, unless files are named: each
// written to a module of its own in a temp dir, all of them run in one worker.
const DOC_MODULES = ["mod.ts", "cli.ts", "src/"];
const examplesDir = named.length > 0 ? null : mkdtempSync(join(tmpdir(), "doc-examples-"));
const examples = examplesDir === null ? [] : writeDocExamples(root, DOC_MODULES, examplesDir);
const docs = examplesDir === null ? [] : [
  ...DOC_MODULES,
  join("tests", "_doc_examples.ts"),
  ...examples.map((example) => join(examplesDir, example)),
];

/** Imports test files into one Deno worker, as tests/_node_tests.mjs into one Node process. */
const DENO_TESTS = join("tests", "_deno_tests.ts");

/** Deno's pass/fail counts, from its last summary line. */
function denoCount(out) {
  const m = [
    ...out.matchAll(/(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/g),
  ].at(-1);
  return m && { passed: Number(m[1]), failed: Number(m[3]) };
}

// Each runtime: the command for some test files, and how to read its pass/fail counts.
const runtimes = {
  deno: {
    command: (testArgs) => [bin("deno"), "test", "-A", "--unstable-kv", "--no-check", ...testArgs],
    count: denoCount,
  },
  bun: {
    command: (testArgs) => [
      bin("bun"),
      "test",
      "--timeout",
      "120000",
      ...testArgs.map((file) => `./${file}`),
    ],
    count: (out) => {
      const passed = [...out.matchAll(/^\s*(\d+) pass$/gm)].at(-1);
      const failed = [...out.matchAll(/^\s*(\d+) fail$/gm)].at(-1);
      return passed && { passed: Number(passed[1]), failed: Number(failed?.[1] ?? 0) };
    },
  },
  node: {
    command: (testArgs) => [
      process.execPath,
      "--import",
      "tsx",
      "--test-reporter=tap",
      join("tests", "_node_tests.mjs"),
      ...testArgs,
    ],
    count: (out) => {
      const passed = [...out.matchAll(/^# pass (\d+)$/gm)].at(-1);
      const failed = [...out.matchAll(/^# fail (\d+)$/gm)].at(-1);
      return passed && { passed: Number(passed[1]), failed: Number(failed?.[1] ?? 0) };
    },
  },
};

/** Deno's type check of `testArgs`, as one test that passes when `deno check` exits 0. */
const typeCheck = (testArgs) => ({
  runtime: "deno",
  name: "type check",
  command: [bin("deno"), "check", "--unstable-kv", ...testArgs],
  count: (_out, code) => ({ passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1 }),
});

/** Runs a command, its output passed to `show` as it comes; its exit code and whole output. */
function run([command, ...commandArgs], show) {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, {
      cwd: root,
      env: {
        ...(quick ? QUICK_COUNTS : {}),
        ...process.env,
        ...(quick ? { TEST_TIER: "quick" } : {}),
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => {
        out += chunk;
        show(chunk);
      });
    }
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** Runs one job's process: its counts and seconds. */
async function runJob(job, show) {
  const start = performance.now();
  const { code, out } = await run(job.command, show);
  const counts = job.count(out, code) ?? { passed: 0, failed: 1 };
  // A crash without a summary, or a non-zero exit with no failure counted, is a failure.
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  return { ...counts, seconds: (performance.now() - start) / 1000 };
}

const selected = (process.env.TEST_RUNTIMES ?? "deno,bun,node").split(",");

/**
 * Each runtime's processes. The quick tier and named files: one process of all the files per
 * runtime. The whole suite: a process per file, so that each file's time is its own and a crash
 * loses one file's counts only. On Deno, the type check of them all comes first, and the
 * documentation examples (a worker each) are a process of their own.
 */
function jobsOf(runtime) {
  const { command, count } = runtimes[runtime];
  const one = (name, testArgs) => ({ runtime, name, command: command(testArgs), count });
  const deno = runtime === "deno";
  const checks = deno && !quick ? [typeCheck([...docs, DENO_TESTS, ...files])] : [];
  const mine = runtime === selected[0] ? files : files.filter((file) => !once(file));
  const docExamples = deno && examplesDir !== null
    ? [one("doc examples", [join("tests", "_doc_examples.ts"), "--", examplesDir, ...examples])]
    : [];
  // One process runs one file at a time, and many tests mostly wait (time limits, child
  // processes): so two processes per runtime, every other file each. On Deno, in one worker.
  const halves = [0, 1].map((half) => mine.filter((_, i) => i % 2 === half))
    .filter((half) => half.length > 0);
  const inOne = (half) => deno ? [DENO_TESTS, "--", ...half] : half;
  const tests = !quick && named.length === 0
    ? mine.map((file) => one(file, [file]))
    : halves.map((half, i) => one(halves.length === 1 ? "" : `files ${i + 1}/2`, inOne(half)));
  return [...checks, ...docExamples, ...tests];
}

/** Runs `jobs` in order, `width` processes at once; each one's output is shown whole when done. */
async function runAll(jobs, width) {
  const results = new Map(); // job → its counts and seconds
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const job = jobs[next++];
      let out = "";
      const result = await runJob(job, (chunk) => out += chunk);
      const title = job.name === "" ? job.runtime : `${job.name} (${job.runtime})`;
      process.stdout.write(`\n=== ${title}: ${result.seconds.toFixed(1)} s ===\n${out}`);
      results.set(job, result);
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

const jobs = selected.flatMap(jobsOf);
// The quick tier and named files run every process at once (the runtimes side by side). The
// whole suite runs TEST_JOBS processes at once (default 2, this machine's cores): its files start
// their services on free ports, in directories of their own.
const width = quick || named.length > 0
  ? jobs.length
  : Math.max(1, Number(process.env.TEST_JOBS ?? 2));
const results = await runAll(jobs, width);
if (examplesDir !== null) rmSync(examplesDir, { recursive: true, force: true });

const totals = selected.map((runtime) =>
  jobs.filter((job) => job.runtime === runtime).reduce((total, job) => ({
    passed: total.passed + results.get(job).passed,
    failed: total.failed + results.get(job).failed,
  }), { passed: 0, failed: 0 })
);
const passed = totals.reduce((sum, total) => sum + total.passed, 0);
const failed = totals.reduce((sum, total) => sum + total.failed, 0);
const seconds = new Map(); // file → runtime → seconds
for (const [job, result] of results) {
  const name = job.name === "" ? "all files" : job.name;
  if (!seconds.has(name)) seconds.set(name, {});
  seconds.get(name)[job.runtime] = result.seconds;
}
const nameWidth = Math.max(...[...seconds.keys()].map((file) => file.length));
console.log(`\nseconds per file (${selected.join(" / ")}):`);
for (const [file, times] of [...seconds].sort(([a], [b]) => a.localeCompare(b))) {
  const shown = selected.map((name) => times[name]?.toFixed(1).padStart(6) ?? "     –");
  console.log(`  ${file.padEnd(nameWidth)} ${shown.join(" ")}`);
}
console.log(
  `\n${
    selected.map((name, i) => `${name}: ${totals[i].passed} passed, ${totals[i].failed} failed`)
      .join("\n")
  }`,
);
if (quick) {
  const counts = Object.entries(QUICK_COUNTS).map(([name, value]) =>
    `${name}=${process.env[name] ?? value}`
  );
  const out = leftOut.map(([file, what]) => `${file.replace(/^tests\//, "")} (${what.join(", ")})`);
  console.log(
    `left out: Deno's type check (deno task check runs it)${
      out.length === 0 ? "" : `, ${out.length} files that need a service or root: ${out.join(", ")}`
    }; ran with ${counts.join(" ")}${
      gnuTime() ? "" : "; the CLI's peak-RSS bounds unchecked (no GNU time at /usr/bin/time)"
    } (npm test runs everything, in full)`,
  );
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
