// cli.ts check with credentials from docker credential helpers (scripts of our own on PATH,
// speaking the docker-credential-helpers protocol) and from --password-stdin. Stdin, Deno's
// permissions and the peak RSS of a flooding helper are a process's, so those tests start cli.ts;
// the others call the CLI's main function in this process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AuthConfig,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  V2MetadataService,
} from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { assertPeakRssUnder, callCli, type CliRun, runCli, snapshot, tempDir } from "./_cli.ts";
import { runtimeName } from "./_runtime.ts";

const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
const CI: AuthConfig = { username: "ci", password: "secret" };
const TOKEN: AuthConfig = { identitytoken: "t0ken" };
const BOB: AuthConfig = { username: "bob", password: "hunter2" };

/** Entries on 127.0.0.1:5000 tagged for CI and for Bob, and one on Docker Hub for TOKEN. */
async function taggedStore(): Promise<string> {
  const root = join(tempDir(), "distribution");
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  const entry = (repository: string) => ({
    digest: digest(101),
    sourceRepository: repository,
    hmac: "",
  });
  await service.tagAndAdd(
    digest(1),
    await computeV2MetadataHMACKey(CI),
    entry("127.0.0.1:5000/team/app"),
  );
  await service.tagAndAdd(
    digest(1),
    await computeV2MetadataHMACKey(BOB),
    entry("127.0.0.1:5000/bob/app"),
  );
  await service.tagAndAdd(
    digest(1),
    await computeV2MetadataHMACKey(TOKEN),
    entry("docker.io/library/busybox"),
  );
  return root;
}

/**
 * A directory for PATH holding `docker-credential-<name>`, a shell script that appends the
 * server URL it is asked for to `<dir>/asked` and answers with `script` (a `case` on $url).
 */
function helperBin(name: string, script: string): string {
  const bin = tempDir();
  const path = join(bin, `docker-credential-${name}`);
  writeFileSync(
    path,
    `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r url\necho "$url" >> "${bin}/asked"\n${script}\n`,
  );
  chmodSync(path, 0o755);
  return bin;
}

/** A DOCKER_CONFIG directory with `config` as its config.json. */
function dockerConfig(config: unknown): string {
  const directory = tempDir();
  writeFileSync(join(directory, "config.json"), JSON.stringify(config));
  return directory;
}

function withHelpers(bin: string, config: string): Record<string, string> {
  return { PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: config };
}

/** `check --json` rows as [source repository, credentials, hmacMatches]. */
function rows(run: CliRun): [string, string, boolean][] {
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).entries.map((
    entry: { sourceRepository: string; credentials: string; hmacMatches: boolean },
  ) => [entry.sourceRepository, entry.credentials, entry.hmacMatches]);
}

const RUN = { denoPermissions: ["--allow-run"] };

const ANSWERS = `case "$url" in
  127.0.0.1:5000) echo '{"ServerURL":"127.0.0.1:5000","Username":"ci","Secret":"secret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"t0ken"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac`;

/** What `docker login` leaves in config.json with a credsStore: an empty entry per host. */
const LOGGED_IN = { "127.0.0.1:5000": {}, "https://index.docker.io/v1/": {} };

test("cli.ts check gets credentials from the credsStore helper, asking each host once as docker does", async () => {
  const root = await taggedStore();
  const before = snapshot(root);
  const bin = helperBin("ours", ANSWERS);
  const config = dockerConfig({ auths: LOGGED_IN, credsStore: "ours" });
  const run = await callCli(["--root", root, "--json", "check"], {
    env: withHelpers(bin, config),
  });
  assert.deepEqual(rows(run), [
    ["127.0.0.1:5000/team/app", "helper ours", true],
    ["127.0.0.1:5000/bob/app", "helper ours", false],
    // "<token>" as the user name: the secret is an identity token.
    ["docker.io/library/busybox", "helper ours", true],
  ]);
  // Docker Hub is asked for by the docker CLI's key for it, every host once.
  assert.deepEqual(
    readFileSync(join(bin, "asked"), "utf8").split("\n").sort(),
    ["", "127.0.0.1:5000", "https://index.docker.io/v1/"],
  );
  assert.equal(snapshot(root), before, "the store was modified");
});

test("cli.ts check takes credHelpers over credsStore per host; a helper's not-found means none", async () => {
  const root = await taggedStore();
  const store = helperBin("store", ANSWERS);
  // The per-host helper knows Bob; for Docker Hub it has nothing.
  const perHost = helperBin(
    "bobs",
    `case "$url" in
  127.0.0.1:5000) echo '{"Username":"bob","Secret":"hunter2"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac`,
  );
  const config = dockerConfig({
    credsStore: "store",
    credHelpers: { "127.0.0.1:5000": "bobs", "https://index.docker.io/v1/": "bobs" },
  });
  const run = await callCli(["--root", root, "--json", "check"], {
    env: withHelpers(`${perHost}:${store}`, config),
  });
  assert.deepEqual(rows(run), [
    ["127.0.0.1:5000/team/app", "helper bobs", false],
    ["127.0.0.1:5000/bob/app", "helper bobs", true],
    ["docker.io/library/busybox", "none (helper bobs)", false],
  ]);
  assert.equal(existsSync(join(store, "asked")), false, "credsStore was not asked");
  // An empty credHelpers entry means no helper for that host: its auths entry, not credsStore.
  const emptyEntry = dockerConfig({
    auths: { ...LOGGED_IN, "127.0.0.1:5000": { auth: btoa("ci:secret") } },
    credsStore: "store",
    credHelpers: { "127.0.0.1:5000": "" },
  });
  const fromFile = await callCli(["--root", root, "--json", "check"], {
    env: withHelpers(store, emptyEntry),
  });
  assert.deepEqual(rows(fromFile), [
    ["127.0.0.1:5000/team/app", "config.json", true],
    ["127.0.0.1:5000/bob/app", "config.json", false],
    ["docker.io/library/busybox", "helper store", true],
  ]);
});

test("cli.ts check refuses helper names that could run another program, running nothing", async () => {
  const root = await taggedStore();
  const bin = tempDir();
  const marker = join(bin, "ran");
  // What a shell would run, and a path out of PATH: both exist as programs here.
  mkdirSync(join(bin, "docker-credential-.."));
  for (const path of [join(bin, "evil"), join(bin, "docker-credential-..", "evil")]) {
    writeFileSync(path, `#!/bin/sh\ntouch "${marker}"\n`);
    chmodSync(path, 0o755);
  }
  for (const name of ["../evil", "x;evil", "$(evil)", "-x", ""]) {
    const config = dockerConfig({ credHelpers: { "127.0.0.1:5000": name }, credsStore: name });
    const run = await callCli(["--root", root, "check"], { env: withHelpers(bin, config) });
    if (name === "") {
      // An empty name is no helper, as for the docker CLI: the auths entries (none) count.
      assert.equal(run.code, 0, run.stderr);
      continue;
    }
    assert.equal(run.code, 2, `${name}: ${run.stderr}`);
    assert.equal(
      run.stderr,
      `error: Cannot use credential helper "${name}": a helper name is letters, digits, ".", "_" and "-"\n`,
    );
  }
  assert.equal(existsSync(marker), false, "a program ran");
});

test("cli.ts check fails naming the helper that cannot be run, fails, or floods its output", async () => {
  const root = await taggedStore();
  const cases: [string, string, string][] = [
    ["absent", "", "no such program in an absolute PATH entry"],
    ["broken", `echo "keychain locked" >&2; exit 4`, "exit status 4: keychain locked"],
    ["garbage", "echo 'not json'", "its output is not JSON"],
    ["flood", "head -c 10000000 /dev/zero", "it printed more than 65536 bytes"],
  ];
  for (const [name, script, why] of cases) {
    const bin = name === "absent" ? tempDir() : helperBin(name, script);
    const config = dockerConfig({ auths: LOGGED_IN, credsStore: name });
    const args = ["--root", root, "check"];
    const env = withHelpers(bin, config);
    // The flood is what a process's peak RSS checks; the others, what the CLI prints.
    const run = name === "flood"
      ? await runCli(args, { ...RUN, env })
      : await callCli(args, { env });
    assert.equal(run.code, 2, `${name}: ${run.stderr}`);
    assert.ok(run.stderr.startsWith(`error: Cannot get credentials for "`), run.stderr);
    assert.ok(run.stderr.includes(`from "docker-credential-${name}": `), run.stderr);
    assert.ok(run.stderr.includes(why), `${name}: ${run.stderr}`);
    if (name === "flood") assertPeakRssUnder(run, 300 * 1024, name);
  }
});

test("cli.ts check on Deno without --allow-run says how to allow the helper", async () => {
  const root = await taggedStore();
  const config = dockerConfig({ auths: LOGGED_IN, credsStore: "ours" });
  const run = await runCli(["--root", root, "check"], {
    env: withHelpers(helperBin("ours", ANSWERS), config),
  });
  if (runtimeName === "deno") {
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /"docker-credential-ours": permission denied \(on Deno, allow it with --allow-run=docker-credential-ours\)\n$/,
    );
  } else assert.equal(run.code, 0, "Node and Bun have no permissions to ask for");
});

test("cli.ts check -u --password-stdin reads the password as docker login does, without the -p warning", async () => {
  const root = await taggedStore();
  const target = ["--target", "127.0.0.1:5000/team/web"];
  const fromStdin = await runCli(
    ["--root", root, "--json", "check", "-u", "bob", "--password-stdin", ...target],
    { stdin: "hunter2\r\n" },
  );
  assert.equal(fromStdin.stderr, "");
  const fromArgs = await callCli([
    "--root",
    root,
    "--json",
    "check",
    "-u",
    "bob",
    "-p",
    "hunter2",
    ...target,
  ]);
  assert.equal(
    fromArgs.stderr,
    'warning: a password in the arguments shows in the process list; use "--password-stdin"\n',
  );
  assert.deepEqual(rows(fromStdin), [
    ["127.0.0.1:5000/bob/app", "options", true],
    ["127.0.0.1:5000/team/app", "options", false],
    ["docker.io/library/busybox", "options", false],
  ]);
  assert.equal(fromStdin.stdout, fromArgs.stdout);
  // Only one newline is dropped: "hunter2\n\n" is another password.
  const twoNewlines = await runCli(
    ["--root", root, "--json", "check", "-u", "bob", "--password-stdin"],
    { stdin: "hunter2\n\n" },
  );
  assert.equal(rows(twoNewlines)[1]![2], false);
  const flood = await runCli(
    ["--root", root, "check", "-u", "bob", "--password-stdin"],
    { stdin: "x".repeat(65 * 1024) },
  );
  assert.deepEqual(
    [flood.code, flood.stderr],
    [2, "error: Cannot read stdin: it is over 65536 bytes\n"],
  );
});

test("cli.ts check refuses conflicting credential options with the usage", async () => {
  const root = await taggedStore();
  for (
    const [args, message] of [
      [["--password-stdin"], `Option "--password-stdin" needs "--username"`],
      [
        ["-u", "bob", "-p", "x", "--password-stdin"],
        `Pass either "--password" or "--password-stdin", not both`,
      ],
      [
        ["-u", "bob", "--auth", "config.json"],
        `Pass either "--auth" or credential fields, not both`,
      ],
    ]
  ) {
    const run = await callCli(["--root", root, "check", ...args!]);
    assert.equal(run.code, 2, run.stderr);
    assert.ok(run.stderr.startsWith(`error: ${message}\n\nUsage:`), run.stderr);
  }
});
