// RedisMetadataStore.keys() bounded against a hostile server (a raw RESP server on 127.0.0.1
// whose SCAN never ends, which a real redis-server cannot be made to do) and, for the normal
// case and keys that are not UTF-8, against a real redis-server; copy-store through the CLI.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { MetadataError } from "../mod.ts";
import { RedisMetadataStore, type RedisMetadataStoreOptions } from "../src/redis_store.ts";
import { rejectsWithCode } from "./_conformance.ts";
import { tempDir } from "./_adapters.ts";
import { runCli } from "./_cli.ts";
import { connect, freshStore, RedisServer } from "./_redis_server.ts";

const encoder = new TextEncoder();

/** RESP for a SCAN reply: the next cursor and a batch of keys. */
function scanReply(cursor: string, keys: string[]): Buffer {
  const bulk = (text: string) => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
  return Buffer.from(`*2\r\n${bulk(cursor)}*${keys.length}\r\n${keys.map(bulk).join("")}`);
}

/** Reads RESP commands (arrays of bulk strings) off a connection. */
function commands(socket: Socket, onCommand: (args: string[]) => void): void {
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const args: string[] = [];
      let at = pending.indexOf("\r\n");
      if (at < 0 || pending[0] !== 0x2a) return; // "*"
      const count = Number(pending.subarray(1, at).toString());
      let offset = at + 2;
      for (let i = 0; i < count; i++) {
        at = pending.indexOf("\r\n", offset);
        if (at < 0) return;
        const length = Number(pending.subarray(offset + 1, at).toString());
        if (pending.length < at + 2 + length + 2) return;
        args.push(pending.subarray(at + 2, at + 2 + length).toString());
        offset = at + 2 + length + 2;
      }
      pending = pending.subarray(offset);
      onCommand(args);
    }
  });
}

/**
 * A RESP server answering every SCAN through `scan` (given the cursor sent, the reply's next
 * cursor and keys) and anything else (the client's handshake) with +OK. Counts the SCANs.
 */
async function hostileRedis(
  scan: (cursor: string) => [string, string[]],
): Promise<{ url: string; scans: () => number; close: () => Promise<void> }> {
  let scans = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    commands(socket, (args) => {
      if (args[0]?.toUpperCase() !== "SCAN") return void socket.write("+OK\r\n");
      scans++;
      socket.write(scanReply(...scan(args[1]!)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    scans: () => scans,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `fn` with a store on a hostile server, closing both whatever happens. */
async function withHostile(
  scan: (cursor: string) => [string, string[]],
  options: RedisMetadataStoreOptions,
  fn: (store: RedisMetadataStore, scans: () => number) => Promise<void>,
): Promise<void> {
  const server = await hostileRedis(scan);
  const client = await connect(server.url);
  try {
    await fn(await RedisMetadataStore.open(client, options), server.scans);
  } finally {
    client.destroy();
    await server.close();
  }
}

let fresh = 0;
/** `count` keys never sent before, under `ns/`. */
const newKeys = (count: number) => Array.from({ length: count }, () => `ns/k${++fresh}`);

test("RedisMetadataStore.keys() fails with ELOOP when SCAN returns a cursor it returned before", async () => {
  // 1 → 2 → 1 → …, with new keys every time: without the check this never ends.
  await withHostile(
    (cursor) => [cursor === "1" ? "2" : "1", newKeys(1000)],
    {},
    async (store, scans) => {
      await assert.rejects(store.keys("ns"), (error: unknown) => {
        assert.ok(error instanceof MetadataError);
        assert.equal(error.code, "ELOOP", error.message);
        assert.equal(
          error.message,
          'Cannot list "ns" at "ns/": the server returned the SCAN cursor 1 twice',
        );
        return true;
      });
      assert.equal(scans(), 3);
    },
  );
});

test("RedisMetadataStore.keys() fails with E2BIG past maxKeys when every cursor is new", async () => {
  let next = 0;
  await withHostile(
    () => [String(++next), newKeys(1000)],
    { maxKeys: 20_000 },
    async (store, scans) => {
      await rejectsWithCode(store.keys("ns"), "E2BIG");
      assert.equal(scans(), 21);
    },
  );
});

test("RedisMetadataStore.keys() fails with ETIMEDOUT after scanTimeoutMs when SCAN finds nothing for ever", async () => {
  let next = 0;
  await withHostile(() => [String(++next), []], { scanTimeoutMs: 300 }, async (store, scans) => {
    await assert.rejects(store.keys("ns"), {
      name: "MetadataError",
      code: "ETIMEDOUT",
      message: 'Cannot list "ns" at "ns/": the scan took longer than 300 ms',
    });
    assert.ok(scans() > 1);
  });
});

test("RedisMetadataStore.open() refuses limits that are not numbers >= 0", async () => {
  for (const options of [{ maxKeys: -1 }, { scanTimeoutMs: Number.NaN }]) {
    await rejectsWithCode(
      RedisMetadataStore.open({ sendCommand: () => Promise.resolve(null) }, options),
      "EINVAL",
    );
  }
});

// ---- a real redis-server ------------------------------------------------------------------

const server = await RedisServer.start();
const client = await connect(server.url);
after(async () => {
  client.destroy();
  await server.stop();
});

test("RedisMetadataStore.keys() lists 2,500 keys of a real server, up to exactly maxKeys", async () => {
  const store = await freshStore(client, { maxKeys: 2_500 });
  const keys = Array.from({ length: 2_500 }, (_, n) => `k${String(n).padStart(4, "0")}`);
  await client.mSet(keys.map((key) => [`${store.prefix}ns/${key}`, "v"] as [string, string]));
  // Other namespaces' keys do not count.
  await client.set(`${store.prefix}other/x`, "v");
  assert.deepEqual(await store.keys("ns"), keys);
  await client.set(`${store.prefix}ns/one-more`, "v");
  await rejectsWithCode(store.keys("ns"), "E2BIG");
});

/** Sets a key made of the prefix, `ns/` and raw bytes. */
async function setRawKey(prefix: string, bytes: number[]): Promise<void> {
  const key = Buffer.concat([Buffer.from(`${prefix}ns/`), Buffer.from(bytes)]);
  await client.sendCommand(["SET", key, "v"]);
}

test("RedisMetadataStore.keys() fails with EILSEQ naming a key that is not UTF-8, escaped", async () => {
  const store = await freshStore(client);
  await store.set("ns", "fine", encoder.encode("v"));
  await setRawKey(store.prefix, [0x61, 0xff, 0x0a, 0x62]);
  await assert.rejects(store.keys("ns"), (error: unknown) => {
    assert.ok(error instanceof MetadataError);
    assert.equal(error.code, "EILSEQ");
    assert.equal(
      error.message,
      `Cannot list "ns" at "${store.prefix}ns/": the key "${store.prefix}ns/a\\xff\\x0ab" is not UTF-8`,
    );
    return true;
  });
});

test("copy-store from Redis with a key that is not UTF-8 names it and writes nothing", async () => {
  const prefix = "utf8:";
  const store = await RedisMetadataStore.open(client, { prefix });
  await store.set("v1id", "registry,1", encoder.encode("sha256:1"));
  const key = Buffer.concat([
    Buffer.from(`${prefix}diffid-by-digest/sha256/`),
    Buffer.from([0xc3]),
  ]);
  await client.sendCommand(["SET", key, "sha256:2"]);
  const destination = join(tempDir("dm-redis-scan-"), "distribution");
  const run = await runCli(["copy-store", `${server.url}?prefix=${prefix}`, destination], {
    denoPermissions: ["--allow-write", "--allow-net", "--unstable-kv"],
  });
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /Cannot list "diffid-by-digest" at "utf8:diffid-by-digest\/": the key "utf8:diffid-by-digest\/sha256\/\\xc3" is not UTF-8/,
  );
  // Listed before anything is written: the destination has no key at all.
  assert.deepEqual(readdirSync(destination), []);
});
