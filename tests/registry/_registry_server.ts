// Starts Debian's Distribution registry server (/usr/bin/docker-registry) on 127.0.0.1 with a
// free port, a temporary storage directory and a generated config; optionally with htpasswd
// (Basic) authentication, in read-only mode, or keeping its access log. Stopped with stop().
// @needs docker-registry
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { onExit } from "./_on_exit.ts";

/** Where Debian's `docker-registry` package installs the server. */
export const REGISTRY_BINARY: string = process.env.REGISTRY_BINARY ?? "/usr/bin/docker-registry";

/** Users of the htpasswd variant, with their passwords. */
export const USERS: Record<string, string> = {
  alice: "alice-secret",
  bob: "bob-secret",
};

// bcrypt lines for USERS (htpasswd -Bbn), used when apache2-utils' htpasswd is missing.
const PRECOMPUTED_HTPASSWD = [
  "alice:$2y$05$ZbqJmHSttTUOZpFHZVl2oeQmcmX6NcSV7LMazFlomtYBDib3vEQKK",
  "bob:$2y$05$gGb/wfKpZuUC5j3lIqPW0eNOBdHAgZV3VAcOxZXbF7P3AWLakHcVe",
];

/** One line of the registry's access log. */
export interface LoggedRequest {
  method: string;
  /** The path and query as sent, e.g. `/v2/team/app/blobs/uploads/?from=team%2Fbase&mount=…`. */
  url: string;
  status: number;
  userAgent: string;
}

/** A running registry. */
export interface RegistryServer {
  /** `127.0.0.1:<port>`, the domain of references. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The storage directory. */
  storage: string;
  /**
   * Every request logged so far (needs `accessLog: true`). The registry logs a request once
   * answered, so this first sends one of its own and waits for its line.
   */
  requests(): Promise<LoggedRequest[]>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** Ends a server started by a test: SIGTERM, then its exit. */
export async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** A port of 127.0.0.1 free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function htpasswdLines(): string {
  const lines: string[] = [];
  for (const [user, password] of Object.entries(USERS)) {
    const result = spawnSync("htpasswd", ["-Bbn", user, password], { encoding: "utf8" });
    if (result.status !== 0 || typeof result.stdout !== "string") {
      return PRECOMPUTED_HTPASSWD.join("\n") + "\n";
    }
    lines.push(result.stdout.trim());
  }
  return lines.join("\n") + "\n";
}

/** Whether something accepts connections on `port` of 127.0.0.1 (a TLS server, unverified). */
export function listening(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve();
    });
    socket.on("error", reject);
  });
}

async function waitUntilUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) {
      throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    }
    try {
      if (url.startsWith("https:")) await listening(Number(new URL(url).port));
      else await (await fetch(`${url}/v2/`)).body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`docker-registry did not answer on ${url}: ${log()}`);
}

// Apache's combined format, as the registry's gorilla handler writes it.
const ACCESS_LINE = /"(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"$/;

function parseAccessLog(text: string): LoggedRequest[] {
  return text.split("\n").flatMap((line) => {
    const match = ACCESS_LINE.exec(line);
    if (match === null) return [];
    return [{ method: match[1]!, url: match[2]!, status: Number(match[3]), userAgent: match[4]! }];
  });
}

/**
 * Starts a registry.
 *
 * @param options `htpasswd`: Basic auth with USERS; `readOnly`: refuse writes; `accessLog`:
 * keep the access log for `requests()`; `tls`: serve https with these files (certificate, key,
 * and the CAs client certificates must be signed by, when it asks for them).
 */
export async function startRegistry(
  options: {
    htpasswd?: boolean;
    readOnly?: boolean;
    storage?: string;
    accessLog?: boolean;
    tls?: { certificate: string; key: string; clientCAs?: string[] };
    /** Token auth (`auth.token`): the token server, and the certificate its JWTs are signed under. */
    token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  } = {},
): Promise<RegistryServer> {
  if (!existsSync(REGISTRY_BINARY)) {
    throw new Error(
      `${REGISTRY_BINARY} is missing: the test set-up (node tests/run_all.mjs) installs it ` +
        '("apt-get install -y docker-registry")',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "registry-test-"));
  const storage = options.storage ?? join(dir, "storage");
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    `    disabled: ${!options.accessLog}`,
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storage}`,
    "  delete:",
    "    enabled: true",
    ...(options.readOnly
      ? [
        "  maintenance:",
        "    readonly:",
        "      enabled: true",
        "    uploadpurging:",
        "      enabled: false",
      ]
      : []),
    "http:",
    `  addr: ${host}`,
    ...(options.tls
      ? [
        "  tls:",
        `    certificate: ${options.tls.certificate}`,
        `    key: ${options.tls.key}`,
        ...(options.tls.clientCAs
          ? ["    clientcas:", ...options.tls.clientCAs.map((path) => `      - ${path}`)]
          : []),
      ]
      : []),
    ...(options.htpasswd
      ? ["auth:", "  htpasswd:", "    realm: test-realm", `    path: ${join(dir, "htpasswd")}`]
      : []),
    ...(options.token
      ? [
        "auth:",
        "  token:",
        `    realm: ${options.token.realm}`,
        `    service: ${options.token.service}`,
        `    issuer: ${options.token.issuer}`,
        `    rootcertbundle: ${options.token.rootCertBundle}`,
      ]
      : []),
  ].join("\n") + "\n";
  if (options.htpasswd) writeFileSync(join(dir, "htpasswd"), htpasswdLines());
  writeFileSync(join(dir, "config.yml"), config);
  const child = spawn(REGISTRY_BINARY, ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", options.accessLog ? "pipe" : "ignore", "pipe"],
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
  });
  const kill = () => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  const cancelOnExit = onExit(kill);
  let accessLog = "";
  child.stdout?.on("data", (chunk) => accessLog += chunk);
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr = (stderr + String(chunk)).slice(-4000);
  });
  const url = `${options.tls ? "https" : "http"}://${host}`;
  try {
    await waitUntilUp(url, child, () => stderr);
  } catch (error) {
    cancelOnExit();
    kill();
    throw error;
  }
  let marks = 0;
  const requests = async () => {
    if (!options.accessLog) throw new Error("requests() needs startRegistry({ accessLog: true })");
    const mark = `/v2/?mark=${++marks}`;
    await (await fetch(`${url}${mark}`)).body?.cancel();
    for (let attempt = 0; !parseAccessLog(accessLog).some((r) => r.url === mark); attempt++) {
      if (attempt === 100) throw new Error(`docker-registry did not log ${mark}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return parseAccessLog(accessLog);
  };
  return {
    host,
    url,
    storage,
    requests,
    stop: async () => {
      cancelOnExit();
      await terminate(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
