// Crash safety on the real disk: a child process of this same runtime writes values and
// V2MetadataService entries in a loop and is killed with SIGKILL at random moments. After
// every kill each key must hold exactly its last acknowledged value or the one in flight,
// the list must parse and keep every acknowledged entry, recover() must remove exactly the
// temp files and nothing else, and the store must open again.
// CRASH_KILLS sets the number of kills (default 200).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { FSMetadataStore, MetadataError, V2MetadataService } from "../mod.ts";
import { adapters, tempDir } from "./_adapters.ts";
import { DIFF_ID, entryOf, LIST_SLOT, NAMESPACE, slotKey, SLOTS, valueOf } from "./_crash_plan.ts";
import { rejectsWithCode } from "./_conformance.ts";
import { runtimeCommand, runtimeName } from "./_runtime.ts";

const KILLS = Number(process.env.CRASH_KILLS ?? 200);
const LANES = 2;
const MAX_ENTRIES = 50;
const writer = fileURLToPath(new URL("./_crash_writer.ts", import.meta.url));

interface Totals {
  kills: number;
  acknowledged: number;
  tempFilesRecovered: number;
  tornOrLost: number;
  unacknowledgedSeen: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Starts a writer at operation `start`, kills it at a random moment, returns its acks. */
function runAndKill(root: string, start: number): Promise<number[]> {
  const [command, args] = runtimeCommand(writer, [root, String(start)]);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let killed = false;
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  const kill = () => {
    if (!killed) {
      killed = true;
      child.kill("SIGKILL");
    }
  };
  // The kill lands a random 0–30 ms after the first write was acknowledged (or, one time
  // in ten, while the child is still starting and opening the store).
  const delay = Math.random() * 30;
  const early = Math.random() < 0.1;
  if (early) setTimeout(kill, Math.random() * 100);
  let armed = early;
  child.stdout.on("data", (chunk: string) => {
    out += chunk;
    if (!armed) {
      armed = true;
      setTimeout(kill, delay);
    }
  });
  child.stderr.on("data", (chunk: string) => err += chunk);
  const guard = setTimeout(kill, 20_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      if (!killed || signal !== "SIGKILL") {
        reject(new Error(`The writer exited by itself (${code} ${signal}): ${err}`));
        return;
      }
      const acks = out.split("\n").filter((line) => line !== "").map(Number);
      acks.forEach((ack, n) => assert.equal(ack, start + n, "acks are consecutive"));
      resolve(acks);
    });
  });
}

/** All `.tmp-*` files under `dir`, as absolute paths, sorted. */
function tempFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((path) => path.split("/").at(-1)!.startsWith(".tmp-"))
    .map((path) => join(dir, path))
    .sort();
}

/** One store root, killed `kills` times; checks everything after each kill. */
async function lane(kills: number, totals: Totals): Promise<void> {
  const root = join(tempDir("dm-crash-"), "store");
  // What each plain slot holds (operation number, -1 = never written) and the list model.
  const observed = new Map<number, number>();
  for (let slot = 0; slot < SLOTS; slot++) observed.set(slot, -1);
  let list: number[] = [];
  const mayLackMapping = new Set<number>();
  let next = 0;
  for (let round = 0; round < kills; round++) {
    const acks = await runAndKill(root, next);
    totals.kills++;
    totals.acknowledged += acks.length;
    const lastAck = acks.at(-1) ?? next - 1;
    const inFlight = lastAck + 1;

    const store = await FSMetadataStore.open(root); // re-opening works after every kill
    // After a kill: acks and the op in flight count; re-checking after recover(), none do.
    const check = async (acks: number[], inFlight: number, roundStart: number) => {
      const lastAck = acks.at(-1) ?? roundStart - 1;
      for (let slot = 0; slot < SLOTS; slot++) {
        if (slot === LIST_SLOT) continue;
        // The newest acknowledged operation on this slot, else what it held before.
        let old = lastAck - ((lastAck - slot) % SLOTS + SLOTS) % SLOTS;
        if (acks.length === 0 || old < roundStart) old = observed.get(slot)!;
        const candidates = inFlight % SLOTS === slot ? [old, inFlight] : [old];
        let actual: Uint8Array | null;
        try {
          actual = await store.get(NAMESPACE, slotKey(slot));
        } catch (error) {
          if (!(error instanceof MetadataError) || error.code !== "ENOENT") throw error;
          actual = null;
        }
        const match = candidates.find((n) =>
          n < 0 ? actual === null : actual !== null && sameBytes(actual, valueOf(n))
        );
        if (match === undefined) {
          totals.tornOrLost++;
          assert.fail(
            `Slot ${slot} after kill ${round}: expected operation ${candidates.join(" or ")}, ` +
              `got ${actual === null ? "nothing" : `${actual.length} other bytes`}`,
          );
        }
        if (match === inFlight) totals.unacknowledgedSeen++;
        observed.set(slot, match);
      }
      // The list: every acknowledged add is there (newest 50), the one in flight may be.
      const service = new V2MetadataService(store);
      const acknowledgedAdds = acks.filter((i) => i % SLOTS === LIST_SLOT);
      const expected = [...list, ...acknowledgedAdds].slice(-MAX_ENTRIES);
      let actualList: number[] = [];
      try {
        actualList = (await service.getMetadata(DIFF_ID)).map((m) =>
          parseInt(m.digest.slice(7), 16)
        );
      } catch (error) {
        if (!(error instanceof MetadataError) || error.code !== "ENOENT") throw error;
      }
      const withInFlight = [...expected, inFlight].slice(-MAX_ENTRIES);
      if (inFlight % SLOTS === LIST_SLOT && actualList.at(-1) === inFlight) {
        assert.deepEqual(actualList, withInFlight, `list after kill ${round}`);
        mayLackMapping.add(inFlight);
        totals.unacknowledgedSeen++;
      } else {
        assert.deepEqual(actualList, expected, `list after kill ${round}`);
      }
      list = actualList;
      // Every listed entry maps back, except an add killed between its two writes.
      for (const i of actualList) {
        try {
          assert.equal(await service.getDiffID(entryOf(i).digest), DIFF_ID);
        } catch (error) {
          if (!mayLackMapping.has(i)) throw error;
        }
      }
    };
    await check(acks, inFlight, next);

    // recover() removes exactly the temp files, and every value reads the same after it.
    const temps = tempFiles(root);
    const removed = (await store.recover({ olderThanMs: 0 })).sort();
    assert.deepEqual(removed, temps);
    totals.tempFilesRecovered += removed.length;
    assert.deepEqual(tempFiles(root), []);
    await check([], -2, Infinity);
    next = inFlight + 1;
  }
  await rejectsWithCode(
    (await FSMetadataStore.open(root)).get(NAMESPACE, "sha256/.tmp-slot-01234"),
    "EINVAL",
  );
}

test(
  `FSMetadataStore survives ${KILLS} SIGKILLs of a ${runtimeName} writer: old or new, never torn`,
  {
    timeout: 280_000,
  },
  async () => {
    const totals: Totals = {
      kills: 0,
      acknowledged: 0,
      tempFilesRecovered: 0,
      tornOrLost: 0,
      unacknowledgedSeen: 0,
    };
    const perLane = Math.ceil(KILLS / LANES);
    await Promise.all(Array.from({ length: LANES }, () => lane(perLane, totals)));
    console.log(`crash_test (${runtimeName}): ${JSON.stringify(totals)}`);
    assert.ok(totals.kills >= KILLS);
    assert.equal(totals.tornOrLost, 0);
  },
);

for (const adapter of adapters.filter((a) => a.real)) {
  test(`FSMetadataStore.recover() on ${adapter.name} removes only Docker temp files old enough`, async () => {
    const { fs, root } = adapter.fresh();
    const store = await FSMetadataStore.open(root, { fs });
    await store.set("ns", "sha256/key", new TextEncoder().encode("value"));
    const dir = join(root, "ns", "sha256");
    const old = new Date(Date.now() - 120_000);
    const make = (name: string, mtime = old) => {
      writeFileSync(join(dir, name), "partial");
      utimesSync(join(dir, name), mtime, mtime);
    };
    make(".tmp-key123");
    make(".tmp-key4294967295");
    make(".tmp-fresh7", new Date()); // a write in progress, younger than a minute
    make(".tmp-"); // not Docker's pattern: no name, no digits
    make(".tmp-nodigits");
    make("key.tmp-1");
    mkdirSync(join(dir, ".tmp-dir1"));
    symlinkSync(join(dir, "key"), join(dir, ".tmp-link1"));
    assert.deepEqual((await store.recover()).sort(), [
      join(dir, ".tmp-key123"),
      join(dir, ".tmp-key4294967295"),
    ]);
    assert.deepEqual(await store.recover({ olderThanMs: 0 }), [join(dir, ".tmp-fresh7")]);
    assert.deepEqual(readdirSync(dir).sort(), [
      ".tmp-",
      ".tmp-dir1",
      ".tmp-link1",
      ".tmp-nodigits",
      "key",
      "key.tmp-1",
    ]);
    assert.equal(new TextDecoder().decode(await store.get("ns", "sha256/key")), "value");
  });
}

test("FSMetadataStore.recover() on a missing root is ENOENT", async () => {
  const { fs, root } = adapters.find((a) => a.real)!.fresh();
  const store = await FSMetadataStore.open(root, { fs });
  rmSync(root, { recursive: true });
  await rejectsWithCode(store.recover(), "ENOENT");
});
