// copyStore() (the CLI's copy-store) in process, on stores over MemoryFileSystem: what the
// CLI tests cannot set up from outside (a key removed while copying, a corrupt source list).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FSMetadataStore,
  MemoryFileSystem,
  type MetadataStore,
  V2MetadataService,
} from "../mod.ts";
import { copyStore } from "../src/cli/copy_store.ts";
import { fakeDigest } from "./_conformance.ts";

const encoder = new TextEncoder();

function open(options: { lock?: boolean } = {}): Promise<FSMetadataStore> {
  return FSMetadataStore.open("/store", { fs: new MemoryFileSystem(), ...options });
}

async function filled(): Promise<FSMetadataStore> {
  const store = await open();
  const service = new V2MetadataService(store);
  for (const d of [1, 2]) {
    await service.add(fakeDigest(d), {
      digest: fakeDigest(10 + d),
      sourceRepository: "r",
      hmac: "",
    });
  }
  return store;
}

test("copyStore() counts a key removed from the source between listing and reading as gone", async () => {
  const source = await filled();
  const racing: MetadataStore = {
    get: (namespace, key) => source.get(namespace, key),
    set: (namespace, key, value) => source.set(namespace, key, value),
    delete: (namespace, key) => source.delete(namespace, key),
    // Lists, then loses its first key, as a live store may.
    async keys(namespace) {
      const keys = await source.keys(namespace);
      if (keys.length > 0) await source.delete(namespace, keys[0]!);
      return keys;
    },
  };
  const destination = await open();
  const [lists, mappings] = await copyStore(racing, destination);
  assert.deepEqual([lists!.keys, lists!.copied, lists!.gone, lists!.failures], [2, 1, 1, []]);
  assert.deepEqual([mappings!.copied, mappings!.gone], [1, 1]);
  assert.deepEqual(await destination.keys("v2metadata-by-diffid"), [
    `sha256/${fakeDigest(2).slice(7)}`,
  ]);
});

test("copyStore() reports a corrupt source list and copies the rest", async () => {
  const source = await filled();
  const corrupt = `sha256/${fakeDigest(1).slice(7)}`;
  await source.set("v2metadata-by-diffid", corrupt, encoder.encode("[{"));
  const destination = await open({ lock: true });
  const [lists] = await copyStore(source, destination);
  assert.equal(lists!.copied, 1);
  assert.deepEqual(lists!.failures.map((f) => [f.key, f.code]), [[corrupt, "EBADMSG"]]);
  assert.deepEqual(await destination.keys("v2metadata-by-diffid"), [
    `sha256/${fakeDigest(2).slice(7)}`,
  ]);
});

test("copyStore() into a store without update() merges through get and set", async () => {
  const source = await filled();
  const inner = await open();
  const plain: MetadataStore = {
    get: (namespace, key) => inner.get(namespace, key),
    set: (namespace, key, value) => inner.set(namespace, key, value),
    delete: (namespace, key) => inner.delete(namespace, key),
  };
  const other = { digest: fakeDigest(99), sourceRepository: "builder", hmac: "" };
  await new V2MetadataService(plain).add(fakeDigest(1), other);
  const [lists] = await copyStore(source, plain);
  assert.deepEqual([lists!.copied, lists!.merged], [1, 1]);
  assert.deepEqual(await new V2MetadataService(plain).getMetadata(fakeDigest(1)), [
    other,
    { digest: fakeDigest(11), sourceRepository: "r", hmac: "" },
  ]);
});

test("copyStore() from a store without keys() is ENOTSUP", async () => {
  const inner = await open();
  const unlisted: MetadataStore = {
    get: (namespace, key) => inner.get(namespace, key),
    set: (namespace, key, value) => inner.set(namespace, key, value),
    delete: (namespace, key) => inner.delete(namespace, key),
  };
  await assert.rejects(copyStore(unlisted, await open()), {
    name: "MetadataError",
    code: "ENOTSUP",
    message: "Cannot copy the store: the source cannot list its keys",
  });
});
