// DurableObjectMetadataStore in the real workerd runtime: tests/worker/durable_object_worker.ts
// is bundled with esbuild (node:test swapped for a recorder, so the shared conformance suite
// runs inside the Durable Object) and served by miniflare on 127.0.0.1.
// @needs workerd (miniflare)
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "./_adapters.ts";
import { fakeDigest } from "./_conformance.ts";
import { Workerd } from "./worker/_workerd.ts";

for (
  const { storage, useSQLite } of [
    { storage: "key-value storage", useSQLite: false },
    { storage: "SQLite storage", useSQLite: true },
  ]
) {
  /** Where the objects keep their storage, so that a second workerd sees the first one's data. */
  const persist = tempDir("dm-durable-object-");
  let workerd = await Workerd.start(persist, useSQLite);
  after(() => workerd.miniflare.dispose());
  const label = `DurableObjectMetadataStore on ${storage} in workerd`;
  const names: string[] = await (await workerd.call("/conformance?object=conformance")).json();

  test(`${label}: the conformance suite is there to run`, () => {
    // Every conformance test (20 and more), recorded inside the Durable Object.
    assert.ok(names.length >= 20, `only ${names.length} tests`);
    assert.ok(
      names.includes(
        "DurableObjectMetadataStore: keys() lists a namespace as get() takes its keys, sorted",
      ),
    );
  });

  for (const name of names) {
    test(name.replace("DurableObjectMetadataStore", label), async () => {
      const response = await workerd.call(
        `/conformance?object=conformance&name=${encodeURIComponent(name)}`,
        {},
      );
      assert.equal(response.status, 200);
      const result: { ok: boolean; message?: string } = await response.json();
      assert.ok(result.ok, result.message ?? "");
    });
  }

  test(`${label}: 4 × 45 concurrent requests adding to 4 DiffIDs lose nothing, and a new workerd reads them back`, async () => {
    const diffIDs = [0, 1, 2, 3].map((d) => fakeDigest(0xd0 + d));
    const entry = (d: number, n: number) => ({
      digest: fakeDigest(d * 1000 + n),
      sourceRepository: `registry.example.com/builder/${n}`,
      hmac: "",
    });
    const responses = await Promise.all(
      diffIDs.flatMap((diffID, d) =>
        Array.from(
          { length: 45 },
          (_, n) => workerd.call("/add", { diffID, metadata: entry(d, n) }),
        )
      ),
    );
    assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([204]));

    const check = async () => {
      for (const [d, diffID] of diffIDs.entries()) {
        const list = await (await workerd.call(`/metadata?diffID=${diffID}`)).json();
        assert.deepEqual(
          list.map((m: { digest: string }) => m.digest).sort(),
          Array.from({ length: 45 }, (_, n) => entry(d, n).digest).sort(),
        );
        for (const n of [0, 44]) {
          const mapping = await workerd.call(`/diffid?digest=${entry(d, n).digest}`);
          assert.equal(await mapping.text(), diffID);
        }
      }
    };
    await check();
    await workerd.miniflare.dispose();
    workerd = await Workerd.start(persist, useSQLite);
    await check();
  });

  test(`${label}: keys() pages through 2 500 keys (list() gives 1 000 at a time)`, async () => {
    assert.equal((await workerd.call("/fill?object=keys&count=2500", {})).status, 204);
    const keys: string[] = await (await workerd.call("/keys?object=keys&namespace=many")).json();
    assert.deepEqual(
      keys,
      Array.from({ length: 2500 }, (_, n) => `k${String(n).padStart(5, "0")}`),
    );
  });

  test(`${label}: a missing DiffID is ENOENT`, async () => {
    const response = await workerd.call(`/metadata?diffID=${fakeDigest(0xdead)}`);
    assert.equal(response.status, 404);
    assert.match(
      await response.text(),
      /^ENOENT: Cannot get "v2metadata-by-diffid\/sha256\/0+dead" at "fleet:v2metadata-by-diffid\/sha256\/0+dead"/,
    );
  });
}
