// The write-back of a streamed write (src/adapters/_stream_file.ts): every 32 MiB the disk is
// asked to write what came so far, one request at a time, without holding up the writes; its
// failure fails the write and leaves no file; the final fsync still ends every write.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type StreamWriteOps, writeStreamAtomically } from "../src/adapters/_stream_file.ts";
import { adapters } from "./_adapters.ts";

const MiB = 1 << 20;

/** `count` chunks of `size` bytes, each filled with its index. */
function chunks(count: number, size: number): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < count) controller.enqueue(new Uint8Array(size).fill(next++ & 0xff));
      else controller.close();
    },
  });
}

/**
 * Ops on a memory "file" that log every call; `writeBack` waits for `holdBack` when given, and
 * writes from the `holdWritesFrom`-th on wait for `holdWrite`.
 */
function loggingOps(
  options: {
    failBack?: Error;
    holdBack?: Promise<void>;
    holdWrite?: Promise<void>;
    holdWritesFrom?: number;
  } = {},
) {
  const log: string[] = [];
  let length = 0;
  let backsInFlight = 0;
  let mostBacksInFlight = 0;
  const ops: StreamWriteOps<string> = {
    createExclusive: (path) => (log.push(`create ${path}`), "F"),
    async writeAll(_file, chunk, position) {
      assert.equal(position, length, "writes come in order");
      length += chunk.length;
      log.push(`write ${position / MiB}`);
      if (position / MiB >= (options.holdWritesFrom ?? Infinity)) await options.holdWrite;
      await Promise.resolve();
      log.push(`wrote ${position / MiB}`);
    },
    async writeBack() {
      log.push(`back at ${length / MiB}`);
      mostBacksInFlight = Math.max(mostBacksInFlight, ++backsInFlight);
      try {
        await options.holdBack;
        if (options.failBack) throw options.failBack;
      } finally {
        backsInFlight--;
        log.push("back done");
      }
    },
    sync: () => Promise.resolve(void log.push("sync")),
    close: () => void log.push("close"),
    chmod: () => void log.push("chmod"),
    rename: () => void log.push("rename"),
    remove: () => void log.push("remove"),
  };
  return { ops, log, most: () => mostBacksInFlight };
}

test("a write-back starts once 32 MiB more were written, one at a time, before the final fsync", async () => {
  const { ops, log, most } = loggingOps();
  const written = await writeStreamAtomically(ops, "/f", "/f.tmp", chunks(100, MiB), 0o644);
  assert.equal(written, 100 * MiB);
  const backs = log.filter((line) => line.startsWith("back at"));
  assert.deepEqual(backs, ["back at 32", "back at 64", "back at 96"]);
  assert.equal(most(), 1);
  assert.deepEqual(log.slice(-4), ["sync", "close", "chmod", "rename"]);
  assert.ok(log.lastIndexOf("back done") < log.indexOf("sync"));
});

test("no write-back under 32 MiB: a small blob costs its one fsync only", async () => {
  const { ops, log } = loggingOps();
  await writeStreamAtomically(ops, "/f", "/f.tmp", chunks(31, MiB), 0o644);
  assert.equal(log.filter((line) => line.startsWith("back")).length, 0);
  assert.equal(log.filter((line) => line === "sync").length, 1);
});

test("a scratch file (durable: false) is never synced: no write-back, no fsync, still renamed", async () => {
  const { ops, log } = loggingOps();
  const written = await writeStreamAtomically(ops, "/f", "/f.tmp", chunks(100, MiB), 0o600, {
    durable: false,
  });
  assert.equal(written, 100 * MiB);
  assert.equal(log.filter((line) => line.startsWith("back") || line === "sync").length, 0);
  assert.deepEqual(log.slice(-3), ["close", "chmod", "rename"]);
});

test("a slow write-back does not hold the writes up, and a second waits for the first", async () => {
  let release = () => {};
  const holdBack = new Promise<void>((resolve) => release = resolve);
  const { ops, log, most } = loggingOps({ holdBack });
  const writing = writeStreamAtomically(ops, "/f", "/f.tmp", chunks(80, MiB), 0o644);
  while (!log.includes("write 79")) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(log.filter((line) => line.startsWith("back at")).length, 1);
  assert.equal(log.includes("sync"), false);
  release();
  await writing;
  assert.equal(most(), 1);
  assert.ok(log.indexOf("back done") < log.indexOf("sync"));
});

test("a failed write-back fails the write with its error: no rename, the temp file removed", async () => {
  const failure = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
  const { ops, log } = loggingOps({ failBack: failure });
  await assert.rejects(
    writeStreamAtomically(ops, "/f", "/f.tmp", chunks(64, MiB), 0o644),
    (error) => error === failure,
  );
  assert.equal(log.includes("rename"), false);
  assert.equal(log.includes("sync"), false);
  assert.deepEqual(log.slice(-2), ["close", "remove"]);
});

test("a source failing during a write-back waits for it before closing the file", async () => {
  let release = () => {};
  const holdBack = new Promise<void>((resolve) => release = resolve);
  const { ops, log } = loggingOps({ holdBack });
  let next = 0;
  const failure = new Error("the source broke");
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next++ < 40) controller.enqueue(new Uint8Array(MiB));
      else controller.error(failure);
    },
  });
  const writing = writeStreamAtomically(ops, "/f", "/f.tmp", source, 0o644);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(log.includes("close"), false, "closed under a write-back in flight");
  release();
  await assert.rejects(writing, (error) => error === failure);
  assert.ok(log.indexOf("back done") < log.indexOf("close"));
  assert.deepEqual(log.slice(-2), ["close", "remove"]);
});

test("a source failing during a write waits for it before closing the file", async () => {
  // A descriptor closed under a write in flight may be reused by the next file opened, which
  // the write would then land in (this once put a blob's bytes into a layout's index.json).
  let release = () => {};
  const holdWrite = new Promise<void>((resolve) => release = resolve);
  const { ops, log } = loggingOps({ holdWrite, holdWritesFrom: 2 });
  let next = 0;
  const failure = new Error("the source broke");
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next++ < 3) controller.enqueue(new Uint8Array(MiB));
      else controller.error(failure);
    },
  });
  const writing = writeStreamAtomically(ops, "/f", "/f.tmp", source, 0o644);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(log.includes("close"), false, "closed under a write in flight");
  release();
  await assert.rejects(writing, (error) => error === failure);
  assert.ok(log.indexOf("wrote 2") < log.indexOf("close"), log.join());
  assert.deepEqual(log.slice(-2), ["close", "remove"]);
});

for (const adapter of adapters.filter((a) => a.real)) {
  test(`writeFileStream on ${adapter.name}: 100 MiB across write-backs, exact bytes`, async () => {
    const { fs, root } = adapter.fresh();
    await fs.mkdir(root, 0o755);
    const written = await fs.writeFileStream!(
      `${root}/b`,
      `${root}/b.tmp`,
      chunks(100, MiB),
      0o644,
    );
    assert.equal(written, 100 * MiB);
    const bytes = readFileSync(join(root, "b"));
    assert.equal(bytes.length, 100 * MiB);
    for (let i = 0; i < 100; i++) assert.equal(bytes[i * MiB + 12345], i, `chunk ${i}`);
    assert.deepEqual(readdirSync(root), ["b"]);
  });
}
