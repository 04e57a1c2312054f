#!/usr/bin/env -S deno run --allow-read --allow-env
/**
 * A command-line tool for Docker's distribution metadata store: list what dockerd remembers
 * about layers, look up digests and DiffIDs, check which entries a set of credentials may
 * mount from on push, and verify the store's consistency (all read-only); copy a store
 * (`copy-store`), copy images between registries, OCI layouts, dockerd and docker archives
 * (`copy`), recording where their layers went as dockerd does, and record for an image
 * dockerd holds what `docker pull` would have, so `docker push` uploads none of its layers
 * (`link`).
 *
 * Runs on Deno (`deno run --allow-read --allow-env cli.ts`), Bun (`bun cli.ts`) and Node
 * (`npx distribution-metadata` from the npm package). Without `--root` it uses the store of
 * the local dockerd, `/var/lib/docker/image/<driver>/distribution`. A store may be hostile:
 * see docs/security.md for what the CLI guarantees then.
 *
 * `check` and `copy` take credentials as the docker CLI does: from `~/.docker/config.json` and
 * the credential helpers it names (on Deno, allow each with
 * `--allow-run=docker-credential-<name>`), or `-u <user> --password-stdin`. `copy` records into
 * `--root`/`--store`, by default the user's own store
 * (`$XDG_DATA_HOME/distribution-metadata/distribution`), never dockerd's unless named; on Deno
 * it also needs `--allow-write` and `--allow-net`. See docs/cli.md.
 *
 * @example List the local dockerd's store
 * ```sh
 * deno run --allow-read --allow-env jsr:@distribution/metadata/cli ls
 * deno run --allow-read --allow-env jsr:@distribution/metadata/cli --root ./store verify --json
 * ```
 *
 * @example Check with Docker Desktop's credentials, or a password from a file
 * ```sh
 * deno run --allow-read --allow-env --allow-run=docker-credential-desktop \
 *   jsr:@distribution/metadata/cli check --target registry.example.com/team/app
 * deno run --allow-read --allow-env jsr:@distribution/metadata/cli \
 *   check -u ci --password-stdin < ci-password.txt
 * ```
 *
 * @example Push an OCI layout to a registry on this machine (plain http), with JSON events
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-net=127.0.0.1:5000 \
 *   jsr:@distribution/metadata/cli copy --json oci:./app:1.0 docker://127.0.0.1:5000/team/app:1.0
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
  stdin: { readable: ReadableStream<Uint8Array> };
  stdout: { writeSync(data: Uint8Array): number };
  stderr: { writeSync(data: Uint8Array): number; isTerminal(): boolean };
  readTextFile(path: string): Promise<string>;
  cwd(): string;
  exit(code: number): never;
  addSignalListener(signal: "SIGINT", listener: () => void): void;
  removeSignalListener(signal: "SIGINT", listener: () => void): void;
}
interface NodeProcess {
  argv: string[];
  exitCode?: number | undefined;
  env: Record<string, string | undefined>;
  stdin: AsyncIterable<Uint8Array>;
  stdout: {
    write(text: string): boolean;
    on(event: "error", listener: (error: { code?: string }) => void): void;
  };
  stderr: { write(text: string): boolean; isTTY?: boolean };
  cwd(): string;
  exit(code: number): never;
  on(event: "SIGINT", listener: () => void): void;
  off(event: "SIGINT", listener: () => void): void;
  getBuiltinModule(name: "node:fs"): {
    promises: { readFile(path: string, encoding: "utf8"): Promise<string> };
  };
}

const VERSION = "0.1.0";
const deno = (globalThis as { Deno?: DenoGlobal }).Deno;
const node = (globalThis as { process?: NodeProcess }).process;
const encoder = new TextEncoder();

let pipeClosed = false;

/** Reads a stream to its end as UTF-8, refusing more than `maxBytes`. */
async function readText(
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  what: string,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source) {
    length += chunk.length;
    if (length > maxBytes) throw new Error(`Cannot read ${what}: it is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

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

/**
 * Ctrl-C while `copy` runs: the first aborts it (it cleans up and exits 130), a second ends
 * the process at once.
 */
function interruptHandler(
  listen: (listener: () => void) => void,
  unlisten: (listener: () => void) => void,
  exit: (code: number) => never,
): (listener: () => void) => () => void {
  return (listener) => {
    let interrupted = false;
    const onSignal = () => {
      if (interrupted) exit(130);
      interrupted = true;
      listener();
    };
    listen(onSignal);
    return () => unlisten(onSignal);
  };
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
    readStdin: (maxBytes) => readText(deno.stdin.readable, maxBytes, "stdin"),
    cwd: deno.cwd(),
    onInterrupt: interruptHandler(
      (listener) => deno.addSignalListener("SIGINT", listener),
      (listener) => deno.removeSignalListener("SIGINT", listener),
      (code) => deno.exit(code),
    ),
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
    readStdin: (maxBytes) => readText(node.stdin, maxBytes, "stdin"),
    cwd: node.cwd(),
    onInterrupt: interruptHandler(
      (listener) => node.on("SIGINT", listener),
      (listener) => node.off("SIGINT", listener),
      (code) => node.exit(code),
    ),
    version: VERSION,
  });
} else {
  throw new Error("Cannot run the CLI: this runtime has neither Deno nor process globals");
}
