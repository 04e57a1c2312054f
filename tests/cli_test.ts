// cli.ts run as a real process of the runtime under test, against stores materialised in
// temp directories: written by Docker's Go package (tests/fixtures/go_metadata.json) and
// by the library.
// @needs setpriv and unshare (root or user namespaces)
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { type CliRun, repo, runCli as runCliProcess, tempDir } from "./_cli.ts";

const goFixtures = join(repo, "tests", "fixtures", "go_metadata.json");

/** A file tree as the Go fixtures record it, paths relative to the store root. */
interface TreeEntry {
  path: string;
  kind: "dir" | "file";
  mode: number;
  base64?: string;
}

/**
 * Runs cli.ts with `args` and an empty HOME; resolves when the process has exited.
 * `obeyModes` runs it, when the tests run as root (as in CI), through setpriv without the two
 * capabilities that let root ignore file modes: still root, so the checkout and the runtimes
 * stay readable wherever they live (another user could not enter a 0700 parent of the clone).
 */
function runCli(args: string[], env: Record<string, string> = {}, obeyModes = false) {
  const drop = "-dac_override,-dac_read_search";
  const wrapper = obeyModes && process.getuid?.() === 0
    ? ["setpriv", "--bounding-set", drop, "--inh-caps", drop]
    : [];
  return runCliProcess(args, { env, wrapper });
}

/** Writes a recorded tree under `root` with the recorded modes. */
function materialise(tree: readonly TreeEntry[], root: string): void {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const directories: TreeEntry[] = [];
  for (const entry of [...tree].sort((a, b) => a.path.localeCompare(b.path))) {
    const path = join(root, entry.path);
    if (entry.kind === "dir") {
      mkdirSync(path, { recursive: true });
      directories.push(entry);
    } else {
      writeFileSync(path, Buffer.from(entry.base64 ?? "", "base64"));
      chmodSync(path, entry.mode & 0o7777);
    }
  }
  for (const entry of directories) chmodSync(join(root, entry.path), entry.mode & 0o7777);
}

/** Every file and directory under `root` with its bytes and mode, to see nothing changed. */
function snapshot(root: string): string[] {
  return readdirSync(root, { recursive: true }).map(String).sort().map((path) => {
    const full = join(root, path);
    const info = statSync(full);
    const data = info.isFile() ? readFileSync(full).toString("base64") : "";
    return `${path} ${(info.mode & 0o7777).toString(8)} ${data}`;
  });
}

const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
const DIFF_1 = digest(1);
const DIFF_2 = digest(2);
const CI = { username: "ci", password: "secret" };
const BOB = { username: "bob", password: "hunter2" };

/** A store written by the library: three entries for DIFF_1, one for DIFF_2. */
async function libraryStore(): Promise<string> {
  const root = join(tempDir(), "distribution");
  const service = new V2MetadataService(
    await FSMetadataStore.open(root, { fs: nodeFileSystem }),
  );
  const ci = await computeV2MetadataHMACKey(CI);
  const bob = await computeV2MetadataHMACKey(BOB);
  await service.tagAndAdd(DIFF_1, ci, {
    digest: digest(101),
    sourceRepository: "127.0.0.1:5000/team/app",
    hmac: "",
  });
  await service.tagAndAdd(DIFF_1, bob, {
    digest: digest(101),
    sourceRepository: "127.0.0.1:5000/other/app",
    hmac: "",
  });
  await service.add(DIFF_1, {
    digest: digest(101),
    sourceRepository: "127.0.0.1:5000/team/base",
    hmac: "",
  });
  await service.tagAndAdd(DIFF_2, ci, {
    digest: digest(102),
    sourceRepository: "docker.io/library/busybox",
    hmac: "",
  });
  return root;
}

/** What the library itself reads from a store: DiffID → entries. */
async function libraryView(root: string): Promise<Map<string, V2Metadata[]>> {
  const store = await FSMetadataStore.open(root, { fs: nodeFileSystem });
  const service = new V2MetadataService(store);
  const view = new Map<string, V2Metadata[]>();
  const base = join(root, "v2metadata-by-diffid");
  if (!existsSync(base)) return view;
  for (const path of readdirSync(base, { recursive: true }).map(String).sort()) {
    if (!statSync(join(base, path)).isFile() || path.includes(".tmp-")) continue;
    // A file directly under the namespace is a DiffID with an empty algorithm, ":<hex>".
    const diffID = path.includes("/") ? path.replace("/", ":") : `:${path}`;
    view.set(diffID, await service.getMetadata(diffID));
  }
  return view;
}

function writeConfig(auths: Record<string, unknown>): string {
  const path = join(tempDir(), "config.json");
  writeFileSync(path, JSON.stringify({ auths }));
  return path;
}

const basicAuth = (user: string, password: string) =>
  Buffer.from(`${user}:${password}`).toString("base64");

// --- Go fixtures ----------------------------------------------------------------------

interface GoScenario {
  name: string;
  /** Paths the generator wrote by hand (corrupt lists, blockers), not Go's package. */
  handWritten: string[];
  tree: TreeEntry[];
}

/** The fixture scenarios whose whole tree Go's package wrote. */
function goScenarios(): GoScenario[] {
  const { scenarios } = JSON.parse(readFileSync(goFixtures, "utf8"));
  return (scenarios as GoScenario[]).filter((scenario) => scenario.handWritten.length === 0);
}

test("cli.ts ls --json on stores written by Docker's Go package reads what the library reads", async () => {
  const scenarios = goScenarios();
  for (const scenario of scenarios) {
    const root = join(tempDir(), "distribution");
    materialise(scenario.tree, root);
    const before = snapshot(root);
    const result = await runCli(["--root", root, "--json", "ls"]);
    const label = `scenario ${scenario.name}: ${result.stderr}`;
    assert.equal(result.code, 0, label);
    const listed = JSON.parse(result.stdout);
    const expected = await libraryView(root);
    assert.deepEqual(
      listed.diffIDs.filter((list: { error: unknown }) => list.error === null).map((
        list: { diffID: string; entries: (V2Metadata & { hmacSet: boolean })[] },
      ) => [list.diffID, list.entries.map(({ hmacSet: _, ...entry }) => entry)]),
      [...expected.entries()].filter(([, entries]) => entries !== undefined),
      label,
    );
    // Go never writes a corrupt list, a list over 50 or leaves a temp file behind; its
    // add("sha256:") leaves a mapping to a DiffID the library refuses (SPEC Part 3).
    const verified = await runCli(["--root", root, "--json", "verify"]);
    const kinds = JSON.parse(verified.stdout).problems.map((p: { kind: string }) => p.kind);
    const refused = scenario.name === "v2-empty-digest-part" ? ["corrupt-mapping"] : [];
    assert.deepEqual(kinds.filter((kind: string) => kind !== "missing-list"), refused, label);
    assert.deepEqual(snapshot(root), before, `${label}: the store was modified`);
  }
});

test("cli.ts check matches HMACs of stores written by Docker's Go package", async () => {
  for (const scenario of goScenarios()) {
    const root = join(tempDir(), "distribution");
    materialise(scenario.tree, root);
    const result = await runCli(["--root", root, "--json", "check", "--auth", writeConfig({})]);
    assert.equal(result.code, 0, `scenario ${scenario.name}: ${result.stderr}`);
    const key = await computeV2MetadataHMACKey({});
    for (const entry of JSON.parse(result.stdout).entries) {
      const expected = entry.hmac !== "" &&
        entry.hmac === await computeV2MetadataHMAC(key, entry);
      assert.equal(entry.hmacMatches, expected, JSON.stringify(entry));
    }
  }
});

// --- ls, diffid, metadata -------------------------------------------------------------

test("cli.ts ls prints an aligned table of every DiffID, digest, repository and HMAC state", async () => {
  const root = await libraryStore();
  const result = await runCli(["--root", root, "ls"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^DIFFID +DIGEST +SOURCE REPOSITORY +HMAC$/);
  assert.equal(lines.length, 5);
  const column = lines[0]!.indexOf("SOURCE REPOSITORY");
  assert.deepEqual(lines.slice(1).map((line) => line.slice(column).split(/ +/)), [
    ["127.0.0.1:5000/team/app", "yes"],
    ["127.0.0.1:5000/other/app", "yes"],
    ["127.0.0.1:5000/team/base", "no"],
    ["docker.io/library/busybox", "yes"],
  ]);
  assert.ok(lines[1]!.startsWith("sha256:000000000000 "), lines[1]!);
  assert.ok(lines[2]!.startsWith(" "), "a DiffID is shown once");
  const full = await runCli(["--root", root, "ls", "--no-trunc"]);
  assert.ok(full.stdout.includes(DIFF_1) && full.stdout.includes(digest(101)));
});

test("cli.ts ls --json has root, diffIDs with path, entries and error", async () => {
  const root = await libraryStore();
  const result = await runCli(["--json", "ls", `--root=${root}`]);
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.root, root);
  assert.deepEqual(output.diffIDs.map((list: { diffID: string }) => list.diffID), [
    DIFF_1,
    DIFF_2,
  ]);
  const [first] = output.diffIDs;
  assert.equal(first.path, join(root, "v2metadata-by-diffid", "sha256", DIFF_1.slice(7)));
  assert.equal(first.error, null);
  assert.deepEqual(Object.keys(first.entries[0]), [
    "digest",
    "sourceRepository",
    "hmac",
    "hmacSet",
  ]);
  assert.deepEqual(
    first.entries.map((entry: { hmacSet: boolean }) => entry.hmacSet),
    [true, true, false],
  );
});

test("cli.ts diffid prints the DiffID of a digest, and exits 1 with the path when unknown", async () => {
  const root = await libraryStore();
  const found = await runCli(["--root", root, "diffid", digest(102)]);
  assert.deepEqual([found.code, found.stdout], [0, `${DIFF_2}\n`]);
  const json = await runCli(["--root", root, "--json", "diffid", digest(102)]);
  assert.deepEqual(JSON.parse(json.stdout), { digest: digest(102), diffID: DIFF_2 });
  const missing = await runCli(["--root", root, "diffid", digest(999)]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.ok(
    missing.stderr.includes(join(root, "diffid-by-digest", "sha256", digest(999).slice(7))),
    missing.stderr,
  );
});

test("cli.ts metadata lists a DiffID's entries; --json gives them whole", async () => {
  const root = await libraryStore();
  const table = await runCli(["--root", root, "metadata", DIFF_1]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^DIGEST +SOURCE REPOSITORY +HMAC$/);
  assert.match(lines[3]!, /127\.0\.0\.1:5000\/team\/base +-$/);
  const json = await runCli(["--root", root, "--json", "metadata", DIFF_1]);
  const output = JSON.parse(json.stdout);
  assert.equal(output.diffID, DIFF_1);
  assert.equal(output.entries.length, 3);
  assert.match(output.entries[0].hmac, /^[0-9a-f]{64}$/);
  const missing = await runCli(["--root", root, "metadata", digest(7)]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No metadata is recorded for "sha256:0+7"/);
});

// --- check ----------------------------------------------------------------------------

test("cli.ts check --auth config.json marks entries tagged with those credentials preferred", async () => {
  const root = await libraryStore();
  const config = writeConfig({
    "127.0.0.1:5000": { auth: basicAuth(CI.username, CI.password) },
    "https://index.docker.io/v1/": { auth: basicAuth(BOB.username, BOB.password) },
  });
  const result = await runCli(["--root", root, "--json", "check", "--auth", config]);
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.deepEqual(
    output.entries.map((entry: Record<string, unknown>) => [
      entry.sourceRepository,
      entry.registry,
      entry.credentials,
      entry.hmacMatches,
      entry.verdict,
    ]),
    [
      ["127.0.0.1:5000/team/app", "127.0.0.1:5000", "config.json", true, "preferred"],
      ["127.0.0.1:5000/other/app", "127.0.0.1:5000", "config.json", false, "other-credentials"],
      ["127.0.0.1:5000/team/base", "127.0.0.1:5000", "config.json", false, "candidate"],
      ["docker.io/library/busybox", "docker.io", "config.json", false, "other-credentials"],
    ],
  );
  const table = await runCli(["--root", root, "check", "--auth", config]);
  assert.match(
    table.stdout.split("\n")[0]!,
    /^DIFFID +DIGEST +SOURCE REPOSITORY +CREDENTIALS +HMAC +VERDICT$/,
  );
  assert.match(table.stdout, /127\.0\.0\.1:5000\/team\/app +config\.json +match +preferred/);
});

test("cli.ts check --username/--password and --target number candidates in dockerd's order", async () => {
  const root = await libraryStore();
  const result = await runCli([
    "--root",
    root,
    "--json",
    "check",
    "--username",
    BOB.username,
    "--password",
    BOB.password,
    "--target",
    "127.0.0.1:5000/team/app:1.0",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.target, "127.0.0.1:5000/team/app");
  assert.deepEqual(
    output.entries.map((entry: Record<string, unknown>) => [
      entry.diffID,
      entry.sourceRepository,
      entry.verdict,
      entry.order,
    ]),
    [
      // Bob's entry first (HMAC match), then the untagged one.
      [DIFF_1, "127.0.0.1:5000/other/app", "preferred", 1],
      [DIFF_1, "127.0.0.1:5000/team/base", "candidate", 2],
      [DIFF_1, "127.0.0.1:5000/team/app", "target", null],
      [DIFF_2, "docker.io/library/busybox", "other-registry", null],
    ],
  );
});

test("cli.ts check reads source repositories by the registry's reference rules: dockerd never mounts from a name that is not canonical", async () => {
  const root = join(tempDir(), "distribution");
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  const bob = await computeV2MetadataHMACKey(BOB);
  for (
    const sourceRepository of [
      "127.0.0.1:5000/team/base",
      "busybox", // docker.io/library/busybox, written short
      "index.docker.io/library/busybox", // the old name of Docker Hub
      "Not A Name",
      "127.0.0.1:5000/team/web",
    ]
  ) {
    await service.tagAndAdd(DIFF_1, bob, { digest: digest(101), sourceRepository, hmac: "" });
  }
  const result = await runCli([
    "--root",
    root,
    "--json",
    "check",
    "-u",
    BOB.username,
    "-p",
    BOB.password,
    "--target",
    "127.0.0.1:5000/team/app",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(
    JSON.parse(result.stdout).entries.map((entry: Record<string, unknown>) => [
      entry.sourceRepository,
      entry.registry,
      entry.credentials,
      entry.hmacMatches,
      entry.verdict,
      entry.order,
    ]),
    [
      // As push_candidates.ts orders them for push: youngest first, canonical names only.
      ["127.0.0.1:5000/team/web", "127.0.0.1:5000", "options", true, "preferred", 1],
      ["127.0.0.1:5000/team/base", "127.0.0.1:5000", "options", true, "preferred", 2],
      ["busybox", "docker.io", "options", true, "not-canonical", null],
      ["index.docker.io/library/busybox", "docker.io", "options", true, "not-canonical", null],
      ["Not A Name", "-", "-", false, "not-canonical", null],
    ],
  );
  const bad = await runCli(["--root", root, "check", "--target", "Team/App"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: Cannot use "--target": .*must be lowercase\n\nUsage:/);
});

test("cli.ts check reads ~/.docker/config.json by default; without one there are no credentials", async () => {
  const root = await libraryStore();
  const home = tempDir();
  mkdirSync(join(home, ".docker"));
  const sources = (result: CliRun) => {
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout).entries.map((
      entry: { registry: string; credentials: string; hmacMatches: boolean },
    ) => [entry.registry, entry.credentials, entry.hmacMatches]);
  };
  const none = await runCli(["--root", root, "--json", "check"], { HOME: home });
  assert.deepEqual(sources(none).map(([, credentials]: string[]) => credentials), [
    "none",
    "none",
    "none",
    "none",
  ]);
  const config = join(home, ".docker", "config.json");
  writeFileSync(
    config,
    JSON.stringify({ auths: { "127.0.0.1:5000": { auth: basicAuth(CI.username, CI.password) } } }),
  );
  const found = await runCli(["--root", root, "--json", "check"], { HOME: home });
  assert.deepEqual(sources(found), [
    ["127.0.0.1:5000", "config.json", true],
    ["127.0.0.1:5000", "config.json", false],
    ["127.0.0.1:5000", "config.json", false],
    ["docker.io", "none", false],
  ]);
  // A helper that cannot run (not on PATH; on Deno, not allowed) is an error naming it, for a
  // host config.json names (check asks about no other).
  writeFileSync(config, JSON.stringify({ auths: { "127.0.0.1:5000": {} }, credsStore: "desktop" }));
  const helper = await runCli(["--root", root, "check"], { HOME: home });
  assert.equal(helper.code, 2);
  assert.ok(helper.stderr.includes(`from "docker-credential-desktop": `), helper.stderr);
  const missing = await runCli(["--root", root, "check", "--auth", join(home, "nope.json")]);
  assert.equal(missing.code, 2);
  assert.ok(missing.stderr.includes(join(home, "nope.json")), missing.stderr);
});

// --- verify ---------------------------------------------------------------------------

test("cli.ts verify reports a consistent store and exits 0", async () => {
  const root = await libraryStore();
  const result = await runCli(["--root", root, "verify"]);
  assert.deepEqual(
    [result.code, result.stdout],
    [0, "Checked 2 list(s) and 2 mapping(s): no problems\n"],
  );
});

test("cli.ts verify finds corrupt, missing and long lists and temp files, and exits 1", async () => {
  const root = await libraryStore();
  const lists = join(root, "v2metadata-by-diffid", "sha256");
  const mappings = join(root, "diffid-by-digest", "sha256");
  // Corrupt list, a mapping to a DiffID without a list, a list of 51, a temp file.
  writeFileSync(join(lists, digest(3).slice(7)), '[{"Digest":"sha256:1"');
  writeFileSync(join(mappings, digest(104).slice(7)), digest(4));
  const long = Array.from(
    { length: 51 },
    (_, i) => `{"Digest":"${digest(200 + i)}","SourceRepository":"r","HMAC":""}`,
  );
  writeFileSync(join(lists, digest(5).slice(7)), `[${long.join(",")}]`);
  writeFileSync(join(lists, `.tmp-${digest(6).slice(7)}123456`), "[");
  writeFileSync(join(mappings, digest(107).slice(7)), "not a digest");
  const before = snapshot(root);

  const result = await runCli(["--root", root, "--json", "verify"]);
  assert.equal(result.code, 1, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.ok, false);
  assert.equal(output.root, root);
  assert.equal(output.lists, 4);
  assert.equal(output.mappings, 4);
  assert.deepEqual(
    output.problems.map((problem: { kind: string; relative: string }) => [
      problem.kind,
      problem.relative,
    ]).sort(),
    [
      ["corrupt-list", `v2metadata-by-diffid/sha256/${digest(3).slice(7)}`],
      ["corrupt-mapping", `diffid-by-digest/sha256/${digest(107).slice(7)}`],
      ["long-list", `v2metadata-by-diffid/sha256/${digest(5).slice(7)}`],
      ["missing-list", `diffid-by-digest/sha256/${digest(104).slice(7)}`],
      ["temp-file", `v2metadata-by-diffid/sha256/.tmp-${digest(6).slice(7)}123456`],
    ],
  );
  for (const problem of output.problems) {
    assert.equal(problem.path, join(root, problem.relative));
    assert.equal(typeof problem.message, "string");
  }
  const table = await runCli(["--root", root, "verify"]);
  assert.equal(table.code, 1);
  assert.match(table.stdout, /^PROBLEM +PATH +DETAIL\n/);
  assert.match(table.stdout, /Checked 4 list\(s\) and 4 mapping\(s\): 5 problem\(s\)\n$/);
  // ls still lists the readable lists and warns about the rest.
  const listed = await runCli(["--root", root, "ls"]);
  assert.equal(listed.code, 0);
  assert.match(listed.stdout, /\(corrupt: EBADMSG\)/);
  assert.match(listed.stderr, /1 list\(s\) could not be read/);
  assert.deepEqual(snapshot(root), before, "the CLI is read-only");
});

test("cli.ts verify --progress reports progress on stderr for a store with many entries", async () => {
  const root = join(tempDir(), "distribution");
  const lists = join(root, "v2metadata-by-diffid", "sha256");
  mkdirSync(lists, { recursive: true });
  for (let i = 0; i < 1500; i++) {
    writeFileSync(
      join(lists, digest(i).slice(7)),
      `[{"Digest":"${digest(i)}","SourceRepository":"r","HMAC":""}]`,
    );
  }
  const result = await runCli(["--root", root, "--progress", "verify"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /scanning: 1000 files\n/);
  assert.match(result.stderr, /reading: 1500\/1500\n/);
  const quiet = await runCli(["--root", root, "verify"]);
  assert.equal(quiet.stderr, "", "no progress when stderr is not a terminal");
});

// --- errors ---------------------------------------------------------------------------

test("cli.ts exits 2 naming the path when the root is missing, and creates nothing", async () => {
  const root = join(tempDir(), "no", "such", "store");
  for (const command of [["ls"], ["verify"], ["diffid", digest(1)]]) {
    const result = await runCli(["--root", root, ...command]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(result.stderr, `error: Cannot open store "${root}": no such file or directory\n`);
  }
  assert.equal(existsSync(join(root, "..", "..")), false);
});

test("cli.ts exits 2 when the root is a file", async () => {
  const file = join(tempDir(), "file");
  writeFileSync(file, "");
  const result = await runCli(["--root", file, "ls"]);
  assert.equal(result.code, 2);
  assert.equal(result.stderr, `error: Cannot open store "${file}": not a directory\n`);
});

test("cli.ts reports permission denied with the path", async () => {
  const root = await libraryStore();
  chmodSync(root, 0o000);
  try {
    const result = await runCli(["--root", root, "ls"], {}, true);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(result.stderr, `error: Cannot open store "${root}": permission denied\n`);
  } finally {
    chmodSync(root, 0o700);
  }
});

test("cli.ts exits 2 with the usage on unknown commands and options", async () => {
  for (const args of [["frobnicate"], ["--frob", "ls"], ["diffid"], ["ls", "extra"]]) {
    const result = await runCli(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^error: .+\n\nUsage: distribution-metadata/);
  }
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: distribution-metadata/);
});

/**
 * Runs cli.ts in a private mount namespace (`unshare --mount`, mounts private: nothing outside
 * sees them) where /etc/docker is an empty tmpfs, holding `daemonJson` as daemon.json when
 * given, and /var/lib/docker, when this machine has one, an empty tmpfs: whatever dockerd
 * this machine runs, the CLI sees exactly the dockerd files the test makes. Needs root, or
 * user namespaces for `--map-root-user`; without either the test fails, it never skips.
 */
function runCliWithoutDockerd(
  args: string[],
  home: string,
  daemonJson?: unknown,
): Promise<CliRun> {
  const script = [
    "set -e",
    "[ -d /etc/docker ] || mkdir /etc/docker",
    "mount -t tmpfs tmpfs /etc/docker",
    "if [ -d /var/lib/docker ]; then mount -t tmpfs tmpfs /var/lib/docker; fi",
    'if [ -n "$DAEMON_JSON" ]; then printf %s "$DAEMON_JSON" > /etc/docker/daemon.json; fi',
    'exec "$@"',
  ].join("\n");
  const asRoot = process.getuid?.() === 0 ? [] : ["--map-root-user"];
  return runCliProcess(args, {
    env: { HOME: home, DAEMON_JSON: daemonJson === undefined ? "" : JSON.stringify(daemonJson) },
    wrapper: [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      ...asRoot,
      "sh",
      "-c",
      script,
      "sh",
    ],
  });
}

test("cli.ts without --root names the dockerd stores it looked for", async () => {
  const home = tempDir();
  const result = await runCliWithoutDockerd(["ls"], home);
  assert.equal(result.stdout, "");
  assert.equal(
    result.stderr,
    "error: Cannot find dockerd's store: no /var/lib/docker/image/<driver>/distribution nor " +
      `${home}/.local/share/docker/image/<driver>/distribution (pass --root)\n`,
  );
  assert.equal(result.code, 2);
});

test("cli.ts without --root reads the store under daemon.json's data-root, instead of /var/lib/docker", async () => {
  const home = tempDir();
  const dataRoot = tempDir();
  const missing = await runCliWithoutDockerd(["ls"], home, { "data-root": `${dataRoot}/` });
  assert.equal(
    missing.stderr,
    `error: Cannot find dockerd's store: no ${dataRoot}/image/<driver>/distribution nor ` +
      `${home}/.local/share/docker/image/<driver>/distribution (pass --root)\n`,
  );
  assert.equal(missing.code, 2);

  const store = join(dataRoot, "image", "overlay2", "distribution");
  mkdirSync(join(dataRoot, "image", "overlay2"), { recursive: true });
  renameSync(await libraryStore(), store);
  const found = await runCliWithoutDockerd(["--json", "ls"], home, { "data-root": dataRoot });
  assert.equal(found.code, 0, found.stderr);
  assert.equal(JSON.parse(found.stdout).root, store);
  const expected = await runCli(["--root", store, "--json", "ls"]);
  assert.equal(found.stdout, expected.stdout);
});

test("materialise() keeps modes of recorded trees", () => {
  const root = join(tempDir(), "tree");
  materialise([
    { path: "a", kind: "dir", mode: 0o755 },
    { path: "a/b", kind: "file", mode: 0o644, base64: btoa("x") },
  ], root);
  assert.equal(statSync(join(root, "a", "b")).mode & 0o777, 0o644);
  assert.equal(readFileSync(join(root, "a", "b"), "utf8"), "x");
  rmSync(root, { recursive: true });
});
