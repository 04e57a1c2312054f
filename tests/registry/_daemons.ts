// The docker-registry (htpasswd, access log kept) and the dockerd logged in to it as alice that
// the dockerd tests share, started on first use and stopped by `stopDaemons` (each test file's
// `after`); temporary directories removed at exit, random layers, and dockerd's HMACs.
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LayerFile } from "./_docker_archive.ts";
import { type Dockerd, startDockerd } from "./_dockerd.ts";
import { onExit } from "./_on_exit.ts";
import { type RegistryServer, startRegistry, USERS } from "./_registry_server.ts";

/** The registry user dockerd logs in as. */
export const ALICE = { username: "alice", password: USERS.alice! };

const temps: string[] = [];
let registryStarted: Promise<RegistryServer> | undefined;
let dockerdStarted: Promise<Dockerd> | undefined;

// At exit rather than in after(): Deno skips the hooks when --filter leaves a test out.
onExit(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory, removed at exit. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dockerd-it-"));
  temps.push(dir);
  return dir;
}

/** The registry and dockerd, started on first use, with dockerd logged in as alice. */
export async function daemons(): Promise<{ registry: RegistryServer; dockerd: Dockerd }> {
  registryStarted ??= startRegistry({ htpasswd: true, accessLog: true });
  const registry = await registryStarted;
  dockerdStarted ??= startDockerd({ insecureRegistries: [registry.host] }).then(async (d) => {
    const password = new TextEncoder().encode(ALICE.password);
    await d.docker(
      ["login", "--username", ALICE.username, "--password-stdin", registry.host],
      password,
    );
    return d;
  });
  return { registry, dockerd: await dockerdStarted };
}

/**
 * Stops dockerd and the registry, when started; the next `daemons()` starts new ones (bun test
 * runs every test file in one process, sharing this module).
 */
export async function stopDaemons(): Promise<void> {
  const started = [dockerdStarted, registryStarted];
  dockerdStarted = registryStarted = undefined;
  for (const daemon of started) {
    const running = await daemon?.catch(() => null);
    await running?.stop();
  }
}

/** Layers of one random file each: DiffIDs no other test (or earlier run) has seen. */
export function randomLayers(count: number): LayerFile[][] {
  return Array.from({ length: count }, (_, i) => [
    { name: `data/layer-${i}.bin`, data: crypto.getRandomValues(new Uint8Array(1000 + i * 700)) },
  ]);
}

/** dockerd's key and HMAC of an entry for alice, computed independently of the library. */
export function dockerdHmac(digest: string, repository: string): string {
  const json = `{"username":"${ALICE.username}","password":"${ALICE.password}"}`;
  const key = "sha256:" + createHash("sha256").update(json).digest("hex");
  return createHmac("sha256", key).update(digest + repository).digest("hex");
}
