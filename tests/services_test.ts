import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type FileSystem,
  FSMetadataStore,
  MemoryFileSystem,
  V1IDService,
  V2MetadataService,
} from "../mod.ts";
import { rejectsWithCode } from "./_conformance.ts";

const id = "a".repeat(64);
const entry = { digest: "sha256:1", sourceRepository: "r", hmac: "" };

test("V2MetadataService without a store: lookups fail, add and remove do nothing", async () => {
  const service = new V2MetadataService(null);
  await assert.rejects(service.getMetadata("sha256:1"), { message: "no metadata storage" });
  await assert.rejects(service.getDiffID("sha256:1"), { message: "no metadata storage" });
  await service.add("sha256:1", entry);
  await service.tagAndAdd("sha256:1", new Uint8Array([1]), entry);
  await service.remove(entry);
});

test("V1IDService without a store: get fails, set does nothing even for a bad ID", async () => {
  const service = new V1IDService(null);
  await assert.rejects(service.get(id, "r"), { message: "no v1IDService storage" });
  await service.set("not-an-id", "r", "sha256:1");
});

test("V1IDService validates the v1 ID on get and set", async () => {
  const service = new V1IDService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
  for (const bad of [id.toUpperCase(), id.slice(1), id + "a", id + "\n", "g".repeat(64), ""]) {
    await rejectsWithCode(service.set(bad, "r", "d"), "EINVAL");
    await assert.rejects(service.get(bad, "r"), {
      message: `image ID ${JSON.stringify(bad)} is invalid`,
    });
  }
});

test("V1IDService stores an empty registry under v1id/,<id>", async () => {
  const fs = new MemoryFileSystem();
  const service = new V1IDService(await FSMetadataStore.open("/s", { fs }));
  await service.set(id, "", "sha256:d");
  assert.deepEqual(fs.readDir("/s/v1id"), [`,${id}`]);
});

test("V2MetadataService.add() skips writes when nothing changes", async () => {
  const fs = new MemoryFileSystem();
  let writes = 0;
  const counting: FileSystem = {
    readFile: (path) => fs.readFile(path),
    writeFileAtomic(path, tempPath, data, mode) {
      writes++;
      return fs.writeFileAtomic(path, tempPath, data, mode);
    },
    mkdir: (path, mode) => fs.mkdir(path, mode),
    remove: (path) => fs.remove(path),
    stat: (path) => fs.stat(path),
    readDir: (path) => fs.readDir(path),
  };
  const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs: counting }));
  await service.add("sha256:d", entry);
  assert.equal(writes, 2);
  await service.add("sha256:d", entry);
  assert.equal(writes, 2);
  await service.add("sha256:d", { ...entry, sourceRepository: "other" });
  assert.equal(writes, 4);
});

test("V2MetadataService.add() splits keys at the first ':'", async () => {
  const fs = new MemoryFileSystem();
  const service = new V2MetadataService(await FSMetadataStore.open("/s", { fs }));
  await service.add("sha256:a:b", { ...entry, digest: "sha512:c:d" });
  assert.deepEqual(fs.readDir("/s/v2metadata-by-diffid/sha256"), ["a:b"]);
  assert.deepEqual(fs.readDir("/s/diffid-by-digest/sha512"), ["c:d"]);
});
