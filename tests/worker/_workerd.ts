// The test worker (tests/worker/durable_object_worker.ts) bundled with esbuild (node:test
// swapped for a recorder, so the shared conformance suite runs inside the Durable Object) and
// served by miniflare in workerd on 127.0.0.1.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

const bundle = await build({
  entryPoints: [fileURLToPath(new URL("./durable_object_worker.ts", import.meta.url))],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  alias: { "node:test": fileURLToPath(new URL("./_node_test_shim.ts", import.meta.url)) },
  external: ["node:assert", "node:assert/strict"],
});

/** A workerd process serving the worker, its storage kept in `persist`, and how to call it. */
export class Workerd {
  readonly miniflare: Miniflare;
  readonly url: URL;

  private constructor(miniflare: Miniflare, url: URL) {
    this.miniflare = miniflare;
    this.url = url;
  }

  static async start(persist: string, useSQLite: boolean): Promise<Workerd> {
    const miniflare = new Miniflare({
      modules: true,
      script: bundle.outputFiles[0]!.text,
      compatibilityDate: "2025-01-01",
      compatibilityFlags: ["nodejs_compat"],
      durableObjects: { METADATA: { className: "MetadataObject", useSQLite } },
      durableObjectsPersist: persist,
      host: "127.0.0.1",
      port: 0,
    });
    return new Workerd(miniflare, await miniflare.ready);
  }

  async call(path: string, body?: unknown): Promise<Response> {
    const request = () =>
      fetch(new URL(path, this.url), {
        // A new connection each time where the runtime allows it (Bun).
        keepalive: false,
        method: body === undefined ? "GET" : "POST",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    try {
      return await request();
    } catch {
      // A kept-alive connection that workerd closed meanwhile (Node: "fetch failed", Bun:
      // ECONNRESET) fails before any answer: once more. Every call here may run twice (a
      // conformance test on a fresh prefix, an add of an entry already added, a read).
      return await request();
    }
  }
}
