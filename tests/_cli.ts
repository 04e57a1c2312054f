// Runs cli.ts as a real process of the runtime under test, with a time limit and its peak
// memory measured where GNU time is (the full suite's set-up installs it), or its main function
// in the test's own process where no process boundary is checked; and takes snapshots of a store
// that never open a file in it.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeFileSystem } from "../src/_runtime_file_system.ts";
import { runCli as cliMain } from "../src/cli/main.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

export const repo = fileURLToPath(new URL("..", import.meta.url));
const cli = join(repo, "cli.ts");

/** How a run of cli.ts ended. */
export interface CliRun {
  /** The exit status; `null` when the time limit killed it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident memory in KiB, as `/usr/bin/time -f %M` reports it; null without GNU time. */
  maxRssKiB: number | null;
  elapsedMs: number;
}

/** Options for {@linkcode runCli}. */
export interface RunOptions {
  /** Extra environment variables (HOME is a fresh empty directory unless given). */
  env?: Record<string, string>;
  /** Written to the process's stdin, which is closed after it. */
  stdin?: string;
  /** Deno permissions beyond the documented `--allow-read --allow-env`. */
  denoPermissions?: string[];
  /**
   * A program and its arguments the runtime runs under, e.g. `setpriv` dropping capabilities
   * or `unshare` giving it mounts of its own; it must end with the command it is given.
   */
  wrapper?: string[];
  /** Killed after this long (default 30 s): a blocked CLI fails the test, not the suite. */
  timeoutMs?: number;
  /** The working directory (default the repository). */
  cwd?: string;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "cli-test-"));
}

/**
 * Whether `/usr/bin/time` is GNU time, which reports a process's peak RSS (Debian's `time`
 * package; macOS has BSD's there). No other way works without it: a process's own ru_maxrss
 * survives exec, so the CLI would report the peak of the test process that started it.
 */
export const measuresPeakRss = /GNU Time/.test(
  [spawnSync("/usr/bin/time", ["--version"], { encoding: "utf8" })]
    .map((run) => `${run.stdout ?? ""}${run.stderr ?? ""}`)[0]!,
);

/**
 * Deno's cache, which the CLI's fresh HOME would otherwise hide: each run would compile every
 * module again (about 0.2–0.5 CPU-seconds a run here).
 */
const denoDir = runtimeName === "deno"
  ? JSON.parse(execFileSync(process.execPath, ["info", "--json"], { encoding: "utf8" })).denoDir
  : undefined;

/**
 * `run`'s peak RSS was under `maxKiB`. Only the quick tier (`TEST_TIER=quick`) may run without
 * GNU time, and its last lines say the bounds went unchecked; the whole suite's set-up installs it.
 */
export function assertPeakRssUnder(run: CliRun, maxKiB: number, label: string): void {
  if (run.maxRssKiB === null) {
    assert.equal(process.env.TEST_TIER, "quick", `${label}: no GNU time measured the peak RSS`);
    return;
  }
  assert.ok(run.maxRssKiB < maxKiB, `${label}: peak RSS ${run.maxRssKiB} KiB`);
}

/** Runs cli.ts with `args` (under GNU time where it is), killing it after the time limit. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  const [command, commandArgs] = runtimeCommand(cli, args);
  if (runtimeName === "deno") {
    commandArgs.splice(1, 1, "--allow-read", "--allow-env", ...options.denoPermissions ?? []);
  }
  const scratch = tempDir();
  const timeFile = join(scratch, "time");
  const [program, ...programArgs] = [
    ...measuresPeakRss ? ["/usr/bin/time", "-f", "%M", "-o", timeFile] : [],
    ...options.wrapper ?? [],
    command,
    ...commandArgs,
  ];
  const child = spawn(program!, programArgs, {
    cwd: options.cwd ?? repo,
    env: {
      ...denoDir === undefined ? {} : { DENO_DIR: denoDir },
      ...process.env,
      HOME: scratch,
      NO_COLOR: "1",
      ...options.env,
    },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true, // its own process group, so the time limit ends the CLI with it
  });
  child.stdin.on("error", () => {}); // a CLI that stops reading early closes the pipe
  child.stdin.end(options.stdin ?? "");
  const started = performance.now();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => stdout += chunk);
  child.stderr.on("data", (chunk) => stderr += chunk);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.kill(-child.pid!, "SIGKILL");
  }, options.timeoutMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const elapsedMs = performance.now() - started;
      const maxRssKiB = measuresPeakRss
        ? Number(readFileSync(timeFile, "utf8").trim().split("\n").at(-1))
        : null;
      rmSync(scratch, { recursive: true, force: true });
      resolve({ code: timedOut ? null : code, stdout, stderr, maxRssKiB, elapsedMs });
    });
  });
}

/**
 * Runs the CLI's main function (src/cli/main.ts) with `args` in this process, as cli.ts would
 * run it: this runtime's filesystem, the environment and HOME of {@linkcode runCli}, the
 * working directory `options.cwd`. A CLI process costs 0.1–0.3 CPU-seconds here; this, next to
 * nothing. For what no process boundary checks: not stdin, the Deno permissions, the peak RSS
 * (`maxRssKiB` is null), a run that never ends by itself, nor the working directory a credential
 * helper is looked up or started in (this process's).
 */
export async function callCli(
  args: string[],
  options: Pick<RunOptions, "env" | "cwd"> = {},
): Promise<CliRun> {
  const scratch = tempDir();
  const env: Record<string, string | undefined> = {
    ...process.env,
    HOME: scratch,
    NO_COLOR: "1",
    ...options.env,
  };
  let stdout = "";
  let stderr = "";
  const started = performance.now();
  try {
    const code = await cliMain({
      args,
      fs: runtimeFileSystem(),
      stdout: (text) => stdout += text,
      stderr: (text) => stderr += text,
      stderrIsTerminal: false,
      env: (name) => env[name],
      readTextFile: (path) => readFile(path, "utf8"),
      readStdin: () => Promise.reject(new Error("callCli has no stdin: use runCli")),
      cwd: options.cwd ?? repo,
      onInterrupt: () => () => {},
      version: "test",
    });
    return { code, stdout, stderr, maxRssKiB: null, elapsedMs: performance.now() - started };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Every entry under `root` as `find` sees it (name bytes, type, mode, size, mtime, inode),
 * and the SHA-256 of each regular file under 1 MiB: FIFOs and huge files are never opened.
 */
export function snapshot(root: string): string {
  const entries = execFileSync("find", [root, "-printf", "%P %y %m %s %T@ %i\\n"]);
  const hashes = execFileSync("find", [
    root,
    "-type",
    "f",
    "-size",
    "-1048576c",
    "-exec",
    "sha256sum",
    "{}",
    "+",
  ]);
  return `${entries.toString("latin1")}\n${hashes.toString("latin1")}`;
}
