// Runs cli.ts as a real process of the runtime under test, with a time limit and its peak
// memory measured, and takes snapshots of a store that never open a file in it.
// @needs GNU time (/usr/bin/time)
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

export const repo = fileURLToPath(new URL("..", import.meta.url));
const cli = join(repo, "cli.ts");

/** How a run of cli.ts ended. */
export interface CliRun {
  /** The exit status; `null` when the time limit killed it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident memory in KiB, as `/usr/bin/time -f %M` reports it. */
  maxRssKiB: number;
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

/** Runs cli.ts with `args` under `/usr/bin/time`, killing it after the time limit. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  const [command, commandArgs] = runtimeCommand(cli, args);
  if (runtimeName === "deno") {
    commandArgs.splice(1, 1, "--allow-read", "--allow-env", ...options.denoPermissions ?? []);
  }
  const scratch = tempDir();
  const timeFile = join(scratch, "time");
  const wrapped = [...options.wrapper ?? [], command, ...commandArgs];
  const child = spawn("/usr/bin/time", ["-f", "%M", "-o", timeFile, ...wrapped], {
    cwd: options.cwd ?? repo,
    env: { ...process.env, HOME: scratch, NO_COLOR: "1", ...options.env },
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
      const lines = readFileSync(timeFile, "utf8").trim().split("\n");
      rmSync(scratch, { recursive: true, force: true });
      resolve({
        code: timedOut ? null : code,
        stdout,
        stderr,
        maxRssKiB: Number(lines.at(-1)),
        elapsedMs,
      });
    });
  });
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
