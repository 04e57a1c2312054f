// What `copy` shows while blobs move: a bar per blob redrawn on a terminal, a line per
// finished blob otherwise (with --progress), or one JSON event per line on stdout (--json).
import type { TransferProgress } from "../registry/types.ts";
import { escapeControls } from "./escape.ts";

/** How `copy` reports progress. */
export type CopyProgressMode = "terminal" | "lines" | "json" | "none";

/** Hears the transfer events of one step of a copy (`pull` or `push`) and shows them. */
export interface CopyProgress {
  /** A step starts: `pull` from a registry, `push` to one. */
  step(name: "pull" | "push"): void;
  /** One blob event from the registry side. */
  onProgress(event: TransferProgress): void;
  /** Shows the last state (the terminal's bars stay, as docker leaves them). */
  finish(): void;
}

/** The shortest pause between two redraws, and between two byte events of a blob in JSON. */
const INTERVAL_MS = 100;
const BAR_WIDTH = 30;

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

/** A blob's line: what happened to it, with a bar while bytes move. */
function describe(event: TransferProgress): string {
  switch (event.action) {
    case "pull":
    case "push": {
      const done = event.total > 0 ? Math.min(event.current / event.total, 1) : 1;
      if (done === 1 && event.current >= event.total) {
        return `${event.action === "pull" ? "Pulled" : "Pushed"} ${size(event.total)}`;
      }
      const filled = Math.round(done * BAR_WIDTH);
      const bar = "=".repeat(Math.max(filled - 1, 0)) + (filled > 0 ? ">" : "") +
        " ".repeat(BAR_WIDTH - filled);
      const verb = event.action === "pull" ? "Downloading" : "Uploading";
      return `${verb} [${bar}] ${size(event.current)}/${size(event.total)}`;
    }
    case "mount":
      return `Mounted from ${event.from ?? "another repository"}`;
    case "exists":
      return "Already exists";
    case "skip":
      return "Skipped (foreign layer)";
    case "retry":
      return `Retrying (attempt ${(event.attempt ?? 0) + 1}): ${event.error?.message ?? ""}`;
  }
}

/** Whether an event ends a blob (a retry or bytes on the way do not). */
function isFinal(event: TransferProgress): boolean {
  if (event.action === "pull" || event.action === "push") return event.current >= event.total;
  return event.action !== "retry";
}

/**
 * A progress reporter for `copy`.
 *
 * @param mode `terminal`: bars on stderr, redrawn in place; `lines`: a line per finished
 * blob and per retry on stderr; `json`: every event as a JSON line on stdout (byte events at
 * most every 100 ms per blob, the last always); `none`: nothing.
 * @param output `stdout` and `stderr` writers.
 * @param now The clock (milliseconds).
 * @returns The reporter.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { copyProgress } from "./copy_progress.ts";
 *
 * let out = "";
 * const progress = copyProgress("json", { stdout: (text) => out += text, stderr: () => {} });
 * progress.step("push");
 * progress.onProgress({ action: "exists", digest: "sha256:aa", current: 3, total: 3 });
 * equal(JSON.parse(out).action, "exists");
 * ```
 */
export function copyProgress(
  mode: CopyProgressMode,
  output: { stdout(text: string): void; stderr(text: string): void },
  now: () => number = Date.now,
): CopyProgress {
  let step: "pull" | "push" = "pull";
  // Per blob of the current step: its line, and when its last byte event was shown.
  const lines = new Map<string, string>();
  const shownAt = new Map<string, number>();
  let drawn = 0;
  let lastDraw = 0;

  const redraw = (force: boolean) => {
    const time = now();
    if (!force && time - lastDraw < INTERVAL_MS) return;
    lastDraw = time;
    let text = drawn > 0 ? `\x1b[${drawn}A` : "";
    for (const [digest, line] of lines) {
      text += `\r${step} ${shortDigest(digest)}: ${escapeControls(line)}\x1b[K\n`;
    }
    drawn = lines.size;
    output.stderr(text);
  };

  return {
    step(name) {
      if (mode === "terminal" && lines.size > 0) redraw(true);
      step = name;
      lines.clear();
      shownAt.clear();
      drawn = 0;
    },
    onProgress(event) {
      switch (mode) {
        case "none":
          return;
        case "json": {
          const moving = event.action === "pull" || event.action === "push";
          const time = now();
          const last = shownAt.get(event.digest);
          if (moving && !isFinal(event) && last !== undefined && time - last < INTERVAL_MS) return;
          shownAt.set(event.digest, time);
          const { error, ...fields } = event;
          const record = error === undefined ? fields : { ...fields, error: error.message };
          output.stdout(`${JSON.stringify({ event: "progress", step, ...record })}\n`);
          return;
        }
        case "lines":
          if (isFinal(event) || event.action === "retry") {
            output.stderr(
              `${step} ${shortDigest(event.digest)}: ${escapeControls(describe(event))}\n`,
            );
          }
          return;
        case "terminal":
          lines.set(event.digest, describe(event));
          redraw(isFinal(event));
      }
    },
    finish() {
      if (mode === "terminal" && lines.size > 0) redraw(true);
    },
  };
}
