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

test("copyStore() refuses digests with nothing after ':' and leaves the destination usable", async () => {
  // A store Go wrote for `add("sha256:", …)`: the lists' and mappings' `sha256` are files.
  const source = await filled();
  const list = (digest: string) =>
    encoder.encode(JSON.stringify([{ Digest: digest, SourceRepository: "r", HMAC: "" }]));
  const badEntry = `sha256/${fakeDigest(3).slice(7)}`;
  const badValue = `sha256/${fakeDigest(4).slice(7)}`;
  await source.set("v2metadata-by-diffid", badEntry, list("sha256:"));
  await source.set("diffid-by-digest", badValue, encoder.encode("sha256:"));
  const bricked = await open();
  await bricked.set("v2metadata-by-diffid", "sha256", list(fakeDigest(5)));
  // The bricked file sits where the sha256 directory of the source is.
  const combined: MetadataStore = {
    get: (namespace, key) => (key === "sha256" ? bricked : source).get(namespace, key),
    set: () => Promise.reject(new Error("the source is not written")),
    delete: () => Promise.reject(new Error("the source is not written")),
    async keys(namespace) {
      return [...await source.keys(namespace), ...await bricked.keys(namespace)].sort();
    },
  };
  const destination = await open();
  const [lists, mappings] = await copyStore(combined, destination);
  assert.deepEqual(lists!.failures.map((f) => [f.key, f.code]), [
    ["sha256", "EINVAL"],
    [badEntry, "EINVAL"],
  ]);
  assert.deepEqual(mappings!.failures.map((f) => [f.key, f.code]), [[badValue, "EINVAL"]]);
  assert.equal(lists!.copied, 2);
  assert.deepEqual(
    await destination.keys("v2metadata-by-diffid"),
    (await source.keys("v2metadata-by-diffid")).filter((key) => key !== badEntry),
  );
  // Still a store sha256 keys fit in.
  const service = new V2MetadataService(destination);
  const entry = { digest: fakeDigest(7), sourceRepository: "r", hmac: "" };
  await service.add(fakeDigest(6), entry);
  assert.deepEqual(await service.getMetadata(fakeDigest(6)), [entry]);
});
