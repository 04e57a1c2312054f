/**
 * Starts Debian's `docker-registry` on a free 127.0.0.1 port with filesystem storage in a
 * temporary directory and its access log on, and reads from that log which blobs were
 * mounted (`POST …/blobs/uploads/?mount=<digest>&from=…` answered 201) and which were
 * uploaded (`PUT …/blobs/uploads/…?digest=<digest>` answered 201): the same count for every
 * client, whatever it reports itself.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Where Debian's `docker-registry` package installs the server. */
export const REGISTRY_BINARY: string = process.env.REGISTRY_BINARY ?? "/usr/bin/docker-registry";

/** Blob digests the registry mounted and took uploads of, per repository name. */
export interface BlobLog {
  /** Digests mounted into each repository. */
  mounted: Map<string, Set<string>>;
  /** Digests uploaded into each repository. */
  uploaded: Map<string, Set<string>>;
}

/** A running registry. */
export interface BenchRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** The blob log so far; call {@linkcode BenchRegistry.settle} first. */
  log: BlobLog;
  /** Waits until every request answered so far is in {@linkcode BenchRegistry.log}. */
  settle(): Promise<void>;
  /** Stops the server (by its PID) and removes its storage. */
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// Combined log format: `… "POST /v2/<name>/blobs/uploads/?… HTTP/1.1" 201 …`.
const REQUEST_LINE = /"(\w+) \/v2\/(\S+)\/blobs\/uploads\/(\S*) HTTP\/[\d.]+" (\d{3}) /;

function record(log: BlobLog, line: string): void {
  const match = REQUEST_LINE.exec(line);
  if (match === null || match[4] !== "201") return;
  const [, method, name, rest] = match as unknown as [string, string, string, string];
  const query = new URLSearchParams(rest.slice(rest.indexOf("?") + 1));
  const [kind, digest] = method === "POST"
    ? [log.mounted, query.get("mount")]
    : [log.uploaded, query.get("digest")];
  if (digest === null) return; // a monolithic POST ?digest= upload counts with the PUTs below
  const set = kind.get(name) ?? new Set();
  kind.set(name, set.add(digest));
}

/**
 * Starts a registry for one measured round.
 *
 * @returns The running registry.
 *
 * @example
 * ```ts ignore
 * const registry = await startBenchRegistry();
 * await registry.stop();
 * ```
 */
export async function startBenchRegistry(): Promise<BenchRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "registry-bench-"));
  const host = `127.0.0.1:${await freePort()}`;
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "storage")}`,
      "http:",
      `  addr: ${host}`,
    ].join("\n") + "\n",
  );
  const child: ChildProcess = spawn(REGISTRY_BINARY, ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
  });
  const log: BlobLog = { mounted: new Map(), uploaded: new Map() };
  let pending = "";
  let sentinels = 0;
  const seen = new Set<string>();
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (text: string) => {
    const lines = (pending + text).split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      const sentinel = /GET \/v2\/\?settle=(\d+) /.exec(line);
      if (sentinel) seen.add(sentinel[1]!);
      else record(log, line);
    }
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => stderr = (stderr + chunk).slice(-4000));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Requests log after their answer; a request sent after the others answered, once its own
  // line is read, means theirs were read too.
  const settle = async () => {
    const id = String(++sentinels);
    await (await fetch(`http://${host}/v2/?settle=${id}`)).body?.cancel();
    for (let i = 0; i < 200 && !seen.has(id); i++) await new Promise((r) => setTimeout(r, 10));
    if (!seen.has(id)) throw new Error(`docker-registry on ${host} did not log request ${id}`);
  };
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) break;
    try {
      await (await fetch(`http://${host}/v2/`)).body?.cancel();
      await settle();
      return { host, log, settle, stop };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await stop();
  throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
}
