#!/usr/bin/env node
// Runs the whole suite on Deno, Bun and Node (tsx) and ends with "N passed, N failed".
// TEST_RUNTIMES=deno,bun limits the runtimes; extra arguments are test files. First the set-up
// (_setup.mjs) installs the programs the integration tests start, or stops with one line.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setUp } from "./_setup.mjs";

const notReady = setUp();
if (notReady !== null) {
  console.error(`test set-up: ${notReady}`);
  process.exit(1);
}

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(root, "node_modules", ".bin", name);
const files = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : readdirSync(join(root, "tests"), { recursive: true })
    .filter((file) => String(file).endsWith("_test.ts"))
    .map((file) => join("tests", String(file)))
    .sort();

// The whole suite on Deno also runs every documentation example (they are type-checked too).
const docTests = process.argv.slice(2).length > 0 ? [] : ["--doc", "mod.ts", "cli.ts", "src/"];

// Each runtime: the command, and how to read its pass/fail counts from its summary.
const runtimes = {
  deno: {
    command: [bin("deno"), "test", "-A", "--unstable-kv", ...docTests, ...files],
    count: (out) => {
      const m = [
        ...out.matchAll(
          /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/g,
        ),
      ].at(-1);
      return m && { passed: Number(m[1]), failed: Number(m[3]) };
    },
  },
  bun: {
    command: [bin("bun"), "test", "--timeout", "120000", ...files.map((file) => `./${file}`)],
    count: (out) => {
      const passed = [...out.matchAll(/^\s*(\d+) pass$/gm)].at(-1);
      const failed = [...out.matchAll(/^\s*(\d+) fail$/gm)].at(-1);
      return passed && { passed: Number(passed[1]), failed: Number(failed?.[1] ?? 0) };
    },
  },
  node: {
    command: [process.execPath, "--import", "tsx", "--test", "--test-reporter=tap", ...files],
    count: (out) => {
      const passed = [...out.matchAll(/^# pass (\d+)$/gm)].at(-1);
      const failed = [...out.matchAll(/^# fail (\d+)$/gm)].at(-1);
      return passed && { passed: Number(passed[1]), failed: Number(failed?.[1] ?? 0) };
    },
  },
};

function run([command, ...args]) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => {
        out += chunk;
        process.stdout.write(chunk);
      });
    }
    child.on("close", (code) => resolve({ code, out }));
  });
}

const selected = (process.env.TEST_RUNTIMES ?? "deno,bun,node").split(",");
let passed = 0;
let failed = 0;
const lines = [];
for (const name of selected) {
  console.log(`\n=== ${name} ===`);
  const { code, out } = await run(runtimes[name].command);
  const counts = runtimes[name].count(out) ?? { passed: 0, failed: 1 };
  // A crash without a summary, or a non-zero exit with no failure counted, is a failure.
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  passed += counts.passed;
  failed += counts.failed;
  lines.push(`${name}: ${counts.passed} passed, ${counts.failed} failed`);
}
console.log(`\n${lines.join("\n")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
