#!/usr/bin/env node
// The suite's set-up on a Debian machine: installs, as root through apt-get, the real programs
// the integration tests start (docker-registry, htpasswd, dockerd, skopeo, redis-server, GNU time, nginx) when
// any is missing. It starts nothing: each test file starts what it needs and stops it by PID.
// When it cannot install (not root, no apt-get) it prints one line naming what is missing and
// why, and exits 1. run_all.mjs runs it before the runtimes; `node tests/_setup.mjs` alone too.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

/** Each program the tests run, where its Debian package installs it (the tests use these paths). */
export const REQUIREMENTS = [
  { program: "/usr/bin/docker-registry", pkg: "docker-registry" },
  { program: "/usr/bin/htpasswd", pkg: "apache2-utils" },
  { program: "/usr/sbin/dockerd", pkg: "docker.io" },
  // Debian's 20.10 client, by path: /usr/local/bin may hold another one.
  { program: "/usr/bin/docker", pkg: "docker.io" },
  { program: "/usr/bin/skopeo", pkg: "skopeo" },
  { program: "/usr/bin/redis-server", pkg: "redis-server" },
  { program: "/usr/bin/setpriv", pkg: "util-linux" },
  { program: "/usr/bin/unshare", pkg: "util-linux" },
  // Peak RSS and the real exit status of a CLI run (tests/_cli.ts, cli_copy_test).
  { program: "/usr/bin/time", pkg: "time" },
  // A reverse proxy redirecting blob GETs to another origin (registry_redirect_proxy_test).
  { program: "/usr/sbin/nginx", pkg: "nginx-light" },
];

/**
 * The packages whose programs are missing, in REQUIREMENTS order without repeats.
 *
 * @returns {string[]}
 */
export function missingPackages() {
  const missing = REQUIREMENTS.filter(({ program }) => !existsSync(program));
  return [...new Set(missing.map(({ pkg }) => pkg))];
}

function onPath(program) {
  const path = process.env.PATH ?? "";
  return path.split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, program)));
}

/** Runs apt-get quietly; its output is shown only when it fails. */
function apt(args) {
  const result = spawnSync("apt-get", ["-qq", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_MODE: "l" },
  });
  if (result.status !== 0) process.stderr.write(`${result.stdout ?? ""}${result.stderr ?? ""}`);
  return result.status === 0;
}

/**
 * Installs what is missing, or explains in one line why it cannot.
 *
 * @returns {string | null} The one-line reason the suite cannot run, or null when it can.
 */
export function setUp() {
  const asRoot = process.getuid?.() === 0;
  const missing = missingPackages();
  // dockerd runs only as root, so without root the suite cannot pass even with nothing missing.
  if (missing.length === 0) {
    return asRoot ? null : "the suite starts dockerd, which needs root: run the tests as root";
  }
  const what = `missing Debian packages ${missing.join(", ")}`;
  if (!asRoot) return `${what}: cannot install them without root (run the tests as root)`;
  if (!onPath("apt-get")) {
    return `${what}: cannot install them without apt-get (install them by hand)`;
  }
  console.error(`test set-up: apt-get install ${missing.join(" ")}`);
  if (!apt(["update"]) || !apt(["install", "-y", "--no-install-recommends", ...missing])) {
    return `${what}: apt-get install failed (its output is above)`;
  }
  const still = missingPackages();
  return still.length === 0 ? null : `${what}: still missing after apt-get install: ${still}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const reason = setUp();
  if (reason !== null) {
    console.error(`test set-up: ${reason}`);
    process.exit(1);
  }
}
