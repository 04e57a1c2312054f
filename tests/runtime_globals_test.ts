// The core (everything in src/ but the runtime adapters) must load in any JavaScript
// runtime, workerd included: no runtime module specifiers, and no runtime global but through
// src/_runtime.ts, the one module that looks at them. Each file is parsed by esbuild, which
// replaces every reference to a global it is told of (`globalThis`, `Deno`, `Bun`, `process`,
// `navigator`, `require`) and nothing else: not a local of that name, not a property, not a
// string, so `(globalThis as { Bun?: unknown }).Bun`, `"Bun" in globalThis` or an alias of
// `globalThis` are caught as surely as `Deno.readFile`.
// @once
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

const src = fileURLToPath(new URL("../src/", import.meta.url));
const coreFiles = readdirSync(src, { recursive: true })
  .map(String)
  .filter((file) => file.endsWith(".ts") && !file.startsWith("adapters"))
  .sort();

/** The module allowed to look at runtime globals. */
const RUNTIME_MODULE = "_runtime.ts";
/** The runtime globals, as esbuild is told to mark them. */
const GLOBAL = "__RUNTIME_GLOBAL__";
const DEFINE: Record<string, string> = { globalThis: GLOBAL };
for (const name of ["Deno", "Bun", "process", "navigator", "require"]) {
  DEFINE[name] = `${GLOBAL}.${name}`;
}
/** What the core may read from `globalThis`: Web standards only. */
const WEB_GLOBALS = new Set(["fetch"]);
const IMPORT = /\b(?:from|import)\s*\(?\s*["'](?:node|npm|jsr):/;

/** The runtime globals `code` (TypeScript) touches, and its node:, npm: or jsr: imports. */
async function offencesIn(code: string): Promise<string[]> {
  const { code: js } = await transform(code, {
    loader: "ts",
    define: DEFINE,
    legalComments: "none",
    minifyWhitespace: true,
  });
  const offences = [];
  for (const match of js.matchAll(new RegExp(`${GLOBAL}(?:\\.(\\w+))?`, "g"))) {
    if (!WEB_GLOBALS.has(match[1] ?? "")) {
      offences.push(`a runtime global: …${js.slice(match.index, match.index + 60)}`);
    }
  }
  const imported = IMPORT.exec(js);
  if (imported) offences.push(`an import: …${js.slice(imported.index, imported.index + 60)}`);
  return offences;
}

test("the core files under src/ (adapters aside) are found", () => {
  assert.ok(coreFiles.includes("fs_store.ts"), coreFiles.join(", "));
  assert.ok(coreFiles.includes("kv_store.ts"), coreFiles.join(", "));
  assert.ok(coreFiles.includes(RUNTIME_MODULE), coreFiles.join(", "));
  assert.ok(!coreFiles.some((file) => file.includes("adapters")));
});

test("the check catches casts, aliases and `in` tests of globals, and passes locals and text", async () => {
  const caught = [
    "const bun = (globalThis as { Bun?: unknown }).Bun;",
    "const g = globalThis as { Deno?: unknown }; g.Deno;",
    'const isBun = "Bun" in globalThis;',
    'const deno = globalThis["Deno"];',
    "Deno.readFileSync(path);",
    "typeof Bun;",
    "process.getBuiltinModule?.('node:fs');",
    "navigator.userAgent;",
    "require('x');",
    'import { readFile } from "node:fs"; readFile("x");',
    'await import("npm:redis");',
  ];
  for (const code of caught) assert.notDeepEqual(await offencesIn(code), [], code);
  const passed = [
    "globalThis.fetch(url);",
    "function f(process: number) { return process + 1; }",
    'const message = "Cannot process Deno. files with Bun";',
    "options.process.navigator;",
    "// Deno.readFileSync in a comment",
  ];
  for (const code of passed) assert.deepEqual(await offencesIn(code), [], code);
});

test("src/ (adapters and _runtime.ts aside) touches no runtime global and imports no node:, npm: or jsr: module", async () => {
  const offences: string[] = [];
  for (const file of coreFiles) {
    const found = await offencesIn(readFileSync(src + file, "utf8"));
    const allowed = file === RUNTIME_MODULE
      ? found.filter((offence) => offence.startsWith("an import"))
      : found;
    offences.push(...allowed.map((offence) => `src/${file}: ${offence}`));
  }
  assert.deepEqual(offences, []);
});

test("mod.ts and src/kv_store.ts bundle for a neutral platform with no external imports", async () => {
  const result = await build({
    entryPoints: ["mod.ts", "src/kv_store.ts"].map((file) =>
      fileURLToPath(new URL(`../${file}`, import.meta.url))
    ),
    bundle: true,
    write: false,
    outdir: "out",
    format: "esm",
    platform: "neutral",
    metafile: true,
    logLevel: "silent",
  });
  const externals = Object.values(result.metafile.outputs)
    .flatMap((output) => output.imports.filter((entry) => entry.external))
    .map((entry) => entry.path);
  assert.deepEqual(externals, []);
});
