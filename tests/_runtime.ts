// How to start another process of the runtime the tests run on, with a TypeScript script.
import process from "node:process";
import { createRequire } from "node:module";
import { mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;

/** The name of the running runtime. */
export const runtimeName: "deno" | "bun" | "node" = deno
  ? "deno"
  : (process.versions as { bun?: string }).bun
  ? "bun"
  : "node";

/** The command and arguments that run `script` (a .ts file) with `args` on this runtime. */
export function runtimeCommand(script: string, args: string[]): [string, string[]] {
  if (deno) return [deno.execPath(), ["run", "-A", script, ...args]];
  if (runtimeName === "bun") return [process.execPath, [script, ...args]];
  return [process.execPath, [nodeBundle(script), ...args]];
}

interface Esbuild {
  buildSync(options: Record<string, unknown>): unknown;
}

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
// Inside node_modules, so the bundles' package imports resolve; one folder per process, as
// node --test runs files in parallel.
const bundleDir = join(repo, "node_modules", ".cache", "test-bundles", String(process.pid));
const bundles = new Map<string, string>();

/**
 * `script` bundled once into plain JavaScript: node starts it in ~50 ms, where loading tsx
 * first took 0.5–3 s a process on this machine, and the suite starts hundreds (crash_test
 * alone 200). Packages stay imports, so native addons and run-time lookups work as with tsx.
 */
function nodeBundle(script: string): string {
  let bundle = bundles.get(script);
  if (bundle) return bundle;
  if (bundles.size === 0) {
    mkdirSync(bundleDir, { recursive: true });
    process.on("exit", () => rmSync(bundleDir, { recursive: true, force: true }));
  }
  bundle = join(bundleDir, `${bundles.size}-${basename(script, ".ts")}.mjs`);
  const esbuild = createRequire(import.meta.url)("esbuild") as Esbuild;
  esbuild.buildSync({
    entryPoints: [script],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  bundles.set(script, bundle);
  return bundle;
}
