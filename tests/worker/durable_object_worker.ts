// A Worker with a Durable Object holding a DurableObjectMetadataStore on its storage, for
// durable_object_store_test.ts (bundled with esbuild, served by miniflare in workerd).
// The Worker forwards every request to the object named by ?object= (default "fleet"):
//   GET  /conformance            the names of the conformance tests
//   POST /conformance?name=…     runs one, in the object: {ok} or {ok: false, message}
//   POST /add {diffID, metadata} V2MetadataService.add in the object
//   GET  /metadata?diffID=…      V2MetadataService.getMetadata
//   GET  /diffid?digest=…        V2MetadataService.getDiffID
//   POST /fill?count=n           n keys in the namespace "many" (of a store of its own)
//   GET  /keys?namespace=…       that store's keys() of the namespace
//   GET|PUT|DELETE /store?namespace=…&key=…   get, set, delete of the object's store
//   GET  /store?namespace=…      its keys()
//   POST /claims {method, key, …}   one call of its claims (tests/_remote_store.ts)
import { MetadataError, type V2Metadata, V2MetadataService } from "../../mod.ts";
import {
  DurableObjectMetadataStore,
  type DurableObjectStorageLike,
} from "../../src/durable_object_store.ts";
import { testStoreConformance } from "../_conformance.ts";
import { tests } from "./_node_test_shim.ts";

interface Env {
  METADATA: {
    idFromName(name: string): unknown;
    get(id: unknown): { fetch(request: Request): Promise<Response> };
  };
}

/** The storage of the object running the conformance suite (set by its constructor). */
let conformanceStorage: DurableObjectStorageLike | undefined;
let stores = 0;
testStoreConformance(
  "DurableObjectMetadataStore",
  () => DurableObjectMetadataStore.open(conformanceStorage!, { prefix: `test${++stores}:` }),
  { update: true },
);

export class MetadataObject {
  readonly #storage: DurableObjectStorageLike;
  readonly #store: Promise<DurableObjectMetadataStore>;
  readonly #service: Promise<V2MetadataService>;

  constructor(state: { storage: DurableObjectStorageLike }) {
    this.#storage = state.storage;
    this.#store = DurableObjectMetadataStore.open(state.storage, { prefix: "fleet:" });
    this.#service = this.#store.then((store) => new V2MetadataService(store));
  }

  /** The object's store over HTTP: `get`, `set`, `delete`, and `keys` without a key. */
  async #remote(request: Request, url: URL): Promise<Response> {
    const store = await this.#store;
    const namespace = url.searchParams.get("namespace")!;
    const key = url.searchParams.get("key");
    if (key === null) return Response.json(await store.keys(namespace));
    if (request.method === "GET") {
      return new Response(await store.get(namespace, key) as Uint8Array<ArrayBuffer>);
    }
    if (request.method === "PUT") {
      await store.set(namespace, key, new Uint8Array(await request.arrayBuffer()));
    } else await store.delete(namespace, key);
    return new Response(null, { status: 204 });
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      switch (`${request.method} ${url.pathname}`) {
        case "GET /conformance":
          return Response.json([...tests.keys()]);
        case "POST /conformance": {
          conformanceStorage = this.#storage;
          const run = tests.get(url.searchParams.get("name") ?? "");
          if (!run) return new Response("no such test", { status: 404 });
          try {
            await run();
            return Response.json({ ok: true });
          } catch (error) {
            return Response.json({ ok: false, message: String((error as Error).stack ?? error) });
          }
        }
        case "POST /add": {
          const body = await request.json() as { diffID: string; metadata: V2Metadata };
          await (await this.#service).add(body.diffID, body.metadata);
          return new Response(null, { status: 204 });
        }
        case "GET /metadata":
          return Response.json(
            await (await this.#service).getMetadata(url.searchParams.get("diffID")!),
          );
        case "GET /diffid":
          return new Response(
            await (await this.#service).getDiffID(url.searchParams.get("digest")!),
          );
        case "POST /fill": {
          const store = await DurableObjectMetadataStore.open(this.#storage, { prefix: "fill:" });
          const count = Number(url.searchParams.get("count"));
          for (let n = 0; n < count; n++) {
            await store.set("many", `k${String(n).padStart(5, "0")}`, new Uint8Array([n % 256]));
          }
          return new Response(null, { status: 204 });
        }
        case "GET /keys": {
          const store = await DurableObjectMetadataStore.open(this.#storage, { prefix: "fill:" });
          return Response.json(await store.keys(url.searchParams.get("namespace")!));
        }
        case "GET /store":
        case "PUT /store":
        case "DELETE /store":
          return await this.#remote(request, url);
        case "POST /claims": {
          const claims = (await this.#store).claims!;
          const call = await request.json() as {
            method: "claim" | "renew" | "release" | "get";
            key: string;
            claim: { owner: string; note: string };
            ttlMs: number;
          };
          const { key, claim, ttlMs } = call;
          if (call.method === "claim") return Response.json(await claims.claim(key, claim, ttlMs));
          if (call.method === "renew") return Response.json(await claims.renew(key, claim, ttlMs));
          if (call.method === "release") {
            return Response.json(await claims.release(key, claim.owner) ?? null);
          }
          return Response.json(await claims.get(key));
        }
        default:
          return new Response("not found", { status: 404 });
      }
    } catch (error) {
      if (!(error instanceof MetadataError)) throw error;
      return new Response(`${error.code}: ${error.message}`, {
        status: error.code === "ENOENT" ? 404 : 500,
      });
    }
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    const name = new URL(request.url).searchParams.get("object") ?? "fleet";
    return env.METADATA.get(env.METADATA.idFromName(name)).fetch(request);
  },
};
