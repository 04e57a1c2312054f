// FileSystem.writeFileStream on every adapter: exact bytes, modes, refusals and cleanup.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type FileSystem, MetadataError } from "../mod.ts";
import { errorCode } from "../src/_map_error.ts";
import { adapters } from "./_adapters.ts";

/** A stream of `chunks`, then an error when `failWith` is given; records a cancel. */
function source(chunks: Uint8Array[], failWith?: Error) {
  const state = { cancelled: false as unknown };
  let next = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]!);
      else if (failWith) controller.error(failWith);
      else controller.close();
    },
    cancel(reason) {
      state.cancelled = reason ?? true;
    },
  });
  return { stream, state };
}

/** `length` bytes of a pattern that differs at every offset of a chunk. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) out.set(chunk, (at += chunk.length) - chunk.length);
  return out;
}

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  await promise.then(() => assert.fail(`resolved, expected ${code}`), (e) => caught = e);
  assert.equal(errorCode(caught), code, String(caught));
  return caught;
}

for (const adapter of adapters) {
  const fresh = async () => {
    const { fs, root } = adapter.fresh();
    await fs.mkdir(root, 0o755);
    return { fs: fs as Required<FileSystem>, root };
  };
  const it = (name: string, fn: (fs: Required<FileSystem>, root: string) => Promise<void>) =>
    test(`writeFileStream on ${adapter.name}: ${name}`, async () => {
      const { fs, root } = await fresh();
      await fn(fs, root);
    });

  it(
    "writes every chunk's exact bytes in order, with the mode, and no temp file",
    async (fs, root) => {
      const chunks = [bytes(1, 1), bytes(0, 2), bytes(256 << 10, 3), bytes(65_537, 4), bytes(7, 5)];
      const { stream } = source(chunks);
      const written = await fs.writeFileStream(`${root}/blob`, `${root}/.blob.tmp`, stream, 0o640);
      const expected = concat(chunks);
      assert.equal(written, expected.length);
      assert.deepEqual(await fs.readFile(`${root}/blob`), expected);
      assert.deepEqual(await fs.readDir(root), ["blob"]);
      const info = (await fs.stat(`${root}/blob`))!;
      assert.equal(info.kind, "file");
      assert.equal(info.size, expected.length);
      if (adapter.real) assert.equal(info.mode, 0o640);
    },
  );

  it("an empty stream makes an empty file", async (fs, root) => {
    const written = await fs.writeFileStream(
      `${root}/e`,
      `${root}/e.tmp`,
      source([]).stream,
      0o644,
    );
    assert.equal(written, 0);
    assert.deepEqual(await fs.readFile(`${root}/e`), new Uint8Array());
    assert.deepEqual(await fs.readDir(root), ["e"]);
  });

  it("replaces a file already at the path whole", async (fs, root) => {
    await fs.writeFileAtomic(`${root}/f`, `${root}/f.old`, bytes(1000, 9), 0o644);
    await fs.writeFileStream(`${root}/f`, `${root}/f.tmp`, source([bytes(10, 1)]).stream, 0o644);
    assert.deepEqual(await fs.readFile(`${root}/f`), bytes(10, 1));
  });

  it(
    "a temp file already there is EEXIST, left alone, and the stream is cancelled",
    async (fs, root) => {
      await fs.writeFileAtomic(`${root}/f.tmp`, `${root}/x`, bytes(5, 7), 0o600);
      const { stream, state } = source([bytes(10, 1)]);
      const error = await rejectsCode(
        fs.writeFileStream(`${root}/f`, `${root}/f.tmp`, stream, 0o644),
        "EEXIST",
      );
      // The disk adapters free the source at once; the memory one leaves it to the caller.
      if (adapter.real) assert.equal(state.cancelled, error);
      assert.deepEqual(await fs.readFile(`${root}/f.tmp`), bytes(5, 7));
      assert.deepEqual(await fs.readDir(root), ["f.tmp"]);
    },
  );

  it(
    "a stream that fails midway rejects with its error and leaves neither file",
    async (fs, root) => {
      const failure = new MetadataError("DIGEST_MISMATCH", "the digest check failed");
      const { stream } = source([bytes(256 << 10, 1), bytes(100, 2)], failure);
      await assert.rejects(
        fs.writeFileStream(`${root}/f`, `${root}/f.tmp`, stream, 0o644),
        (e) => e === failure,
      );
      assert.deepEqual(await fs.readDir(root), []);
    },
  );

  it("a missing directory is ENOENT and a disk adapter cancels the stream", async (fs, root) => {
    const { stream, state } = source([bytes(10, 1)]);
    await rejectsCode(
      fs.writeFileStream(`${root}/no/f`, `${root}/no/f.tmp`, stream, 0o644),
      "ENOENT",
    );
    if (adapter.real) assert.notEqual(state.cancelled, false);
  });

  if (adapter.real) {
    it("a symlink at the temp name is EEXIST and its target is not created", async (fs, root) => {
      const { symlinkSync, existsSync } = await import("node:fs");
      symlinkSync(`${root}/target`, `${root}/f.tmp`);
      const { stream } = source([bytes(10, 1)]);
      await rejectsCode(fs.writeFileStream(`${root}/f`, `${root}/f.tmp`, stream, 0o644), "EEXIST");
      assert.equal(existsSync(`${root}/target`), false);
      assert.equal((await fs.stat(`${root}/f.tmp`))!.kind, "symlink");
      assert.equal(await fs.stat(`${root}/f`), null);
    });
  }
}
