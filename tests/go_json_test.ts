import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeV2MetadataList, encodeV2MetadataList, goQuote } from "../src/_go_json.ts";
import { MetadataError } from "../mod.ts";

const encoder = new TextEncoder();
const decode = (text: string | Uint8Array) =>
  decodeV2MetadataList(typeof text === "string" ? encoder.encode(text) : text);
const entry = (digest: string, sourceRepository = "", hmac = "") => ({
  digest,
  sourceRepository,
  hmac,
});

test("goQuote() escapes exactly as Go's encoding/json (>= 1.22)", () => {
  const cases: [string, string][] = [
    ["plain/path:tag", '"plain/path:tag"'],
    ['q"b\\', '"q\\"b\\\\"'],
    ["\n\r\t", '"\\n\\r\\t"'],
    ["\b\f", '"\\b\\f"'],
    ["\u0000\u0001\u001f", '"\\u0000\\u0001\\u001f"'],
    ["<>&", '"\\u003c\\u003e\\u0026"'],
    ["\u2028\u2029", '"\\u2028\\u2029"'],
    ["\u007f\u0080\u009f\ufeff", '"\u007f\u0080\u009f\ufeff"'],
    ["🐳é/", '"🐳é/"'],
    ["lone\ud800", '"lone\ufffd"'],
    ["\udc00x", '"\ufffdx"'],
  ];
  for (const [input, expected] of cases) {
    assert.equal(goQuote(input), expected, JSON.stringify(input));
  }
});

test("encodeV2MetadataList() writes Go's compact form with keys in order", () => {
  const bytes = encodeV2MetadataList([entry("sha256:a", "docker.io/x", "ff"), entry("sha256:b")]);
  assert.equal(
    new TextDecoder().decode(bytes),
    '[{"Digest":"sha256:a","SourceRepository":"docker.io/x","HMAC":"ff"},' +
      '{"Digest":"sha256:b","SourceRepository":"","HMAC":""}]',
  );
});

/** The list as goQuote writes each field: what Go's json.Marshal gives. */
function quotedList(list: { digest: string; sourceRepository: string; hmac: string }[]): string {
  const objects = list.map((m) =>
    `{"Digest":${goQuote(m.digest)},"SourceRepository":${goQuote(m.sourceRepository)},` +
    `"HMAC":${goQuote(m.hmac)}}`
  );
  return `[${objects.join(",")}]`;
}

test("encodeV2MetadataList() quotes every string as goQuote does", () => {
  const text = (list: Parameters<typeof quotedList>[0]) =>
    new TextDecoder().decode(encodeV2MetadataList(list));
  // Lone surrogates at both ends of the range, a backslash before "ud800", HTML characters,
  // U+2028, control characters, a surrogate pair.
  const tricky = [
    "\\ud800",
    "\ud800",
    "\udfff",
    "\ud7ff\ue000",
    "a<b>&c",
    "\u2028",
    "\u0000\u001f\u007f",
    "\\u003c",
    "\ud83d\udc33",
  ];
  for (const value of tricky) {
    const list = [entry("sha256:a", value, "ff"), entry(value)];
    assert.equal(text(list), quotedList(list), JSON.stringify(value));
  }
  const field = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.string({ unit: fc.constantFrom("\\", "u", "d", "8", "c", "<", "\ud800", "\udc00", "a") }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.record({ digest: field, sourceRepository: field, hmac: field }), {
        maxLength: 4,
      }),
      (list) => text(list) === quotedList(list),
    ),
    { numRuns: 2000 },
  );
});

test("decodeV2MetadataList() reads what the encoder writes", () => {
  const list = [entry("sha256:a", 'r<>&\u2028\b\u0001"\\🐳', "00"), entry("", "", "")];
  assert.deepEqual(decode(encodeV2MetadataList(list)), list);
});

test("decodeV2MetadataList() is lenient as Go's decoder", () => {
  const cases: [string, ReturnType<typeof entry>[]][] = [
    ["null", []],
    [" \n[]\t", []],
    ['[{"digest":"a","sourcerepository":"b","hmac":"c"}]', [entry("a", "b", "c")]],
    ['[{"DIGEST":"a","Extra":{"x":[1,2,{"Digest":5}]},"HMAC":null}]', [entry("a")]],
    ['[{"Digest":"a","Digest":"b"}]', [entry("b")]],
    ['[{"digest":"a","Digest":"b","digest":"c"}]', [entry("c")]],
    ['[{"Digeſt":"a","ſourceRepoſitory":"b","hmac":"c"}]', [entry("a", "b", "c")]],
    ['[{"dıgest":"a"}]', [entry("")]], // Go: "ı" folds only to itself
    ["[null,{}]", [entry(""), entry("")]],
    ['[{"Digest":"\\ud800x\\udc00\\ud83d\\udc33"}]', [entry("\ufffdx\ufffd🐳")]],
    ['[{"Digest":"\\u003c\\/"}]', [entry("</")]],
  ];
  for (const [text, expected] of cases) assert.deepEqual(decode(text), expected, text);
});

test("decodeV2MetadataList() replaces invalid UTF-8 bytes one by one, as Go", () => {
  const bytes = new Uint8Array([
    ...encoder.encode('[{"Digest":"a'),
    0xff,
    0xe2,
    0x82,
    0xed,
    0xa0,
    0x80,
    ...encoder.encode('b"}]'),
  ]);
  assert.deepEqual(decode(bytes), [entry("a" + "\ufffd".repeat(6) + "b")]);
});

test("decodeV2MetadataList() rejects wrong shapes and broken JSON with EBADMSG", () => {
  const bad = [
    "",
    "{}",
    '"x"',
    "5",
    "[5]",
    '[{"Digest":5}]',
    '[{"HMAC":true}]',
    '[{"Digest":"a"}',
    '[{"Digest":"a"}] x',
    "[{'Digest':'a'}]",
    '[{"Digest":"a\u0001"}]',
    '[{"Digest":"\\x"}]',
    "\ufeff[]",
    "[1,]",
    "[01]",
    "nul",
    "[".repeat(10_001) + "]".repeat(10_001),
  ];
  for (const text of bad) {
    assert.throws(() => decode(text), (error: unknown) => {
      assert.ok(error instanceof MetadataError);
      assert.equal(error.code, "EBADMSG");
      return true;
    }, text.slice(0, 40));
  }
});

test("decodeV2MetadataList() reports a wrong type only after checking the whole text", () => {
  assert.throws(() => decode('[5, {"a":}]'), /invalid JSON/);
  assert.throws(() => decode('[5, {"a":1}]'), /not an object/);
});
