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
  // Each item's work ends when its gate opens; the gates open last item first.
  const gates = new Map<string, () => void>();
  const ended: string[] = [];
  const settled: string[] = [];
  const items = ["a", "b", "c", "d"];
  const running = inManifestOrder(
    items,
    limiter(4),
    (item, inSlot) =>
      inSlot(async () => {
        await new Promise<void>((open) => gates.set(item, open));
        ended.push(item);
        return item.toUpperCase();
      }),
    (item, done) => {
      settled.push(item);
      return `${item}:${done}`;
    },
  );
  while (gates.size < items.length) await new Promise((resolve) => setTimeout(resolve, 1));
  for (const item of [...items].reverse()) {
    gates.get(item)!();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const results = await running;
  assert.deepEqual(ended, ["d", "c", "b", "a"]);
  assert.deepEqual(settled, ["a", "b", "c", "d"]);
  assert.deepEqual(results, ["a:A", "b:B", "c:C", "d:D"]);
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
