// The transfer engine's runner, on its own: the order outcomes are settled in, and what the
// first failure stops. (push, pull and copy run their layers through it; their own tests show
// the same against a real registry.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { limiter } from "../src/registry/_limit.ts";
import { inManifestOrder } from "../src/registry/transfer/in_manifest_order.ts";

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

test("inManifestOrder() settles in manifest order, whatever order the work ends in", async () => {
  const ended: number[] = [];
  const settled: number[] = [];
  const results = await inManifestOrder(
    [30, 20, 10, 0],
    limiter(4),
    (ms, inSlot) =>
      inSlot(async (stop) => {
        await wait(ms, stop);
        ended.push(ms);
        return ms * 2;
      }),
    (ms, doubled) => {
      settled.push(ms);
      return `${ms}:${doubled}`;
    },
  );
  assert.deepEqual(ended, [0, 10, 20, 30]);
  assert.deepEqual(settled, [30, 20, 10, 0]);
  assert.deepEqual(results, ["30:60", "20:40", "10:20", "0:0"]);
});

test("inManifestOrder() stops at the first failure: running work aborted, waiting work never started, that failure thrown", async () => {
  const started: string[] = [];
  const aborted: string[] = [];
  const settled: string[] = [];
  const refused = new Error("layer b refused");
  await assert.rejects(
    inManifestOrder(
      ["a", "b", "c"],
      limiter(2),
      (name, inSlot) =>
        inSlot(async (stop) => {
          started.push(name);
          if (name === "b") throw refused;
          try {
            await wait(10_000, stop);
          } catch (error) {
            aborted.push(name);
            throw error;
          }
          return name;
        }),
      (name) => settled.push(name),
    ),
    (error) => error === refused,
  );
  // "c" waited for the place "b" held: the failure stopped the run before handing it over.
  assert.deepEqual(started, ["a", "b"]);
  assert.deepEqual(aborted, ["a"]);
  assert.deepEqual(settled, []);
});

test("inManifestOrder() throws a failure to settle, after the work still running ended", async () => {
  const recording = new Error("the metadata store refused the record");
  let runningEnded = false;
  await assert.rejects(
    inManifestOrder(
      [0, 10_000],
      limiter(2),
      (ms, inSlot) =>
        inSlot(async (stop) => {
          try {
            await wait(ms, stop);
          } finally {
            if (ms > 0) runningEnded = true;
          }
        }),
      () => {
        throw recording;
      },
    ),
    (error) => error === recording,
  );
  assert.equal(runningEnded, true);
});
