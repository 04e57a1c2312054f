/**
 * The transport a client uses when given no `fetch`: {@linkcode nodeHttpTransport} on Node,
 * the global `fetch` everywhere else.
 *
 * @module
 */
import { nodeHttpTransport } from "./node_http.ts";
import { fetchTransport, type Transport } from "./transport.ts";

/** The global `fetch`, looked up at each request (so a replaced one is the one called). */
const globalFetchTransport: Transport = fetchTransport((input, init) =>
  globalThis.fetch(input, init)
);

/**
 * Whether this is Node itself: `navigator.userAgent` is `Node.js/…` from Node 21 and absent in
 * 20; Deno, Bun and workerd, which have a `process` too, name themselves (and their `fetch` is
 * fast and uploads a streamed body in bounded memory).
 *
 * @returns `true` on Node.
 */
export function isNode(): boolean {
  const globals = globalThis as {
    Deno?: unknown;
    Bun?: unknown;
    navigator?: { userAgent?: string };
    process?: { versions?: { node?: string } };
  };
  if (globals.Deno !== undefined || globals.Bun !== undefined) return false;
  const agent = globals.navigator?.userAgent;
  return typeof globals.process?.versions?.node === "string" &&
    (agent === undefined || agent.startsWith("Node.js/"));
}

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
  return isNode() && nodeHttpTransport !== null ? nodeHttpTransport : globalFetchTransport;
}
