// A MetadataStore in another process: the Durable Object of tests/worker/durable_object_worker.ts
// reached over HTTP, as a fleet's builders reach the Worker in front of theirs. get, set,
// delete, keys and claims (no update: the service then locks per key in each process, which
// the claim tests do not need).
import { type Claim, MetadataError, type MetadataStore, type UploadClaims } from "../mod.ts";

/** The store of the object `object` of the worker at `url`. */
export function remoteStore(url: string, object: string): MetadataStore {
  const at = (namespace: string, key?: string) => {
    const address = new URL("/store", url);
    address.searchParams.set("object", object);
    address.searchParams.set("namespace", namespace);
    if (key !== undefined) address.searchParams.set("key", key);
    return address;
  };
  const answer = async (response: Response, what: string): Promise<Response> => {
    if (response.ok) return response;
    const text = await response.text();
    throw new MetadataError(response.status === 404 ? "ENOENT" : "EIO", `${what}: ${text}`);
  };
  const call = async (body: Record<string, unknown>): Promise<unknown> => {
    const address = new URL(`/claims?object=${object}`, url);
    const response = await fetch(address, { method: "POST", body: JSON.stringify(body) });
    return await (await answer(response, `claims ${body.method}`)).json();
  };
  const claims: UploadClaims = {
    claim: async (key, claim, ttlMs) => await call({ method: "claim", key, claim, ttlMs }) as Claim,
    renew: async (key, claim, ttlMs) =>
      await call({ method: "renew", key, claim, ttlMs }) as boolean,
    release: async (key, owner) => {
      await call({ method: "release", key, claim: { owner, note: "" } });
    },
    get: async (key) => await call({ method: "get", key }) as Claim | null,
  };
  return {
    get: async (namespace, key) =>
      new Uint8Array(
        await (await answer(await fetch(at(namespace, key)), `get ${namespace}/${key}`))
          .arrayBuffer(),
      ),
    set: async (namespace, key, value) => {
      const init = { method: "PUT", body: value.slice() as Uint8Array<ArrayBuffer> };
      await answer(await fetch(at(namespace, key), init), `set ${namespace}/${key}`);
    },
    delete: async (namespace, key) => {
      const init = { method: "DELETE" };
      await answer(await fetch(at(namespace, key), init), `delete ${namespace}/${key}`);
    },
    keys: async (namespace) => await (await answer(await fetch(at(namespace)), "keys")).json(),
    claims,
  };
}
