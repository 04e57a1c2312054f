// The behaviour every MetadataStore must share, run against each backend
// (FSMetadataStore on every FileSystem adapter, the Deno KV store, …).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkV2MetadataHMAC,
  computeV2MetadataHMACKey,
  MetadataError,
  type MetadataStore,
  V1IDService,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `sha256:` and 64 hex digits derived from `n`, like a real digest. */
export function fakeDigest(n: number, prefix = "sha256:"): string {
  return prefix + n.toString(16).padStart(64, "0");
}

/** Asserts that `promise` rejects with a MetadataError of `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MetadataError, `expected a MetadataError, got ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function entry(n: number, repository = "docker.io/library/busybox", hmac = ""): V2Metadata {
  return { digest: fakeDigest(n), sourceRepository: repository, hmac };
}

/**
 * Registers the conformance tests for a store backend. `open` returns a fresh, empty store
 * for each test; `update: true` says the backend has update(), and adds its contract's cases.
 */
export function testStoreConformance(
  label: string,
  open: () => Promise<MetadataStore>,
  options: { skip?: boolean | string; update?: boolean } = {},
): void {
  const it = (name: string, fn: (store: MetadataStore) => Promise<void>) =>
    test(`${label}: ${name}`, { skip: options.skip ?? false }, async () => fn(await open()));

  it("get() of a missing key is ENOENT", async (store) => {
    await rejectsWithCode(store.get("ns", "missing"), "ENOENT");
  });

  it("set() then get() returns the same bytes", async (store) => {
    const value = new Uint8Array([0, 1, 2, 255, 10]);
    await store.set("ns", "key", value);
    assert.deepEqual(await store.get("ns", "key"), value);
  });

  it("get() returns a plain Uint8Array the caller owns", async (store) => {
    await store.set("ns", "key", encoder.encode("value"));
    const first = await store.get("ns", "key");
    // Not a Buffer, whose slice() shares memory and whose toString() decodes.
    assert.equal(Object.getPrototypeOf(first), Uint8Array.prototype);
    first.slice()[0] = 0;
    assert.equal(decoder.decode(first), "value");
    first.fill(0);
    assert.equal(decoder.decode(await store.get("ns", "key")), "value");
  });

  it("get() results own their ArrayBuffer: .buffer holds exactly the value", async (store) => {
    // Sizes around the old 8 KiB pooling limit and 16 KiB read buffer, and over 64 KiB.
    for (const size of [0, 1, 71, 4096, 8192, 8193, 16 * 1024 + 1, 70_000]) {
      const value = Uint8Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff);
      await store.set("ns", `size-${size}`, value);
      const result = await store.get("ns", `size-${size}`);
      assert.equal(result.byteOffset, 0, `byteOffset at ${size} B`);
      assert.equal(result.buffer.byteLength, size, `buffer.byteLength at ${size} B`);
      assert.deepEqual(new Uint8Array(result.buffer), value);
    }
  });

  it("transferring one get() result leaves every other intact", async (store) => {
    const values = Array.from({ length: 40 }, (_, i) => encoder.encode(`value ${i} `.repeat(i)));
    for (const [i, value] of values.entries()) await store.set("ns", `k${i}`, value);
    const results = [];
    for (let i = 0; i < values.length; i++) results.push(await store.get("ns", `k${i}`));
    for (const [i, result] of results.entries()) {
      // What a worker posting `result.buffer` would send: this value, nothing else.
      const buffer = result.buffer as ArrayBuffer;
      const sent = structuredClone(buffer, { transfer: [buffer] });
      assert.deepEqual(new Uint8Array(sent), values[i], `sent value ${i}`);
      assert.equal(result.length, 0, `result ${i} is detached`);
      for (let j = i + 1; j < results.length; j++) {
        assert.deepEqual(results[j], values[j], `result ${j} after transferring ${i}`);
      }
    }
  });

  it("set() stores an empty value", async (store) => {
    await store.set("ns", "empty", new Uint8Array());
    assert.equal((await store.get("ns", "empty")).length, 0);
  });

  it("set() replaces an existing value", async (store) => {
    await store.set("ns", "key", encoder.encode("old value, longer"));
    await store.set("ns", "key", encoder.encode("new"));
    assert.equal(decoder.decode(await store.get("ns", "key")), "new");
  });

  it("delete() removes a key, and a second delete() is ENOENT", async (store) => {
    await store.set("ns", "key", encoder.encode("v"));
    await store.delete("ns", "key");
    await rejectsWithCode(store.get("ns", "key"), "ENOENT");
    await rejectsWithCode(store.delete("ns", "key"), "ENOENT");
  });

  it("keys with nested /, ':', ',', spaces and Unicode are distinct", async (store) => {
    const keys = [
      "sha256/abc",
      "sha256/abc:def",
      "registry:5000/v2,abc",
      "with space",
      "ü/日本/🐳",
    ];
    for (const [i, key] of keys.entries()) await store.set("ns", key, encoder.encode(String(i)));
    for (const [i, key] of keys.entries()) {
      assert.equal(decoder.decode(await store.get("ns", key)), String(i));
    }
  });

  it("keys are cleaned like Go's filepath.Join", async (store) => {
    await store.set("ns", "/a//b/./c/", encoder.encode("x"));
    assert.equal(decoder.decode(await store.get("ns", "a/b/c")), "x");
    assert.equal(decoder.decode(await store.get("./ns/", "a/./b//c")), "x");
  });

  it("unsafe namespaces and keys are EINVAL and write nothing", async (store) => {
    await store.set("ns", "keep", encoder.encode("kept"));
    const unsafe: [string, string][] = [
      ["ns", "../escape"],
      ["..", "x"],
      ["ns", "a/../../b"],
      ["ns", "nul\0byte"],
      ["ns", "back\\slash"],
      ["ns", ".tmp-keep123"],
      ["ns", "dir/.tmp-x"],
      [".tmp-ns", "x"],
      ["ns", ""],
      ["ns", "/"],
      ["ns", "./."],
    ];
    for (const [namespace, key] of unsafe) {
      await rejectsWithCode(store.set(namespace, key, encoder.encode("bad")), "EINVAL");
      await rejectsWithCode(store.get(namespace, key), "EINVAL");
      await rejectsWithCode(store.delete(namespace, key), "EINVAL");
    }
    assert.equal(decoder.decode(await store.get("ns", "keep")), "kept");
  });

  it("keys() lists a namespace as get() takes its keys, sorted", async (store) => {
    assert.ok(store.keys, "every store of the library implements keys()");
    assert.deepEqual(await store.keys("ns"), []);
    const keys = ["b", "a/c", "a/b/d", "registry:5000/v2,abc", "ü/🐳", "with space"];
    for (const key of keys) await store.set("ns", key, encoder.encode(key));
    await store.set("ns-other", "x", encoder.encode("x"));
    await store.set("ns/nested", "y", encoder.encode("y"));
    const listed = await store.keys("./ns/");
    assert.deepEqual(listed, [...keys, "nested/y"].sort());
    for (const key of listed) {
      assert.equal(decoder.decode(await store.get("ns", key)), key.replace("nested/", ""));
    }
    assert.deepEqual(await store.keys("ns/nested"), ["y"]);
    await store.delete("ns", "a/c");
    assert.ok(!(await store.keys("ns")).includes("a/c"));
    await rejectsWithCode(store.keys("../x"), "EINVAL");
    await rejectsWithCode(store.keys("/"), "EINVAL");
  });

  it("V2MetadataService.add() records the entry and the digest mapping", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    await service.add(diffID, entry(1));
    assert.deepEqual(await service.getMetadata(diffID), [entry(1)]);
    assert.equal(await service.getDiffID(entry(1).digest), diffID);
    assert.equal(
      decoder.decode(await store.get("v2metadata-by-diffid", `sha256/${diffID.slice(7)}`)),
      `[{"Digest":"${entry(1).digest}","SourceRepository":"docker.io/library/busybox","HMAC":""}]`,
    );
    assert.equal(
      decoder.decode(await store.get("diffid-by-digest", `sha256/${entry(1).digest.slice(7)}`)),
      diffID,
    );
  });

  it("V2MetadataService.add() moves an equal entry to the end", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    for (const n of [1, 2, 3, 1]) await service.add(diffID, entry(n));
    assert.deepEqual(await service.getMetadata(diffID), [entry(2), entry(3), entry(1)]);
    await service.add(diffID, entry(1, "docker.io/library/other"));
    assert.equal((await service.getMetadata(diffID)).length, 4);
  });

  it("V2MetadataService.add() keeps the newest 50 entries and their mappings", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    for (let n = 0; n < 55; n++) await service.add(diffID, entry(n));
    const list = await service.getMetadata(diffID);
    assert.equal(list.length, 50);
    assert.deepEqual(list[0], entry(5));
    assert.deepEqual(list[49], entry(54));
    assert.equal(await service.getDiffID(entry(0).digest), diffID);
  });

  it("V2MetadataService.add() replaces a corrupt list", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    await store.set("v2metadata-by-diffid", `sha256/${diffID.slice(7)}`, encoder.encode("[{"));
    await rejectsWithCode(service.getMetadata(diffID), "EBADMSG");
    await service.add(diffID, entry(1));
    assert.deepEqual(await service.getMetadata(diffID), [entry(1)]);
  });

  it("V2MetadataService.remove() drops the entry, then deletes the list", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    await service.add(diffID, entry(1));
    await service.add(diffID, entry(2));
    await service.remove(entry(1));
    assert.deepEqual(await service.getMetadata(diffID), [entry(2)]);
    await service.remove(entry(2));
    await rejectsWithCode(service.getMetadata(diffID), "ENOENT");
    await rejectsWithCode(service.remove(entry(2)), "ENOENT");
    assert.equal(await service.getDiffID(entry(2).digest), diffID, "the mapping stays");
    await rejectsWithCode(service.remove(entry(99)), "ENOENT");
  });

  it("V2MetadataService.tagAndAdd() tags the entry with the credentials' HMAC", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    const key = await computeV2MetadataHMACKey({ username: "u", password: "p" });
    await service.tagAndAdd(diffID, key, entry(1, "r", "ignored"));
    const [tagged] = await service.getMetadata(diffID);
    assert.match(tagged!.hmac, /^[0-9a-f]{64}$/);
    assert.ok(await checkV2MetadataHMAC(tagged!, key));
    assert.ok(!(await checkV2MetadataHMAC(tagged!, await computeV2MetadataHMACKey({}))));
  });

  if (options.update) {
    /** The store's update(), which this backend must have. */
    const updateOf = (store: MetadataStore) => {
      assert.equal(typeof store.update, "function", "the store has no update()");
      return store.update!.bind(store);
    };

    it("update() passes null for a missing key and deletes on null", async (store) => {
      const update = updateOf(store);
      const seen: (string | null)[] = [];
      const remember = (old: Uint8Array | null) => {
        seen.push(old === null ? null : decoder.decode(old));
        return old === null ? encoder.encode("first") : null;
      };
      await update("ns", "key", remember);
      assert.equal(decoder.decode(await store.get("ns", "key")), "first");
      await update("ns", "key", remember);
      await rejectsWithCode(store.get("ns", "key"), "ENOENT");
      assert.deepEqual(seen, [null, "first"]);
      await update("ns", "key", () => null);
      await rejectsWithCode(store.get("ns", "key"), "ENOENT");
    });

    it("update() leaves the value alone when fn throws", async (store) => {
      const update = updateOf(store);
      await store.set("ns", "key", encoder.encode("kept"));
      await assert.rejects(
        update("ns", "key", () => {
          throw new Error("abort");
        }),
        { message: "abort" },
      );
      assert.equal(decoder.decode(await store.get("ns", "key")), "kept");
    });
  }

  it("V2MetadataService.add() calls in flight on one DiffID lose nothing", async (store) => {
    const service = new V2MetadataService(store);
    const diffID = fakeDigest(1000);
    await Promise.all(Array.from({ length: 40 }, (_, n) => service.add(diffID, entry(n))));
    const digests = (await service.getMetadata(diffID)).map((m) => m.digest).sort();
    assert.deepEqual(digests, Array.from({ length: 40 }, (_, n) => entry(n).digest).sort());
  });

  it("V2MetadataService rejects a digest without ':' with EINVAL", async (store) => {
    const service = new V2MetadataService(store);
    await rejectsWithCode(service.add("nocolon", entry(1)), "EINVAL");
    await rejectsWithCode(service.add(fakeDigest(1), { ...entry(1), digest: "nocolon" }), "EINVAL");
    await rejectsWithCode(service.getDiffID("nocolon"), "EINVAL");
    await rejectsWithCode(service.getMetadata("nocolon"), "EINVAL");
  });

  it("V2MetadataService refuses a digest with nothing after ':' before touching the store", async (store) => {
    // Go writes `sha256:` as the file v2metadata-by-diffid/sha256: no sha256 key fits after.
    let calls = 0;
    const watched = new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls++;
          return value.apply(target, args);
        };
      },
    });
    const service = new V2MetadataService(watched);
    const key = await computeV2MetadataHMACKey({ username: "u", password: "p" });
    for (const empty of ["sha256:", "sha256:/", "sha256:.", "sha256:./", "sha256://"]) {
      await rejectsWithCode(service.add(empty, entry(1)), "EINVAL");
      await rejectsWithCode(service.add(fakeDigest(1), { ...entry(1), digest: empty }), "EINVAL");
      await rejectsWithCode(service.tagAndAdd(empty, key, entry(1)), "EINVAL");
      await rejectsWithCode(
        service.tagAndAdd(fakeDigest(1), key, { ...entry(1), digest: empty }),
        "EINVAL",
      );
      await rejectsWithCode(service.getDiffID(empty), "EINVAL");
      await rejectsWithCode(service.getMetadata(empty), "EINVAL");
      await rejectsWithCode(service.remove({ ...entry(1), digest: empty }), "EINVAL");
    }
    assert.equal(calls, 0, "no store call was made");
    assert.deepEqual(await store.keys!("v2metadata-by-diffid"), []);
    assert.deepEqual(await store.keys!("diffid-by-digest"), []);
    // The store still takes sha256 keys: nothing was bricked.
    await service.add(fakeDigest(2), entry(3));
    assert.deepEqual(await service.getMetadata(fakeDigest(2)), [entry(3)]);
  });

  it("V2MetadataService.remove() refuses a stored mapping to a DiffID with nothing after ':'", async (store) => {
    const service = new V2MetadataService(store);
    await store.set("diffid-by-digest", fakeDigest(4).replace(":", "/"), encoder.encode("sha256:"));
    await rejectsWithCode(service.remove(entry(4)), "EINVAL");
    assert.deepEqual(await store.keys!("v2metadata-by-diffid"), []);
  });

  it("V1IDService.set() and get() round-trip under v1id/<registry>,<id>", async (store) => {
    const service = new V1IDService(store);
    const id = "0123456789abcdef".repeat(4);
    await service.set(id, "registry.example.com:5000/v2", "sha256:diff");
    assert.equal(await service.get(id, "registry.example.com:5000/v2"), "sha256:diff");
    assert.equal(
      decoder.decode(await store.get("v1id", `registry.example.com:5000/v2,${id}`)),
      "sha256:diff",
    );
    await rejectsWithCode(service.get(id.toUpperCase(), "r"), "EINVAL");
  });
}
