// Concurrent add/tagAndAdd/remove inside one process, on every FileSystem adapter, checked
// against the sequential model; four processes writing disjoint DiffIDs into one root; and
// processes sharing one DiffID, without and with the lock files of `lock: true`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type FileSystem,
  FSMetadataStore,
  MetadataError,
  type MetadataStore,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { decodeV2MetadataList } from "../src/_go_json.ts";
import { adapters, tempDir } from "./_adapters.ts";
import { rejectsWithCode } from "./_conformance.ts";
import {
  DIFFIDS_PER_WRITER,
  SHARED_DIFF_ID,
  writerDiffID,
  writerEntry,
} from "./_concurrent_plan.ts";
import { MAX_ENTRIES, modelAdd, modelRemove, ServiceModel } from "./_model.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

const CALLS = 200;
const BY_DIFFID = "v2metadata-by-diffid";

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
}

function diffIDOf(d: number): string {
  return "sha256:" + d.toString(16).padStart(64, "d");
}

/** Entry `n` of DiffID `d`: digests never shared between DiffIDs. */
function entryOf(d: number, n: number, hmac = ""): V2Metadata {
  return {
    digest: "sha256:" + (d * 1000 + n).toString(16).padStart(64, "0"),
    sourceRepository: `docker.io/library/image-${n % 3}`,
    hmac,
  };
}

/** Delegates to `inner` and records every write of a list file, in order, per key. */
class RecordingStore implements MetadataStore {
  readonly writes = new Map<string, (V2Metadata[] | null)[]>();
  constructor(readonly inner: MetadataStore) {}
  get(namespace: string, key: string): Promise<Uint8Array> {
    return this.inner.get(namespace, key);
  }
  set(namespace: string, key: string, value: Uint8Array): Promise<void> {
    if (namespace === BY_DIFFID) this.#record(key, decodeV2MetadataList(value));
    return this.inner.set(namespace, key, value);
  }
  delete(namespace: string, key: string): Promise<void> {
    if (namespace === BY_DIFFID) this.#record(key, null);
    return this.inner.delete(namespace, key);
  }
  #record(key: string, list: V2Metadata[] | null): void {
    if (!this.writes.has(key)) this.writes.set(key, []);
    this.writes.get(key)!.push(list);
  }
}

for (const adapter of adapters) {
  const open = () => {
    const { fs, root } = adapter.fresh();
    return FSMetadataStore.open(root, { fs });
  };

  test(`V2MetadataService.add() x${CALLS} at once on ${adapter.name} equals the sequential model (limit, dedup)`, async () => {
    const service = new V2MetadataService(await open());
    const model = new ServiceModel();
    const next = random(1);
    const calls: Promise<void>[] = [];
    for (let call = 0; call < CALLS; call++) {
      // 4 DiffIDs, 70 possible entries each: repeats move to the end, the 51st drops the oldest.
      const d = Math.floor(next() * 4);
      const entry = entryOf(d, Math.floor(next() * 70));
      model.add(diffIDOf(d), entry);
      // add() takes its per-DiffID turn synchronously, so call order is the model's order.
      calls.push(service.add(diffIDOf(d), entry));
    }
    await Promise.all(calls);
    for (const [diffID, list] of model.lists) {
      assert.deepEqual(await service.getMetadata(diffID), list);
      assert.ok(list.length <= MAX_ENTRIES);
    }
    for (const [digest, diffID] of model.diffIDs) {
      assert.equal(await service.getDiffID(digest), diffID);
    }
  });

  test(`V2MetadataService add/tagAndAdd/remove x${CALLS} at once on ${adapter.name}: every write is one op on the previous state`, async () => {
    const store = new RecordingStore(await open());
    const service = new V2MetadataService(store);
    const keys = [
      await computeV2MetadataHMACKey({ username: "a", password: "1" }),
      await computeV2MetadataHMACKey({ username: "b", password: "2" }),
      null,
    ];
    // 45 entries per DiffID up front, so the concurrent adds cross the 50-entry limit.
    const initial = new Map<number, V2Metadata[]>();
    for (let d = 0; d < 4; d++) {
      for (let n = 0; n < 45; n++) await service.add(diffIDOf(d), entryOf(d, n));
      initial.set(d, await service.getMetadata(diffIDOf(d)));
    }
    store.writes.clear();

    type Op = { kind: "add" | "remove"; entry: V2Metadata };
    const ops = new Map<number, Op[]>([[0, []], [1, []], [2, []], [3, []]]);
    const next = random(2);
    const calls: Promise<void>[] = [];
    for (let call = 0; call < CALLS; call++) {
      const d = Math.floor(next() * 4);
      const choice = next();
      if (choice < 0.3) {
        const entry = entryOf(d, Math.floor(next() * 70));
        ops.get(d)!.push({ kind: "add", entry });
        calls.push(service.add(diffIDOf(d), entry));
      } else if (choice < 0.65) {
        const key = keys[Math.floor(next() * keys.length)]!;
        const entry = entryOf(d, Math.floor(next() * 70));
        // tagAndAdd records the entry with the credentials' HMAC.
        ops.get(d)!.push({
          kind: "add",
          entry: { ...entry, hmac: await computeV2MetadataHMAC(key, entry) },
        });
        calls.push(service.tagAndAdd(diffIDOf(d), key, entry));
      } else {
        // Only entries added up front: their digest mapping exists before the race.
        const entry = entryOf(d, Math.floor(next() * 45));
        ops.get(d)!.push({ kind: "remove", entry });
        calls.push(service.remove(entry));
      }
    }
    await Promise.all(calls);

    const apply = (op: Op, list: V2Metadata[] | null) =>
      op.kind === "add" ? modelAdd(list ?? [], op.entry) : modelRemove(list ?? [], op.entry);
    for (const [d, pending] of ops) {
      let state: V2Metadata[] | null = initial.get(d)!;
      const history: (V2Metadata[] | null)[] = [state];
      const writes = store.writes.get(diffIDOf(d).replace(":", "/")) ?? [];
      for (const [n, written] of writes.entries()) {
        const index = pending.findIndex((op) => {
          try {
            return JSON.stringify(apply(op, state)) === JSON.stringify(written);
          } catch {
            return false;
          }
        });
        assert.ok(index >= 0, `write ${n} of DiffID ${d} is no single call's effect: lost update`);
        pending.splice(index, 1);
        history.push(state = written);
      }
      // Calls that wrote nothing changed nothing at some point of the history.
      for (const op of pending) {
        assert.ok(
          history.some((s) => JSON.stringify(apply(op, s)) === JSON.stringify(s)),
          `${op.kind} ${op.entry.digest} neither wrote nor was a no-op`,
        );
      }
      assert.deepEqual(await service.getMetadata(diffIDOf(d)), state);
      assert.ok(state!.length <= MAX_ENTRIES);
    }
  });
}

const writerScript = fileURLToPath(new URL("./_concurrent_writer.ts", import.meta.url));

function runWriter(root: string, writer: number, count: number, mode = "own"): Promise<void> {
  const [command, args] = runtimeCommand(writerScript, [
    root,
    String(writer),
    String(count),
    mode,
  ]);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => out += chunk);
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => err += chunk);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 && out.trim() === "done") resolve();
      else reject(new Error(`Writer ${writer} failed (${code}): ${err}`));
    });
  });
}

test(
  `FSMetadataStore: 4 ${runtimeName} processes adding disjoint DiffIDs to one root lose nothing`,
  {
    timeout: 120_000,
  },
  async () => {
    const root = join(tempDir("dm-procs-"), "store");
    const WRITERS = 4;
    const COUNT = 120; // 40 entries per DiffID: under the limit, so every one must stay
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => runWriter(root, w, COUNT)));
    const service = new V2MetadataService(await FSMetadataStore.open(root));
    let entries = 0;
    for (let w = 0; w < WRITERS; w++) {
      for (let d = 0; d < DIFFIDS_PER_WRITER; d++) {
        const expected = Array.from({ length: COUNT }, (_, n) => n)
          .filter((n) => n % DIFFIDS_PER_WRITER === d)
          .map((n) => writerEntry(w, n));
        assert.deepEqual(await service.getMetadata(writerDiffID(w, d)), expected);
        for (const entry of expected) {
          assert.equal(await service.getDiffID(entry.digest), writerDiffID(w, d));
        }
        entries += expected.length;
      }
    }
    assert.equal(entries, WRITERS * COUNT);
    assert.deepEqual(await (await FSMetadataStore.open(root)).recover({ olderThanMs: 0 }), []);
  },
);

test(
  `FSMetadataStore: 2 ${runtimeName} processes adding to one DiffID keep the list valid and every mapping (entries may be lost, as in Go)`,
  {
    timeout: 120_000,
  },
  async () => {
    // Not serialised across processes: each list write is atomic (old or new, never torn),
    // but one process may overwrite a list the other has just extended.
    const root = join(tempDir("dm-shared-"), "store");
    const COUNT = 24;
    await Promise.all([0, 1].map((w) => runWriter(root, w, COUNT, "shared")));
    const store = await FSMetadataStore.open(root);
    const service = new V2MetadataService(store);
    const list = await service.getMetadata(SHARED_DIFF_ID);
    const written = [0, 1].flatMap((w) =>
      Array.from({ length: COUNT }, (_, n) => writerEntry(w, n))
    );
    assert.ok(list.length > 0 && list.length <= COUNT * 2);
    for (const entry of list) assert.ok(written.some((w) => w.digest === entry.digest));
    for (const entry of written) {
      assert.equal(await service.getDiffID(entry.digest), SHARED_DIFF_ID);
    }
    assert.deepEqual(await store.recover({ olderThanMs: 0 }), []);
    console.log(`shared DiffID: ${list.length} of ${written.length} entries kept`);
  },
);

test(
  `FSMetadataStore with lock: 4 ${runtimeName} processes adding to one DiffID keep every entry`,
  {
    timeout: 120_000,
  },
  async () => {
    const root = join(tempDir("dm-locked-"), "store");
    const WRITERS = 4;
    const COUNT = 12; // 48 entries in all: under the limit of 50, so every one must stay
    await Promise.all(
      Array.from({ length: WRITERS }, (_, w) => runWriter(root, w, COUNT, "locked")),
    );
    const store = await FSMetadataStore.open(root);
    const service = new V2MetadataService(store);
    const list = await service.getMetadata(SHARED_DIFF_ID);
    const written = Array.from(
      { length: WRITERS },
      (_, w) => Array.from({ length: COUNT }, (_, n) => writerEntry(w, n)),
    ).flat();
    console.log(`shared DiffID with lock: ${list.length} of ${written.length} entries kept`);
    const byDigest = (a: V2Metadata, b: V2Metadata) => a.digest < b.digest ? -1 : 1;
    assert.equal(list.length, WRITERS * COUNT);
    assert.deepEqual(list.toSorted(byDigest), written.toSorted(byDigest));
    for (const w of [0, 1, 2, 3]) {
      // Each writer's own entries keep the order of its (serialised) calls.
      assert.deepEqual(
        list.filter((entry) => entry.sourceRepository === writerEntry(w, 0).sourceRepository),
        Array.from({ length: COUNT }, (_, n) => writerEntry(w, n)),
      );
    }
    for (const entry of written) {
      assert.equal(await service.getDiffID(entry.digest), SHARED_DIFF_ID);
    }
    assert.deepEqual(await store.recover({ olderThanMs: 0 }), [], "no lock or temp file left");
  },
);

const LIST_KEY = SHARED_DIFF_ID.replace(":", "/");
const entryA = writerEntry(0, 0);
const entryB = writerEntry(0, 1);

/** `fs` with every call made after a random pause of up to 5 ms. */
function withRandomDelays(fs: FileSystem): FileSystem {
  return new Proxy(fs, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        return value.apply(target, args);
      };
    },
  });
}

/** An empty file at `path` last modified `ageMs` ago, as a killed process leaves its lock. */
function writeAged(path: string, ageMs: number): void {
  writeFileSync(path, "");
  const then = new Date(Date.now() - ageMs);
  utimesSync(path, then, then);
}

for (const adapter of adapters) {
  /** A store with lock: true holding `entryA`, and the path of its list's lock file. */
  const openLocked = async (options: { lockStaleMs?: number; lockTimeoutMs?: number } = {}) => {
    const { fs, root } = adapter.fresh();
    const store = await FSMetadataStore.open(root, { fs, lock: true, ...options });
    const service = new V2MetadataService(store);
    await service.add(SHARED_DIFF_ID, entryA);
    const [alg, hex] = LIST_KEY.split("/");
    return { store, service, lockPath: `${root}/${BY_DIFFID}/${alg}/.tmp-${hex}.lock` };
  };

  test(`FSMetadataStore with lock on ${adapter.name}: a lock held past lockTimeoutMs is EBUSY and changes nothing`, async () => {
    const { store, service, lockPath } = await openLocked({ lockTimeoutMs: 100 });
    await store.fs.createExclusive!(lockPath, 0o600);
    const started = Date.now();
    await rejectsWithCode(service.add(SHARED_DIFF_ID, entryB), "EBUSY");
    assert.ok(Date.now() - started >= 100);
    await assert.rejects(service.add(SHARED_DIFF_ID, entryB), (error: Error) => {
      assert.ok(error.message.includes(lockPath), error.message);
      return true;
    });
    assert.deepEqual(await service.getMetadata(SHARED_DIFF_ID), [entryA]);
    assert.equal((await store.fs.stat(lockPath))?.kind, "file", "another's lock stays");
    await store.fs.remove(lockPath);
    await service.add(SHARED_DIFF_ID, entryB);
    assert.deepEqual(await service.getMetadata(SHARED_DIFF_ID), [entryA, entryB]);
    assert.equal(await store.fs.stat(lockPath), null);
  });

  test(`FSMetadataStore with lock on ${adapter.name}: fn throwing or a failed write releases the lock`, async () => {
    const { store, service, lockPath } = await openLocked();
    await rejectsWithCode(
      store.update!(BY_DIFFID, LIST_KEY, () => {
        throw new MetadataError("EINVAL", "aborted");
      }),
      "EINVAL",
    );
    assert.equal(await store.fs.stat(lockPath), null);
    await store.set("ns", "dir/inner", new Uint8Array([1]));
    await rejectsWithCode(store.update!("ns", "dir", () => new Uint8Array([2])), "EEXIST");
    assert.deepEqual(await store.fs.readDir(`${store.root}/ns`), ["dir"]);
    assert.deepEqual(await service.getMetadata(SHARED_DIFF_ID), [entryA]);
  });

  if (!adapter.real) continue;

  test(`FSMetadataStore with lock on ${adapter.name}: a stale lock (killed holder) is broken`, async () => {
    const { service, lockPath } = await openLocked({ lockTimeoutMs: 5_000 });
    // The lock, and the file of a waiter killed while it was breaking the lock, both past
    // the default lockStaleMs of 10 s.
    writeAged(lockPath, 11_000);
    writeAged(`${lockPath}.break`, 11_000);
    await service.add(SHARED_DIFF_ID, entryB);
    assert.deepEqual(await service.getMetadata(SHARED_DIFF_ID), [entryA, entryB]);
    assert.ok(!existsSync(lockPath));
    assert.ok(!existsSync(`${lockPath}.break`));
  });

  test(`FSMetadataStore with lock on ${adapter.name}: waiters that find one stale lock break it one at a time`, async () => {
    // Six stores on one root stand for six processes: each queues only its own calls. Every
    // filesystem call waits a random moment first, so each trial interleaves differently.
    const { fs, root } = adapter.fresh();
    const shuffled = withRandomDelays(fs);
    const stores = await Promise.all(
      Array.from({ length: 6 }, () => FSMetadataStore.open(root, { fs: shuffled, lock: true })),
    );
    for (let trial = 0; trial < 15; trial++) {
      const key = `key${trial}`;
      const lockPath = `${stores[0]!.root}/ns/.tmp-${key}.lock`;
      await stores[0]!.set("ns", key, new Uint8Array());
      writeAged(lockPath, 11_000);
      await Promise.all(
        stores.map((store, i) =>
          store.update!("ns", key, (value) => new Uint8Array([...value ?? [], i]))
        ),
      );
      const appended = [...await stores[0]!.get("ns", key)].sort();
      assert.deepEqual(appended, [0, 1, 2, 3, 4, 5], `trial ${trial}: every append kept`);
      const keys = Array.from({ length: trial + 1 }, (_, i) => `key${i}`);
      assert.deepEqual(
        (await fs.readDir(`${stores[0]!.root}/ns`)).sort(),
        keys.sort(),
        "no lock left",
      );
    }
  });

  test(`FSMetadataStore on ${adapter.name}: recover() removes stale lock files, not fresh ones`, async () => {
    const { store, lockPath } = await openLocked();
    const breakPath = `${lockPath}.break`;
    writeAged(lockPath, 0);
    writeAged(breakPath, 0);
    assert.deepEqual(await store.recover(), []);
    writeAged(lockPath, 120_000);
    writeAged(breakPath, 120_000);
    assert.deepEqual((await store.recover()).sort(), [lockPath, breakPath].sort());
    assert.ok(!existsSync(lockPath));
    assert.ok(!existsSync(breakPath));
  });
}
