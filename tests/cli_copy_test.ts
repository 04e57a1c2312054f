// cli.ts copy as a real process of the runtime under test, against a real docker-registry on
// 127.0.0.1 with htpasswd: OCI layout → registry, registry → layout, registry → registry
// (mounts seen in the registry's access log), credentials from a credential helper script on
// PATH and from --password-stdin, JSON events, Ctrl-C, and bad references.
// @needs GNU time (/usr/bin/time)
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeV2MetadataHMAC, computeV2MetadataHMACKey, FSMetadataStore } from "../mod.ts";
import { type V2Metadata, V2MetadataService } from "../src/v2_metadata_service.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore } from "../src/registry/mod.ts";
import { type CliRun, repo, runCli, tempDir } from "./_cli.ts";
import { runtimeCommand } from "./_runtime.ts";
import { buildImage, type BuiltImage, noise } from "./registry/_image_builder.ts";
import { startFaultProxy } from "./registry/_fault_proxy.ts";
import { copyProgress } from "../src/cli/copy_progress.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";

const ALICE = USERS.alice!;
const BOB = USERS.bob!;
const COPY = { denoPermissions: ["--allow-write", "--allow-net", "--allow-run"] };
const temps: string[] = [];
let started: Promise<RegistryServer> | undefined;

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

/** One htpasswd registry keeping its access log, shared by the tests of this file. */
function registry(): Promise<RegistryServer> {
  started ??= startRegistry({ htpasswd: true, accessLog: true });
  return started;
}

/** An OCI layout holding a three-layer image tagged `1.0`. */
async function layoutWithImage(seed: number): Promise<{ dir: string; image: BuiltImage }> {
  const dir = scratch();
  const store = await ociLayoutStore(dir, { fs: nodeFileSystem });
  const image = await buildImage(
    store,
    "1.0",
    [1, 2, 3].map((n) => [{ name: `file${n}`, data: noise(20_000 * n, seed * 10 + n) }]),
    "oci",
  );
  return { dir, image };
}

/**
 * PATH and DOCKER_CONFIG for a credsStore helper `docker-credential-ours`: a shell script that
 * logs the server URL it is asked for to `<bin>/asked` and answers with alice's credentials.
 */
function aliceHelper(): { env: Record<string, string>; asked: () => string[] } {
  const bin = scratch();
  const helper = join(bin, "docker-credential-ours");
  writeFileSync(
    helper,
    `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r url\necho "$url" >> "${bin}/asked"\n` +
      `printf '{"ServerURL":"%s","Username":"alice","Secret":"${ALICE}"}' "$url"\n`,
  );
  chmodSync(helper, 0o755);
  const config = scratch();
  writeFileSync(join(config, "config.json"), JSON.stringify({ credsStore: "ours" }));
  return {
    env: { PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: config },
    asked: () => readFileSync(join(bin, "asked"), "utf8").trim().split("\n"),
  };
}

/** The JSON lines of a `--json` run, each parsed. */
function events(run: CliRun): Record<string, unknown>[] {
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim().split("\n").map((line) => JSON.parse(line));
}

/** What the metadata store at `root` holds for each DiffID. */
async function recorded(root: string, diffIDs: string[]): Promise<V2Metadata[][]> {
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  return await Promise.all(diffIDs.map((diffID) =>
    service.getMetadata(diffID).catch((error) => {
      if (error.code === "ENOENT") return [];
      throw error;
    })
  ));
}

test("cli.ts copy pushes an OCI layout with a helper's credentials, pulls it back, and copies between repositories by mounting", async () => {
  const server = await registry();
  const { dir, image } = await layoutWithImage(1);
  const root = join(scratch(), "metadata");
  const helper = aliceHelper();
  const options = { ...COPY, env: helper.env };
  const alice = await computeV2MetadataHMACKey({ username: "alice", password: ALICE });

  // oci → docker: every layer pushed and recorded under the target, tagged with alice's key.
  const target = `${server.host}/team/app`;
  const pushed = events(
    await runCli(
      ["copy", "--json", "--root", root, `oci:${dir}:1.0`, `docker://${target}:1.0`],
      options,
    ),
  );
  assert.deepEqual(pushed.at(-1), {
    event: "copied",
    source: `oci:${dir}:1.0`,
    destination: `docker://${target}:1.0`,
    mediaType: image.manifest.mediaType,
    digest: image.manifest.digest,
    size: image.manifest.size,
  });
  for (const layer of image.layers) {
    const last = pushed.filter((e) => e.event === "progress" && e.digest === layer.digest).at(-1);
    assert.deepEqual(last, {
      event: "progress",
      step: "push",
      action: "push",
      digest: layer.digest,
      current: layer.size,
      total: layer.size,
    });
  }
  assert.deepEqual(helper.asked(), [server.host]);
  const afterPush = await recorded(root, image.diffIDs);
  for (const [i, entries] of afterPush.entries()) {
    const entry = { digest: image.layers[i]!.digest, sourceRepository: target, hmac: "" };
    assert.deepEqual(entries, [{ ...entry, hmac: await computeV2MetadataHMAC(alice, entry) }]);
  }

  // docker → oci: the same bytes, tagged as asked.
  const pulledDir = join(scratch(), "pulled");
  const pulled = await runCli(
    ["copy", "--root", root, `docker://${target}:1.0`, `oci:${pulledDir}:v1`],
    options,
  );
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(
    pulled.stdout,
    `Copied docker://${target}:1.0 to oci:${pulledDir}:v1 (${image.manifest.digest})\n`,
  );
  for (const blob of [image.manifest, image.config, ...image.layers]) {
    const path = (base: string) => join(base, "blobs", "sha256", blob.digest.slice(7));
    assert.deepEqual(readFileSync(path(pulledDir)), readFileSync(path(dir)));
  }
  const index = JSON.parse(readFileSync(join(pulledDir, "index.json"), "utf8"));
  assert.deepEqual(
    index.manifests.map((d: { digest: string; annotations: Record<string, string> }) => [
      d.digest,
      d.annotations["org.opencontainers.image.ref.name"],
    ]),
    [[image.manifest.digest, "v1"]],
  );

  // docker → docker: streamed, nothing under TMPDIR; every blob (layers and configuration)
  // mounted from team/app on the same registry, as the registry's access log shows.
  const tmp = scratch();
  const copied = events(
    await runCli(
      [
        "copy",
        "--json",
        "--root",
        root,
        `docker://${target}:1.0`,
        `docker://${server.host}/team/copy:2.0`,
      ],
      { ...options, env: { ...options.env, TMPDIR: tmp } },
    ),
  );
  assert.deepEqual(readdirSync(tmp).filter((name) => name.startsWith("distribution-metadata")), []);
  assert.equal(copied.at(-1)!.digest, image.manifest.digest);
  const mounts = (await server.requests()).filter((r) =>
    r.method === "POST" && r.url.startsWith("/v2/team/copy/blobs/uploads/?") && r.status === 201
  ).map((r) => new URL(r.url, "http://x").searchParams);
  assert.deepEqual(
    mounts.map((params) => [params.get("from"), params.get("mount")]).sort(),
    [image.config, ...image.layers].map((blob) => ["team/app", blob.digest]).sort(),
  );
  assert.deepEqual(
    copied.filter((e) => e.action === "mount").map((e) => [e.digest, e.from]).sort(),
    [image.config, ...image.layers].map((blob) => [blob.digest, target]).sort(),
  );
  const afterCopy = await recorded(root, image.diffIDs);
  for (const [i, entries] of afterCopy.entries()) {
    assert.deepEqual(entries.map((e) => e.sourceRepository), [target, `${server.host}/team/copy`]);
    assert.equal(entries[1]!.digest, image.layers[i]!.digest);
  }
});

test("cli.ts copy takes -u with --password-stdin; a wrong password fails with exit 2, recording nothing", async () => {
  const server = await registry();
  const { dir, image } = await layoutWithImage(2);
  const root = join(scratch(), "metadata");
  const args = ["copy", "--root", root, "-u", "bob", "--password-stdin", `oci:${dir}:1.0`];
  const target = `${server.host}/bob/app`;

  const wrong = await runCli([...args, `docker://${target}:1.0`], { ...COPY, stdin: "nope\n" });
  assert.equal(wrong.code, 2);
  assert.equal(wrong.stdout, "");
  assert.match(wrong.stderr, /^error: .*(401|UNAUTHORIZED|unauthorized)/i);
  assert.deepEqual(await recorded(root, image.diffIDs), image.diffIDs.map(() => []));

  const right = await runCli([...args, `docker://${target}:1.0`], {
    ...COPY,
    stdin: `${BOB}\n`,
  });
  assert.equal(right.code, 0, right.stderr);
  assert.equal(right.stderr, "");
  const bob = await computeV2MetadataHMACKey({ username: "bob", password: BOB });
  for (const entries of await recorded(root, image.diffIDs)) {
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.hmac, await computeV2MetadataHMAC(bob, entries[0]!));
  }

  // -p works too, with the warning that the password shows in the process list.
  const withP = await runCli(
    ["copy", "--root", root, "-u", "bob", "-p", BOB, `oci:${dir}:1.0`, `docker://${target}:2`],
    COPY,
  );
  assert.equal(withP.code, 0, withP.stderr);
  assert.match(withP.stderr, /warning: a password in the arguments shows in the process list/);
});

test("cli.ts copy without --root records into the user's own store, never dockerd's", async () => {
  const server = await registry();
  const { dir, image } = await layoutWithImage(3);
  const dataHome = scratch();
  const run = await runCli(
    [
      "copy",
      "-u",
      "alice",
      "--password-stdin",
      `oci:${dir}:1.0`,
      `docker://${server.host}/team/own`,
    ],
    { ...COPY, stdin: ALICE, env: { XDG_DATA_HOME: dataHome } },
  );
  assert.equal(run.code, 0, run.stderr);
  const own = join(dataHome, "distribution-metadata", "distribution");
  const entries = await recorded(own, image.diffIDs);
  assert.deepEqual(entries.map((list) => list.map((e) => e.sourceRepository)), [
    [`${server.host}/team/own`],
    [`${server.host}/team/own`],
    [`${server.host}/team/own`],
  ]);
});

test("cli.ts copy speaks https to a loopback registry with --no-plain-http, and fails (exit 2) naming the request", async () => {
  const server = await registry();
  const { dir } = await layoutWithImage(5);
  const root = join(scratch(), "metadata");
  const run = await runCli(
    [
      "copy",
      "--no-plain-http",
      "--root",
      root,
      `oci:${dir}:1.0`,
      `docker://${server.host}/team/tls:1.0`,
    ],
    COPY,
  );
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(
    run.stderr,
    new RegExp(`^error: .*https://${server.host.replace(/\./g, "\\.")}/v2/`),
  );
  assert.ok(!(await server.requests()).some((r) => r.url.includes("/team/tls/")));
});

test("cli.ts copy: bad references and sides are usage errors (exit 2)", async () => {
  const cases: [string[], RegExp][] = [
    [["copy", "docker://UPPER/app", "oci:/tmp/x"], /repository name must be lowercase/],
    [["copy", "busybox", "oci:/tmp/x"], /docker:\/\/REF or a layout as oci:DIR\[:TAG\]/],
    [["copy", "oci:/tmp/a:-bad", "docker://x/y"], /invalid image "-bad"/],
    [["copy", "docker://x/y"], /needs a source and a destination image/],
    [["copy", "docker://x/y", "oci:/tmp/a", "extra"], /Unexpected argument "extra"/],
    [
      ["copy", "docker://x/y", "docker-daemon:app"],
      /name dockerd's image as docker-daemon:NAME:TAG/,
    ],
    [["copy", "--all", "docker-daemon:app:1", "docker://x/y"], /it gives one image/],
    [["copy", "--all", "docker://x/y", "docker-daemon:app:1"], /it takes one image/],
    [["copy", "--all", "oci-archive:/tmp/a.tar", "docker://x/y"], /it gives one image/],
    [["copy", "--all", "oci:/tmp/a", "oci:/tmp/b"], /it takes one image/],
    [["copy", "docker://x/y", "docker-archive:/tmp/a.tar:app"], /docker-archive:PATH:NAME:TAG/],
    [
      ["copy", "docker://x/y", "oci-archive:/tmp/a.tar:a/../b"],
      /is not an OCI layout.s image name/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args, COPY);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, /^error: .+\n\nUsage: distribution-metadata/, args.join(" "));
    assert.match(run.stderr, message, args.join(" "));
  }
});

test("cli.ts copy stops on Ctrl-C mid-download: exit 130, the layer neither stored nor recorded", async () => {
  const server = await registry();
  const { dir, image } = await layoutWithImage(4);
  const root = join(scratch(), "metadata");
  const pushed = await runCli(
    [
      "copy",
      "--root",
      root,
      "-u",
      "alice",
      "--password-stdin",
      `oci:${dir}:1.0`,
      `docker://${server.host}/team/int:1.0`,
    ],
    { ...COPY, stdin: ALICE },
  );
  assert.equal(pushed.code, 0, pushed.stderr);

  // Through a proxy that stalls the biggest layer after 1000 bytes, into a fresh store.
  const proxy = await startFaultProxy(server.url);
  const big = image.layers[2]!;
  proxy.plan({
    method: "GET",
    path: new RegExp(`/blobs/${big.digest}`),
    times: Infinity, // a retry (Node's fetch may drop an idle body) stalls too
    fault: { kind: "stall", ms: 60_000, afterBytes: 1000 },
  });
  const fresh = join(scratch(), "metadata");
  // An existing directory: the copy did not create it, so keeps what it wrote there.
  const out = scratch();
  const [command, args] = runtimeCommand(join(repo, "cli.ts"), [
    "copy",
    "--json",
    "--root",
    fresh,
    "-u",
    "alice",
    "--password-stdin",
    // The proxy speaks http only and waits for a request head a TLS hello never completes.
    "--plain-http",
    `docker://${proxy.host}/team/int:1.0`,
    `oci:${out}:1.0`,
  ]);
  // Under /usr/bin/time, which ignores SIGINT and writes the CLI's own exit status (a
  // runtime's child_process may report the signal sent rather than how the process ended).
  const statusFile = join(scratch(), "status");
  const child = spawn("/usr/bin/time", ["-f", "%x", "-o", statusFile, command, ...args], {
    cwd: repo,
    env: process.env,
    stdio: "pipe",
    detached: true, // its own process group, ended whole if the test fails
  });
  child.stdin.end(ALICE);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => stdout += chunk);
  child.stderr.on("data", (chunk) => stderr += chunk);
  let running = true;
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  exited.then(() => running = false);
  try {
    for (let i = 0; !proxy.requests.some((r) => r.fault === "stall"); i++) {
      assert.ok(i < 600, `the download never started: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(running, `the copy ended before Ctrl-C: ${stdout}\n${stderr}`);
    const cli = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8"));
    assert.ok(cli > 0, `no CLI process under /usr/bin/time: ${stderr}`); // never kill(0)
    const interrupted = performance.now();
    process.kill(cli, "SIGINT");
    await exited;
    const code = readFileSync(statusFile, "utf8").trim().split("\n").at(-1);
    assert.ok(performance.now() - interrupted < 5_000, "the abort was not prompt");
    assert.equal(code, "130", `${stdout}\n${stderr}`);
    assert.match(stderr, /error: interrupted; nothing was recorded for unfinished layers\n$/);
    for (const line of stdout.trim().split("\n").filter(Boolean)) {
      assert.equal(JSON.parse(line).event, "progress");
    }
    const entries = await recorded(fresh, image.diffIDs);
    assert.deepEqual(entries[2], []);
    const blobs = readdirSync(join(out, "blobs", "sha256"));
    assert.ok(!blobs.includes(big.digest.slice(7)), "the stalled layer was stored");
    assert.deepEqual(blobs.filter((name) => name.startsWith(".tmp")), []);
  } finally {
    if (running) process.kill(-child.pid!, "SIGKILL");
    await proxy.stop();
  }
});

test("cli.ts copy: a failed pull removes the layout it created, never a directory that existed", async () => {
  const server = await registry();
  const root = join(scratch(), "metadata");
  const parent = scratch();
  const args = ["copy", "--root", root, "-u", "alice", "--password-stdin"];
  const missing = `docker://${server.host}/team/missing:1.0`;

  const created = join(parent, "new", "layout");
  const fresh = await runCli([...args, missing, `oci:${created}`], { ...COPY, stdin: ALICE });
  assert.equal(fresh.code, 2);
  assert.match(
    fresh.stderr,
    /^error: Cannot GET ".*\/team\/missing\/manifests\/1\.0": manifest unknown/,
  );
  assert.deepEqual(readdirSync(parent), [], "the layout and the ancestor it created stay");

  const existing = join(parent, "existing");
  mkdirSync(existing);
  writeFileSync(join(existing, "mine"), "kept");
  const into = await runCli([...args, missing, `oci:${existing}`], { ...COPY, stdin: ALICE });
  assert.equal(into.code, 2);
  assert.deepEqual(readdirSync(existing).sort(), ["blobs", "index.json", "mine", "oci-layout"]);
  assert.equal(readFileSync(join(existing, "mine"), "utf8"), "kept");
});

test("copy progress: bars redrawn in place on a terminal, a line per finished blob otherwise", () => {
  const a = "sha256:" + "a".repeat(64);
  const b = "sha256:" + "b".repeat(64);
  let clock = 0;
  let terminal = "";
  let lines = "";
  const bars = copyProgress(
    "terminal",
    { stdout: () => {}, stderr: (t) => terminal += t },
    () => clock,
  );
  const plain = copyProgress("lines", { stdout: () => {}, stderr: (t) => lines += t }, () => clock);
  for (const progress of [bars, plain]) {
    progress.step("push");
    progress.onProgress({ action: "push", digest: a, current: 0, total: 2048 });
    clock += 150;
    progress.onProgress({ action: "mount", digest: b, current: 10, total: 10, from: "team/app" });
    clock += 150;
    progress.onProgress({ action: "push", digest: a, current: 1024, total: 2048 });
    progress.onProgress({
      action: "retry",
      digest: a,
      current: 0,
      total: 2048,
      attempt: 1,
      error: new Error("cut\x1b[2J"),
    });
    clock += 150;
    progress.onProgress({ action: "push", digest: a, current: 2048, total: 2048 });
    progress.finish();
  }
  const blank = " ".repeat(30);
  assert.equal(
    terminal,
    // Nothing in the first 100 ms; a finished blob is drawn at once.
    `\rpush aaaaaaaaaaaa: Uploading [${blank}] 0 B/2.0 KiB\x1b[K\n` +
      "\rpush bbbbbbbbbbbb: Mounted from team/app\x1b[K\n" +
      "\x1b[2A" +
      `\rpush aaaaaaaaaaaa: Uploading [${"=".repeat(14)}>${
        " ".repeat(15)
      }] 1.0 KiB/2.0 KiB\x1b[K\n` +
      "\rpush bbbbbbbbbbbb: Mounted from team/app\x1b[K\n" +
      "\x1b[2A" +
      "\rpush aaaaaaaaaaaa: Pushed 2.0 KiB\x1b[K\n" +
      "\rpush bbbbbbbbbbbb: Mounted from team/app\x1b[K\n" +
      "\x1b[2A" +
      "\rpush aaaaaaaaaaaa: Pushed 2.0 KiB\x1b[K\n" +
      "\rpush bbbbbbbbbbbb: Mounted from team/app\x1b[K\n",
  );
  assert.equal(
    lines,
    "push bbbbbbbbbbbb: Mounted from team/app\n" +
      "push aaaaaaaaaaaa: Retrying (attempt 2): cut\\u001b[2J\n" +
      "push aaaaaaaaaaaa: Pushed 2.0 KiB\n",
  );
});

after(async () => {
  const running = await started?.catch(() => null);
  await running?.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
