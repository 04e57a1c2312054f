// Starts Debian's dockerd (docker.io, 20.10) as root in a temporary directory of its own: its
// data root, exec root, unix socket and pid file, the vfs storage driver (no kernel overlay
// needed), no iptables and no bridge (no network set-up), an empty daemon.json so
// /etc/docker is ignored. dockerd starts its own containerd under the exec root (unless a
// system containerd runs). The docker
// CLI (Debian's, by path) talks to it through DOCKER_HOST with a DOCKER_CONFIG of its own.
// @needs dockerd and the docker CLI, as root
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { onExit } from "./_on_exit.ts";

/** Debian's dockerd. */
export const DOCKERD_BINARY = "/usr/sbin/dockerd";
/** Debian's docker CLI of the same version (/usr/local/bin may hold another one). */
export const DOCKER_BINARY = "/usr/bin/docker";

/** What a docker CLI command printed, and its exit status. */
export interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running dockerd. */
export interface Dockerd {
  /** `--data-root`. */
  dataRoot: string;
  /** dockerd's distribution metadata store: `<data-root>/image/vfs/distribution`. */
  distribution: string;
  /** Its socket as a `DOCKER_HOST` value, `unix://<dir>/docker.sock`. */
  host: string;
  /** The docker CLI's configuration directory (its config.json holds `docker login`'s). */
  clientConfig: string;
  /**
   * Runs the docker CLI against this dockerd; rejects when it exits non-zero.
   *
   * @param args The CLI's arguments, e.g. `["push", "127.0.0.1:5000/team/app:1"]`.
   * @param input Bytes for its standard input (`docker load`, `--password-stdin`).
   */
  docker(args: string[], input?: Uint8Array): Promise<DockerResult>;
  /** Stops dockerd and its containerd by PID and removes every file. */
  stop(): Promise<void>;
}

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  input?: Uint8Array,
): Promise<DockerResult> {
  // The caller's DOCKER_* settings (TLS, context) must not redirect the CLI.
  const inherited = Object.entries(process.env).filter(([name]) => !name.startsWith("DOCKER_"));
  const child = spawn(command, args, {
    env: { ...Object.fromEntries(inherited), ...env },
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => stdout += chunk);
  child.stderr?.on("data", (chunk) => stderr += chunk);
  child.stdin?.end(input);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mounts", "utf8").split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Starts dockerd and waits until it answers.
 *
 * @param options `insecureRegistries`: hosts dockerd may reach over plain HTTP, e.g. a
 * registry on `127.0.0.1:<port>`.
 * @returns The running daemon.
 */
export async function startDockerd(
  options: { insecureRegistries: string[] },
): Promise<Dockerd> {
  if (process.getuid?.() !== 0) throw new Error("dockerd needs root: run the tests as root");
  for (const binary of [DOCKERD_BINARY, DOCKER_BINARY]) {
    if (!existsSync(binary)) {
      throw new Error(`${binary} is missing: install it with "apt-get install -y docker.io"`);
    }
  }
  // Short: containerd's socket, <exec-root>/containerd/containerd.sock, must fit in 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), "dockerd-"));
  const dataRoot = join(dir, "data");
  const execRoot = join(dir, "exec");
  const socket = join(dir, "docker.sock");
  const clientConfig = join(dir, "client");
  mkdirSync(clientConfig);
  writeFileSync(join(dir, "daemon.json"), "{}\n");
  const child = spawn(DOCKERD_BINARY, [
    "--config-file",
    join(dir, "daemon.json"),
    "--data-root",
    dataRoot,
    "--exec-root",
    execRoot,
    "--host",
    `unix://${socket}`,
    "--pidfile",
    join(dir, "docker.pid"),
    "--storage-driver",
    "vfs",
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    // When a system containerd runs, dockerd uses it instead of its own: keep apart from the
    // system dockerd's "moby" namespaces there.
    "--containerd-namespace",
    `test-${basename(dir)}`,
    "--containerd-plugins-namespace",
    `test-plugins-${basename(dir)}`,
    ...options.insecureRegistries.flatMap((host) => ["--insecure-registry", host]),
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (chunk) => log = (log + String(chunk)).slice(-8000));
  // dockerd bind-mounts its data root onto itself (undone when it stops cleanly).
  const removeFiles = () => {
    for (const point of mountsUnder(dir)) spawnSync("umount", ["-l", point]);
    rmSync(dir, { recursive: true, force: true });
  };
  // Should the test process end without stop() (a crash, or a test filter that skips the
  // hooks), dockerd and its files must not outlive it; its containerd dies with it.
  const cancelOnExit = onExit(() => {
    child.kill("SIGKILL");
    removeFiles();
  });
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: clientConfig };
  const docker = async (args: string[], input?: Uint8Array) => {
    const result = await run(DOCKER_BINARY, args, env, input);
    if (result.code !== 0) {
      throw new Error(`docker ${args.join(" ")} exited with ${result.code}: ${result.stderr}`);
    }
    return result;
  };

  const stop = async () => {
    cancelOnExit();
    // dockerd stops the containerd it started; its pid file says which process that was.
    const containerdPidFile = join(execRoot, "containerd", "containerd.pid");
    const containerd = existsSync(containerdPidFile)
      ? Number(readFileSync(containerdPidFile, "utf8"))
      : 0;
    child.kill("SIGTERM");
    if (!await exited(child, 15_000)) {
      child.kill("SIGKILL");
      await exited(child, 5_000);
    }
    if (containerd > 0 && alive(containerd)) process.kill(containerd, "SIGKILL");
    removeFiles();
  };

  try {
    for (let attempt = 0;; attempt++) {
      if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}`);
      // dockerd opens its socket once it is fully initialised.
      if (existsSync(socket) && (await run(DOCKER_BINARY, ["version"], env)).code === 0) break;
      if (attempt === 300) throw new Error("dockerd did not answer within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}: ${log}`);
  }
  return {
    dataRoot,
    host: env.DOCKER_HOST,
    distribution: join(dataRoot, "image", "vfs", "distribution"),
    clientConfig,
    docker,
    stop,
  };
}
