// Runs a credential helper as the docker CLI does (no shell, found on PATH), with what the docker
// CLI lacks: only absolute PATH entries are searched, its output and run time are bounded, and a
// child it leaves holding the pipes does not hold us. On `node:child_process`, which Deno, Bun
// and Node all have; where it is missing (workers) there is no default runner.
import { nodeBuiltin } from "../_runtime.ts";

/** What a program run by a {@linkcode ProgramRunner} did. */
export interface ProgramResult {
  /** The exit status (128 + the signal's number when a signal ended it). */
  status: number;
  /** What it printed on stdout. */
  stdout: string;
  /** What it printed on stderr. */
  stderr: string;
}

/** The bounds one run of a program stays within. */
export interface ProgramLimits {
  /** The most bytes read from stdout, and from stderr; past it the program is killed. */
  maxBytes: number;
  /** Milliseconds until the program is killed and the run fails. */
  timeout: number;
}

/**
 * Runs `program`, a bare name found on `PATH`, without a shell, with `args`, writing `input` to
 * its stdin. Rejects when it cannot be started (with the runtime's error: `ENOENT` when not
 * found, `EACCES` when not allowed), when its output passes `limits.maxBytes` or when it runs
 * past `limits.timeout` (it is killed then).
 */
export type ProgramRunner = (
  program: string,
  args: readonly string[],
  input: string,
  limits: ProgramLimits,
) => Promise<ProgramResult>;

/**
 * How long the pipes may stay open after the program exited: a child it started in the
 * background can hold them for ever, and what the program itself wrote is read by then.
 */
const PIPE_GRACE_MS = 1_000;

interface NodeReadable {
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  destroy(): void;
}
interface NodeChild {
  stdin: { end(text: string): void; on(event: "error", listener: () => void): void };
  stdout: NodeReadable;
  stderr: NodeReadable;
  once(event: "spawn", listener: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  once(event: "exit", listener: (code: number | null, signal: string | null) => void): void;
  once(event: "close", listener: () => void): void;
  kill(signal: "SIGKILL"): void;
}
interface ChildProcessModule {
  spawn(program: string, args: readonly string[], options: { stdio: "pipe" }): NodeChild;
}
interface FsModule {
  statSync(path: string): { isFile(): boolean; mode: number };
}

/** An error carrying an errno name, as the runtimes' own errors do. */
function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Where `program` is: the first file of that name with an execute bit (as Go's `findExecutable`)
 * in an absolute `PATH` entry. Empty
 * entries, `.` and relative ones name the working directory, from which the docker CLI (Go's
 * `exec.LookPath` since Go 1.19) refuses to run a helper: they are skipped.
 *
 * @param program A bare name, e.g. `docker-credential-desktop`.
 * @param path The `PATH` value.
 * @param fs `node:fs`.
 * @returns The absolute path, or `null` when no absolute entry holds it.
 */
export function findOnPath(program: string, path: string, fs: FsModule): string | null {
  for (const directory of path.split(":")) {
    if (!directory.startsWith("/")) continue;
    const candidate = `${directory.replace(/\/+$/, "")}/${program}`;
    try {
      const info = fs.statSync(candidate);
      if (info.isFile() && (info.mode & 0o111) !== 0) return candidate;
    } catch {
      // absent here: the next entry
    }
  }
  return null;
}

/** Reads a pipe into chunks, calling `tooMuch` once past `maxBytes`. */
function collect(stream: NodeReadable, maxBytes: number, tooMuch: () => void) {
  const chunks: Uint8Array[] = [];
  let length = 0;
  stream.on("data", (chunk) => {
    if (length > maxBytes) return;
    length += chunk.length;
    if (length > maxBytes) tooMuch();
    else chunks.push(chunk);
  });
  return () => {
    const bytes = new Uint8Array(length > maxBytes ? 0 : length);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return new TextDecoder().decode(bytes);
  };
}

/** Signal numbers for the exit status of a program a signal ended (as a shell reports it). */
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * The runtime's {@linkcode ProgramRunner} on `node:child_process`, or `null` where the runtime
 * has none (workers).
 *
 * @param env Environment variables: `PATH` is searched.
 * @returns The runner.
 */
export function defaultProgramRunner(
  env: (name: string) => string | undefined,
): ProgramRunner | null {
  const childProcess = nodeBuiltin<ChildProcessModule>("node:child_process", "spawn");
  const fs = nodeBuiltin<FsModule>("node:fs", "statSync");
  if (childProcess === null || fs === null) return null;
  return (program, args, input, limits) => {
    const found = findOnPath(program, env("PATH") ?? "", fs);
    if (found === null) {
      return Promise.reject(codedError("ENOENT", `no "${program}" in an absolute PATH entry`));
    }
    return new Promise((resolve, reject) => {
      let child: NodeChild;
      try {
        child = childProcess.spawn(found, args, { stdio: "pipe" });
      } catch (error) {
        return reject(error);
      }
      let settled = false;
      const timers: ReturnType<typeof setTimeout>[] = [];
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        timers.forEach(clearTimeout);
        child.kill("SIGKILL");
        child.stdout.destroy();
        child.stderr.destroy();
        reject(error);
      };
      const tooMuch = () => fail(new Error(`it printed more than ${limits.maxBytes} bytes`));
      const stdout = collect(child.stdout, limits.maxBytes, tooMuch);
      const stderr = collect(child.stderr, limits.maxBytes, tooMuch);
      let status = 1;
      const finish = () => {
        if (settled) return;
        settled = true;
        timers.forEach(clearTimeout);
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ status, stdout: stdout(), stderr: stderr() });
      };
      timers.push(
        setTimeout(() => fail(new Error(`no answer within ${limits.timeout} ms`)), limits.timeout),
      );
      child.once("error", fail);
      child.once("exit", (code, signal) => {
        status = code ?? 128 + (SIGNALS[signal ?? ""] ?? 0);
        timers.push(setTimeout(finish, PIPE_GRACE_MS));
      });
      child.once("close", finish);
      // A helper that exits without reading its input closes the pipe: not an error here.
      child.stdin.on("error", () => {});
      child.stdin.end(input);
    });
  };
}
