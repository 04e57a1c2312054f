// The registry library's keychain with real helper scripts: each host asked once, a few helpers
// at a time, each within its time limit, even one that hangs or leaves a child on its stdout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dockerKeychain, keychainFromConfig, MAX_CONCURRENT_HELPERS } from "../src/registry/mod.ts";
import { withCredentials } from "../src/registry/keychain.ts";
import { computeV2MetadataHMACKey } from "../mod.ts";
import { tempDir } from "./_cli.ts";

/**
 * A PATH directory with `docker-credential-<name>` running `body` after it read the server URL
 * into $url and appended it to `asked`; `running.<pid>` exists while it runs, and each run
 * appends how many ran at that moment to `counts`.
 */
function helperBin(name: string, body: string): string {
  const bin = tempDir();
  const path = join(bin, `docker-credential-${name}`);
  writeFileSync(
    path,
    `#!/bin/sh
read -r url
echo "$url" >> "${bin}/asked"
touch "${bin}/running.$$"
ls "${bin}" | grep -c '^running\\.' >> "${bin}/counts"
${body}
rm -f "${bin}/running.$$"
`,
  );
  chmodSync(path, 0o755);
  return bin;
}

const pathWith = (bin: string) => (name: string) =>
  name === "PATH" ? `${bin}:/usr/bin:/bin` : undefined;

const ANSWER = `sleep 0.2; echo '{"Username":"u","Secret":"s"}'`;

test("keychainFromConfig() asks a helper once per host, at most MAX_CONCURRENT_HELPERS at a time", async () => {
  const bin = helperBin("count", ANSWER);
  const keychain = keychainFromConfig(JSON.stringify({ credsStore: "count" }), "config.json", {
    env: pathWith(bin),
  });
  const hosts = Array.from({ length: 8 }, (_, i) => `host${i}.test`);
  // Every host twice, all at once.
  const answers = await Promise.all([...hosts, ...hosts].map((host) => keychain.resolve(host)));
  for (const answer of answers) {
    assert.deepEqual(answer, { auth: { username: "u", password: "s" }, source: "helper count" });
  }
  const asked = readFileSync(join(bin, "asked"), "utf8").trim().split("\n");
  assert.deepEqual(asked.sort(), hosts.sort());
  const counts = readFileSync(join(bin, "counts"), "utf8").trim().split("\n").map(Number);
  assert.equal(counts.length, hosts.length);
  assert.ok(Math.max(...counts) <= MAX_CONCURRENT_HELPERS, `at once: ${counts}`);
});

test("keychainFromConfig() kills a helper that hangs past helperTimeout, naming it", async () => {
  const bin = helperBin("hangs", "sleep 600");
  const keychain = keychainFromConfig(JSON.stringify({ credsStore: "hangs" }), "config.json", {
    env: pathWith(bin),
    helperTimeout: 500,
  });
  await assert.rejects(keychain.resolve("r.test"), {
    name: "MetadataError",
    code: "EIO",
    message:
      `Cannot get credentials for "r.test" from "docker-credential-hangs": no answer within 500 ms`,
  });
});

test("keychainFromConfig() takes the answer of a helper whose background child holds its stdout", async () => {
  // The child inherits stdout and outlives the helper: its pipe never closes while it runs.
  const bin = helperBin("forks", `sleep 600 & ${ANSWER}`);
  const keychain = keychainFromConfig(JSON.stringify({ credsStore: "forks" }), "config.json", {
    env: pathWith(bin),
  });
  assert.deepEqual(await keychain.resolve("r.test"), {
    auth: { username: "u", password: "s" },
    source: "helper forks",
  });
});

test("dockerKeychain() reads $DOCKER_CONFIG/config.json; a missing default file means no credentials", async () => {
  const directory = tempDir();
  const env = (name: string) => name === "DOCKER_CONFIG" ? directory : undefined;
  const none = await dockerKeychain({ env });
  assert.deepEqual(await none.resolve("r.test"), { auth: null, source: "none" });
  await assert.rejects(dockerKeychain({ env, configFile: join(directory, "other.json") }), {
    code: "ENOENT",
  });
  writeFileSync(
    join(directory, "config.json"),
    JSON.stringify({ auths: { "https://r.test/v1/": { auth: btoa("ci:pw") } } }),
  );
  const keychain = await dockerKeychain({ env });
  assert.deepEqual(await keychain.resolve("r.test"), {
    auth: { username: "ci", password: "pw" },
    source: "config.json",
  });
  assert.equal(keychain.names("r.test"), true);
  // Without a credsStore no helper hears of any host.
  assert.equal(keychain.names("other.test"), true);
  const withStore = keychainFromConfig(
    JSON.stringify({ auths: { "r.test": {} }, credsStore: "x", credHelpers: { "h.test": "y" } }),
    "config.json",
  );
  assert.deepEqual(
    ["r.test", "h.test", "other.test"].map((host) => withStore.names(host)),
    [true, true, false],
  );
});

test("withCredentials() derives hmacKey from the keychain's credentials as dockerd does, {} for none", async () => {
  const keychain = keychainFromConfig(
    JSON.stringify({ auths: { "r.test": { auth: btoa("ci:pw") } } }),
    "config.json",
  );
  const found = await withCredentials("r.test", { keychain });
  assert.deepEqual(found.auth, { username: "ci", password: "pw" });
  assert.deepEqual(
    found.hmacKey,
    await computeV2MetadataHMACKey({ username: "ci", password: "pw" }),
  );
  const none = await withCredentials("other.test", { keychain });
  assert.equal(none.auth, undefined);
  assert.deepEqual(none.hmacKey, await computeV2MetadataHMACKey({}));
  // A key given is kept; nothing given means no key, as before.
  assert.equal((await withCredentials("r.test", { keychain, hmacKey: null })).hmacKey, null);
  assert.equal((await withCredentials("r.test", {})).hmacKey, undefined);
});
