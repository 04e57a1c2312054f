// A Cloudflare Worker over the core: the V2MetadataService on FSMetadataStore +
// MemoryFileSystem and on DenoKvMetadataStore + an in-memory KV, and the HMAC functions,
// behind a small HTTP API. worker_test.ts bundles it and runs it in workerd (miniflare).
import {
  type AuthConfig,
  checkV2MetadataHMAC,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  MemoryFileSystem,
  MetadataError,
  type MetadataStore,
  type V2Metadata,
  V2MetadataService,
} from "../../mod.ts";
import { DenoKvMetadataStore } from "../../src/kv_store.ts";
import { keychainFromConfig, tags } from "../../src/registry/mod.ts";
import { MemoryKv } from "../_memory_kv.ts";

interface Body {
  store?: string;
  auth?: AuthConfig | null;
  diffID?: string;
  metadata?: V2Metadata;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Created on first use: a Worker may not do work at global scope.
const stores = new Map<string, Promise<MetadataStore>>();

function store(name: string | null | undefined): Promise<MetadataStore> {
  let opened = stores.get(name ?? "fs");
  if (!opened) {
    if (name === "kv") opened = DenoKvMetadataStore.open(new MemoryKv(), { prefix: ["worker"] });
    else opened = FSMetadataStore.open("/distribution", { fs: new MemoryFileSystem() });
    stores.set(name ?? "fs", opened);
  }
  return opened;
}

function text(body: string | Uint8Array, status = 200): Response {
  const init = typeof body === "string" ? body : new Uint8Array(body);
  return new Response(init, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

async function keyOf(auth: AuthConfig | null | undefined): Promise<Uint8Array | null> {
  return await computeV2MetadataHMACKey(auth);
}

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const raw = await request.text();
  const body: Body = raw === "" ? {} : JSON.parse(raw);
  const service = new V2MetadataService(await store(body.store ?? url.searchParams.get("store")));
  switch (`${request.method} ${url.pathname}`) {
    case "GET /globals": {
      const globals = globalThis as Record<string, unknown>;
      return Response.json({
        Deno: typeof globals.Deno,
        Bun: typeof globals.Bun,
        process: typeof globals.process,
        require: typeof globals.require,
      });
    }
    case "GET /unsupported": {
      // What a worker cannot do, as typed errors: TLS settings per registry, running a helper.
      const failure = (error: { code?: string; message?: string }) => [error.code, error.message];
      const tls = await tags("127.0.0.1:1/team/app", { tls: { insecureSkipVerify: true } })
        .then(() => null, failure);
      const helper = await keychainFromConfig('{"credsStore":"desktop"}', "config.json")
        .resolve("r.test").then(() => null, failure);
      return Response.json({ tls, helper });
    }
    case "POST /hmac-key": {
      const key = await keyOf(body.auth);
      return text(key === null ? "null" : decoder.decode(key));
    }
    case "POST /tag-and-add":
      await service.tagAndAdd(body.diffID!, await keyOf(body.auth), body.metadata!);
      return new Response(null, { status: 204 });
    case "POST /add":
      await service.add(body.diffID!, body.metadata!);
      return new Response(null, { status: 204 });
    case "POST /remove":
      await service.remove(body.metadata!);
      return new Response(null, { status: 204 });
    case "POST /check":
      return text(String(await checkV2MetadataHMAC(body.metadata!, await keyOf(body.auth))));
    case "GET /metadata":
      return Response.json(await service.getMetadata(url.searchParams.get("diffID")!));
    case "GET /diffid":
      return text(await service.getDiffID(url.searchParams.get("digest")!));
    case "GET /raw": {
      // The stored bytes themselves, as dockerd would find them in the file.
      const value = await (await store(url.searchParams.get("store"))).get(
        url.searchParams.get("namespace")!,
        url.searchParams.get("key")!,
      );
      return text(value);
    }
    case "POST /raw": {
      await (await store(url.searchParams.get("store"))).set(
        url.searchParams.get("namespace")!,
        url.searchParams.get("key")!,
        encoder.encode(url.searchParams.get("value")!),
      );
      return new Response(null, { status: 204 });
    }
  }
  return text("not found", 404);
}

const STATUS: Record<string, number> = { ENOENT: 404, EINVAL: 400 };

export default {
  async fetch(request: Request): Promise<Response> {
    try {
      return await handle(request);
    } catch (error) {
      if (!(error instanceof MetadataError)) throw error;
      return text(`${error.code}: ${error.message}`, STATUS[error.code] ?? 500);
    }
  },
};
