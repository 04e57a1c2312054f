// keys() beyond the conformance suite: what a real directory holds besides values (dockerd's
// temp files, lock files, symlinks), and Deno KV's chunk entries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FSMetadataStore } from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { DenoKvMetadataStore } from "../src/kv_store.ts";
import { tempDir } from "./_adapters.ts";
import { MemoryKv } from "./_memory_kv.ts";

test("FSMetadataStore.keys() leaves out temp and lock files, symlinks and unaddressable names", async () => {
  const root = join(tempDir("dm-keys-"), "store");
  const store = await FSMetadataStore.open(root, { fs: nodeFileSystem });
  await store.set("diffid-by-digest", "sha256/aaa", new Uint8Array([1]));
  const dir = join(root, "diffid-by-digest", "sha256");
  writeFileSync(join(dir, ".tmp-aaa12345"), "half written by dockerd");
  writeFileSync(join(dir, ".tmp-aaa.lock"), "");
  writeFileSync(join(dir, "back\\slash"), "no key reaches this");
  symlinkSync("/etc/passwd", join(dir, "link"));
  mkdirSync(join(dir, "empty-dir"));
  assert.deepEqual(await store.keys("diffid-by-digest"), ["sha256/aaa"]);
  assert.deepEqual(await store.keys("v1id"), []);
});

test("FSMetadataStore.keys() of a namespace that is a file is ENOTDIR", async () => {
  const root = join(tempDir("dm-keys-"), "store");
  const store = await FSMetadataStore.open(root, { fs: nodeFileSystem });
  writeFileSync(join(root, "v1id"), "");
  await assert.rejects(store.keys("v1id"), { name: "MetadataError", code: "ENOTDIR" });
});

test("DenoKvMetadataStore.keys() lists a value split over several entries once", async () => {
  const store = await DenoKvMetadataStore.open(new MemoryKv(), { prefix: ["p"] });
  await store.set("ns", "big", new Uint8Array(65_536 * 2 + 1));
  await store.set("ns", "small", new Uint8Array(1));
  await store.set("nsx", "other", new Uint8Array(1));
  assert.deepEqual(await store.keys("ns"), ["big", "small"]);
});

test("DenoKvMetadataStore.keys() needs a KV with list(): ENOTSUP otherwise", async () => {
  const kv = new MemoryKv();
  const store = await DenoKvMetadataStore.open({
    get: (key) => kv.get(key),
    getMany: (keys) => kv.getMany(keys),
    atomic: () => kv.atomic(),
  });
  await assert.rejects(store.keys("ns"), { name: "MetadataError", code: "ENOTSUP" });
});
