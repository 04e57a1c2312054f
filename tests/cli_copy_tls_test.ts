// cli.ts copy to registries over https as dockerd reaches them: a loopback registry with a
// private CA over https unverified (http only when no TLS answers), certs.d's CAs and client
// pairs (DISTRIBUTION_METADATA_CERTS_D for the test), --dest-cert-dir, --dest-tls-verify, and
// certificate failures that name the file to put where.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore } from "../src/registry/mod.ts";
import { isInsecureRegistry } from "../src/cli/registry_access.ts";
import { runCli, tempDir } from "./_cli.ts";
import { makeCertificates } from "./registry/_certificates.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const COPY = { denoPermissions: ["--allow-write", "--allow-net", "--allow-run"] };
const certificates = makeCertificates();
const temps: string[] = [];
const servers: Promise<RegistryServer>[] = [];

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

function start(options: Parameters<typeof startRegistry>[0]): Promise<RegistryServer> {
  const started = startRegistry(options);
  servers.push(started);
  return started;
}

const tls = { certificate: certificates.serverCertPath, key: certificates.serverKeyPath };
const https = start({ tls });
const mutual = start({ tls: { ...tls, clientCAs: [certificates.caPath] } });
const plain = start({});

after(async () => {
  for (const server of servers) await (await server.catch(() => null))?.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  certificates.remove();
});

let layout: Promise<string> | undefined;

/** An OCI layout holding a one-layer image tagged `1.0`. */
function image(): Promise<string> {
  layout ??= (async () => {
    const dir = scratch();
    const store = await ociLayoutStore(dir, { fs: nodeFileSystem });
    await buildImage(store, "1.0", [[{ name: "file", data: noise(30_000, 5) }]], "oci");
    return dir;
  })();
  return layout;
}

/** A certs.d base with `files` (names in the test's certificate directory) for `host`. */
function certsD(host: string, files: Record<string, string>): string {
  const base = scratch();
  mkdirSync(join(base, host));
  for (const [name, from] of Object.entries(files)) copyFileSync(from, join(base, host, name));
  return base;
}

function copyTo(host: string, extra: string[], env: Record<string, string> = {}) {
  return image().then((dir) =>
    runCli([
      "copy",
      "--root",
      join(scratch(), "metadata"),
      ...extra,
      `oci:${dir}:1.0`,
      `docker://${host}/team/app:1.0`,
    ], { ...COPY, env: { DISTRIBUTION_METADATA_CERTS_D: scratch(), ...env } })
  );
}

test("cli.ts copy reaches a loopback registry as dockerd: https unverified, else plain http", async () => {
  for (const server of [await https, await plain]) {
    const run = await copyTo(server.host, []);
    assert.equal(run.code, 0, `${server.url}: ${run.stderr}`);
  }
});

test("cli.ts copy --dest-tls-verify fails on an unknown CA naming the certs.d file, and passes with it there", async () => {
  const { host } = await https;
  const base = scratch();
  const failed = await copyTo(host, ["--dest-tls-verify"], { DISTRIBUTION_METADATA_CERTS_D: base });
  assert.equal(failed.code, 2);
  assert.equal(
    failed.stderr,
    `error: Cannot GET "https://${host}/v2/": the registry's certificate is signed by an unknown authority (trust its CA: tls.caCertificates)\n` +
      `hint: put the registry's CA certificate in "${base}/${host}/ca.crt" or pass --src-cert-dir/--dest-cert-dir DIR holding it (or --src-tls-verify=false/--dest-tls-verify=false to skip verification)\n`,
  );
  const trusted = certsD(host, { "ca.crt": certificates.caPath });
  const run = await copyTo(host, ["--dest-tls-verify=true"], {
    DISTRIBUTION_METADATA_CERTS_D: trusted,
  });
  assert.equal(run.code, 0, run.stderr);
});

test("cli.ts copy answers a registry asking for a client certificate with certs.d's pair or --dest-cert-dir's", async () => {
  const { host } = await mutual;
  const pair = { "ca.crt": certificates.caPath, "client.cert": certificates.clientCertPath };
  const withKey = { ...pair, "client.key": certificates.clientKeyPath };
  const run = await copyTo(host, ["--dest-tls-verify"], {
    DISTRIBUTION_METADATA_CERTS_D: certsD(host, withKey),
  });
  assert.equal(run.code, 0, run.stderr);
  const fromDir = await copyTo(host, ["--dest-cert-dir", join(certsD(host, withKey), host)]);
  assert.equal(fromDir.code, 0, fromDir.stderr);
  // A certificate without its key is refused before anything is sent, naming the key.
  const keyless = join(certsD(host, pair), host);
  const missing = await copyTo(host, ["--dest-cert-dir", keyless]);
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr,
    `error: Cannot use client certificate "${keyless}/client.cert": missing key "${keyless}/client.key"\n`,
  );
});

test("skopeo beside us: the same certificate directory reaches a registry asking for a client certificate, and both refuse an unknown CA", async () => {
  const { host } = await mutual;
  const files = {
    "ca.crt": certificates.caPath,
    "client.cert": certificates.clientCertPath,
    "client.key": certificates.clientKeyPath,
  };
  const dir = join(certsD(host, files), host);
  const digestFile = join(scratch(), "digest");
  const ours = await copyTo(host, ["--dest-cert-dir", dir, "--digestfile", digestFile]);
  assert.equal(ours.code, 0, ours.stderr);
  const skopeo = (args: string[]) =>
    spawnSync("skopeo", ["inspect", ...args, `docker://${host}/team/app:1.0`], {
      encoding: "utf8",
      timeout: 60_000,
    });
  const seen = skopeo(["--cert-dir", dir]);
  assert.equal(seen.status, 0, seen.stderr);
  assert.equal(JSON.parse(seen.stdout).Digest, readFileSync(digestFile, "utf8"));
  // Verified without the CA: skopeo fails as our --dest-tls-verify does (previous test).
  const unknown = skopeo(["--tls-verify=true", "--cert-dir", scratch()]);
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /certificate signed by unknown authority/);
  const refused = await copyTo(host, ["--dest-tls-verify", "--dest-cert-dir", scratch()]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /signed by an unknown authority/);
});

test("isInsecureRegistry() matches daemon.json's host:port entries and IPv4 CIDRs", () => {
  const list = ["registry.lan:5000", "10.1.0.0/16"];
  assert.equal(isInsecureRegistry("registry.lan:5000", list), true);
  assert.equal(isInsecureRegistry("registry.lan", list), false);
  assert.equal(isInsecureRegistry("10.1.200.3:443", list), true);
  assert.equal(isInsecureRegistry("10.2.0.1", list), false);
});
