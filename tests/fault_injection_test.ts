// Failures injected at every step of set, add and remove: a failed set leaves the old value
// and no temp file; a failed add or remove leaves the list old or new (never torn) and
// writes a digest mapping only after its list.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import {
  FSMetadataStore,
  MemoryFileSystem,
  MetadataError,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { tempDir } from "./_adapters.ts";
import { FaultyFileSystem } from "./_faulty_fs.ts";
import { modelAdd, modelRemove } from "./_model.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DIFF_ID = "sha256:" + "d".repeat(64);

/** The two faulty filesystems: step by step on the real disk, and over memory. */
const backends = [
  { name: "disk", make: () => ({ fs: new FaultyFileSystem("disk"), root: join(tempDir(), "s") }) },
  {
    name: "memory",
    make: () => ({ fs: new FaultyFileSystem(new MemoryFileSystem()), root: "/store" }),
  },
];

function tempFiles(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((path) => path.split("/").at(-1)!.startsWith(".tmp-"));
}

function entry(n: number): V2Metadata {
  return {
    digest: "sha256:" + n.toString(16).padStart(64, "0"),
    sourceRepository: "docker.io/library/busybox",
    hmac: "",
  };
}

async function optional<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof MetadataError && error.code === "ENOENT") return null;
    throw error;
  }
}

/** Asserts that a failure surfaced as a MetadataError carrying the injected code. */
function assertInjected(error: unknown, code: string): void {
  assert.ok(error instanceof MetadataError, `expected a MetadataError, got ${error}`);
  assert.equal(error.code, code, error.message);
}

test("FSMetadataStore.set() failing at each step on disk leaves the old value and no temp file", async () => {
  for (const code of ["EIO", "ENOSPC"]) {
    for (let at = 1;; at++) {
      const { fs, root } = backends[0]!.make();
      const store = await FSMetadataStore.open(root, { fs });
      await store.set("ns", "sha256/key", encoder.encode("old value"));
      fs.arm({ at, code });
      const error = await store.set("ns", "sha256/key", encoder.encode("new value".repeat(99)))
        .then(() => null, (error: unknown) => error);
      fs.arm({});
      if (error === null) {
        // Past the last step: the write went through.
        assert.ok(at > 5, `only ${at - 1} steps`);
        break;
      }
      assertInjected(error, code);
      assert.equal(decoder.decode(await store.get("ns", "sha256/key")), "old value");
      assert.deepEqual(tempFiles(root), [], `temp file left after a fault at step ${at}`);
    }
  }
});

for (const backend of backends) {
  test(`FSMetadataStore.set() with every 3rd call failing on ${backend.name} keeps each key old or new`, async () => {
    const { fs, root } = backend.make();
    const store = await FSMetadataStore.open(root, { fs });
    const values = new Map<string, string>();
    let failed = 0;
    fs.arm({ every: 3, code: "ENOSPC" });
    for (let i = 0; i < 300; i++) {
      const key = `sha256/k${i % 7}`;
      const value = `value ${i} `.repeat(i % 50);
      try {
        await store.set("ns", key, encoder.encode(value));
        values.set(key, value);
      } catch (error) {
        assertInjected(error, "ENOSPC");
        failed++;
      }
    }
    fs.arm({});
    assert.ok(failed > 50, `${failed} failures`);
    for (const [key, value] of values) {
      assert.equal(decoder.decode(await store.get("ns", key)), value);
    }
    if (backend.name === "disk") assert.deepEqual(tempFiles(root), []);
  });

  test(`V2MetadataService.add() failing at each call on ${backend.name} leaves list and mapping consistent`, async () => {
    for (let at = 1;; at++) {
      const { fs, root } = backend.make();
      const service = new V2MetadataService(await FSMetadataStore.open(root, { fs }));
      for (let n = 0; n < 3; n++) await service.add(DIFF_ID, entry(n));
      const before = await service.getMetadata(DIFF_ID);
      fs.arm({ at });
      const error = await service.add(DIFF_ID, entry(9)).then(() => null, (e: unknown) => e);
      fs.arm({});
      const list = await service.getMetadata(DIFF_ID);
      const mapping = await optional(service.getDiffID(entry(9).digest));
      if (error === null) {
        assert.deepEqual(list, modelAdd(before, entry(9)));
        assert.equal(mapping, DIFF_ID);
        break;
      }
      assertInjected(error, "EIO");
      if (mapping !== null) {
        assert.deepEqual(list, modelAdd(before, entry(9)), "mapping before list");
      } else {assert.ok([before, modelAdd(before, entry(9))].some((l) =>
          JSON.stringify(l) === JSON.stringify(list)
        ));}
      if (backend.name === "disk") assert.deepEqual(tempFiles(root), []);
      // A retry repairs everything.
      await service.add(DIFF_ID, entry(9));
      assert.deepEqual(await service.getMetadata(DIFF_ID), modelAdd(before, entry(9)));
      assert.equal(await service.getDiffID(entry(9).digest), DIFF_ID);
    }
  });

  test(`V2MetadataService add/remove with every Nth call failing on ${backend.name}: each list is old or new`, async () => {
    const { fs, root } = backend.make();
    const service = new V2MetadataService(await FSMetadataStore.open(root, { fs }));
    const diffIDs = ["sha256:" + "1".repeat(64), "sha256:" + "2".repeat(64)];
    let seed = 7;
    const next = (n: number) => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) % n;
    let failures = 0;
    for (const every of [2, 3, 5, 7]) {
      for (let i = 0; i < 150; i++) {
        const d = diffIDs[next(2)]!;
        const e = entry(next(60) + (d === diffIDs[0] ? 0 : 1000));
        // Read the state without faults, then run the call with them.
        const before = await optional(service.getMetadata(d)) ?? [];
        fs.arm({ every });
        const remove = next(3) === 0;
        const error = await (remove ? service.remove(e) : service.add(d, e))
          .then(() => null, (error: unknown) => error);
        fs.arm({});
        const after = await optional(service.getMetadata(d));
        const applied = remove ? modelRemove(before, e) : modelAdd(before, e);
        const outcomes = [JSON.stringify(applied)];
        if (error !== null) {
          failures++;
          if (!(error instanceof MetadataError && error.code === "ENOENT")) {
            assertInjected(error, "EIO");
          }
          outcomes.push(JSON.stringify(before.length > 0 ? before : null));
        }
        assert.ok(outcomes.includes(JSON.stringify(after)), `list after call ${i}, every ${every}`);
        const mapping = await optional(service.getDiffID(e.digest));
        if (!remove && mapping === d) {
          assert.ok(after?.some((m) => m.digest === e.digest), "a mapping only follows its list");
        }
      }
    }
    assert.ok(failures > 100, `${failures} failures`);
    if (backend.name === "disk") assert.deepEqual(tempFiles(root), []);
  });
}

test("fault injection: faults injected", () => {
  console.log(`fault_injection_test: ${FaultyFileSystem.totalFaults} faults injected`);
  assert.ok(FaultyFileSystem.totalFaults > 300);
});
