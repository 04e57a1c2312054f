// tools/check_cycles.ts, the import-cycle check of `deno task check`: it passes on the
// library, and fails, naming the modules, on a copy of it with a cycle planted.
// @once
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { tempDir } from "./_adapters.ts";

const repo = fileURLToPath(new URL("..", import.meta.url));
const deno = join(repo, "node_modules", ".bin", "deno");
const checker = join(repo, "tools", "check_cycles.ts");

function check(dir: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(
    deno,
    ["run", "--allow-read", "--allow-write", "--allow-run", checker, dir],
    {
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A copy of the library's modules (mod.ts, cli.ts, src/) in a new directory. */
function copyOfLibrary(): string {
  const dir = tempDir("dm-cycles-");
  for (const name of ["mod.ts", "cli.ts", "src"]) {
    cpSync(join(repo, name), join(dir, name), { recursive: true });
  }
  return dir;
}

test("tools/check_cycles.ts passes on the library", () => {
  const result = check(repo);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^No import cycles among \d+ modules/);
});

test("tools/check_cycles.ts fails on a planted cycle and names its modules", () => {
  const dir = copyOfLibrary();
  // The cycle this check was written for: the codec importing the type from the service.
  const codec = join(dir, "src", "_go_json.ts");
  const text = readFileSync(codec, "utf8");
  const planted = text.replace('from "./v2_metadata.ts"', 'from "./v2_metadata_service.ts"');
  assert.notEqual(planted, text, "the import to replace is there");
  writeFileSync(codec, planted);
  const result = check(dir);
  assert.equal(result.status, 1, result.stdout);
  assert.match(
    result.stderr,
    /^Import cycle: src\/_go_json\.ts ↔ src\/hmac\.ts ↔ src\/v2_metadata_service\.ts\n/,
  );
  assert.match(result.stderr, / {2}src\/_go_json\.ts imports src\/v2_metadata_service\.ts\n/);
  assert.match(result.stderr, / {2}src\/hmac\.ts imports src\/_go_json\.ts\n/);
  assert.match(
    result.stderr,
    / {2}src\/v2_metadata_service\.ts imports src\/_go_json\.ts, src\/hmac\.ts\n/,
  );
});

test("tools/check_cycles.ts finds a module that imports itself, and a type-only cycle", () => {
  const dir = tempDir("dm-cycles-");
  mkdirSync(join(dir, "src"));
  writeFileSync(join(dir, "mod.ts"), 'export * from "./src/a.ts";\n');
  writeFileSync(
    join(dir, "src", "a.ts"),
    'import type { B } from "./b.ts";\nexport type A = B[];\n',
  );
  writeFileSync(join(dir, "src", "b.ts"), 'import "./b.ts";\nexport type B = string;\n');
  let result = check(dir);
  assert.equal(result.status, 1, result.stdout);
  assert.match(result.stderr, /^Import cycle: src\/b\.ts\n/);
  writeFileSync(join(dir, "src", "b.ts"), 'import type { A } from "./a.ts";\nexport type B = A;\n');
  result = check(dir);
  assert.equal(result.status, 1, result.stdout);
  assert.match(result.stderr, /^Import cycle: src\/a\.ts ↔ src\/b\.ts\n/);
  writeFileSync(join(dir, "src", "b.ts"), "export type B = string;\n");
  result = check(dir);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^No import cycles among 3 modules/);
});
