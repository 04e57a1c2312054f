// Replays tests/fixtures/go_metadata.json — every operation Docker's own Go package
// (distribution/metadata, built by tests/fixtures/generate.sh) performed, with its result or
// error and the file tree it left — on every FileSystem adapter of the running runtime, and
// reads each Go-written tree back through every adapter.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type AuthConfig,
  checkV2MetadataHMAC,
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type FileSystem,
  FSMetadataStore,
  MetadataError,
  V1IDService,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { type Adapter, adapters } from "./_adapters.ts";

// ---- the fixture's shape (see tests/fixtures/generator/main.go) ----------------------------

/** A Go string: text when valid UTF-8, else its bytes and the text a JS string can hold. */
type GoString = string | { base64: string; text: string };
interface GoMetadata {
  Digest: GoString;
  SourceRepository: GoString;
  HMAC: GoString;
}
interface GoError {
  errno?: string;
  json?: boolean;
  message?: string;
  panic?: string;
}
interface Op {
  op: string;
  nilStore?: boolean;
  path?: GoString;
  namespace?: GoString;
  key?: GoString;
  value?: string;
  diffID?: GoString;
  digest?: GoString;
  metadata?: GoMetadata;
  hmacKey?: string | null;
  v1ID?: GoString;
  registry?: GoString;
  auth?: Record<string, GoString>;
  noAuth?: boolean;
  note?: string;
  result: unknown;
  error?: GoError;
}
interface TreeNode {
  path: string;
  kind: "dir" | "file";
  mode: number;
  base64?: string;
}
interface Scenario {
  name: string;
  description: string;
  lossyUtf8?: boolean;
  /** Paths written by hand (raw.write/raw.mkdir), not by Go's package. */
  handWritten: string[];
  ops: Op[];
  tree: TreeNode[];
  readback: Op[];
}
interface Fixture {
  generator: { go: string; docker: string; jsonShortEscapesBF: boolean; umask: number };
  rootMode: number;
  scenarios: Scenario[];
}

const fixture: Fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL("./fixtures/go_metadata.json", import.meta.url)), "utf8"),
);

// ---- where the port deliberately differs from Go (SPEC Part 3) — the only such place -------

/** Whether the port refuses this namespace/key with EINVAL before touching the disk. */
function refusedKey(namespace: string, key: string): boolean {
  const segments = (text: string) => text.split("/").filter((s) => s !== "" && s !== ".");
  const bad = (s: string) =>
    s === ".." || s.startsWith(".tmp-") || s.includes("\\") || s.includes("\0");
  return segments(namespace).some(bad) || segments(key).some(bad) || segments(key).length === 0;
}

/** A digest or DiffID whose part after ':' cleans to nothing (`sha256:`, `weird:`). */
function emptyDigestPart(digest: GoString | undefined): boolean {
  if (digest === undefined) return false;
  const text = str(digest);
  const colon = text.indexOf(":");
  return colon >= 0 && text.slice(colon + 1).split("/").every((s) => s === "" || s === ".");
}

/**
 * The outcome the port must have instead of Go's, or undefined when it must match Go:
 * - a digest or DiffID without ':' makes Go panic; the port throws EINVAL;
 * - a digest or DiffID with nothing after ':' is EINVAL (Go makes `<alg>` a file);
 * - keys with '..', '\', NUL, a '.tmp-' segment, or that clean to nothing are EINVAL.
 */
function deliberateOutcome(op: Op): { code: string } | undefined {
  if (op.error?.panic !== undefined) return { code: "EINVAL" };
  if (op.op.startsWith("store.") && refusedKey(str(op.namespace!), str(op.key!))) {
    return { code: "EINVAL" };
  }
  if (
    op.op.startsWith("v2.") && !op.nilStore &&
    [op.diffID, op.digest, op.metadata?.Digest].some(emptyDigestPart)
  ) return { code: "EINVAL" };
  return undefined;
}

/**
 * Operations whose outcome in Go followed from an earlier one the port refuses (by scenario
 * and index): what the port answers instead, an errno or a result.
 */
const AFTER_REFUSAL: Record<string, Record<number, { code: string } | { result: unknown }>> = {
  // ":leading-colon" was added with the digest "weird:", which the port refused.
  "v2-digest-shapes": { 10: { code: "ENOENT" }, 11: { code: "ENOENT" } },
  // "sha256:" did not become a file, so the next add and read succeed.
  "v2-empty-digest-part": {
    2: { result: null },
    3: { result: [{ Digest: `sha256:${"b".repeat(64)}`, SourceRepository: "r", HMAC: "" }] },
  },
};

/** Files the port has where Go's differ, after the refusals above (text, or a directory). */
const PORT_FILES: Record<string, Record<string, string | "dir">> = {
  "v2-empty-digest-part": {
    "v2metadata-by-diffid/sha256": "dir",
    [`v2metadata-by-diffid/sha256/${"a".repeat(64)}`]: `[{"Digest":"sha256:${
      "b".repeat(64)
    }","SourceRepository":"r","HMAC":""}]`,
    [`diffid-by-digest/sha256/${"b".repeat(64)}`]: `sha256:${"a".repeat(64)}`,
  },
};

/** Files Go wrote in a scenario through an operation the port refuses, so it never has them. */
const ABSENT_FROM_PORT: Record<string, string[]> = {
  // Go wrote through "sub/../k2" and "back\slash"; the port refused both keys.
  "deliberate-path-escapes": ["a/k2", "a/back\\slash"],
  // Go wrote ":leading-colon"'s list and the mapping of "weird:"; the port refused the add.
  "v2-digest-shapes": ["diffid-by-digest/weird", "v2metadata-by-diffid/leading-colon"],
  // Go wrote the list, then panicked on the entry's digest; the port checks it first.
  "deliberate-digest-without-colon": [
    "v2metadata-by-diffid",
    "v2metadata-by-diffid/sha256",
    `v2metadata-by-diffid/sha256/${"a".repeat(64)}`,
  ],
};

// ---- helpers --------------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function str(value: GoString): string {
  return typeof value === "string" ? value : value.text;
}

function fromBase64(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function metadataOf(m: GoMetadata): V2Metadata {
  return { digest: str(m.Digest), sourceRepository: str(m.SourceRepository), hmac: str(m.HMAC) };
}

/** Byte order of the UTF-8 encodings, as Go's sort.Strings orders paths. */
function byUtf8(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

function replaceBytes(bytes: Uint8Array, from: string, to: Uint8Array): Uint8Array {
  const pattern = encoder.encode(from);
  const out: number[] = [];
  for (let i = 0; i < bytes.length;) {
    if (pattern.every((byte, j) => bytes[i + j] === byte)) {
      out.push(...to);
      i += pattern.length;
    } else out.push(bytes[i++]!);
  }
  return Uint8Array.from(out);
}

/** The tree the port must leave: Go's, less the deliberate differences, in our encoding. */
function expectedTree(scenario: Scenario, umask: number): TreeNode[] {
  const absent = new Set(ABSENT_FROM_PORT[scenario.name] ?? []);
  const portFiles = PORT_FILES[scenario.name] ?? {};
  const tree = scenario.tree.filter((node) => !absent.has(node.path) && !(node.path in portFiles));
  for (const [path, text] of Object.entries(portFiles)) {
    tree.push(
      text === "dir"
        ? { path, kind: "dir", mode: 0o755 }
        : { path, kind: "file", mode: 0o644, base64: toBase64(encoder.encode(text)) },
    );
  }
  tree.sort((a, b) => byUtf8(a.path, b.path));
  return tree.map((node) => {
    // Directories get 0755 less the umask; Go ran with 0022, which leaves 0755 unchanged.
    const mode = node.kind === "dir" ? node.mode & ~umask : node.mode;
    if (node.base64 === undefined) return { ...node, mode };
    let bytes = fromBase64(node.base64);
    // A JS string cannot hold invalid UTF-8: the replay passes U+FFFD, written raw, where
    // Go wrote each bad byte as the escape \ufffd (SPEC 1.3).
    if (scenario.lossyUtf8) bytes = replaceBytes(bytes, "\\ufffd", encoder.encode("\ufffd"));
    // Fixtures from Go < 1.22 have the old escapes for BS and FF; the port writes \b and \f.
    if (!fixture.generator.jsonShortEscapesBF) {
      bytes = replaceBytes(
        replaceBytes(bytes, "\\u0008", encoder.encode("\\b")),
        "\\u000c",
        encoder.encode("\\f"),
      );
    }
    return { ...node, mode, base64: toBase64(bytes) };
  });
}

/** The tree under `root` as the fixture records it, read through `fs` (memory) or node:fs. */
async function actualTree(adapter: Adapter, fs: FileSystem, root: string): Promise<TreeNode[]> {
  const nodes: TreeNode[] = [];
  const walk = async (dir: string, rel: string) => {
    const names = adapter.real ? readdirSync(dir) : await fs.readDir(dir);
    for (const name of names) {
      const path = `${dir}/${name}`;
      const relPath = rel === "" ? name : `${rel}/${name}`;
      assert.ok(!name.startsWith(".tmp-"), `temp file left behind: ${relPath}`);
      if (adapter.real) {
        const stats = lstatSync(path);
        if (stats.isDirectory()) {
          nodes.push({ path: relPath, kind: "dir", mode: stats.mode & 0o777 });
          await walk(path, relPath);
        } else {
          assert.ok(stats.isFile(), `not a regular file: ${relPath}`);
          nodes.push({
            path: relPath,
            kind: "file",
            mode: stats.mode & 0o777,
            base64: toBase64(readFileSync(path)),
          });
        }
      } else {
        const info = (await fs.stat(path))!;
        if (info.kind === "directory") {
          nodes.push({ path: relPath, kind: "dir", mode: info.mode & 0o777 });
          await walk(path, relPath);
        } else {
          nodes.push({
            path: relPath,
            kind: "file",
            mode: info.mode & 0o777,
            base64: toBase64(await fs.readFile(path)),
          });
        }
      }
    }
  };
  await walk(root, "");
  return nodes.sort((a, b) => byUtf8(a.path, b.path));
}

async function rootMode(adapter: Adapter, fs: FileSystem, root: string): Promise<number> {
  return (adapter.real ? lstatSync(root).mode : (await fs.stat(root))!.mode) & 0o777;
}

/** The umask new directories get: the process's on a real disk, MemoryFileSystem's 0022. */
function umaskOf(adapter: Adapter): number {
  return adapter.real ? process.umask() : 0o022;
}

interface Context {
  fs: FileSystem;
  root: string;
  store: FSMetadataStore;
  v2: V2MetadataService;
  v1: V1IDService;
}

async function open(fs: FileSystem, root: string): Promise<Context> {
  const store = await FSMetadataStore.open(root, { fs });
  return { fs, root, store, v2: new V2MetadataService(store), v1: new V1IDService(store) };
}

function authOf(op: Op): AuthConfig | null {
  if (op.noAuth) return null;
  const auth: Record<string, string> = {};
  for (const [name, value] of Object.entries(op.auth ?? {})) auth[name] = str(value);
  return auth as AuthConfig;
}

function keyOf(op: Op): Uint8Array | null {
  return op.hmacKey === null || op.hmacKey === undefined ? null : fromBase64(op.hmacKey);
}

/** Runs one recorded operation on the port; returns its result in the fixture's encoding. */
async function perform(ctx: Context, op: Op): Promise<unknown> {
  const v2 = op.nilStore ? new V2MetadataService(null) : ctx.v2;
  const v1 = op.nilStore ? new V1IDService(null) : ctx.v1;
  switch (op.op) {
    case "raw.write": { // a file written by hand, through the FileSystem (mode 0644)
      const path = `${ctx.root}/${str(op.path!)}`;
      const dir = path.slice(0, path.lastIndexOf("/"));
      await ctx.fs.mkdir(dir, 0o755);
      await ctx.fs.writeFileAtomic(
        path,
        `${dir}/.tmp-raw-write`,
        fromBase64(op.value ?? ""),
        0o644,
      );
      return null;
    }
    case "raw.mkdir":
      await ctx.fs.mkdir(`${ctx.root}/${str(op.path!)}`, 0o755);
      return null;
    case "store.get":
      return toBase64(await ctx.store.get(str(op.namespace!), str(op.key!)));
    case "store.set":
      await ctx.store.set(str(op.namespace!), str(op.key!), fromBase64(op.value ?? ""));
      return null;
    case "store.delete":
      await ctx.store.delete(str(op.namespace!), str(op.key!));
      return null;
    case "v2.getMetadata":
      return (await v2.getMetadata(str(op.diffID!))).map((m) => ({
        Digest: m.digest,
        SourceRepository: m.sourceRepository,
        HMAC: m.hmac,
      }));
    case "v2.getDiffID":
      return await v2.getDiffID(str(op.digest!));
    case "v2.add":
      await v2.add(str(op.diffID!), metadataOf(op.metadata!));
      return null;
    case "v2.tagAndAdd":
      await v2.tagAndAdd(str(op.diffID!), keyOf(op), metadataOf(op.metadata!));
      return null;
    case "v2.remove":
      await v2.remove(metadataOf(op.metadata!));
      return null;
    case "v1.get":
      return await v1.get(str(op.v1ID!), str(op.registry!));
    case "v1.set":
      await v1.set(str(op.v1ID!), str(op.registry!), str(op.diffID!));
      return null;
    case "hmac.key": {
      const key = await computeV2MetadataHMACKey(authOf(op));
      return key === null ? null : decoder.decode(key);
    }
    case "hmac.compute":
      return await computeV2MetadataHMAC(
        keyOf(op),
        op.metadata ? metadataOf(op.metadata) : null,
      );
    case "hmac.check":
      return await checkV2MetadataHMAC(metadataOf(op.metadata!), keyOf(op));
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

/** Go's result in the port's encoding: strings as JS strings, bytes as base64. */
function expectedResult(op: Op): unknown {
  if (op.result === null || op.result === undefined) return null;
  if (op.op === "v2.getMetadata") {
    return (op.result as GoMetadata[]).map((m) => ({
      Digest: str(m.Digest),
      SourceRepository: str(m.SourceRepository),
      HMAC: str(m.HMAC),
    }));
  }
  if (typeof op.result === "object") return str(op.result as GoString);
  return op.result;
}

/** Runs `op` and asserts the port's outcome is Go's (or the deliberate difference). */
async function replay(
  ctx: Context,
  op: Op,
  where: string,
  instead?: { code: string } | { result: unknown },
): Promise<void> {
  const label = `${where}: ${JSON.stringify({ ...op, result: undefined, value: undefined })}`;
  let result: unknown;
  let error: unknown;
  let failed = false;
  try {
    result = await perform(ctx, op);
  } catch (caught) {
    failed = true;
    error = caught;
  }
  if (instead && "result" in instead) {
    if (failed) throw new Error(`${label}: the port failed`, { cause: error });
    assert.deepEqual(result, instead.result, label);
    return;
  }
  const deliberate = instead ?? deliberateOutcome(op);
  const goError = deliberate ? undefined : op.error;
  if (deliberate) {
    assert.ok(failed, `${label}: expected ${deliberate.code}, got success`);
    assert.ok(error instanceof MetadataError, `${label}: ${error}`);
    assert.equal(error.code, deliberate.code, label);
  } else if (goError) {
    assert.ok(failed, `${label}: Go failed with ${JSON.stringify(goError)}, the port succeeded`);
    if (!(error instanceof MetadataError)) throw error;
    if (goError.errno !== undefined) assert.equal(error.code, goError.errno, label);
    else if (goError.json) assert.equal(error.code, "EBADMSG", label);
    else assert.equal(error.message, goError.message, label);
  } else {
    if (failed) throw new Error(`${label}: Go succeeded, the port failed`, { cause: error });
    assert.deepEqual(result, expectedResult(op), label);
  }
}

// ---- the tests ------------------------------------------------------------------------------

test("golden: the fixture was recorded from Docker's Go package", () => {
  assert.match(fixture.generator.go, /^go1\.\d+/);
  assert.match(fixture.generator.docker, /^\d+\.\d+\.\d+/);
  assert.equal(fixture.generator.umask, 0o022);
  assert.equal(fixture.rootMode, 0o700);
  assert.ok(fixture.scenarios.length >= 20);
  for (const scenario of fixture.scenarios) {
    const paths = scenario.tree.map((node) => node.path);
    assert.deepEqual(paths, [...paths].sort(byUtf8), `${scenario.name}: tree is sorted`);
    assert.ok(paths.every((path) => !/(^|\/)\.tmp-/.test(path)), scenario.name);
    assert.ok(Array.isArray(scenario.handWritten), scenario.name);
  }
});

test("golden: HMAC key of {} is the known answer", async () => {
  const key = await computeV2MetadataHMACKey({});
  assert.equal(
    decoder.decode(key!),
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  );
  const recorded = fixture.scenarios.find((s) => s.name === "hmac-keys")!.ops
    .find((op) => op.op === "hmac.key" && op.auth && Object.keys(op.auth).length === 0)!;
  assert.equal(recorded.result, decoder.decode(key!));
});

for (const scenario of fixture.scenarios) {
  for (const adapter of adapters) {
    test(`golden: ${scenario.name} on ${adapter.name}`, async () => {
      const { fs, root } = adapter.fresh();
      try {
        const ctx = await open(fs, root);
        for (const [i, op] of scenario.ops.entries()) {
          await replay(ctx, op, `${scenario.name} op ${i}`, AFTER_REFUSAL[scenario.name]?.[i]);
        }
        assert.equal(await rootMode(adapter, fs, root), fixture.rootMode & ~umaskOf(adapter));
        assert.deepEqual(
          await actualTree(adapter, fs, root),
          expectedTree(scenario, umaskOf(adapter)),
          `${scenario.name}: the tree`,
        );
      } finally {
        if (adapter.real) rmSync(root.slice(0, root.lastIndexOf("/")), { recursive: true });
      }
    });
  }
}

/** Puts Go's tree at `root`: with raw node:fs calls on disk, through the FileSystem in memory. */
async function materialise(adapter: Adapter, fs: FileSystem, root: string, tree: TreeNode[]) {
  if (adapter.real) {
    mkdirSync(root, { mode: fixture.rootMode });
    chmodSync(root, fixture.rootMode);
    for (const node of tree) {
      const path = `${root}/${node.path}`;
      if (node.kind === "dir") mkdirSync(path, { mode: node.mode });
      else writeFileSync(path, fromBase64(node.base64!), { mode: node.mode });
      chmodSync(path, node.mode);
    }
    return;
  }
  await fs.mkdir(root, fixture.rootMode);
  for (const node of tree) {
    const path = `${root}/${node.path}`;
    if (node.kind === "dir") await fs.mkdir(path, node.mode);
    else await fs.writeFileAtomic(path, `${path}.materialise`, fromBase64(node.base64!), node.mode);
  }
}

for (const scenario of fixture.scenarios) {
  if (scenario.readback.length === 0) continue;
  for (const adapter of adapters) {
    test(`golden: read back ${scenario.name} on ${adapter.name}`, async () => {
      const { fs, root } = adapter.fresh();
      try {
        await materialise(adapter, fs, root, scenario.tree);
        const ctx = await open(fs, root);
        for (const [i, op] of scenario.readback.entries()) {
          await replay(ctx, op, `${scenario.name} read back ${i}`);
        }
      } finally {
        if (adapter.real) rmSync(root.slice(0, root.lastIndexOf("/")), { recursive: true });
      }
    });
  }
}
