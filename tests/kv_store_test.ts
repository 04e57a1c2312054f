import { after, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { V2MetadataService } from "../mod.ts";
import { DenoKvMetadataStore } from "../src/kv_store.ts";
import { tempDir } from "./_adapters.ts";
import { fakeDigest, rejectsWithCode, testStoreConformance } from "./_conformance.ts";
import { MemoryKv } from "./_memory_kv.ts";
import { type ClosableKv, openKv } from "./_open_kv.ts";
import { runtimeName } from "./_runtime.ts";
import { startWriter, writerResult } from "./_writer_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One SQLite-backed Deno KV for the file (Deno.openKv on Deno, @deno/kv on Node and Bun);
 * every store gets its own prefix, so it starts empty.
 */
let sharedKv: Promise<ClosableKv> | undefined;
let stores = 0;
function denoKv(): Promise<ClosableKv> {
  return sharedKv ??= openKv(join(tempDir("dm-kv-"), "metadata.sqlite"));
}
after(async () => {
  if (sharedKv) (await sharedKv).close();
});
async function freshDenoStore(): Promise<DenoKvMetadataStore> {
  return DenoKvMetadataStore.open(await denoKv(), { prefix: ["test", ++stores] });
}

testStoreConformance("DenoKvMetadataStore on Deno KV (SQLite)", freshDenoStore, { update: true });
testStoreConformance(
  "DenoKvMetadataStore on an in-memory KV",
  () => DenoKvMetadataStore.open(new MemoryKv()),
  { update: true },
);

const backends: { name: string; open: () => Promise<DenoKvMetadataStore> }[] = [
  { name: "Deno KV (SQLite)", open: freshDenoStore },
  { name: "an in-memory KV", open: () => DenoKvMetadataStore.open(new MemoryKv()) },
];

for (const backend of backends) {
  const it = (name: string, fn: (store: DenoKvMetadataStore) => Promise<void>) =>
    test(`DenoKvMetadataStore on ${backend.name}: ${name}`, async () => fn(await backend.open()));

  it("set() keeps a value of exactly 64 KiB in one entry", async (store) => {
    const value = new Uint8Array(65_536).map((_, i) => i % 251);
    await store.set("ns", "key", value);
    assert.deepEqual(await store.get("ns", "key"), value);
    const head = await store.kv.get([...store.prefix, "ns", "key"]);
    assert.ok(head.value instanceof Uint8Array);
    assert.equal((await store.kv.get([...store.prefix, "ns", "key", 0])).versionstamp, null);
  });

  it("set() splits a value over 64 KiB and get() joins it", async (store) => {
    const value = new Uint8Array(65_536 * 3 + 17).map((_, i) => (i * 7) % 256);
    await store.set("ns", "big", value);
    assert.deepEqual(await store.get("ns", "big"), value);
    assert.deepEqual((await store.kv.get([...store.prefix, "ns", "big"])).value, {
      chunks: 4,
      size: value.length,
    });
  });

  it("set() of a smaller value deletes the chunks of a split one", async (store) => {
    await store.set("ns", "big", new Uint8Array(65_536 * 2 + 1).fill(1));
    await store.set("ns", "big", encoder.encode("small"));
    assert.equal(decoder.decode(await store.get("ns", "big")), "small");
    for (const i of [0, 1, 2]) {
      assert.equal((await store.kv.get([...store.prefix, "ns", "big", i])).versionstamp, null);
    }
  });

  it("delete() removes every chunk of a split value", async (store) => {
    await store.set("ns", "big", new Uint8Array(65_536 + 1).fill(2));
    await store.delete("ns", "big");
    await rejectsWithCode(store.get("ns", "big"), "ENOENT");
    for (const i of [0, 1]) {
      assert.equal((await store.kv.get([...store.prefix, "ns", "big", i])).versionstamp, null);
    }
  });

  it("set() of a value over 576 KiB is EFBIG and writes nothing", async (store) => {
    await store.set("ns", "key", encoder.encode("kept"));
    await assert.rejects(
      store.set("ns", "key", new Uint8Array(9 * 65_536 + 1)),
      {
        name: "MetadataError",
        code: "EFBIG",
        message: 'Cannot set "ns/key": the value is 589825 bytes, more than the 589824 a ' +
          "Deno KV store holds (9 entries of 64 KiB)",
      },
    );
    assert.equal(decoder.decode(await store.get("ns", "key")), "kept");
    await store.set("ns", "key", new Uint8Array(9 * 65_536));
    assert.equal((await store.get("ns", "key")).length, 9 * 65_536);
  });

  it("update() of a value over 576 KiB is EFBIG", async (store) => {
    await rejectsWithCode(
      store.update("ns", "key", () => new Uint8Array(10 * 65_536)),
      "EFBIG",
    );
    await rejectsWithCode(store.get("ns", "key"), "ENOENT");
  });

  it("get() of a missing key is ENOENT with the key in the message", async (store) => {
    await assert.rejects(store.get("v1id", "registry,abc"), {
      name: "MetadataError",
      code: "ENOENT",
      path: "v1id/registry,abc",
      message: 'Cannot get "v1id/registry,abc" at "v1id/registry,abc": no such file or directory',
    });
  });

  it("keys live at [...prefix, namespace, rest of the cleaned path]", async (store) => {
    await store.set("./v2metadata-by-diffid/", "/sha256//abc", encoder.encode("[]"));
    const entry = await store.kv.get([...store.prefix, "v2metadata-by-diffid", "sha256/abc"]);
    // @deno/kv hands out a Buffer: compare the bytes.
    assert.deepEqual(new Uint8Array(entry.value as Uint8Array), encoder.encode("[]"));
  });

  it("a key too long for Deno KV is ENAMETOOLONG", async (store) => {
    const key = Array.from({ length: 10 }, () => "k".repeat(250)).join("/");
    await rejectsWithCode(store.set("ns", key, encoder.encode("x")), "ENAMETOOLONG");
  });

  it("update() calls in flight on one key lose nothing", async (store) => {
    await Promise.all(
      Array.from(
        { length: 30 },
        (_, n) => store.update("ns", "log", (old) => new Uint8Array([...old ?? [], n])),
      ),
    );
    assert.deepEqual([...await store.get("ns", "log")].sort((a, b) => a - b), [
      ...Array.from({ length: 30 }, (_, n) => n),
    ]);
  });

  it("V2MetadataService.add() from 50 async callers keeps all 50 entries", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(7000);
    await Promise.all(Array.from({ length: 50 }, (_, n) =>
      service.add(diffID, {
        digest: fakeDigest(n),
        sourceRepository: `docker.io/library/r${n}`,
        hmac: "",
      })));
    const list = await service.getMetadata(diffID);
    assert.deepEqual(
      list.map((m) => m.digest).sort(),
      Array.from({ length: 50 }, (_, n) => fakeDigest(n)).sort(),
    );
    for (let n = 0; n < 50; n++) assert.equal(await service.getDiffID(fakeDigest(n)), diffID);
  });
}

test("DenoKvMetadataStore rides out 'database is locked' answers", async () => {
  const kv = new MemoryKv();
  const store = await DenoKvMetadataStore.open(kv);
  kv.lockedCalls = 5;
  await store.set("ns", "key", encoder.encode("v"));
  kv.lockedCalls = 5;
  assert.equal(decoder.decode(await store.get("ns", "key")), "v");
  kv.lockedCalls = 5;
  await store.delete("ns", "key");
  assert.equal(kv.lockedAnswers, 15);
});

test("DenoKvMetadataStore fails with EBUSY when the database stays locked", async () => {
  const kv = new MemoryKv();
  const store = await DenoKvMetadataStore.open(kv, { busyTimeoutMs: 0 });
  kv.lockedCalls = 1;
  await assert.rejects(store.get("ns", "key"), {
    name: "MetadataError",
    code: "EBUSY",
    message: 'Cannot get "ns/key" at "ns/key": the KV database stayed busy for 0 ms',
  });
});

test("DenoKvMetadataStore.get() of an entry it did not write is EBADMSG", async () => {
  const kv = new MemoryKv();
  const store = await DenoKvMetadataStore.open(kv, { prefix: ["p"] });
  await kv.atomic().set(["p", "ns", "key"], "a string").commit();
  await rejectsWithCode(store.get("ns", "key"), "EBADMSG");
});

/** A _kv_writer.ts process of this runtime (Deno KV is unstable on Deno). */
function startKvWriter(args: string[], onAck?: (n: number) => void) {
  return startWriter("./_kv_writer.ts", args, {
    denoFlags: ["--unstable-kv"],
    ...onAck && { onAck },
  });
}

/** Runs a writer to its end; its report. */
async function runWriter(args: string[]): Promise<{ locked: number; acked: number[] }> {
  const { acked, report } = await writerResult(startKvWriter(args));
  return { ...JSON.parse(report), acked };
}

test(`DenoKvMetadataStore: two ${runtimeName} processes adding to one DiffID lose nothing`, async () => {
  const path = join(tempDir("dm-kv-procs-"), "shared.sqlite");
  const diffID = fakeDigest(9000);
  const results = await Promise.all([
    runWriter([path, diffID, "0", "25"]),
    runWriter([path, diffID, "100", "25"]),
  ]);
  console.log(
    `"database is locked" answers ridden out by the writers: ${
      results.map((r) => r.locked).join(", ")
    }`,
  );

  const kv = await openKv(path);
  try {
    const service = new V2MetadataService(await DenoKvMetadataStore.open(kv));
    const expected = [
      ...Array.from({ length: 25 }, (_, i) => fakeDigest(i)),
      ...Array.from({ length: 25 }, (_, i) => fakeDigest(100 + i)),
    ];
    const list = await service.getMetadata(diffID);
    assert.deepEqual(list.map((m) => m.digest).sort(), expected.sort());
    for (const digest of expected) assert.equal(await service.getDiffID(digest), diffID);
  } finally {
    kv.close();
  }
});

test(`DenoKvMetadataStore: a ${runtimeName} writer killed mid-run (SIGKILL) loses none of its acknowledged adds`, async () => {
  const path = join(tempDir("dm-kv-kill-"), "shared.sqlite");
  const diffID = fakeDigest(9100);
  // The victim adds each entry to a DiffID of its own; the survivor adds to one DiffID.
  const victim = startKvWriter([path, "disjoint", "0", "500"], () => {
    if (victim.acked.length === 40) victim.child.kill("SIGKILL");
  });
  const survivor = runWriter([path, diffID, "2000", "25"]);
  assert.deepEqual(await victim.done, { code: null, signal: "SIGKILL" });
  const { acked } = await survivor;
  assert.equal(acked.length, 25);
  assert.ok(victim.acked.length >= 40 && victim.acked.length < 500, `${victim.acked.length}`);

  const kv = await openKv(path);
  try {
    const service = new V2MetadataService(await DenoKvMetadataStore.open(kv));
    for (const n of victim.acked) {
      const own = fakeDigest(1_000_000 + n);
      assert.deepEqual((await service.getMetadata(own)).map((m) => m.digest), [fakeDigest(n)]);
      assert.equal(await service.getDiffID(fakeDigest(n)), own);
    }
    assert.deepEqual(
      (await service.getMetadata(diffID)).map((m) => m.digest).sort(),
      acked.map((n) => fakeDigest(n)).sort(),
    );
  } finally {
    kv.close();
  }
});
