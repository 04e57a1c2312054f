/**
 * The transport a client uses when given no `fetch`: {@linkcode nodeHttpTransport} on Node,
 * the global `fetch` everywhere else.
 *
 * @module
 */
import { runtimeName } from "../../_runtime.ts";
import { nodeHttpTransport } from "./node_http.ts";
import { fetchTransport, type Transport } from "./transport.ts";

/** The global `fetch`, looked up at each request (so a replaced one is the one called). */
const globalFetchTransport: Transport = fetchTransport((input, init) =>
  globalThis.fetch(input, init)
);

/**
 * The transport a client uses when given no `fetch`: `node:http` on Node (whose `fetch` moved
 * half the bytes per second of the others here, and reads a streamed request body without
 * backpressure), the global `fetch` everywhere else.
 *
 * @returns The runtime's default transport.
 * @example
 * ```ts
 * import { defaultTransport } from "./default_transport.ts";
 *
 * // node:http on Node; the global fetch (looked up at each request) on Deno, Bun and elsewhere.
 * const transport = defaultTransport();
 * ```
 */
export function defaultTransport(): Transport {
  return runtimeName() === "node" && nodeHttpTransport !== null
    ? nodeHttpTransport
    : globalFetchTransport;
}
