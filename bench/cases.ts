/**
 * The benchmark cases, shared by the `deno bench` file and the Bun/Node (mitata) runner.
 * Every group has a baseline: what the runtime can do at best (a raw synchronous syscall
 * sequence, a bare `crypto.subtle.sign`, a copy out of a `Map`), so the ratios say how close
 * the library gets on this machine; a case with a `target` states the ratio issue 13 asks.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStorage } from "unstorage";
import fsDriver from "unstorage/drivers/fs";
import writeFileAtomic from "write-file-atomic";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type FileSystem,
  FSMetadataStore,
  MemoryFileSystem,
  type V2Metadata,
  V2MetadataService,
} from "../mod.ts";
import { denoFileSystem } from "../src/adapters/deno.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";

/**
 * A target measured against another case of the same group, in the same run: at least
 * `atLeast` times its operations per second, or at most `atMost` times its time per operation.
 */
export interface Target {
  /** The name of the case compared with. */
  against: string;
  atLeast?: number;
  atMost?: number;
}

/** One benchmark: `ops` operations per call of `fn`. */
export interface BenchCase {
  group: string;
  name: string;
  fn: () => unknown;
  baseline?: boolean;
  ops?: number;
  /** What issue 13 asks of it: physical floors, measured on the same machine at once. */
  target?: Target;
}

/**
 * Whether a case is bound by fsync (durable writes, and the service calls made of them): it
 * times the disk as much as the code, so `interleaved.ts` syncs before each of its slices and
 * the runtimes' own bench runners leave it out.
 */
export function isDurable(c: BenchCase): boolean {
  return c.group.startsWith("set ") || c.group.startsWith("V2MetadataService");
}

/** The name for a runner that reports time per call: says how many operations a call makes. */
export function displayName(c: BenchCase): string {
  return c.ops && !c.name.endsWith(`×${c.ops}`) ? `${c.name} (${c.ops} in a row)` : c.name;
}

/** Value sizes, as in the issue: a diffid mapping is 71 B, a 50-entry list ~8 KiB. */
export const SIZES = [256, 4096] as const;
/** How group names spell a value size. */
export const sizeLabel = (size: number): string => size === 256 ? "256 B" : "4 KiB";
/** Distinct keys per set case: writes overwrite, as dockerd's do. */
const KEYS = 256;
/** Writes in flight in the concurrent set case. */
export const IN_FLIGHT = 16;
/**
 * Reads per timed call in the get cases, one after another, each awaited: a harness's own
 * cost per call (timers, its await) is near that of a whole MemoryFileSystem get.
 */
const GET_BATCH = 16;

/** The names of the cases targets are measured against. */
const RAW_READ = "raw readFileSync";
const RAW_SET = "raw open+write+fsync+close+chmod+rename";
const RAW_SET_IN_FLIGHT = `raw, fsync on the runtime's threads ×${IN_FLIGHT}`;
const ADD_FILE_OPS = "get list + 2 sets (the file operations add needs)";
const BARE_SIGN = "crypto.subtle.sign, key imported once";

/** The runtime, from its user agent (Node 20 has none). */
export const runtime: string = (globalThis as { navigator?: { userAgent?: string } }).navigator
  ?.userAgent?.split("/")[0]?.toLowerCase() ?? "node";

const hex = (i: number, salt = 0) => createHash("sha256").update(`${salt}:${i}`).digest("hex");
const keyOf = (i: number) => `sha256/${hex(i)}`;
function valueOf(size: number, seed: number): Uint8Array {
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (seed * 31 + i * 7) & 0xff;
  return value;
}

/** A `write-file-atomic` store as a user would write one: async read, durable atomic write. */
function writeFileAtomicStore(root: string) {
  const made = new Set<string>();
  return {
    get: (ns: string, key: string) => fs.promises.readFile(join(root, ns, key)),
    async set(ns: string, key: string, value: Uint8Array) {
      const path = join(root, ns, key);
      const dir = path.slice(0, path.lastIndexOf("/"));
      if (!made.has(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o755 }), made.add(dir);
      await writeFileAtomic(path, value, { mode: 0o644, fsync: true });
    },
  };
}

/** The runtime's own synchronous read: `Deno.readFileSync` on Deno, else `node:fs`. */
const rawRead = (globalThis as { Deno?: { readFileSync(path: string): Uint8Array } }).Deno
  ?.readFileSync;

/** Raw durable write, Docker's sequence with synchronous syscalls: the physical limit. */
function rawSet(path: string, value: Uint8Array): void {
  const temp = `${path.slice(0, path.lastIndexOf("/"))}/.tmp-raw`;
  const fd = fs.openSync(temp, "wx", 0o600);
  fs.writeSync(fd, value);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.chmodSync(temp, 0o644);
  fs.renameSync(temp, path);
}

/**
 * The same sequence with fsync on the runtime's own thread pool, for writes in flight
 * together: what bare syscalls reach when they overlap on this disk.
 */
async function rawSetAsync(path: string, value: Uint8Array, slot: number): Promise<void> {
  const temp = `${path.slice(0, path.lastIndexOf("/"))}/.tmp-raw${slot}`;
  const fd = fs.openSync(temp, "wx", 0o600);
  fs.writeSync(fd, value);
  await new Promise<void>((resolve, reject) =>
    fs.fsync(fd, (error) => error ? reject(error) : resolve())
  );
  fs.closeSync(fd);
  fs.chmodSync(temp, 0o644);
  fs.renameSync(temp, path);
}

/** `IN_FLIGHT` calls of `start` at once; resolves when all are done. */
function inFlight(start: (slot: number) => Promise<unknown>): Promise<unknown[]> {
  return Promise.all(Array.from({ length: IN_FLIGHT }, (_, slot) => start(slot)));
}

/** `GET_BATCH` calls of `read`, one after another, as one case. */
function batch(read: () => unknown): Pick<BenchCase, "fn" | "ops"> {
  return {
    ops: GET_BATCH,
    fn: async () => {
      for (let i = 0; i < GET_BATCH; i++) await read();
    },
  };
}

/** The adapters that run on this runtime, by name. */
function adapters(): [string, FileSystem][] {
  const list: [string, FileSystem][] = [[runtime === "bun" ? "bun" : "node", nodeFileSystem]];
  if (runtime === "deno") list.unshift(["deno", denoFileSystem]);
  return list;
}

/** Builds the fixtures (in a temp directory, removed by `cleanup`) and the case list. */
export async function makeCases(): Promise<{ cases: BenchCase[]; cleanup(): void }> {
  const root = fs.mkdtempSync(join(tmpdir(), "dm-bench-"));
  const cases: BenchCase[] = [];
  const keys = Array.from({ length: KEYS }, (_, i) => keyOf(i));
  let n = 0;
  const next = () => n = (n + 1) % KEYS;

  const stores: [string, FSMetadataStore][] = [];
  for (const [name, fileSystem] of adapters()) {
    stores.push([name, await FSMetadataStore.open(join(root, name), { fs: fileSystem })]);
  }
  const memory = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
  const unstorage = createStorage({ driver: fsDriver({ base: join(root, "unstorage") }) });
  const atomic = writeFileAtomicStore(join(root, "write-file-atomic"));

  for (const size of SIZES) {
    const label = sizeLabel(size);
    // A namespace per size: the cases of both sizes run after all fixtures are written.
    const namespace = `bench-${size}`;
    const values = keys.map((_, i) => valueOf(size, i));
    // The baselines read and write the very files of the native adapter's store.
    const rawPaths = keys.map((key) => join(stores[0]![1].root, namespace, key));
    for (let i = 0; i < KEYS; i++) {
      for (const [, store] of stores) await store.set(namespace, keys[i]!, values[i]!);
      await memory.set(namespace, keys[i]!, values[i]!);
      await unstorage.setItemRaw(`${namespace}:${keys[i]}`, values[i]);
      await atomic.set(namespace, keys[i]!, values[i]!);
    }

    const get = `get ${label}`;
    const read = rawRead ?? fs.readFileSync;
    cases.push({
      group: get,
      name: RAW_READ,
      baseline: true,
      // Synchronous, so a plain loop: awaiting would charge the baseline for a promise.
      ops: GET_BATCH,
      fn: () => {
        for (let i = 0; i < GET_BATCH; i++) read(rawPaths[next()]!);
      },
    });
    for (const [name, store] of stores) {
      cases.push({
        group: get,
        name: `FSMetadataStore ${name}`,
        ...batch(() => store.get(namespace, keys[next()]!)),
        target: { against: RAW_READ, atLeast: 0.8 },
      });
    }
    // A group of its own, so its process never reads through a disk adapter (see interleaved.ts).
    // Its floor: a Map lookup and a copy into a new ArrayBuffer, the least an owned result
    // costs, awaited as get's promise is.
    const copies = new Map(keys.map((key, i) => [key, values[i]!]));
    cases.push({
      group: `${get}, MemoryFileSystem`,
      name: "Map.get + slice (an owned copy), awaited",
      baseline: true,
      ...batch(() => Promise.resolve(copies.get(keys[next()]!)!.slice())),
    });
    cases.push({
      group: `${get}, MemoryFileSystem`,
      name: "FSMetadataStore memory",
      ...batch(() => memory.get(namespace, keys[next()]!)),
    });
    cases.push({
      group: get,
      name: "unstorage fs",
      ...batch(() => unstorage.getItemRaw(`${namespace}:${keys[next()]}`)),
    });
    cases.push({
      group: get,
      name: "write-file-atomic",
      ...batch(() => atomic.get(namespace, keys[next()]!)),
    });

    const set = `set ${label}`;
    cases.push({
      group: set,
      name: RAW_SET,
      baseline: true,
      fn: () => rawSet(rawPaths[next()]!, values[n]!),
    });
    cases.push({
      group: set,
      name: RAW_SET_IN_FLIGHT,
      ops: IN_FLIGHT,
      fn: () => inFlight((slot) => rawSetAsync(rawPaths[next()]!, values[n]!, slot)),
    });
    for (const [name, store] of stores) {
      cases.push({
        group: set,
        name: `FSMetadataStore ${name}`,
        fn: () => store.set(namespace, keys[next()]!, values[n]!),
        target: { against: RAW_SET, atLeast: 0.9 },
      });
      cases.push({
        group: set,
        name: `FSMetadataStore ${name} ×${IN_FLIGHT}`,
        ops: IN_FLIGHT,
        fn: () => inFlight(() => store.set(namespace, keys[next()]!, values[n]!)),
        target: { against: RAW_SET_IN_FLIGHT, atLeast: 0.9 },
      });
    }
    cases.push({
      group: set,
      name: "FSMetadataStore memory",
      fn: () => memory.set(namespace, keys[next()]!, values[n]!),
    });
    cases.push({
      group: set,
      name: `FSMetadataStore memory ×${IN_FLIGHT}`,
      ops: IN_FLIGHT,
      fn: () => inFlight(() => memory.set(namespace, keys[next()]!, values[n]!)),
    });
    cases.push({
      group: set,
      name: "unstorage fs (no fsync)",
      fn: () => unstorage.setItemRaw(`${namespace}:${keys[next()]}`, values[n]),
    });
    cases.push({
      group: set,
      name: "write-file-atomic",
      fn: () => atomic.set(namespace, keys[next()]!, values[n]!),
    });
    cases.push({
      group: set,
      name: `write-file-atomic ×${IN_FLIGHT}`,
      ops: IN_FLIGHT,
      fn: () => inFlight(() => atomic.set(namespace, keys[next()]!, values[n]!)),
    });
  }

  // V2MetadataService on the runtime's native adapter, lists of 1, 10 and 50 entries.
  const [native, store] = stores[0]!;
  const service = new V2MetadataService(store);
  const hmacKey = (await computeV2MetadataHMACKey({ username: "ci", password: "secret" }))!;
  const entry = (i: number, salt: number): V2Metadata => ({
    digest: `sha256:${hex(i, salt)}`,
    sourceRepository: "docker.io/library/busybox",
    hmac: "",
  });
  let fresh = 0;
  // The baseline writes the list over itself and a new mapping, as adding a new entry does.
  for (const length of [1, 10, 50]) {
    const diffID = `sha256:${hex(length, 1)}`;
    for (let i = 0; i < length; i++) await service.add(diffID, entry(i, length));
    const group = `V2MetadataService, list of ${length} (${native})`;
    const listKey = diffID.replace(":", "/");
    const listBytes = await store.get("v2metadata-by-diffid", listKey);
    const diffIDBytes = new TextEncoder().encode(diffID);
    cases.push({
      group,
      name: ADD_FILE_OPS,
      baseline: true,
      fn: async () => {
        await store.get("v2metadata-by-diffid", listKey);
        await store.set("v2metadata-by-diffid", listKey, listBytes);
        await store.set("diffid-by-digest", `sha256/${hex(fresh++, -2)}`, diffIDBytes);
      },
    });
    cases.push({ group, name: "getMetadata", fn: () => service.getMetadata(diffID) });
    if (length === 50) {
      // A new entry: the list stays at 50 as the oldest drops out.
      cases.push({
        group,
        name: "add new entry",
        fn: () => service.add(diffID, entry(fresh++, -1)),
        target: { against: ADD_FILE_OPS, atMost: 1.3 },
      });
      cases.push({
        group,
        name: "tagAndAdd new entry",
        fn: () => service.tagAndAdd(diffID, hmacKey, entry(fresh++, -1)),
      });
    } else {
      // The oldest entry moves to the end: the list keeps its length, both files change.
      let oldest = 0;
      cases.push({
        group,
        name: length === 1 ? "add existing entry (no change: no write)" : "add oldest entry again",
        fn: () => service.add(diffID, entry(oldest++ % length, length)),
      });
    }
  }

  // HMAC: ours against WebCrypto itself (the key imported once, the input ready), and
  // node:crypto's createHmac for reference.
  const tagged = entry(7, 7);
  const keyText = new TextDecoder().decode(hmacKey);
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    hmacKey as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signed = new TextEncoder().encode(tagged.digest + tagged.sourceRepository);
  cases.push({
    group: "HMAC",
    name: BARE_SIGN,
    baseline: true,
    fn: () => crypto.subtle.sign("HMAC", cryptoKey, signed),
  });
  cases.push({
    group: "HMAC",
    name: "node:crypto createHmac",
    fn: () =>
      createHmac("sha256", keyText).update(tagged.digest).update(tagged.sourceRepository).digest(
        "hex",
      ),
  });
  cases.push({
    group: "HMAC",
    name: "computeV2MetadataHMAC (cached key)",
    fn: () => computeV2MetadataHMAC(hmacKey, tagged),
    target: { against: BARE_SIGN, atMost: 1.3 },
  });
  // WebCrypto runs each call on a worker thread: the round trip, not SHA-256, is its cost,
  // and calls in flight together share it (as a push checking a whole list does).
  cases.push({
    group: "HMAC",
    name: `computeV2MetadataHMAC (cached key) ×${IN_FLIGHT}`,
    ops: IN_FLIGHT,
    fn: () => inFlight(() => computeV2MetadataHMAC(hmacKey, tagged)),
  });
  const auth = { username: "ci", password: "secret" };
  cases.push({
    group: "HMAC key",
    name: "node:crypto createHash of the JSON",
    baseline: true,
    fn: () =>
      "sha256:" +
      createHash("sha256").update(JSON.stringify(auth)).digest("hex"),
  });
  cases.push({
    group: "HMAC key",
    name: "computeV2MetadataHMACKey",
    fn: () => computeV2MetadataHMACKey(auth),
  });

  return { cases, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}
