// A writer script (_kv_writer.ts, _redis_writer.ts) run as a process of the runtime under test:
// it prints "ack <n>" for each add its store acknowledged, then one line reporting its run.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

/** A running writer. */
export interface WriterProcess {
  child: ChildProcess;
  /** The adds acknowledged so far, in the order printed. */
  acked: number[];
  /** How it ended. */
  done: Promise<{ code: number | null; signal: string | null }>;
  /** The last line that is no "ack": the writer's report once it ended. */
  report(): string;
  stderr(): string;
}

/**
 * Starts `script` (relative to tests/) with `args`.
 *
 * @param script The writer, e.g. `./_kv_writer.ts`.
 * @param args Its arguments.
 * @param options `denoFlags` before the script on Deno (e.g. `--unstable-kv`); `onAck` called
 * with each acknowledged add as it is printed.
 * @returns The process, its acknowledged adds and its end.
 */
export function startWriter(
  script: string,
  args: string[],
  options: { denoFlags?: string[]; onAck?: (n: number) => void } = {},
): WriterProcess {
  const path = fileURLToPath(new URL(script, import.meta.url));
  let [command, commandArgs] = runtimeCommand(path, args);
  if (runtimeName === "deno" && options.denoFlags) {
    commandArgs = ["run", ...options.denoFlags, ...commandArgs.slice(1)];
  }
  const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"] });
  const acked: number[] = [];
  let report = "";
  let pending = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith("ack ")) {
        acked.push(Number(line.slice(4)));
        options.onAck?.(Number(line.slice(4)));
      } else report = line;
    }
  });
  child.stderr.on("data", (chunk) => stderr += chunk);
  const done = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  return { child, acked, done, report: () => report, stderr: () => stderr };
}

/**
 * Waits for a writer to end, which must be with status 0.
 *
 * @param writer The writer.
 * @returns Its acknowledged adds and its report line.
 */
export async function writerResult(
  writer: WriterProcess,
): Promise<{ acked: number[]; report: string }> {
  const { code } = await writer.done;
  if (code !== 0) throw new Error(`the writer exited with ${code}: ${writer.stderr()}`);
  return { acked: writer.acked, report: writer.report() };
}
