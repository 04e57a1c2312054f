// cli.ts copy with credentials per side, as skopeo takes them (--src-creds, --dest-creds,
// --src-authfile, --src-no-creds), between two htpasswd registries on 127.0.0.1; -u applies to a
// copy only within one registry, so one registry's password never goes to another.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeV2MetadataHMAC, computeV2MetadataHMACKey, FSMetadataStore } from "../mod.ts";
import { V2MetadataService } from "../src/v2_metadata_service.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore, push } from "../src/registry/mod.ts";
import { runCli, tempDir } from "./_cli.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";

const ALICE = { username: "alice", password: USERS.alice! };
const BOB = { username: "bob", password: USERS.bob! };
const COPY = { denoPermissions: ["--allow-write", "--allow-net", "--allow-run"] };
const temps: string[] = [];
const servers: Promise<RegistryServer>[] = [];

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

after(async () => {
  for (const server of servers) await (await server.catch(() => null))?.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** cli.ts copy into a fresh metadata store: options, source, destination; `stdin` given. */
function copyWith(args: string[], stdin?: string) {
  return runCli(["copy", "--root", join(scratch(), "metadata"), ...args], {
    ...COPY,
    ...stdin === undefined ? {} : { stdin },
  });
}

let pair: Promise<[RegistryServer, RegistryServer, string[]]> | undefined;

/** Two htpasswd registries; the first holds `alice/app:1.0`, pushed as alice. */
function registries(): Promise<[RegistryServer, RegistryServer, string[]]> {
  pair ??= (async () => {
    const [a, b] = [startRegistry({ htpasswd: true }), startRegistry({ htpasswd: true })];
    servers.push(a, b);
    const source = await a;
    const store = await ociLayoutStore(scratch(), { fs: nodeFileSystem });
    const image = await buildImage(
      store,
      "1.0",
      [1, 2].map((n) => [{ name: `file${n}`, data: noise(10_000 * n, 40 + n) }]),
      "oci",
    );
    await push(`${source.host}/alice/app:1.0`, store, { plainHttp: true, auth: ALICE });
    return [source, await b, image.diffIDs];
  })();
  return pair;
}

test("cli.ts copy --src-creds USER:PW --dest-creds USER (password on stdin) records each side under its own HMAC", async () => {
  const [a, b, diffIDs] = await registries();
  const root = join(scratch(), "metadata");
  const run = await runCli([
    "copy",
    "--root",
    root,
    "--src-creds",
    `alice:${ALICE.password}`,
    "--dest-creds",
    "bob",
    `docker://${a.host}/alice/app:1.0`,
    `docker://${b.host}/bob/app:1.0`,
  ], { ...COPY, stdin: `${BOB.password}\n` });
  assert.equal(run.code, 0, run.stderr);
  const service = new V2MetadataService(await FSMetadataStore.open(root, { fs: nodeFileSystem }));
  const keys = new Map([
    [`${a.host}/alice/app`, await computeV2MetadataHMACKey(ALICE)],
    [`${b.host}/bob/app`, await computeV2MetadataHMACKey(BOB)],
  ]);
  for (const diffID of diffIDs) {
    const entries = await service.getMetadata(diffID);
    assert.deepEqual(
      entries.map((entry) => entry.sourceRepository).sort(),
      [...keys.keys()].sort(),
    );
    for (const entry of entries) {
      const key = keys.get(entry.sourceRepository)!;
      assert.equal(entry.hmac, await computeV2MetadataHMAC(key, { ...entry, hmac: "" }));
    }
  }
});

test("cli.ts copy takes --src-authfile and --src-no-creds per side", async () => {
  const [a, b] = await registries();
  const config = join(scratch(), "source.json");
  writeFileSync(
    config,
    JSON.stringify({ auths: { [a.host]: { auth: btoa(`alice:${ALICE.password}`) } } }),
  );
  const source = `docker://${a.host}/alice/app:1.0`;
  const withFile = await copyWith([
    "--src-authfile",
    config,
    "--dest-creds",
    `bob:${BOB.password}`,
    source,
    `docker://${b.host}/bob/copy:1.0`,
  ]);
  assert.equal(withFile.code, 0, withFile.stderr);
  // Without credentials the source refuses: nothing was sent to it.
  const anonymous = await copyWith([
    "--src-no-creds",
    "--dest-creds",
    `bob:${BOB.password}`,
    source,
    `docker://${b.host}/bob/other:1.0`,
  ]);
  assert.equal(anonymous.code, 2);
  assert.match(anonymous.stderr, /^error: .*(401|unauthorized)/i);
});

test("cli.ts copy refuses -u between two registries, naming the per-side options", async () => {
  const [a, b] = await registries();
  const run = await copyWith([
    "-u",
    "alice",
    "--password-stdin",
    `docker://${a.host}/alice/app:1.0`,
    `docker://${b.host}/alice/app:1.0`,
  ], `${ALICE.password}\n`);
  assert.equal(run.code, 2);
  assert.ok(
    run.stderr.startsWith(
      `error: Cannot send "--username" credentials to both "${a.host}" and "${b.host}": pass "--src-creds" and "--dest-creds"\n`,
    ),
    run.stderr,
  );
  // Within one registry -u is both sides' credentials.
  const within = await copyWith([
    "-u",
    "alice",
    "--password-stdin",
    `docker://${a.host}/alice/app:1.0`,
    `docker://${a.host}/alice/again:1.0`,
  ], `${ALICE.password}\n`);
  assert.equal(within.code, 0, within.stderr);
});

test("cli.ts: per-side credential options are usage errors where they cannot apply", async () => {
  const cases: [string[], string][] = [
    [
      ["copy", "--creds", "a:b", "oci:x", "docker://r.test/a"],
      `"copy" has two sides: pass "--src-creds" and "--dest-creds"`,
    ],
    [
      ["check", "--src-creds", "a:b"],
      `Option "--src-creds" is for "copy"; use "--creds" or "--authfile"`,
    ],
    [
      ["copy", "--src-creds", "a:b", "--src-no-creds", "oci:x", "docker://r.test/a"],
      `Pass either "--src-creds" or "--src-no-creds", not both`,
    ],
    [
      ["check", "--creds", "a:b", "-u", "x"],
      `Pass either "--creds" or "--username"/"--auth", not both`,
    ],
    [["ls", "--bogus=1"], `Unknown option "--bogus"`],
    [["ls", "--json=1"], `Option "--json" takes no value`],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args);
    assert.equal(run.code, 2, run.stderr);
    assert.ok(run.stderr.startsWith(`error: ${message}\n\nUsage:`), run.stderr);
  }
  // stdin holds one password: two sides cannot both take it.
  const [a, b] = await registries();
  const run = await copyWith([
    "--src-creds",
    "alice",
    "--dest-creds",
    "bob",
    `docker://${a.host}/alice/app:1.0`,
    `docker://${b.host}/bob/x:1.0`,
  ], "pw\n");
  assert.equal(run.code, 2);
  assert.ok(
    run.stderr.startsWith(
      `error: Cannot read passwords for both "--src-creds" and "--dest-creds" from stdin: give one as USER:PASSWORD\n`,
    ),
    run.stderr,
  );
});
