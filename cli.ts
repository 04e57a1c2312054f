#!/usr/bin/env -S deno run --allow-read --allow-env
/**
 * A read-only command-line tool for Docker's distribution metadata store: list what
 * dockerd remembers about layers, look up digests and DiffIDs, check which entries a set
 * of credentials may mount from on push, and verify the store's consistency.
 *
 * Runs on Deno (`deno run --allow-read --allow-env cli.ts`), Bun (`bun cli.ts`) and Node
 * (`npx distribution-metadata` from the npm package). Without `--root` it uses the store of
 * the local dockerd, `/var/lib/docker/image/<driver>/distribution`.
 *
 * @example List the local dockerd's store
 * ```sh
 * deno run --allow-read --allow-env jsr:@distribution/metadata/cli ls
 * deno run --allow-read --allow-env jsr:@distribution/metadata/cli --root ./store verify --json
 * ```
 *
 * @module
 */
import { runCli } from "./src/cli/main.ts";
import { runtimeFileSystem } from "./src/_runtime_file_system.ts";

/** This runtime's glue: Deno's globals, else Node's or Bun's `process`. */
interface DenoGlobal {
  args: string[];
  exitCode: number;
  env: { get(name: string): string | undefined };
  stdout: { writeSync(data: Uint8Array): number };
  stderr: { writeSync(data: Uint8Array): number; isTerminal(): boolean };
  readTextFile(path: string): Promise<string>;
}
interface NodeProcess {
  argv: string[];
  exitCode?: number | undefined;
  env: Record<string, string | undefined>;
  stdout: {
    write(text: string): boolean;
    on(event: "error", listener: (error: { code?: string }) => void): void;
  };
  stderr: { write(text: string): boolean; isTTY?: boolean };
  getBuiltinModule(name: "node:fs"): {
    promises: { readFile(path: string, encoding: "utf8"): Promise<string> };
  };
}

const VERSION = "0.1.0";
const deno = (globalThis as { Deno?: DenoGlobal }).Deno;
const node = (globalThis as { process?: NodeProcess }).process;
const encoder = new TextEncoder();

let pipeClosed = false;

function writeAll(stream: { writeSync(data: Uint8Array): number }, text: string): void {
  if (pipeClosed) return;
  const data = encoder.encode(text);
  try {
    for (let done = 0; done < data.length;) done += stream.writeSync(data.subarray(done));
  } catch (error) {
    // `cli.ts ls | head`: the reader is gone, and with it the point of writing.
    if ((error as Error).name !== "BrokenPipe") throw error;
    pipeClosed = true;
  }
}

if (deno) {
  deno.exitCode = await runCli({
    args: deno.args,
    fs: runtimeFileSystem(),
    stdout: (text) => writeAll(deno.stdout, text),
    stderr: (text) => writeAll(deno.stderr, text),
    stderrIsTerminal: deno.stderr.isTerminal(),
    env: (name) => {
      try {
        return deno.env.get(name);
      } catch {
        return undefined; // no --allow-env
      }
    },
    readTextFile: (path) => deno.readTextFile(path),
    version: VERSION,
  });
} else if (node) {
  const fs = node.getBuiltinModule("node:fs");
  // `cli.ts ls | head`: a closed pipe ends the output, not with a stack trace.
  node.stdout.on("error", (error) => {
    if (error.code !== "EPIPE") throw error;
  });
  node.exitCode = await runCli({
    args: node.argv.slice(2),
    fs: runtimeFileSystem(),
    // The process ends by itself (exitCode, no exit()), so buffered output is flushed.
    stdout: (text) => void node.stdout.write(text),
    stderr: (text) => void node.stderr.write(text),
    stderrIsTerminal: node.stderr.isTTY === true,
    env: (name) => node.env[name],
    readTextFile: (path) => fs.promises.readFile(path, "utf8"),
    version: VERSION,
  });
} else {
  throw new Error("Cannot run the CLI: this runtime has neither Deno nor process globals");
}
