// The core (everything in src/ but the runtime adapters) must load in any JavaScript
// runtime, workerd included: no runtime globals, no runtime module specifiers.
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

/** What the core must not contain, once comments are gone. */
const FORBIDDEN: [RegExp, string][] = [
  [/\bDeno\./, "a Deno. global"],
  [/\bBun\./, "a Bun. global"],
  [/\bprocess\./, "a process. global"],
  [/\brequire\(/, "require("],
  [/\b(?:from|import)\s*\(?\s*["'](?:node|npm|jsr):/, "a node:, npm: or jsr: import"],
];

test("the core files under src/ (adapters aside) are found", () => {
  assert.ok(coreFiles.includes("fs_store.ts"), coreFiles.join(", "));
  assert.ok(coreFiles.includes("kv_store.ts"), coreFiles.join(", "));
  assert.ok(!coreFiles.some((file) => file.includes("adapters")));
});

test("src/ (adapters aside) uses no Deno., Bun., process., require( or node:/npm:/jsr: imports", async () => {
  const offences: string[] = [];
  for (const file of coreFiles) {
    // Minified, esbuild keeps no comments (JSDoc examples do import node:assert) nor types.
    const { code } = await transform(readFileSync(src + file, "utf8"), {
      loader: "ts",
      legalComments: "none",
      minifyWhitespace: true,
    });
    for (const [pattern, what] of FORBIDDEN) {
      const match = pattern.exec(code);
      if (match) {
        offences.push(`src/${file}: ${what}: …${code.slice(match.index, match.index + 60)}`);
      }
    }
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
