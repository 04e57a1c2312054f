// A child process for redis_store_test.ts, on any runtime: connects to the Redis server at
// URL and adds entries FIRST..FIRST+COUNT-1, IN_FLIGHT at a time, each to DIFFID, or to a
// DiffID of its own when DIFFID is "disjoint". An add that fails (the server restarting) is
// tried again until it is acknowledged; each acknowledged entry is printed as "ack <n>".
import process from "node:process";
import { V2MetadataService } from "../mod.ts";
import { RedisMetadataStore } from "../src/redis_store.ts";
import { connect } from "./_redis_server.ts";

const [url, prefix, diffID, first, count, inFlight] = process.argv.slice(2);
const client = await connect(url!);
const store = await RedisMetadataStore.open(client, { prefix: prefix!, timeoutMs: 2_000 });
const service = new V2MetadataService(store);
const numbers = Array.from({ length: Number(count) }, (_, i) => Number(first) + i);
let retries = 0;
/** As _conformance.ts's fakeDigest, which this script cannot import (it loads node:test). */
const fakeDigest = (n: number) => "sha256:" + n.toString(16).padStart(64, "0");

async function addUntilAcknowledged(n: number): Promise<void> {
  for (;;) {
    try {
      await service.add(diffID === "disjoint" ? fakeDigest(1_000_000 + n) : diffID!, {
        digest: fakeDigest(n),
        sourceRepository: `registry.example.com/writer/${first}`,
        hmac: "",
      });
      process.stdout.write(`ack ${n}\n`);
      return;
    } catch {
      retries++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

let next = 0;
await Promise.all(
  Array.from({ length: Number(inFlight) }, async () => {
    while (next < numbers.length) await addUntilAcknowledged(numbers[next++]!);
  }),
);
process.stdout.write(`retries ${retries}\n`);
client.destroy();
