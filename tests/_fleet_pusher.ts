// One builder of upload_claims_test.ts (and of bench/fleet.ts's cold start), on any runtime:
// opens the shared metadata store named by SPEC (JSON: a Redis URL and prefix, a Deno KV SQLite
// file, a directory opened with lock: true, or a Durable Object in workerd), prints "ready",
// waits for a line on stdin, pushes the OCI layout at SPEC.layout to SPEC.ref (or copies
// SPEC.source there), and prints the layers of the result as JSON. With SPEC.stall, the upload
// of that digest never ends: it prints "stalled" and waits to be killed; with SPEC.fail, it
// prints "failing" and the push fails 5 s later.
import process from "node:process";
import { createInterface } from "node:readline";
import { FSMetadataStore, type MetadataStore, V2MetadataService } from "../mod.ts";
import { copy, ociLayoutStore, push } from "../src/registry/mod.ts";

export interface PusherSpec {
  store:
    | { kind: "redis"; url: string; prefix: string }
    | { kind: "kv"; path: string }
    | { kind: "fs"; root: string }
    | { kind: "durable-object"; url: string; object: string };
  /** Turn upload claims off (`claims: false`). */
  noClaims?: boolean;
  layout: string;
  ref: string;
  claimTtlMs?: number;
  /** A digest whose upload hangs (a builder to kill mid-upload). */
  stall?: string;
  /** A digest whose upload fails after 5 s, not retried (a builder whose push fails). */
  fail?: string;
  /** Copy this image (a registry reference) to `ref` instead of pushing the layout. */
  source?: string;
}

const spec = JSON.parse(process.argv[2]!) as PusherSpec;
const claims = spec.noClaims ? { claims: false } : {};
let store: MetadataStore;
let close = () => Promise.resolve();
if (spec.store.kind === "redis") {
  const { connect } = await import("./_redis_server.ts");
  const { RedisMetadataStore } = await import("../src/redis_store.ts");
  const client = await connect(spec.store.url);
  store = await RedisMetadataStore.open(client, { prefix: spec.store.prefix, ...claims });
  close = async () => void await client.close();
} else if (spec.store.kind === "kv") {
  const { openKv } = await import("./_open_kv.ts");
  const { DenoKvMetadataStore } = await import("../src/kv_store.ts");
  const kv = await openKv(spec.store.path);
  store = await DenoKvMetadataStore.open(kv, claims);
  close = () => Promise.resolve(kv.close());
} else if (spec.store.kind === "fs") {
  store = await FSMetadataStore.open(spec.store.root, { lock: true, ...claims });
} else {
  const { remoteStore } = await import("./_remote_store.ts");
  store = remoteStore(spec.store.url, spec.store.object);
}

/** The global fetch, where the upload of `stall` never ends and that of `fail` fails. */
const faulty: typeof fetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  if (method === "PUT" && spec.stall !== undefined && url.includes(spec.stall)) {
    process.stdout.write("stalled\n");
    return await new Promise(() => {});
  }
  if (method === "PUT" && spec.fail !== undefined && url.includes(spec.fail)) {
    process.stdout.write("failing\n");
    await new Promise((resolve) => setTimeout(resolve, 5000));
    throw new TypeError("fetch failed (the test's fault)");
  }
  return await fetch(input, init);
};

const layout = await ociLayoutStore(spec.layout);
process.stdout.write("ready\n");
await new Promise((resolve) => createInterface({ input: process.stdin }).once("line", resolve));
const shared = {
  metadataService: new V2MetadataService(store),
  ...(spec.claimTtlMs === undefined ? {} : { claimTtlMs: spec.claimTtlMs }),
};
const fetching = spec.stall === undefined && spec.fail === undefined
  ? {}
  : { fetch: faulty, retry: { attempts: 1 } };
const result = spec.source === undefined
  ? await push(spec.ref, layout, { ...shared, ...fetching, plainHttp: true })
  : await copy(spec.source, spec.ref, {
    ...shared,
    source: { plainHttp: true },
    destination: { ...fetching, plainHttp: true },
  });
process.stdout.write(JSON.stringify(result.layers) + "\n");
await close();
process.exit(0);
