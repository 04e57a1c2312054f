// cli.ts against crafted stores: a FIFO where a value file should be, a 1 GiB value file,
// control characters in names and values, file names that are not UTF-8. Each run must end
// by itself, within a time limit and bounded memory, with a typed error naming the path,
// and leave the store exactly as it was. The FIFO and the 1 GiB file are what a process's time
// limit and peak RSS check, so they start cli.ts; names and values, what it prints, so those
// tests call the CLI's main function in this process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { assertPeakRssUnder, callCli, type CliRun, runCli, snapshot, tempDir } from "./_cli.ts";

const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
const hex = (n: number) => digest(n).slice(7);

/** Far above any runtime's own footprint here (Node with tsx: ~90 MiB), far below 1 GiB. */
const MAX_RSS_KIB = 300 * 1024;

/** A store with one good list and mapping (DiffID 1, digest 101); returns its root. */
async function goodStore(): Promise<string> {
  const root = join(tempDir(), "distribution");
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  await service.add(digest(1), {
    digest: digest(101),
    sourceRepository: "127.0.0.1:5000/team/app",
    hmac: "",
  });
  return root;
}

const listPath = (root: string, n: number) => join(root, "v2metadata-by-diffid", "sha256", hex(n));
const mappingPath = (root: string, n: number) => join(root, "diffid-by-digest", "sha256", hex(n));
/** The store's message for a value file it refused. */
const refusal = (path: string, why: string) =>
  `Cannot get "${path.slice(path.indexOf("/distribution/") + 14)}" at "${path}": ${why}`;

/** A run that ended by itself, in bounded memory. */
function assertBounded(run: CliRun, label: string): void {
  assert.notEqual(run.code, null, `${label}: still running after the time limit`);
  assertPeakRssUnder(run, MAX_RSS_KIB, label);
}

/** The problems of `verify --json` as [kind, relative path, message]. */
function problems(run: CliRun): [string, string, string][] {
  return JSON.parse(run.stdout).problems.map((
    problem: { kind: string; relative: string; message: string },
  ) => [problem.kind, problem.relative, problem.message]);
}

/** `verify --json` reports list 2 and mapping 102 as unreadable, each refused with `why`. */
async function verifyFindsBothRefused(root: string, why: string): Promise<void> {
  const verified = await runCli(["--root", root, "--json", "verify"]);
  assertBounded(verified, "verify");
  assert.equal(verified.code, 1, verified.stderr);
  assert.deepEqual(problems(verified), [
    [
      "unreadable-list",
      `v2metadata-by-diffid/sha256/${hex(2)}`,
      refusal(listPath(root, 2), why),
    ],
    [
      "unreadable-mapping",
      `diffid-by-digest/sha256/${hex(102)}`,
      refusal(mappingPath(root, 102), why),
    ],
  ]);
}

test("cli.ts refuses a FIFO as a list or mapping file with EINVAL naming the path, without blocking", async () => {
  const root = await goodStore();
  execFileSync("mkfifo", [listPath(root, 2)]);
  execFileSync("mkfifo", [mappingPath(root, 102)]);
  const before = snapshot(root);
  const why = "it is a FIFO, socket or device, not a regular file";

  const listed = await runCli(["--root", root, "--json", "ls"]);
  assertBounded(listed, "ls");
  assert.equal(listed.code, 0, listed.stderr);
  const fifoList = JSON.parse(listed.stdout).diffIDs[1];
  assert.deepEqual(fifoList, {
    diffID: digest(2),
    path: listPath(root, 2),
    entries: null,
    error: {
      kind: "unreadable",
      code: "EINVAL",
      message: refusal(listPath(root, 2), why),
    },
  });
  assert.match(listed.stderr, /^warning: 1 list\(s\) could not be read/);

  await verifyFindsBothRefused(root, why);

  const checked = await runCli(["--root", root, "--json", "check", "-u", "ci", "-p", "pw"]);
  assertBounded(checked, "check");
  assert.equal(checked.code, 0, checked.stderr);
  assert.equal(JSON.parse(checked.stdout).entries.length, 1);

  for (
    const [args, path] of [
      [["metadata", digest(2)], listPath(root, 2)],
      [["diffid", digest(102)], mappingPath(root, 102)],
    ] as const
  ) {
    const run = await runCli(["--root", root, ...args]);
    assertBounded(run, args[0]);
    assert.deepEqual([run.code, run.stdout, run.stderr], [
      2,
      "",
      `error: ${refusal(path, why)}\n`,
    ]);
  }
  assert.equal(snapshot(root), before, "the store was modified");
});

test("cli.ts reports a 1 GiB value file as EFBIG in bounded memory, and still reads the rest", async () => {
  const root = await goodStore();
  for (const path of [listPath(root, 2), mappingPath(root, 102)]) {
    writeFileSync(path, "");
    truncateSync(path, 1024 ** 3); // sparse: costs no disk
  }
  const before = snapshot(root);
  const why = "it is over the store's maxValueBytes, 1048576";

  const listed = await runCli(["--root", root, "ls", "--no-trunc"]);
  assertBounded(listed, "ls");
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`\n${digest(2)} +\\(unreadable: EFBIG\\)\n`));
  assert.match(listed.stdout, /127\.0\.0\.1:5000\/team\/app/);

  await verifyFindsBothRefused(root, why);
  const table = await runCli(["--root", root, "verify"]);
  assert.match(
    table.stdout,
    new RegExp(`unreadable-list +v2metadata-by-diffid/sha256/${hex(2)} +${why}\n`),
  );

  const metadata = await runCli(["--root", root, "metadata", digest(2)]);
  assertBounded(metadata, "metadata");
  assert.deepEqual(
    [metadata.code, metadata.stderr],
    [2, `error: ${refusal(listPath(root, 2), why)}\n`],
  );
  assert.equal(snapshot(root), before, "the store was modified");
});

/** What a hostile store puts in names and repositories: retitle the window, clear the screen. */
const ATTACK = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e";
const ESCAPED = "\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e";
/** Anything a terminal would act on, but the newline ending each line. */
const CONTROL = /[\p{Cc}\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;

test("cli.ts escapes control characters from the store in ls, metadata, check and verify", async () => {
  const root = await goodStore();
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  const repository = `127.0.0.1:5000/${ATTACK}`;
  await service.add(digest(3), { digest: digest(103), sourceRepository: repository, hmac: "" });
  // A DiffID file named with the attack, and a leftover temp file.
  const named = `sha256:${ATTACK}`;
  await service.add(named, { digest: digest(104), sourceRepository: "r", hmac: "" });
  writeFileSync(join(root, "v2metadata-by-diffid", `.tmp-${ATTACK}`), "[");
  const before = snapshot(root);

  const runs = {
    ls: await callCli(["--root", root, "ls"]),
    metadata: await callCli(["--root", root, "metadata", digest(3)]),
    check: await callCli(["--root", root, "check", "-u", "ci", "-p", "pw"]),
    verify: await callCli(["--root", root, "verify"]),
    missing: await callCli(["--root", root, "metadata", `sha256:${ATTACK}x`]),
  };
  for (const [name, run] of Object.entries(runs)) {
    for (const line of `${run.stdout}${run.stderr}`.split("\n")) {
      assert.doesNotMatch(line, CONTROL, `${name}: ${JSON.stringify(line)}`);
    }
  }
  assert.ok(runs.ls.stdout.includes(`127.0.0.1:5000/${ESCAPED}`), runs.ls.stdout);
  assert.ok(runs.ls.stdout.includes(`sha256:${ESCAPED}`), runs.ls.stdout);
  assert.ok(runs.metadata.stdout.includes(`127.0.0.1:5000/${ESCAPED}`), runs.metadata.stdout);
  assert.ok(runs.check.stdout.includes(`127.0.0.1:5000/${ESCAPED}`), runs.check.stdout);
  assert.ok(
    runs.verify.stdout.includes(`v2metadata-by-diffid/.tmp-${ESCAPED}`),
    runs.verify.stdout,
  );
  assert.equal(runs.missing.code, 1);
  assert.ok(runs.missing.stderr.includes(`sha256:${ESCAPED}x`), runs.missing.stderr);

  // JSON keeps the exact strings.
  const json = await callCli(["--root", root, "--json", "ls"]);
  assert.doesNotMatch(json.stdout.replaceAll("\n", ""), CONTROL);
  const lists = JSON.parse(json.stdout).diffIDs;
  assert.ok(lists.some((list: { diffID: string }) => list.diffID === named));
  assert.ok(
    lists.some((list: { entries: { sourceRepository: string }[] | null }) =>
      list.entries?.[0]?.sourceRepository === repository
    ),
  );
  assert.equal(snapshot(root), before, "the store was modified");
});

test("cli.ts reports file and directory names that are not UTF-8 instead of skipping them", async () => {
  const root = await goodStore();
  const lists = join(root, "v2metadata-by-diffid", "sha256");
  mkdirSync(join(root, "diffid-by-digest", "sha512"));
  // "bad\xff" as a list file and as a directory holding one: names no UTF-8 string spells.
  execFileSync("sh", [
    "-c",
    `printf '[]' > "$1/$(printf 'bad\\377')" && mkdir "$2/$(printf 'dir\\376')" && printf '%s' "$3" > "$2/$(printf 'dir\\376')/x"`,
    "sh",
    lists,
    join(root, "diffid-by-digest", "sha512"),
    digest(1),
  ]);
  const before = snapshot(root);

  const verified = await callCli(["--root", root, "--json", "verify"]);
  assert.equal(verified.code, 1, verified.stderr);
  const badList = join(lists, "bad\uFFFD");
  const badDirectory = join(root, "diffid-by-digest", "sha512", "dir\uFFFD");
  assert.deepEqual(problems(verified), [
    [
      "undecodable-name",
      "diffid-by-digest/sha512/dir\uFFFD",
      `Cannot read "${badDirectory}": the name is not UTF-8 (shown with U+FFFD for the bad bytes)`,
    ],
    [
      "undecodable-name",
      "v2metadata-by-diffid/sha256/bad\uFFFD",
      `Cannot read "${badList}": the name is not UTF-8 (shown with U+FFFD for the bad bytes)`,
    ],
  ]);
  const listed = await callCli(["--root", root, "ls"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(
    listed.stderr,
    'warning: 2 name(s) are not UTF-8 and were skipped; run "verify" for details\n',
  );
  assert.equal(snapshot(root), before, "the store was modified");
});
