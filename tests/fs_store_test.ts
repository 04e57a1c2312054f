import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type FileSystem, FSMetadataStore, MemoryFileSystem, MetadataError } from "../mod.ts";
import { adapters } from "./_adapters.ts";
import { rejectsWithCode, testStoreConformance } from "./_conformance.ts";
import { runtimeCommand } from "./_runtime.ts";

const encoder = new TextEncoder();
/**
 * How long each race against a writer renaming over a value reads it (default 1 500 ms), and
 * then on until it has seen both values, for at most RACE_LIMIT_MS: on a loaded machine a
 * read can take seconds, and the race is over before the writer renamed once.
 */
const RACE_MS = Number(process.env.RACE_MS ?? 1500);
const RACE_LIMIT_MS = 30_000;
const renameWriter = fileURLToPath(new URL("./_rename_writer.ts", import.meta.url));

/** Every entry under `root` as "mode kind relative-path", sorted, through the FileSystem. */
async function tree(fs: FileSystem, root: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for (const name of await fs.readDir(root)) {
    const info = (await fs.stat(`${root}/${name}`))!;
    lines.push(`${info.mode.toString(8)} ${info.kind} ${prefix}${name}`);
    if (info.kind === "directory") {
      lines.push(...await tree(fs, `${root}/${name}`, `${prefix}${name}/`));
    }
  }
  return lines.sort();
}

for (const adapter of adapters) {
  const open = () => {
    const { fs, root } = adapter.fresh();
    return FSMetadataStore.open(root, { fs });
  };
  testStoreConformance(`FSMetadataStore on ${adapter.name}`, open);
  testStoreConformance(`FSMetadataStore with lock on ${adapter.name}`, () => {
    const { fs, root } = adapter.fresh();
    return FSMetadataStore.open(root, { fs, lock: true });
  }, { update: true });

  const it = (name: string, fn: (store: FSMetadataStore) => Promise<void>) =>
    test(`FSMetadataStore on ${adapter.name}: ${name}`, async () => fn(await open()));

  it("has update() only when opened with lock: true", async (store) => {
    assert.equal(store.update, undefined);
    const locked = await FSMetadataStore.open(store.root, { fs: store.fs, lock: true });
    assert.equal(typeof locked.update, "function");
  });

  it("update() with lock passes null for a missing key, deletes on null, leaves no lock file", async (store) => {
    const locked = await FSMetadataStore.open(store.root, { fs: store.fs, lock: true });
    const seen: (number[] | null)[] = [];
    const append = (n: number) => (old: Uint8Array | null) => {
      seen.push(old && [...old]);
      return new Uint8Array([...old ?? [], n]);
    };
    await Promise.all([1, 2, 3].map((n) => locked.update!("ns", "a/log", append(n))));
    assert.deepEqual(seen, [null, [1], [1, 2]]);
    assert.deepEqual(await locked.get("ns", "a/log"), new Uint8Array([1, 2, 3]));
    await locked.update!("ns", "a/log", () => null);
    await rejectsWithCode(locked.get("ns", "a/log"), "ENOENT");
    assert.deepEqual(await tree(store.fs, store.root), ["755 directory ns", "755 directory ns/a"]);
    await rejectsWithCode(locked.update!("ns", ".tmp-x", () => null), "EINVAL");
  });

  it("open() with lock: true on a FileSystem without createExclusive() is ENOTSUP", async (store) => {
    const fs: FileSystem = {
      readFile: (path) => store.fs.readFile(path),
      writeFileAtomic: (...args) => store.fs.writeFileAtomic(...args),
      mkdir: (path, mode) => store.fs.mkdir(path, mode),
      remove: (path) => store.fs.remove(path),
      stat: (path) => store.fs.stat(path),
      readDir: (path) => store.fs.readDir(path),
    };
    await rejectsWithCode(FSMetadataStore.open(store.root, { fs, lock: true }), "ENOTSUP");
    await FSMetadataStore.open(store.root, { fs });
  });

  it("open() with lock refuses a negative or NaN lockStaleMs/lockTimeoutMs with EINVAL", async (store) => {
    for (const bad of [{ lockStaleMs: -1 }, { lockTimeoutMs: Number.NaN }]) {
      await rejectsWithCode(
        FSMetadataStore.open(store.root, { fs: store.fs, lock: true, ...bad }),
        "EINVAL",
      );
    }
    await FSMetadataStore.open(store.root, { fs: store.fs, lock: true, lockStaleMs: 0 });
  });

  it("FileSystem.readFile() with maxBytes refuses a bigger file with EFBIG before reading it", async (store) => {
    const value = new Uint8Array(1 << 20).fill(7);
    await store.set("ns", "big", value);
    const path = `${store.root}/ns/big`;
    assert.deepEqual(await store.fs.readFile(path, { maxBytes: value.length }), value);
    await assert.rejects(
      async () => await store.fs.readFile(path, { maxBytes: value.length - 1 }),
      (error: Error & { code?: string; path?: string }) => {
        assert.equal(error.code, "EFBIG");
        assert.equal(error.path, path);
        assert.match(error.message, new RegExp(`${path}`));
        return true;
      },
    );
  });

  if (adapter.real) {
    it("FileSystem.readFile() reads a file whose size says 0 (procfs) to its end", async (store) => {
      const status = new TextDecoder().decode(await store.fs.readFile("/proc/self/status"));
      assert.match(status, /^Name:.*\n[^]*\nPid:\s+\d+\n/);
      await assert.rejects(
        async () => await store.fs.readFile("/proc/self/status", { maxBytes: 10 }),
        (error: Error & { code?: string }) => error.code === "EFBIG",
      );
    });
  }

  // Values under 64 KiB are read into a scratch buffer and copied out, bigger ones straight
  // into their own: both sides of that line, and a race on each.
  it("get() returns values around 64 KiB whole, each in an ArrayBuffer of its own", async (store) => {
    const sizes = [0, 1, 65535, 65536, 65537, 300_000];
    const values = sizes.map((size) => Uint8Array.from({ length: size }, (_, i) => i * 7 + size));
    for (const [i, value] of values.entries()) await store.set("ns", `v${i}`, value);
    for (const [i, value] of values.entries()) {
      const got = await store.get("ns", `v${i}`);
      assert.deepEqual(got, value);
      assert.equal(got.byteOffset, 0);
      assert.equal(got.buffer.byteLength, value.length);
    }
  });

  for (const long of adapter.real ? ["long ".repeat(1000), "long ".repeat(20_000)] : []) {
    it(`get() of a value renamed over meanwhile is the old or the new value, never a part (${long.length} B)`, async (store) => {
      const short = "short";
      await store.set("ns", "key", encoder.encode(short));
      const path = `${store.root}/ns/key`;
      const [command, args] = runtimeCommand(renameWriter, [path, short, long]);
      const writer = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
      await once(writer.stdout!, "data");
      const seen = new Map<string, number>();
      try {
        for (
          const start = Date.now();
          Date.now() - start < (seen.size < 2 ? RACE_LIMIT_MS : RACE_MS);
        ) {
          const value = new TextDecoder().decode(await store.get("ns", "key"));
          seen.set(value, (seen.get(value) ?? 0) + 1);
        }
      } finally {
        writeFileSync(`${path}.stop`, "");
        await once(writer, "exit");
      }
      assert.deepEqual([...seen.keys()].sort(), [long, short], "only whole values, both seen");
    });
  }

  it("open() with maxValueBytes: get() of a bigger value is EFBIG naming the path", async (store) => {
    await store.set("ns", "big", new Uint8Array(1001));
    await store.set("ns", "fits", new Uint8Array(1000).fill(1));
    const capped = await FSMetadataStore.open(store.root, { fs: store.fs, maxValueBytes: 1000 });
    assert.deepEqual(await capped.get("ns", "fits"), new Uint8Array(1000).fill(1));
    await assert.rejects(capped.get("ns", "big"), (error: unknown) => {
      assert.ok(error instanceof MetadataError);
      assert.equal(error.code, "EFBIG");
      assert.equal(error.path, `${store.root}/ns/big`);
      assert.equal(
        error.message,
        `Cannot get "ns/big" at "${store.root}/ns/big": it is over the store's maxValueBytes, 1000`,
      );
      return true;
    });
    await rejectsWithCode(
      FSMetadataStore.open(store.root, { fs: store.fs, maxValueBytes: -1 }),
      "EINVAL",
    );
  });

  it("open() with maxValueBytes: a FileSystem that ignores maxBytes still gives EFBIG", async (store) => {
    await store.set("ns", "big", new Uint8Array(1001));
    const fs: FileSystem = {
      readFile: (path) => store.fs.readFile(path), // drops the options
      writeFileAtomic: (...args) => store.fs.writeFileAtomic(...args),
      mkdir: (path, mode) => store.fs.mkdir(path, mode),
      remove: (path) => store.fs.remove(path),
      stat: (path) => store.fs.stat(path),
      readDir: (path) => store.fs.readDir(path),
    };
    const capped = await FSMetadataStore.open(store.root, { fs, maxValueBytes: 1000 });
    await rejectsWithCode(capped.get("ns", "big"), "EFBIG");
  });

  it("open() creates the root 0700, set() makes 0755 directories and 0644 files", async (store) => {
    assert.equal((await store.fs.stat(store.root))?.mode, 0o700);
    await store.set("v2metadata-by-diffid", "sha256/abc", encoder.encode("[]"));
    await store.set("v1id", "registry.example.com:5000/v2,id", encoder.encode("d"));
    assert.deepEqual(await tree(store.fs, store.root), [
      "644 file v1id/registry.example.com:5000/v2,id",
      "644 file v2metadata-by-diffid/sha256/abc",
      "755 directory v1id",
      "755 directory v1id/registry.example.com:5000",
      "755 directory v2metadata-by-diffid",
      "755 directory v2metadata-by-diffid/sha256",
    ]);
  });

  it("set() leaves exactly the value's bytes and no temp file", async (store) => {
    const value = encoder.encode("exact bytes\n\0");
    await store.set("ns", "key", value);
    await store.set("ns", "key", value);
    assert.deepEqual(await store.fs.readFile(`${store.root}/ns/key`), value);
    assert.deepEqual(await store.fs.readDir(`${store.root}/ns`), ["key"]);
  });

  it("open() leaves an existing root's mode alone", async () => {
    const { fs, root } = adapter.fresh();
    await fs.mkdir(root, 0o755);
    await FSMetadataStore.open(root, { fs });
    assert.equal((await fs.stat(root))?.mode, 0o755);
  });

  it("open() on a file is ENOTDIR", async (store) => {
    await store.set("ns", "file", new Uint8Array());
    await rejectsWithCode(
      FSMetadataStore.open(`${store.root}/ns/file`, { fs: store.fs }),
      "ENOTDIR",
    );
  });

  it("get() of a directory is EISDIR, set() onto one is EEXIST", async (store) => {
    await store.set("ns", "dir/inner", encoder.encode("x"));
    await rejectsWithCode(store.get("ns", "dir"), "EISDIR");
    await rejectsWithCode(store.set("ns", "dir", encoder.encode("y")), "EEXIST");
    assert.deepEqual(await store.fs.readDir(`${store.root}/ns`), ["dir"]);
  });

  it("a file in place of a parent directory is ENOTDIR", async (store) => {
    await store.set("ns", "file", encoder.encode("x"));
    await rejectsWithCode(store.set("ns", "file/child", encoder.encode("y")), "ENOTDIR");
    await rejectsWithCode(store.get("ns", "file/child"), "ENOTDIR");
    await rejectsWithCode(store.delete("ns", "file/child"), "ENOTDIR");
  });

  it("delete() removes an empty directory but not a full one", async (store) => {
    await store.set("ns", "dir/inner", encoder.encode("x"));
    await rejectsWithCode(store.delete("ns", "dir"), "ENOTEMPTY");
    await store.delete("ns", "dir/inner");
    assert.deepEqual(await store.fs.readDir(`${store.root}/ns/dir`), [], "parents stay");
    await store.delete("ns", "dir");
    assert.deepEqual(await store.fs.readDir(`${store.root}/ns`), []);
  });

  it("a segment over 255 bytes is ENAMETOOLONG", async (store) => {
    await rejectsWithCode(store.set("ns", "é".repeat(128), encoder.encode("x")), "ENAMETOOLONG");
  });

  if (adapter.real) {
    it("set() refuses to write onto a symlink (EINVAL), as dockerd v28", async (store) => {
      mkdirSync(join(store.root, "ns"));
      writeFileSync(join(store.root, "outside"), "outside");
      symlinkSync(join(store.root, "outside"), join(store.root, "ns", "link"));
      await rejectsWithCode(store.set("ns", "link", encoder.encode("x")), "EINVAL");
      assert.equal(
        new TextDecoder().decode(await store.fs.readFile(join(store.root, "outside"))),
        "outside",
      );
    });

    it("set() gives files 0644 whatever the umask allows", async (store) => {
      await store.set("ns", "key", encoder.encode("x"));
      chmodSync(join(store.root, "ns", "key"), 0o600);
      await store.set("ns", "key", encoder.encode("y"));
      assert.equal((await store.fs.stat(join(store.root, "ns", "key")))?.mode, 0o644);
    });
  }
}

test("MemoryFileSystem applies its umask to new directories", async () => {
  const fs = new MemoryFileSystem({ umask: 0o077 });
  const store = await FSMetadataStore.open("/store", { fs });
  await store.set("ns", "key", encoder.encode("x"));
  assert.equal(fs.stat("/store/ns")?.mode, 0o700);
  assert.equal(fs.stat("/store/ns/key")?.mode, 0o644);
});

test("MemoryFileSystem.readFile() returns a copy in an ArrayBuffer of its own", async () => {
  const fs = new MemoryFileSystem();
  const store = await FSMetadataStore.open("/store", { fs });
  await store.set("ns", "key", encoder.encode("abc"));
  const first = await store.get("ns", "key");
  first[0] = 0;
  assert.equal(new TextDecoder().decode(await store.get("ns", "key")), "abc");
  assert.equal(first.buffer.byteLength, 3);
});

test("MemoryFileSystem cleans paths as a disk resolves them", async () => {
  const fs = new MemoryFileSystem();
  const store = await FSMetadataStore.open("/store", { fs });
  await store.set("ns", ".hidden/key", encoder.encode("x"));
  for (
    const path of [
      "/store/ns/.hidden/key",
      "/store/./ns//.hidden/key",
      "/store/ns/../ns/.hidden/./key",
      "/store/./ns/.hidden/key",
      "/store/ns/../ns/.hidden/key",
      "//store/ns/.hidden/key",
      "store/ns/.hidden/key",
    ]
  ) {
    assert.equal(new TextDecoder().decode(fs.readFile(path)), "x", path);
  }
  assert.equal(fs.stat("/store/ns/")?.kind, "directory");
  assert.equal(fs.stat("/store/ns/.hidden/..")?.kind, "directory");
  assert.equal(fs.stat("/store/ns/.")?.kind, "directory");
  assert.equal(fs.stat("/")?.kind, "directory");
});

test("FSMetadataStore.open() without options uses the runtime's filesystem", async () => {
  const { root } = adapters[1]!.fresh();
  const store = await FSMetadataStore.open(root);
  await store.set("ns", "key", encoder.encode("x"));
  assert.equal(new TextDecoder().decode(await store.get("ns", "key")), "x");
});
