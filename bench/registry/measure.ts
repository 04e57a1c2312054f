/**
 * Runs a command as a child process and measures it: wall time from spawn to exit, and peak
 * RSS from GNU time (`/usr/bin/time -f %M`, the kernel's `ru_maxrss` of the waited-for child:
 * the whole process, whatever runtime it is). The command runs under coreutils' `timeout`,
 * which signals the process group it leads, so a hung transfer is ended with its children.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** GNU time, which reports peak RSS. */
export const TIME_BINARY = "/usr/bin/time";

/** What one measured command did. */
export interface Measured {
  /** Seconds from spawn to exit. */
  wall: number;
  /** Peak resident set size in MiB (`ru_maxrss`). */
  rssMiB: number;
  /** The exit code (124 or 137 when `timeout` ended it). */
  code: number;
  /** The last 64 KiB of standard output. */
  stdout: string;
  /** The last 4 KiB of standard error. */
  stderr: string;
}

/**
 * Runs `command` and measures it.
 *
 * @param command The program and its arguments.
 * @param options `cwd`; `timeoutSeconds` after which the process group is ended.
 * @returns Wall time, peak RSS, exit code and output.
 *
 * @example
 * ```ts ignore
 * const { wall, rssMiB } = await measure(["skopeo", "--version"], { cwd: "/", timeoutSeconds: 10 });
 * ```
 */
export async function measure(
  command: string[],
  options: { cwd: string; timeoutSeconds: number },
): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), "registry-bench-time-"));
  const report = join(dir, "time");
  try {
    const start = performance.now();
    const child = spawn(
      "timeout",
      [
        "--kill-after=10",
        String(options.timeoutSeconds),
        TIME_BINARY,
        "-f",
        "%e %M",
        "-o",
        report,
        ...command,
      ],
      { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => stdout = (stdout + chunk).slice(-65536));
    child.stderr!.on("data", (chunk) => stderr = (stderr + chunk).slice(-4096));
    const code = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
    });
    const wall = (performance.now() - start) / 1000;
    // GNU time writes "Command exited with non-zero status N" before its line on failures.
    const line = existsSync(report) ? readFileSync(report, "utf8").trim().split("\n").at(-1)! : "";
    const kib = Number(line.split(" ")[1]);
    return { wall, rssMiB: Number.isFinite(kib) ? kib / 1024 : NaN, code, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
