// Property-based tests (fast-check): random sequences of store and service operations
// against the in-memory model, and the Go JSON codec on any string and on Go's own output.
// PROPERTY_RUNS sets the total number of runs (default 10 000, spread over the properties).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import process from "node:process";
import fc from "fast-check";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type FileSystem,
  FSMetadataStore,
  MemoryFileSystem,
  MetadataError,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { decodeV2MetadataList, encodeV2MetadataList, goQuote } from "../src/_go_json.ts";
import { adapters } from "./_adapters.ts";
import { ServiceModel } from "./_model.ts";

const TOTAL = Number(process.env.PROPERTY_RUNS ?? 10_000);
/** This property's share of the total runs (shares add up to 1). */
const runs = (share: number) => Math.max(1, Math.ceil(TOTAL * share));
let runsDone = 0;
let fullLists = 0;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Any JavaScript string, lone surrogates included. */
const anyString = fc.string({ unit: "binary", maxLength: 40 });
const entryArb = fc.record({ digest: anyString, sourceRepository: anyString, hmac: anyString });

function wellFormed(m: V2Metadata): V2Metadata {
  return {
    digest: m.digest.toWellFormed(),
    sourceRepository: m.sourceRepository.toWellFormed(),
    hmac: m.hmac.toWellFormed(),
  };
}

test("encodeV2MetadataList()/decodeV2MetadataList() round-trip any strings (lone surrogates as U+FFFD)", () => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 4 }), (list) => {
      runsDone++;
      const bytes = encodeV2MetadataList(list);
      const text = decoder.decode(bytes);
      assert.deepEqual(decodeV2MetadataList(bytes), list.map(wellFormed));
      // Valid JSON that JSON.parse agrees with, with Go's escapes only.
      assert.deepEqual(
        JSON.parse(text).map((o: Record<string, string>) => [o.Digest, o.SourceRepository, o.HMAC]),
        list.map((m) => [m.digest, m.sourceRepository, m.hmac].map((s) => s.toWellFormed())),
      );
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(text, /[\u0000-\u001f<>&\u2028\u2029]/);
    }),
    { numRuns: runs(0.3) },
  );
});

/** Go's encoder as written in encoding/json/encode.go, for the variants Go can produce. */
function goEncodeString(s: string, options: { html: boolean; oldControl: boolean }): string {
  let out = '"';
  for (const char of s.toWellFormed()) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === "\\") out += "\\" + char;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (!options.oldControl && char === "\b") out += "\\b";
    else if (!options.oldControl && char === "\f") out += "\\f";
    else if (code < 0x20 || (options.html && (char === "<" || char === ">" || char === "&"))) {
      out += "\\u00" + code.toString(16).padStart(2, "0");
    } else if (code === 0x2028 || code === 0x2029) out += "\\u" + code.toString(16);
    else out += char;
  }
  return out + '"';
}

test("decodeV2MetadataList() reads every form Go's encoder writes (old and new escapes, indent, key case)", () => {
  const form = fc.record({
    html: fc.boolean(),
    oldControl: fc.boolean(),
    indent: fc.boolean(),
    keys: fc.constantFrom(
      ["Digest", "SourceRepository", "HMAC"],
      ["digest", "sourcerepository", "hmac"],
      ["DIGEST", "SOURCEREPOSITORY", "Hmac"],
    ),
  });
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 4 }), form, (list, f) => {
      runsDone++;
      const [nl, tab] = f.indent ? ["\n", "\t"] : ["", ""];
      const objects = list.map((m) => {
        const fields = [m.digest, m.sourceRepository, m.hmac].map((value, i) =>
          `${nl}${tab}${tab}${goEncodeString(f.keys[i]!, f)}:${f.indent ? " " : ""}${
            goEncodeString(value, f)
          }`
        );
        return `${nl}${tab}{${fields.join(",")}${nl}${tab}}`;
      });
      const text = list.length === 0 ? "[]" : `[${objects.join(",")}${nl}]`;
      assert.deepEqual(decodeV2MetadataList(encoder.encode(text)), list.map(wellFormed));
      // The standard form is exactly what we write.
      if (f.html && !f.oldControl && !f.indent && f.keys[0] === "Digest") {
        assert.equal(decoder.decode(encodeV2MetadataList(list)), text);
      }
    }),
    { numRuns: runs(0.2) },
  );
});

test("goQuote() agrees with Go's encoder rules for any string", () => {
  fc.assert(
    fc.property(anyString, (s) => {
      runsDone++;
      assert.equal(goQuote(s), goEncodeString(s, { html: true, oldControl: false }));
    }),
    { numRuns: runs(0.1) },
  );
});

test("decodeV2MetadataList() decodes the lists Go 1.19's encoder wrote (fixture corpus)", () => {
  const [header, ...lines] = readFileSync(
    new URL("./fixtures/go_json_corpus.jsonl", import.meta.url),
    "utf8",
  ).trim().split("\n").map((line) => JSON.parse(line));
  assert.match(header.go_version, /^go1\./);
  const hex = (s: string) =>
    Array.from(encoder.encode(s), (b) => b.toString(16).padStart(2, "0")).join("");
  for (const { form, go, want, valid } of lines) {
    runsDone++;
    const bytes = Uint8Array.from(atob(go), (c) => c.charCodeAt(0));
    const list = decodeV2MetadataList(bytes);
    assert.deepEqual(
      list.map((m) => [hex(m.digest), hex(m.sourceRepository), hex(m.hmac)]),
      want,
      `${form}: ${decoder.decode(bytes)}`,
    );
    // Where Go 1.19 and >= 1.22 agree (no BS/FF) and the input was UTF-8, bytes are equal.
    const text = decoder.decode(bytes);
    if (form === "marshal" && valid && !/\\u000[8c]/.test(text)) {
      assert.equal(decoder.decode(encodeV2MetadataList(list)), text);
    }
  }
  assert.ok(lines.length >= 500);
});

// ---- Store operations against a model of the directory tree --------------------------

type StoreOp =
  | { kind: "set"; key: string; value: number }
  | { kind: "get"; key: string }
  | { kind: "delete"; key: string };

// Keys that nest into each other, so files and directories collide.
const keyArb = fc.constantFrom("a", "b", "a/a", "a/b", "b/a", "a/a/a", "a//b/", "./a");
const storeOpArb: fc.Arbitrary<StoreOp> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), key: keyArb, value: fc.nat(5) }),
  fc.record({ kind: fc.constant("get" as const), key: keyArb }),
  fc.record({ kind: fc.constant("delete" as const), key: keyArb }),
);

/** Go's FSMetadataStore on a directory, as a map of cleaned paths to values or "dir". */
class StoreModel {
  readonly entries = new Map<string, Uint8Array | "dir">();

  static clean(key: string): string {
    return key.split("/").filter((s) => s !== "" && s !== ".").join("/");
  }

  /** The error code for `path`'s ancestors: ENOTDIR when one is a file. */
  #ancestors(path: string): string | null {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      if (this.entries.get(parts.slice(0, i).join("/")) instanceof Uint8Array) return "ENOTDIR";
    }
    return null;
  }

  apply(op: StoreOp): { code: string | null; value?: Uint8Array } {
    const path = StoreModel.clean(op.key);
    const ancestors = this.#ancestors(path);
    const entry = this.entries.get(path);
    if (op.kind === "get") {
      if (ancestors) return { code: ancestors };
      if (entry === undefined) return { code: "ENOENT" };
      if (entry === "dir") return { code: "EISDIR" };
      return { code: null, value: entry };
    }
    if (op.kind === "set") {
      if (entry === "dir") return { code: "EEXIST" };
      if (ancestors) return { code: ancestors };
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) this.entries.set(parts.slice(0, i).join("/"), "dir");
      this.entries.set(path, valueOf(op.value));
      return { code: null };
    }
    if (ancestors) return { code: ancestors };
    if (entry === undefined) return { code: "ENOENT" };
    if (entry === "dir" && [...this.entries.keys()].some((k) => k.startsWith(path + "/"))) {
      return { code: "ENOTEMPTY" };
    }
    this.entries.delete(path);
    return { code: null };
  }
}

function valueOf(n: number): Uint8Array {
  return n === 0 ? new Uint8Array() : encoder.encode(`value ${n}`.repeat(n));
}

async function outcome<T>(promise: Promise<T>): Promise<{ code: string | null; value?: T }> {
  try {
    const value = await promise;
    return value === undefined ? { code: null } : { code: null, value };
  } catch (error) {
    if (!(error instanceof MetadataError)) throw error;
    return { code: error.code };
  }
}

for (const adapter of adapters) {
  const share = adapter.real ? 0.03 : 0.2;
  test(`FSMetadataStore on ${adapter.name} behaves as the model for random operation sequences`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(storeOpArb, { maxLength: 30, size: "medium" }), async (ops) => {
        runsDone++;
        const { fs, root } = adapter.fresh();
        const store = await FSMetadataStore.open(root, { fs });
        const model = new StoreModel();
        for (const op of ops) {
          const expected = model.apply(op);
          const actual = op.kind === "get"
            ? await outcome(store.get("ns", op.key))
            : op.kind === "set"
            ? await outcome(store.set("ns", op.key, valueOf(op.value)))
            : await outcome(store.delete("ns", op.key));
          assert.deepEqual(actual, expected, JSON.stringify(op));
        }
        assert.deepEqual(await store.recover({ olderThanMs: 0 }), []);
      }),
      { numRuns: runs(share) },
    );
  });
}

// ---- Service operations against the sequential model --------------------------------

type ServiceOp =
  | { kind: "add" | "tagAndAdd" | "remove"; d: number; n: number; repo: number; key: number }
  | { kind: "getMetadata"; d: number }
  | { kind: "getDiffID"; n: number };

const serviceOpArb: fc.Arbitrary<ServiceOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom("add" as const, "tagAndAdd" as const),
      d: fc.constantFrom(0, 0, 0, 1),
      n: fc.nat(69),
      repo: fc.nat(1),
      key: fc.nat(2),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("remove" as const),
      d: fc.nat(1),
      n: fc.nat(69),
      repo: fc.nat(1),
      key: fc.nat(2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("getMetadata" as const), d: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("getDiffID" as const), n: fc.nat(69) }) },
);

const diffIDOf = (d: number) => "sha256:" + String(d).repeat(64);
const digestOf = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");

async function serviceProperty(
  fresh: () => { fs: FileSystem; root: string },
  numRuns: number,
  size: fc.SizeForArbitrary,
  examples: ServiceOp[][] = [],
) {
  const hmacKeys = [
    null,
    await computeV2MetadataHMACKey({ username: "a", password: "1" }),
    await computeV2MetadataHMACKey({}),
  ];
  // The model's HMACs, computed once per (key, entry).
  const hmacs = new Map<string, string>();
  const hmacOf = async (key: number, entry: V2Metadata) => {
    const id = `${key} ${entry.digest} ${entry.sourceRepository}`;
    if (!hmacs.has(id)) hmacs.set(id, await computeV2MetadataHMAC(hmacKeys[key]!, entry));
    return hmacs.get(id)!;
  };
  await fc.assert(
    fc.asyncProperty(fc.array(serviceOpArb, { maxLength: 200, size }), async (ops) => {
      runsDone++;
      const { fs, root } = fresh();
      const service = new V2MetadataService(await FSMetadataStore.open(root, { fs }));
      const model = new ServiceModel();
      for (const op of ops) {
        if (op.kind === "getMetadata") {
          const list = model.lists.get(diffIDOf(op.d));
          assert.deepEqual(
            await outcome(service.getMetadata(diffIDOf(op.d))),
            list ? { code: null, value: list } : { code: "ENOENT" },
          );
        } else if (op.kind === "getDiffID") {
          const diffID = model.diffIDs.get(digestOf(op.n));
          assert.deepEqual(
            await outcome(service.getDiffID(digestOf(op.n))),
            diffID ? { code: null, value: diffID } : { code: "ENOENT" },
          );
        } else {
          const entry = {
            digest: digestOf(op.n),
            sourceRepository: `docker.io/library/r${op.repo}`,
            hmac: "",
          };
          if (op.kind === "add") {
            model.add(diffIDOf(op.d), entry);
            await service.add(diffIDOf(op.d), entry);
          } else if (op.kind === "tagAndAdd") {
            const key = hmacKeys[op.key]!;
            model.add(diffIDOf(op.d), { ...entry, hmac: await hmacOf(op.key, entry) });
            await service.tagAndAdd(diffIDOf(op.d), key, entry);
          } else {
            const removed = { ...entry, hmac: await hmacOf(op.key, entry) };
            const code = model.remove(removed);
            assert.deepEqual(await outcome(service.remove(removed)), { code });
          }
        }
      }
      for (const [diffID, list] of model.lists) {
        assert.deepEqual(await service.getMetadata(diffID), list);
        if (list.length === 50) fullLists++;
      }
    }),
    { numRuns, examples: examples.map((ops) => [ops]) },
  );
}

/** 70 layers added for one DiffID: a list past the 50-entry limit, whatever the random runs give. */
const PAST_THE_LIMIT: ServiceOp[] = Array.from(
  { length: 70 },
  (_, n) => ({ kind: "add" as const, d: 0, n, repo: n % 2, key: 0 }),
);

test("V2MetadataService on memory behaves as the sequential model (limit, dedup, HMAC, remove)", async () => {
  await serviceProperty(
    () => ({ fs: new MemoryFileSystem(), root: "/store" }),
    runs(0.13),
    "medium",
  );
});

test("V2MetadataService on memory behaves as the model over long sequences (past the 50-entry limit)", async () => {
  await serviceProperty(
    () => ({ fs: new MemoryFileSystem(), root: "/store" }),
    runs(0.02),
    "max",
    [PAST_THE_LIMIT],
  );
});

test("V2MetadataService on the real disk behaves as the sequential model", async () => {
  await serviceProperty(adapters.find((a) => a.real)!.fresh, runs(0.01), "small");
});

test("property runs: total", () => {
  console.log(`property_test: ${runsDone} runs, ${fullLists} lists at the 50-entry limit`);
  assert.ok(runsDone >= TOTAL, `${runsDone} runs`);
  assert.ok(fullLists > 0, "some sequences reach the 50-entry limit");
});
