// A real redis-server (Debian's /usr/bin/redis-server) for the tests: on a free 127.0.0.1
// port, with its files in a fresh temp dir, started and stopped by PID.
// @needs redis-server
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";
import { createClient } from "redis";
import { RedisMetadataStore, type RedisMetadataStoreOptions } from "../src/redis_store.ts";
import { tempDir } from "./_adapters.ts";
import { onExit } from "./registry/_on_exit.ts";

const REDIS_SERVER = "/usr/bin/redis-server";

/** A port nobody listens on right now, from the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server process the test controls. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #appendOnly: boolean;
  #process: ChildProcess | undefined;
  /** Cancels the kill at exit that stands in for a stop() never reached. */
  #cancelOnExit: () => void = () => {};

  private constructor(port: number, dir: string, appendOnly: boolean) {
    this.port = port;
    this.dir = dir;
    this.#appendOnly = appendOnly;
  }

  /**
   * Starts a server. `appendOnly`: every write is fsynced to the append-only file before it
   * is acknowledged (`appendonly yes`, `appendfsync always`), else nothing is persisted.
   */
  static async start(options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
    const server = new RedisServer(
      await freePort(),
      tempDir("dm-redis-"),
      options.appendOnly ?? false,
    );
    await server.restart();
    return server;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's PID, while it runs. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Starts the server (again) on the same port and directory; resolves once it serves. */
  restart(): Promise<void> {
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--save",
      "",
      "--appendonly",
      this.#appendOnly ? "yes" : "no",
      "--appendfsync",
      "always",
      "--logfile",
      "",
    ];
    const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#process = child;
    this.#cancelOnExit = onExit(() => child.kill("SIGKILL"));
    return new Promise((resolve, reject) => {
      let log = "";
      const onData = (chunk: unknown) => {
        log += String(chunk);
        if (log.includes("Ready to accept connections")) {
          child.stdout!.off("data", onData);
          child.stdout!.resume();
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", (chunk) => log += String(chunk));
      child.on("error", reject);
      child.on("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${log}`)));
    });
  }

  /** Stops the server by PID: SIGTERM (a clean shutdown) or SIGKILL (a crash). */
  stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    this.#cancelOnExit();
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once("exit", () => resolve());
      process.kill(child.pid!, signal);
    });
  }
}

/** A connected node-redis client that keeps reconnecting every 50 ms while the server is down. */
export async function connect(url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: 50 } });
  // A dropped connection is reported here as well as to the commands in flight.
  client.on("error", () => {});
  return await client.connect();
}

let stores = 0;

/** A store on `client` under a prefix of its own, so that it starts empty. */
export function freshStore(
  client: Awaited<ReturnType<typeof connect>>,
  options: RedisMetadataStoreOptions = {},
): Promise<RedisMetadataStore> {
  return RedisMetadataStore.open(client, { prefix: `test${++stores}:`, ...options });
}
