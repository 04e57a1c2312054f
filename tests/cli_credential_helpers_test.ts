// Credential helpers only from safe places and only for what a command needs (issue 25, items 2
// and 3): a helper planted in the working directory never runs whatever PATH holds, and a crafted
// store naming hundreds of hosts does not send them to the user's helper. The working directory
// and relative PATH entries are the process's own, so that test starts cli.ts; the other calls
// the CLI's main function in this process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { callCli, runCli, tempDir } from "./_cli.ts";

const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
const RUN = { denoPermissions: ["--allow-run"] };

/** A store with an entry on each of `hosts`, each under a DiffID of its own. */
async function storeNaming(hosts: string[]): Promise<string> {
  const root = join(tempDir(), "distribution");
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  for (const [i, host] of hosts.entries()) {
    await service.add(digest(i + 1), {
      digest: digest(1000),
      sourceRepository: `${host}/app`,
      hmac: "",
    });
  }
  return root;
}

/** `docker-credential-<name>` in `dir`: appends the server URL it is asked for to `dir/asked`. */
function plantHelper(dir: string, name: string): void {
  const path = join(dir, `docker-credential-${name}`);
  writeFileSync(
    path,
    `#!/bin/sh\nread -r url\necho "$url" >> "${dir}/asked"\necho '{"Username":"u","Secret":"s"}'\n`,
  );
  chmodSync(path, 0o755);
}

function dockerConfig(config: unknown): string {
  const directory = tempDir();
  writeFileSync(join(directory, "config.json"), JSON.stringify(config));
  return directory;
}

test("cli.ts check never runs a helper from the working directory, whatever PATH names it", async () => {
  const root = await storeNaming(["127.0.0.1:5000"]);
  const cwd = tempDir();
  plantHelper(cwd, "desktop");
  const config = dockerConfig({ auths: { "127.0.0.1:5000": {} }, credsStore: "desktop" });
  // An empty entry at the end or the start, and ".": each names the working directory.
  for (const path of ["/usr/bin:/bin:", ":/usr/bin", "."]) {
    const run = await runCli(["--root", root, "check"], {
      ...RUN,
      cwd,
      env: { PATH: path, DOCKER_CONFIG: config },
    });
    assert.equal(run.code, 2, `${path}: ${run.stderr}`);
    assert.equal(
      run.stderr,
      `error: Cannot get credentials for "127.0.0.1:5000" from "docker-credential-desktop": no such program in an absolute PATH entry\n`,
    );
    assert.equal(existsSync(join(cwd, "asked")), false, `PATH=${path}: the planted helper ran`);
  }
  // The same helper in an absolute entry is run.
  const run = await runCli(["--root", root, "--json", "check"], {
    ...RUN,
    cwd,
    env: { PATH: `${cwd}:/usr/bin:/bin`, DOCKER_CONFIG: config },
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(readFileSync(join(cwd, "asked"), "utf8"), "127.0.0.1:5000\n");
});

test("cli.ts check asks the helper only for hosts config.json names and --target, not the store's", async () => {
  const hosts = Array.from({ length: 100 }, (_, i) => `host${i}.test:5000`);
  const root = await storeNaming(hosts);
  const bin = tempDir();
  plantHelper(bin, "ours");
  const config = dockerConfig({ auths: { "host3.test:5000": {} }, credsStore: "ours" });
  const env = { PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: config };
  const run = await callCli(["--root", root, "--json", "check"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(readFileSync(join(bin, "asked"), "utf8"), "host3.test:5000\n");
  const sources = new Map<string, string>(
    JSON.parse(run.stdout).entries.map((entry: { registry: string; credentials: string }) => [
      entry.registry,
      entry.credentials,
    ]),
  );
  assert.equal(sources.get("host3.test:5000"), "helper ours");
  assert.equal(sources.get("host4.test:5000"), "none (not in config.json)");
  // The registry pushed to is asked for as docker push would, named or not.
  const targeted = await callCli(
    ["--root", root, "--json", "check", "--target", "host7.test:5000/app"],
    { env },
  );
  assert.equal(targeted.code, 0, targeted.stderr);
  assert.deepEqual(
    readFileSync(join(bin, "asked"), "utf8").split("\n").sort(),
    ["", "host3.test:5000", "host3.test:5000", "host7.test:5000"],
  );
});
