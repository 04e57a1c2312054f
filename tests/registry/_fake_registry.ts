// An in-memory registry behind a fetch function, for tests of request order and selection
// logic only (the real server is tested in registry_integration_test.ts).
import { createHash } from "node:crypto";

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | null;
  status: number;
}

export interface FakeRegistry {
  fetch: typeof fetch;
  log: FakeRequest[];
  /** repository path → digest → bytes */
  blobs: Map<string, Map<string, Uint8Array>>;
  manifests: Map<string, { type: string; body: Uint8Array }>;
  /** Answer a request before the fake does (return null to go on). */
  hook: ((req: FakeRequest) => Response | null) | null;
}

function digest(data: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function error(status: number, code: string): Response {
  return new Response(JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export function fakeRegistry(base = "http://fake.test"): FakeRegistry {
  const blobs = new Map<string, Map<string, Uint8Array>>();
  const manifests = new Map<string, { type: string; body: Uint8Array }>();
  const uploads = new Map<string, { repo: string; data: Uint8Array[] }>();
  const log: FakeRequest[] = [];
  let next = 0;
  const registry: FakeRegistry = {
    log,
    blobs,
    manifests,
    hook: null,
    // A streamed body is read whole first, as a server would receive it.
    fetch: async (input, init) =>
      init?.body instanceof ReadableStream
        ? handle(input, {
          ...init,
          body: new Uint8Array(await new Response(init.body).arrayBuffer()),
        })
        : await Promise.resolve().then(() => handle(input, init)),
  };
  const handle = (input: RequestInfo | URL, init?: RequestInit): Response => {
    {
      const url = new URL(String(input));
      const method = init?.method ?? "GET";
      const headers = new Headers(init?.headers);
      const req: FakeRequest = {
        method,
        path: url.pathname,
        query: url.searchParams,
        authorization: headers.get("authorization"),
        status: 0,
      };
      log.push(req);
      const body = init?.body === undefined || init.body === null
        ? new Uint8Array()
        : typeof init.body === "string"
        ? new TextEncoder().encode(init.body)
        : new Uint8Array(init.body as Uint8Array);
      const answer = (response: Response) => {
        req.status = response.status;
        return response;
      };
      const hooked = registry.hook?.(req) ?? null;
      if (hooked !== null) return answer(hooked);
      if (!url.toString().startsWith(base)) throw new TypeError("fetch failed");
      const path = url.pathname;
      if (path === "/v2/") return answer(new Response("{}", { status: 200 }));
      let m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(path);
      if (m) {
        const repo = m[1]!;
        const id = m[2]!;
        if (method === "POST") {
          const mount = url.searchParams.get("mount");
          const from = url.searchParams.get("from");
          if (mount && from && blobs.get(from)?.has(mount)) {
            if (!blobs.has(repo)) blobs.set(repo, new Map());
            blobs.get(repo)!.set(mount, blobs.get(from)!.get(mount)!);
            return answer(
              new Response(null, { status: 201, headers: { "docker-content-digest": mount } }),
            );
          }
          const uid = `u${next++}`;
          uploads.set(uid, { repo, data: [] });
          return answer(
            new Response(null, {
              status: 202,
              headers: { location: `/v2/${repo}/blobs/uploads/${uid}` },
            }),
          );
        }
        const upload = uploads.get(id);
        if (upload === undefined) return answer(error(404, "BLOB_UPLOAD_UNKNOWN"));
        if (method === "PATCH") {
          upload.data.push(body);
          return answer(
            new Response(null, {
              status: 202,
              headers: { location: `/v2/${repo}/blobs/uploads/${id}` },
            }),
          );
        }
        if (method === "PUT") {
          upload.data.push(body);
          const all = new Uint8Array(upload.data.reduce((n, d) => n + d.length, 0));
          let o = 0;
          for (const d of upload.data) {
            all.set(d, o);
            o += d.length;
          }
          const d = url.searchParams.get("digest")!;
          if (digest(all) !== d) return answer(error(400, "DIGEST_INVALID"));
          if (!blobs.has(repo)) blobs.set(repo, new Map());
          blobs.get(repo)!.set(d, all);
          uploads.delete(id);
          return answer(
            new Response(null, { status: 201, headers: { "docker-content-digest": d } }),
          );
        }
        if (method === "DELETE") {
          uploads.delete(id);
          return answer(new Response(null, { status: 204 }));
        }
      }
      m = /^\/v2\/(.+)\/blobs\/(.+)$/.exec(path);
      if (m) {
        const data = blobs.get(m[1]!)?.get(m[2]!);
        if (data === undefined) {
          return answer(
            method === "HEAD" ? new Response(null, { status: 404 }) : error(404, "BLOB_UNKNOWN"),
          );
        }
        const h = { "content-length": String(data.length), "docker-content-digest": m[2]! };
        return answer(
          new Response(method === "HEAD" ? null : data as Uint8Array<ArrayBuffer>, {
            status: 200,
            headers: h,
          }),
        );
      }
      m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(path);
      if (m) {
        const key = `${m[1]}:${m[2]}`;
        if (method === "PUT") {
          const entry = { type: headers.get("content-type") ?? "", body };
          manifests.set(key, entry);
          manifests.set(`${m[1]}:${digest(body)}`, entry);
          return answer(
            new Response(null, { status: 201, headers: { "docker-content-digest": digest(body) } }),
          );
        }
        const found = manifests.get(key);
        if (found === undefined) return answer(error(404, "MANIFEST_UNKNOWN"));
        return answer(
          new Response(method === "HEAD" ? null : found.body as Uint8Array<ArrayBuffer>, {
            status: 200,
            headers: { "content-type": found.type, "docker-content-digest": digest(found.body) },
          }),
        );
      }
      return answer(error(404, "NAME_UNKNOWN"));
    }
  };
  return registry;
}
