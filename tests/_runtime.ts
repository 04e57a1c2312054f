// How to start another process of the runtime the tests run on, with a TypeScript script.
import process from "node:process";

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
  return [process.execPath, ["--import", "tsx", script, ...args]];
}
