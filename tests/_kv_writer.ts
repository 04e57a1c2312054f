// A child process for kv_store_test.ts, on any runtime: opens the SQLite file given as the
// first argument with Deno KV (Deno.openKv, or @deno/kv on Node and Bun) and adds entries
// FIRST..FIRST+COUNT-1 to one DiffID (or each to its own, for DIFFID "disjoint"), several at
// a time. Prints "ack <n>" as each add is acknowledged, then the number of "database is
// locked" answers it rode out, as JSON.
import { V2MetadataService } from "../mod.ts";
import process from "node:process";
import { DenoKvMetadataStore, type Kv, type KvKey } from "../src/kv_store.ts";
import { openKv } from "./_open_kv.ts";

const [path, diffID, first, count] = process.argv.slice(2);
// Opening the file can answer "database is locked" too while the other writer opens it:
// openKv retries.
const kv = await openKv(path!);
let locked = 0;
const counted = <T>(call: () => Promise<T>): Promise<T> =>
  call().catch((error) => {
    if (/database is locked/.test(String(error))) locked++;
    throw error;
  });
// Counts what reaches the store; the store itself retries.
const counting: Kv = {
  get: (key) => counted(() => kv.get(key)),
  getMany: (keys) => counted(() => kv.getMany(keys)),
  atomic() {
    const operation = kv.atomic();
    const wrapper = {
      check: (...checks: { key: KvKey; versionstamp: string | null }[]) => (
        operation.check(...checks), wrapper
      ),
      set: (key: KvKey, value: unknown) => (operation.set(key, value), wrapper),
      delete: (key: KvKey) => (operation.delete(key), wrapper),
      commit: () => counted(() => operation.commit()),
    };
    return wrapper;
  },
};
const service = new V2MetadataService(await DenoKvMetadataStore.open(counting));
const numbers = Array.from({ length: Number(count) }, (_, i) => Number(first) + i);
const digest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");
for (let i = 0; i < numbers.length; i += 5) {
  await Promise.all(
    numbers.slice(i, i + 5).map(async (n) => {
      // DIFFID "disjoint": each entry to a DiffID of its own.
      await service.add(diffID === "disjoint" ? digest(1_000_000 + n) : diffID!, {
        digest: digest(n),
        sourceRepository: `registry.example.com/writer/${first}`,
        hmac: "",
      });
      process.stdout.write(`ack ${n}\n`);
    }),
  );
}
kv.close();
process.stdout.write(JSON.stringify({ locked }) + "\n");
