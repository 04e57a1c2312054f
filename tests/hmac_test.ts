import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import {
  checkV2MetadataHMAC,
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type V2Metadata,
} from "../mod.ts";

const text = (bytes: Uint8Array | null) => bytes && new TextDecoder().decode(bytes);
const sha256 = (input: string) => "sha256:" + createHash("sha256").update(input).digest("hex");
const meta: V2Metadata = {
  digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
  sourceRepository: "docker.io/library/busybox",
  hmac: "",
};

test("computeV2MetadataHMACKey() of {} is the known 71-byte key", async () => {
  const key = await computeV2MetadataHMACKey({});
  assert.equal(key?.length, 71);
  assert.equal(
    text(key),
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  );
  assert.equal(
    text(await computeV2MetadataHMACKey({ email: "a@b", serveraddress: "r" })),
    text(key),
  );
});

test("computeV2MetadataHMACKey() without auth is null", async () => {
  assert.equal(await computeV2MetadataHMACKey(null), null);
  assert.equal(await computeV2MetadataHMACKey(undefined), null);
});

test("computeV2MetadataHMACKey() hashes the non-empty fields in Go's order and escaping", async () => {
  const key = await computeV2MetadataHMACKey({
    registrytoken: "r",
    identitytoken: "",
    auth: "YTpi",
    password: 'p<"&>',
    username: "u",
    email: "ignored",
  });
  assert.equal(
    text(key),
    sha256(
      '{"username":"u","password":"p\\u003c\\"\\u0026\\u003e","auth":"YTpi","registrytoken":"r"}',
    ),
  );
});

test("computeV2MetadataHMAC() is HMAC-SHA256 of digest then repository", async () => {
  const key = await computeV2MetadataHMACKey({ username: "u", password: "p" });
  const expected = createHmac("sha256", key!).update(meta.digest + meta.sourceRepository).digest(
    "hex",
  );
  assert.equal(await computeV2MetadataHMAC(key, meta), expected);
  assert.equal(await computeV2MetadataHMAC(key, { ...meta, hmac: "ignored" }), expected);
  assert.equal(
    await computeV2MetadataHMAC(key, { ...meta, sourceRepository: "é" }),
    createHmac("sha256", key!).update(meta.digest + "é").digest("hex"),
  );
});

test("computeV2MetadataHMAC() without a key or metadata is empty", async () => {
  assert.equal(await computeV2MetadataHMAC(null, meta), "");
  assert.equal(await computeV2MetadataHMAC(new Uint8Array(), meta), "");
  assert.equal(await computeV2MetadataHMAC(new Uint8Array([1]), null), "");
});

test("checkV2MetadataHMAC() follows Go's rules", async () => {
  const key = await computeV2MetadataHMACKey({ username: "u" });
  const other = await computeV2MetadataHMACKey({ username: "v" });
  const hmac = await computeV2MetadataHMAC(key, meta);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac }, key), true);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: hmac.toUpperCase() }, key), true);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac }, other), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: hmac.slice(1) }, key), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: hmac.slice(2) }, key), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: "zz" + hmac.slice(2) }, key), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: ` ${hmac}` }, key), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: "" }, null), true);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: "" }, new Uint8Array()), true);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac: "" }, key), false);
  assert.equal(await checkV2MetadataHMAC({ ...meta, hmac }, null), false);
});

test("computeV2MetadataHMAC() gives the same answer for equal keys in different arrays", async () => {
  const key = await computeV2MetadataHMACKey({ password: "x" });
  const first = await computeV2MetadataHMAC(key, meta);
  assert.equal(await computeV2MetadataHMAC(key!.slice(), meta), first);
  const mutated = key!.slice();
  mutated[0] = 0;
  assert.notEqual(await computeV2MetadataHMAC(mutated, meta), first);
});

test("computeV2MetadataHMAC() follows a key array changed in place after use", async () => {
  const key = (await computeV2MetadataHMACKey({ password: "in place" }))!;
  const hmacOf = (bytes: Uint8Array) =>
    createHmac("sha256", bytes).update(meta.digest + meta.sourceRepository).digest("hex");
  assert.equal(await computeV2MetadataHMAC(key, meta), hmacOf(key)); // cached from here on
  key[0] = 0x41;
  assert.equal(await computeV2MetadataHMAC(key, meta), hmacOf(key));
  assert.ok(await checkV2MetadataHMAC({ ...meta, hmac: hmacOf(key) }, key));
});

test("computeV2MetadataHMAC() encodes digest and repository apart: lone surrogates never pair", async () => {
  const key = await computeV2MetadataHMACKey({ username: "u" });
  const odd = { digest: "sha256:\ud83d", sourceRepository: "\ude00r", hmac: "" };
  const encoder = new TextEncoder();
  const expected = createHmac("sha256", key!)
    .update(encoder.encode(odd.digest)).update(encoder.encode(odd.sourceRepository)).digest("hex");
  assert.equal(await computeV2MetadataHMAC(key, odd), expected);
});
