// Blob GETs redirected to another origin by nginx-light in front of an htpasswd docker-registry:
// pull and copy follow the 307, verify every digest, and never send the registry's credentials
// to the other origin; skopeo pulls the same image through the same proxy.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { copy, ociLayoutStore, pull, push } from "../src/registry/mod.ts";
import { tempDir } from "./_cli.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RedirectingProxy, startRedirectingProxy } from "./registry/_nginx.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";

const ALICE = { username: "alice", password: USERS.alice! };
const temps: string[] = [];
let started:
  | Promise<{ registry: RegistryServer; proxy: RedirectingProxy; digests: string[] }>
  | undefined;

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

after(async () => {
  const running = await started?.catch(() => null);
  await running?.proxy.stop();
  await running?.registry.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** The registry holding `team/app:1.0` (pushed straight to it), behind the proxy. */
function servers() {
  started ??= (async () => {
    const registry = await startRegistry({ htpasswd: true });
    const store = await ociLayoutStore(scratch(), { fs: nodeFileSystem });
    const image = await buildImage(
      store,
      "1.0",
      [1, 2, 3].map((n) => [{ name: `f${n}`, data: noise(30_000 * n, 70 + n) }]),
      "oci",
    );
    await push(`${registry.host}/team/app:1.0`, store, { auth: ALICE, plainHttp: true });
    const proxy = await startRedirectingProxy(
      registry.host,
      `Basic ${btoa(`alice:${ALICE.password}`)}`,
    );
    return {
      registry,
      proxy,
      digests: [image.config.digest, ...image.layers.map((l) => l.digest)],
    };
  })();
  return started;
}

test("pull() and copy() follow blob GETs redirected to another origin, without sending it credentials", async () => {
  const { proxy, digests } = await servers();
  const layout = await ociLayoutStore(scratch(), { fs: nodeFileSystem });
  await pull(`${proxy.host}/team/app:1.0`, layout, { auth: ALICE, plainHttp: true });
  for (const digest of digests) assert.equal(await layout.has(digest), true, digest);
  await copy(`${proxy.host}/team/app:1.0`, `${proxy.host}/team/copy:1.0`, {
    source: { auth: ALICE, plainHttp: true },
    destination: { auth: ALICE, plainHttp: true },
  });
  const redirected = proxy.redirected();
  assert.ok(redirected.length >= digests.length, JSON.stringify(redirected));
  for (const request of redirected) {
    assert.equal(request.method, "GET");
    assert.equal(
      request.authorization,
      "-", // nginx logs an absent header as "-"
      `credentials reached the other origin: ${request.path}`,
    );
  }
});

test("skopeo copies through the same redirecting proxy (the behaviour matched)", async () => {
  const { proxy, digests } = await servers();
  const dir = scratch();
  await promisify(execFile)("skopeo", [
    "copy",
    "--src-tls-verify=false",
    "--src-creds",
    `alice:${ALICE.password}`,
    `docker://${proxy.host}/team/app:1.0`,
    `oci:${dir}:1.0`,
  ]);
  const blobs = readdirSync(join(dir, "blobs", "sha256"));
  for (const digest of digests) assert.ok(blobs.includes(digest.slice(7)), digest);
});
