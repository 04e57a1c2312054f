// RedisMetadataStore against a real redis-server started on 127.0.0.1 by the tests, with
// node-redis as the client; writers in other processes of the running runtime.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { MetadataError, V2MetadataService } from "../mod.ts";
import { RedisMetadataStore } from "../src/redis_store.ts";
import { fakeDigest, rejectsWithCode, testStoreConformance } from "./_conformance.ts";
import { connect, freshStore, RedisServer } from "./_redis_server.ts";
import { runtimeName } from "./_runtime.ts";
import { startWriter, writerResult } from "./_writer_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One server and client for the file's tests that need no server of their own. */
let shared:
  | Promise<{ server: RedisServer; client: Awaited<ReturnType<typeof connect>> }>
  | undefined;
function sharedClient() {
  return (shared ??= (async () => {
    const server = await RedisServer.start();
    return { server, client: await connect(server.url) };
  })()).then(({ client }) => client);
}
after(async () => {
  if (!shared) return;
  const { server, client } = await shared;
  client.destroy();
  await server.stop();
});

testStoreConformance("RedisMetadataStore", async () => freshStore(await sharedClient()), {
  update: true,
});

/** Runs _redis_writer.ts in another process of this runtime; the entries it acknowledged. */
async function runWriter(
  args: string[],
  onAck?: (n: number) => void,
): Promise<{ acked: number[]; retries: number }> {
  const writer = startWriter("./_redis_writer.ts", args, onAck && { onAck });
  const { acked, report } = await writerResult(writer);
  // "retries <n>"
  return { acked, retries: Number(report.split(" ")[1]) };
}

test("RedisMetadataStore: values live at <prefix><cleaned path> as plain strings", async () => {
  const client = await sharedClient();
  const store = await RedisMetadataStore.open(client, { prefix: "raw:" });
  await store.set("./v1id/", "/registry:5000//v2,abc", encoder.encode("sha256:1"));
  assert.equal(await client.get("raw:v1id/registry:5000/v2,abc"), "sha256:1");
  await client.set("raw:v1id/other", "from redis-cli");
  assert.equal(decoder.decode(await store.get("v1id", "other")), "from redis-cli");
  assert.deepEqual(await store.keys("v1id"), ["other", "registry:5000/v2,abc"]);
});

test("RedisMetadataStore: a prefix with glob characters lists only its own keys", async () => {
  const client = await sharedClient();
  const star = await RedisMetadataStore.open(client, { prefix: "g*[x]?\\:" });
  const other = await RedisMetadataStore.open(client, { prefix: "gA[x]?\\:" });
  await star.set("ns", "a", encoder.encode("1"));
  await other.set("ns", "b", encoder.encode("2"));
  assert.deepEqual(await star.keys("ns"), ["a"]);
});

test("RedisMetadataStore: a key holding a Redis list is EBADMSG", async () => {
  const client = await sharedClient();
  const store = await freshStore(client);
  await client.rPush(`${store.prefix}ns/list`, "x");
  await rejectsWithCode(store.get("ns", "list"), "EBADMSG");
});

test("RedisMetadataStore: a value over maxValueBytes is EFBIG, read or written", async () => {
  const client = await sharedClient();
  const store = await freshStore(client, { maxValueBytes: 1024 });
  // Written by someone else: 2 MiB, which the server never sends.
  await client.set(`${store.prefix}ns/huge`, "x".repeat(2 * 1024 * 1024));
  await assert.rejects(store.get("ns", "huge"), {
    name: "MetadataError",
    code: "EFBIG",
    message: `Cannot get "ns/huge" at "${store.prefix}ns/huge": the value is 2097152 bytes, ` +
      "more than the store's maxValueBytes (1024)",
  });
  await rejectsWithCode(store.update("ns", "huge", () => null), "EFBIG");
  await rejectsWithCode(store.set("ns", "key", new Uint8Array(1025)), "EFBIG");
  await rejectsWithCode(store.update("ns", "key", () => new Uint8Array(1025)), "EFBIG");
  await rejectsWithCode(store.get("ns", "key"), "ENOENT");
  await store.set("ns", "key", new Uint8Array(1024));
  assert.equal((await store.get("ns", "key")).length, 1024);
});

test("RedisMetadataStore.update() calls in flight on one key lose nothing", async () => {
  const store = await freshStore(await sharedClient());
  await Promise.all(
    Array.from(
      { length: 30 },
      (_, n) => store.update("ns", "log", (old) => new Uint8Array([...old ?? [], n])),
    ),
  );
  assert.deepEqual(
    [...await store.get("ns", "log")].sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, n) => n),
  );
});

test(`RedisMetadataStore: 8 ${runtimeName} processes adding 6 entries each to one DiffID keep all 48`, async () => {
  const client = await sharedClient();
  const store = await freshStore(client);
  const diffID = fakeDigest(0x4848);
  const url = (await shared)!.server.url;
  const writers = await Promise.all(
    Array.from(
      { length: 8 },
      (_, w) => runWriter([url, store.prefix, diffID, String(w * 100), "6", "6"]),
    ),
  );
  const expected = Array.from(
    { length: 8 },
    (_, w) => Array.from({ length: 6 }, (_, i) => w * 100 + i),
  )
    .flat();
  assert.deepEqual(writers.flatMap((w) => w.acked).sort((a, b) => a - b), expected);
  const service = new V2MetadataService(store);
  const list = await service.getMetadata(diffID);
  assert.deepEqual(list.map((m) => m.digest).sort(), expected.map((n) => fakeDigest(n)).sort());
  for (const n of expected) assert.equal(await service.getDiffID(fakeDigest(n)), diffID);
});

test(`RedisMetadataStore: 8 ${runtimeName} processes × 500 adds on disjoint DiffIDs keep all 4000`, async () => {
  const client = await sharedClient();
  const store = await freshStore(client);
  const url = (await shared)!.server.url;
  await Promise.all(
    Array.from(
      { length: 8 },
      (_, w) => runWriter([url, store.prefix, "disjoint", String(w * 1000), "500", "16"]),
    ),
  );
  const lists = await store.keys("v2metadata-by-diffid");
  assert.equal(lists.length, 4000);
  assert.equal((await store.keys("diffid-by-digest")).length, 4000);
  const service = new V2MetadataService(store);
  for (const w of [0, 7]) {
    for (const i of [0, 499]) {
      const n = w * 1000 + i;
      const diffID = fakeDigest(1_000_000 + n);
      assert.deepEqual((await service.getMetadata(diffID)).map((m) => m.digest), [fakeDigest(n)]);
      assert.equal(await service.getDiffID(fakeDigest(n)), diffID);
    }
  }
});

test("RedisMetadataStore: a server killed and restarted mid-run (appendonly) loses no acknowledged add", async () => {
  const server = await RedisServer.start({ appendOnly: true });
  const client = await connect(server.url);
  try {
    let acks = 0;
    let restarted: Promise<void> | undefined;
    const onAck = () => {
      // After 150 acknowledged adds: kill -9, then start again on the same files.
      if (++acks === 150) {
        restarted = server.stop("SIGKILL").then(() =>
          new Promise((resolve) => setTimeout(resolve, 300))
        ).then(() => server.restart());
      }
    };
    const writers = await Promise.all([
      runWriter([server.url, "aof:", "disjoint", "0", "200", "4"], onAck),
      runWriter([server.url, "aof:", "disjoint", "5000", "200", "4"], onAck),
    ]);
    assert.ok(restarted, "the server was restarted");
    await restarted;
    const acked = writers.flatMap((w) => w.acked);
    assert.equal(acked.length, 400);
    console.log(`adds retried across the restart: ${writers.map((w) => w.retries).join(", ")}`);
    const service = new V2MetadataService(
      await RedisMetadataStore.open(client, { prefix: "aof:" }),
    );
    for (const n of acked) {
      const diffID = fakeDigest(1_000_000 + n);
      assert.deepEqual((await service.getMetadata(diffID)).map((m) => m.digest), [fakeDigest(n)]);
      assert.equal(await service.getDiffID(fakeDigest(n)), diffID);
    }
  } finally {
    client.destroy();
    await server.stop();
  }
});

test("RedisMetadataStore: a server that is down fails each call with a typed error in bounded time", async () => {
  const server = await RedisServer.start();
  const client = await connect(server.url);
  try {
    const store = await RedisMetadataStore.open(client, { timeoutMs: 300 });
    await store.set("ns", "key", encoder.encode("v"));
    await server.stop("SIGKILL");
    for (
      const call of [() => store.get("ns", "key"), () => store.update("ns", "key", () => null)]
    ) {
      const start = Date.now();
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof MetadataError, `expected a MetadataError, got ${error}`);
        // Queued while the client reconnects (ETIMEDOUT), or failed with the dropped socket.
        assert.match(error.code, /^(ETIMEDOUT|ECONNRESET|ECONNREFUSED|EPIPE|EIO)$/, error.message);
        assert.match(error.message, /^Cannot (get|update) "ns\/key" at "ns\/key": /);
        return true;
      });
      assert.ok(Date.now() - start < 1_300, `answered after ${Date.now() - start} ms`);
    }
  } finally {
    client.destroy();
  }
});

test("RedisMetadataStore.open() refuses a negative timeout", async () => {
  await rejectsWithCode(
    RedisMetadataStore.open(await sharedClient(), { timeoutMs: -1 }),
    "EINVAL",
  );
});
