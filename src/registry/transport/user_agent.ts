/**
 * The `User-Agent` every request of a client carries, token requests included: registries log
 * it, and an operator reading the log can tell this client from dockerd's or skopeo's.
 *
 * @module
 */
import type { Transport } from "./transport.ts";

/** The package version, kept equal to package.json's (a test compares them). */
const VERSION = "0.1.0";

/** The `User-Agent` sent when the caller names none: this package and its version. */
export const DEFAULT_USER_AGENT = `distribution-metadata/${VERSION}`;

/**
 * A transport that sends `userAgent` as the `User-Agent` of every request.
 *
 * @param transport What carries the requests.
 * @param userAgent The header's value.
 * @returns The transport.
 * @example
 * ```ts
 * import { fetchTransport } from "./transport.ts";
 * import { DEFAULT_USER_AGENT, withUserAgent } from "./user_agent.ts";
 *
 * const transport = withUserAgent(fetchTransport(globalThis.fetch), DEFAULT_USER_AGENT);
 * ```
 */
export function withUserAgent(transport: Transport, userAgent: string): Transport {
  return (request) =>
    transport({ ...request, headers: { ...request.headers, "user-agent": userAgent } });
}
