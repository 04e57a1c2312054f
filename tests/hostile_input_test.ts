// Hostile keys, digests, list files and filesystems: each gives a MetadataError with the
// right code and leaves the data already in the store unchanged.
// HUGE_LIST_ENTRIES sets the length of the huge valid list (default 100 000).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type FileSystem,
  FSMetadataStore,
  MetadataError,
  V1IDService,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { adapters, tempDir } from "./_adapters.ts";
import { rejectsWithCode } from "./_conformance.ts";
import { FaultyFileSystem } from "./_faulty_fs.ts";
import { runtimeCommand } from "./_runtime.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Entries in the huge valid list: far past the 50 kept, megabytes of JSON. */
const HUGE = Number(process.env.HUGE_LIST_ENTRIES ?? 100_000);
const DIFF_ID = "sha256:" + "d".repeat(64);
const LIST = `v2metadata-by-diffid/sha256/${"d".repeat(64)}`;
const entry: V2Metadata = {
  digest: "sha256:" + "e".repeat(64),
  sourceRepository: "docker.io/library/busybox",
  hmac: "",
};

/** Every entry under `root` with its kind and contents, through the FileSystem. */
async function snapshot(fs: FileSystem, root: string): Promise<string[]> {
  const lines: string[] = [];
  for (const name of await fs.readDir(root)) {
    const path = `${root}/${name}`;
    const info = (await fs.stat(path))!;
    if (info.kind === "directory") {
      lines.push(
        `${name}/`,
        ...(await snapshot(fs, path)).map((l) => `${name}/${l}`),
      );
    } else if (info.kind === "file") {
      lines.push(`${name} ${info.mode.toString(8)} ${decoder.decode(await fs.readFile(path))}`);
    } else lines.push(`${name} ${info.kind}`);
  }
  return lines.sort();
}

/** A store with some data in it, and a check that the data is still exactly there. */
async function seeded(fresh: () => { fs: FileSystem; root: string }) {
  const { fs, root } = fresh();
  const store = await FSMetadataStore.open(root, { fs });
  const service = new V2MetadataService(store);
  await service.add(DIFF_ID, entry);
  await store.set("v1id", "registry,key", encoder.encode("sha256:1"));
  const before = await snapshot(fs, root);
  const unchanged = async () => assert.deepEqual(await snapshot(fs, root), before);
  return { fs, root, store, service, unchanged };
}

let inputsTried = 0;
const isRoot = process.getuid?.() === 0;

const specialFileReader = fileURLToPath(new URL("./_special_file_reader.ts", import.meta.url));

/** A Unix socket listening at `path`, as a planted file in the store. */
function listenOn(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject);
    server.listen(path, () => resolve(server));
  });
}

// [namespace, key, code]: refused before any filesystem call.
const HOSTILE_KEYS: [string, string, string][] = [
  ["ns", "..", "EINVAL"],
  ["ns", "../v1id/registry,key", "EINVAL"],
  ["ns", "a/../../../etc/passwd", "EINVAL"],
  ["..", "v1id/registry,key", "EINVAL"],
  ["ns/..", "key", "EINVAL"],
  ["ns", "a\0b", "EINVAL"],
  ["n\0s", "key", "EINVAL"],
  ["ns", "a\\..\\b", "EINVAL"],
  ["ns\\x", "key", "EINVAL"],
  ["ns", ".tmp-key123", "EINVAL"],
  ["ns", "dir/.tmp-key123", "EINVAL"],
  [".tmp-ns", "key", "EINVAL"],
  ["ns", "", "EINVAL"],
  ["ns", "/", "EINVAL"],
  ["ns", "./.", "EINVAL"],
  ["ns", "x".repeat(256), "ENAMETOOLONG"],
  ["ns", "a/" + "é".repeat(128), "ENAMETOOLONG"],
  ["y".repeat(300), "key", "ENAMETOOLONG"],
];

for (const adapter of adapters) {
  test(`FSMetadataStore on ${adapter.name}: hostile keys are refused with EINVAL/ENAMETOOLONG, data unchanged`, async () => {
    const { store, unchanged } = await seeded(adapter.fresh);
    for (const [namespace, key, code] of HOSTILE_KEYS) {
      inputsTried++;
      await rejectsWithCode(store.set(namespace, key, encoder.encode("evil")), code);
      await rejectsWithCode(store.get(namespace, key), code);
      await rejectsWithCode(store.delete(namespace, key), code);
    }
    await unchanged();
  });

  test(`FSMetadataStore on ${adapter.name}: a leading "/" in a key stays inside the root`, async () => {
    const { store, fs, root } = await seeded(adapter.fresh);
    inputsTried++;
    await store.set("ns", "/etc/passwd", encoder.encode("inside"));
    assert.equal(decoder.decode(await fs.readFile(`${root}/ns/etc/passwd`)), "inside");
    assert.equal(decoder.decode(await store.get("/ns/", "etc//passwd/")), "inside");
  });

  test(`V2MetadataService on ${adapter.name}: invalid digests and entries are EINVAL, data unchanged`, async () => {
    const { store, service, unchanged } = await seeded(adapter.fresh);
    const bad = [
      "",
      "sha256",
      "no-colon-at-all",
      "sha256:../../v1id/x",
      "sha256:a\0b",
      "..:x",
      "sha256:.tmp-x1",
    ];
    for (const digest of bad) {
      inputsTried++;
      await rejectsWithCode(service.getMetadata(digest), "EINVAL");
      await rejectsWithCode(service.getDiffID(digest), "EINVAL");
      await rejectsWithCode(service.add(digest, entry), "EINVAL");
      await rejectsWithCode(service.add(DIFF_ID, { ...entry, digest }), "EINVAL");
      await rejectsWithCode(service.remove({ ...entry, digest }), "EINVAL");
    }
    for (const entryish of [null, {}, { digest: 1, sourceRepository: "r", hmac: "" }]) {
      inputsTried++;
      await rejectsWithCode(service.add(DIFF_ID, entryish as unknown as V2Metadata), "EINVAL");
    }
    const v1 = new V1IDService(store);
    for (
      const id of [
        "",
        "A".repeat(64),
        "a".repeat(63),
        "a".repeat(64) + "\n",
        "../" + "a".repeat(61),
      ]
    ) {
      inputsTried++;
      await rejectsWithCode(v1.get(id, "registry"), "EINVAL");
      await rejectsWithCode(v1.set(id, "registry", "sha256:1"), "EINVAL");
    }
    await unchanged();
  });

  test(`V2MetadataService on ${adapter.name}: corrupt list files are EBADMSG to read, null is empty`, async () => {
    const { fs, root, service } = await seeded(adapter.fresh);
    const path = `${root}/${LIST}`;
    const good = decoder.decode(await fs.readFile(path));
    const cases: [string, string | null][] = [
      [good.slice(0, -3), "EBADMSG"], // truncated
      ["", "EBADMSG"],
      ["not json", "EBADMSG"],
      ["{}", "EBADMSG"],
      ['[{"Digest":5}]', "EBADMSG"],
      ["[" + "[".repeat(100_000), "EBADMSG"], // deeply nested
      ["x".repeat(8 << 20), "EBADMSG"], // huge
      ["null", null],
      [" null\n", null],
    ];
    for (const [text, code] of cases) {
      inputsTried++;
      await fs.writeFileAtomic(path, `${path}.new`, encoder.encode(text), 0o644);
      if (code === null) assert.deepEqual(await service.getMetadata(DIFF_ID), []);
      else await rejectsWithCode(service.getMetadata(DIFF_ID), code);
      assert.equal(decoder.decode(await fs.readFile(path)), text, "reading changes nothing");
      // add() replaces a corrupt list, as dockerd does, and keeps the mapping right.
      await service.add(DIFF_ID, entry);
      assert.deepEqual(await service.getMetadata(DIFF_ID), [entry]);
      assert.equal(await service.getDiffID(entry.digest), DIFF_ID);
    }
  });

  test(`V2MetadataService on ${adapter.name}: a huge valid list reads whole and add() keeps the newest 50`, async () => {
    const { fs, root, service } = await seeded(adapter.fresh);
    const path = `${root}/${LIST}`;
    const many = Array.from({ length: HUGE }, (_, n) => ({
      Digest: "sha256:" + n.toString(16).padStart(64, "0"),
      SourceRepository: "r",
      HMAC: "",
    }));
    inputsTried++;
    await fs.writeFileAtomic(path, `${path}.new`, encoder.encode(JSON.stringify(many)), 0o644);
    assert.equal((await service.getMetadata(DIFF_ID)).length, HUGE);
    await service.add(DIFF_ID, entry);
    const list = await service.getMetadata(DIFF_ID);
    assert.equal(list.length, 50);
    assert.deepEqual(list.at(-1), entry);
    assert.equal(list[0]!.digest, many[HUGE - 49]!.Digest);
  });

  test(`V2MetadataService on ${adapter.name}: a directory as the list is EISDIR to read, EEXIST to add`, async () => {
    const { fs, root, service, store } = await seeded(adapter.fresh);
    const other = "sha256:" + "f".repeat(64);
    await fs.mkdir(`${root}/v2metadata-by-diffid/sha256/${"f".repeat(64)}/inner`, 0o755);
    const before = await snapshot(fs, root);
    inputsTried++;
    await rejectsWithCode(service.getMetadata(other), "EISDIR");
    await rejectsWithCode(
      service.add(other, { ...entry, digest: "sha256:" + "9".repeat(64) }),
      "EEXIST",
    );
    await rejectsWithCode(
      store.set("v2metadata-by-diffid", `sha256/${"f".repeat(64)}`, encoder.encode("[]")),
      "EEXIST",
    );
    assert.deepEqual(await snapshot(fs, root), before);
  });

  if (adapter.real) {
    test(`FSMetadataStore on ${adapter.name}: a symlink out of the root is refused by get and set (EINVAL)`, async () => {
      const { root, store, service } = await seeded(adapter.fresh);
      const outside = join(tempDir("dm-outside-"), "secret");
      writeFileSync(outside, "secret");
      mkdirSync(join(root, "ns"));
      symlinkSync(outside, join(root, "ns", "link"));
      symlinkSync("/etc/hostname", join(root, "ns", "abs"));
      symlinkSync("../../../../../../etc/hostname", join(root, "ns", "rel"));
      const listPath = join(root, LIST);
      rmSync(listPath);
      symlinkSync(outside, listPath);
      for (const key of ["link", "abs", "rel"]) {
        inputsTried++;
        await rejectsWithCode(store.get("ns", key), "EINVAL");
        await rejectsWithCode(store.set("ns", key, encoder.encode("evil")), "EINVAL");
      }
      inputsTried++;
      await rejectsWithCode(service.getMetadata(DIFF_ID), "EINVAL");
      await rejectsWithCode(service.add(DIFF_ID, entry), "EINVAL");
      await rejectsWithCode(service.remove(entry), "EINVAL");
      assert.equal(readFileSync(outside, "utf8"), "secret");
      // delete() removes the link itself, never its target.
      await store.delete("ns", "link");
      assert.equal(readFileSync(outside, "utf8"), "secret");
    });

    test(`FSMetadataStore on ${adapter.name}: a FIFO, socket or device as a value is EINVAL at once`, async () => {
      const { root, unchanged } = await seeded(adapter.fresh);
      mkdirSync(join(root, "ns"));
      execFileSync("mkfifo", [join(root, "ns", "fifo")]);
      const listen = await listenOn(join(root, "ns", "socket"));
      const special = ["fifo", "socket"];
      if (isRoot) {
        execFileSync("mknod", [join(root, "ns", "null"), "c", "1", "3"]); // /dev/null
        special.push("null");
      }
      // The list and the digest mapping of another layer are FIFOs too.
      const fifoDiffID = "sha256:" + "f".repeat(64);
      mkdirSync(join(root, "v2metadata-by-diffid", "sha256"), { recursive: true });
      execFileSync("mkfifo", [join(root, "v2metadata-by-diffid", "sha256", "f".repeat(64))]);
      mkdirSync(join(root, "diffid-by-digest", "sha256"), { recursive: true });
      execFileSync("mkfifo", [join(root, "diffid-by-digest", "sha256", "f".repeat(64))]);
      const started = Date.now();
      const [command, args] = runtimeCommand(specialFileReader, [
        adapter.name,
        root,
        fifoDiffID,
        ...special,
      ]);
      const child = spawnSync(command, args, { encoding: "utf8", timeout: 30_000 });
      listen.close();
      assert.equal(child.signal, null, `the reads blocked for ${Date.now() - started} ms`);
      assert.equal(child.status, 0, child.stderr);
      const results = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
      const expected = (path: string) => ({
        code: "EINVAL",
        message: `Cannot get "${
          path.slice(root.length + 1)
        }" at "${path}": it is a FIFO, socket or device, not a regular file`,
        path,
      });
      for (const name of special) {
        inputsTried++;
        assert.deepEqual(results[name], expected(join(root, "ns", name)), name);
      }
      inputsTried++;
      assert.deepEqual(
        results.getMetadata,
        expected(join(root, "v2metadata-by-diffid", "sha256", "f".repeat(64))),
      );
      assert.deepEqual(
        results.getDiffID,
        expected(join(root, "diffid-by-digest", "sha256", "f".repeat(64))),
      );
      // Nothing was written into a FIFO or replaced it.
      rmSync(join(root, "ns"), { recursive: true });
      rmSync(join(root, "v2metadata-by-diffid", "sha256", "f".repeat(64)));
      rmSync(join(root, "diffid-by-digest", "sha256", "f".repeat(64)));
      await unchanged();
    });

    test(`FSMetadataStore on ${adapter.name}: a path over PATH_MAX is ENAMETOOLONG, data unchanged`, async () => {
      const { store, unchanged } = await seeded(adapter.fresh);
      const key = Array.from({ length: 20 }, () => "k".repeat(250)).join("/");
      inputsTried++;
      await rejectsWithCode(store.set("ns", key, encoder.encode("x")), "ENAMETOOLONG");
      await rejectsWithCode(store.get("ns", key), "ENAMETOOLONG");
      await unchanged();
    });
  }
}

/** Mounts a tmpfs of `size` at a new directory, or returns null where that is not allowed. */
function tmpfs(options: string): string | null {
  if (!isRoot) return null;
  const dir = tempDir("dm-tmpfs-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "ignore" });
    return dir;
  } catch {
    return null;
  }
}

function unmount(dir: string): void {
  execFileSync("umount", [dir], { stdio: "ignore" });
}

test("FSMetadataStore on a full disk: set() fails with ENOSPC, the old value stays, no temp file", async () => {
  const mounted = tmpfs("size=256k");
  try {
    const { fs, root } = mounted
      ? { fs: undefined, root: join(mounted, "store") }
      : { fs: new FaultyFileSystem("disk"), root: join(tempDir(), "store") };
    const store = await FSMetadataStore.open(root, fs ? { fs } : {});
    await store.set("ns", "key", encoder.encode("old value"));
    const service = new V2MetadataService(store);
    await service.add(DIFF_ID, entry);
    const listBefore = await service.getMetadata(DIFF_ID);
    fs?.arm({ every: 1, code: "ENOSPC" });
    inputsTried++;
    await rejectsWithCode(store.set("ns", "key", new Uint8Array(1 << 20)), "ENOSPC");
    await rejectsWithCode(store.set("ns", "new-key", new Uint8Array(1 << 20)), "ENOSPC");
    if (mounted) {
      // Fill the disk up, then a list write must fail too and leave the list as it was.
      for (let n = 0;; n++) {
        try {
          await store.set("filler", `f${n}`, new Uint8Array(16 << 10));
        } catch (error) {
          assert.ok(error instanceof MetadataError && error.code === "ENOSPC", String(error));
          break;
        }
      }
      const big = { ...entry, sourceRepository: "r".repeat(64 << 10) };
      await rejectsWithCode(service.add(DIFF_ID, big), "ENOSPC");
    }
    fs?.arm({});
    assert.equal(decoder.decode(await store.get("ns", "key")), "old value");
    assert.deepEqual(await service.getMetadata(DIFF_ID), listBefore);
    await rejectsWithCode(store.get("ns", "new-key"), "ENOENT");
    assert.deepEqual(await store.recover({ olderThanMs: 0 }), [], "no temp file left");
  } finally {
    if (mounted) unmount(mounted);
  }
});

test("FSMetadataStore on a read-only root: set() fails with EROFS/EACCES, data unchanged", async () => {
  // Read-only for everyone: a read-only mount (as root), or mode 0555 for other users.
  const mounted = tmpfs("size=1m");
  const root = mounted ? join(mounted, "store") : join(tempDir(), "store");
  try {
    const store = await FSMetadataStore.open(root);
    await store.set("ns", "key", encoder.encode("old value"));
    let expected: string;
    if (mounted) {
      execFileSync("mount", ["-o", "remount,ro", mounted], { stdio: "ignore" });
      expected = "EROFS";
    } else {
      chmodSync(join(root, "ns"), 0o555);
      chmodSync(root, 0o555);
      expected = isRoot ? "" : "EACCES";
    }
    if (expected !== "") {
      inputsTried++;
      await rejectsWithCode(store.set("ns", "key", encoder.encode("new")), expected);
      await rejectsWithCode(store.set("other", "key", encoder.encode("new")), expected);
      await rejectsWithCode(store.delete("ns", "key"), expected);
      assert.equal(decoder.decode(await store.get("ns", "key")), "old value");
      await rejectsWithCode(FSMetadataStore.open(join(root, "sub")), expected);
    }
  } finally {
    if (mounted) unmount(mounted);
  }
});

test("FSMetadataStore with a permission error on every call: EACCES everywhere, data unchanged", async () => {
  // Root ignores file modes, so EACCES comes from the fault-injecting wrapper here.
  const fs = new FaultyFileSystem("disk");
  const root = join(tempDir(), "store");
  const store = await FSMetadataStore.open(root, { fs });
  const service = new V2MetadataService(store);
  await service.add(DIFF_ID, entry);
  fs.arm({ every: 1, code: "EACCES" });
  inputsTried++;
  await rejectsWithCode(store.set("ns", "key", encoder.encode("x")), "EACCES");
  await rejectsWithCode(store.get("ns", "key"), "EACCES");
  await rejectsWithCode(service.add(DIFF_ID, { ...entry, hmac: "ff" }), "EACCES");
  await rejectsWithCode(service.remove(entry), "EACCES");
  await rejectsWithCode(store.recover(), "EACCES");
  fs.arm({});
  assert.deepEqual(await service.getMetadata(DIFF_ID), [entry]);
});

test("hostile input: inputs tried", () => {
  console.log(`hostile_input_test: ${inputsTried} hostile inputs tried`);
  assert.ok(inputsTried > 50);
});
