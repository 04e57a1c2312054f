/**
 * The transport a client uses when given no `fetch`: {@linkcode nodeHttpTransport} on Node,
 * the global `fetch` everywhere else; with a registry's own TLS settings, each runtime's way of
 * giving them to one registry only (see docs/registry.md, "TLS").
 *
 * @module
 */
import { denoNamespace, nodeBuiltin, runtimeName } from "../../_runtime.ts";
import { RegistryError } from "../errors.ts";
import { nodeHttpTransport, nodeHttpTransportWith, type NodeTlsOptions } from "./node_http.ts";
import { fetchTransport, type Transport } from "./transport.ts";

/** The global `fetch`, looked up at each request (so a replaced one is the one called). */
const globalFetchTransport: Transport = fetchTransport((input, init) =>
  globalThis.fetch(input, init)
);

/** The part of Deno's namespace that sets TLS per client. */
interface DenoHttpClients {
  createHttpClient?(options: { caCerts?: string[]; cert?: string; key?: string }): unknown;
}

/** TLS for one registry, as dockerd takes it from `/etc/docker/certs.d/<host>/`. */
export interface TlsOptions {
  /** CA certificates (PEM) trusted for this registry, besides the runtime's own. */
  caCertificates?: string[];
  /** A client certificate (PEM, its chain after it), for a registry that asks for one. */
  certificate?: string;
  /** The client certificate's private key (PEM). */
  key?: string;
  /**
   * Accept any certificate, as dockerd does for its `insecure-registries`: no protection
   * against a machine in the middle, credentials included.
   */
  insecureSkipVerify?: boolean;
}

/** The `node:http` transport with `tls`, or the error saying this runtime has none. */
function nodeTlsTransport(tls: NodeTlsOptions): Transport {
  const transport = nodeHttpTransportWith(tls);
  if (transport !== null) return transport;
  throw new RegistryError(
    "UNSUPPORTED",
    "Cannot use TLS options: this runtime has neither Deno.createHttpClient, Bun's fetch nor node:https (workers cannot set TLS per registry)",
  );
}

/** The CAs to trust: the runtime's own and the registry's (Node and Bun take a whole list). */
function withRootCertificates(extra: string[]): string[] {
  const tls = nodeBuiltin<{ rootCertificates: readonly string[] }>("node:tls", "connect");
  return [...tls?.rootCertificates ?? [], ...extra];
}

/**
 * The transport of a registry with TLS settings of its own: on Deno a `Deno.createHttpClient`
 * (its `node:https` when verification is off, which Deno's client cannot turn off), on Bun
 * `fetch`'s `tls`, on Node an agent of its own for the `node:http` transport.
 *
 * @throws {RegistryError} `UNSUPPORTED` where the runtime cannot (workers), or for a client
 * certificate without its key.
 */
function tlsTransport(tls: TlsOptions): Transport {
  const { caCertificates = [], certificate, key, insecureSkipVerify = false } = tls;
  if ((certificate === undefined) !== (key === undefined)) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot use a client ${certificate === undefined ? "key" : "certificate"} without its ${
        certificate === undefined ? "certificate" : "key"
      }`,
    );
  }
  const client = {
    ...certificate === undefined ? {} : { cert: certificate },
    ...key ? { key } : {},
  };
  const createHttpClient = denoNamespace<DenoHttpClients>()?.createHttpClient;
  if (createHttpClient !== undefined && !insecureSkipVerify) {
    const httpClient = createHttpClient({ caCerts: caCertificates, ...client });
    return fetchTransport((input, init) =>
      fetch(input, { ...init, client: httpClient } as unknown as RequestInit)
    );
  }
  // Unverified, no CA is consulted: the runtime's own are not read (Deno's node:tls would ask
  // for --allow-sys to read them).
  const ca = insecureSkipVerify
    ? { ca: caCertificates }
    : caCertificates.length === 0
    ? {}
    : { ca: withRootCertificates(caCertificates) };
  const verify = { rejectUnauthorized: !insecureSkipVerify };
  if (runtimeName() === "bun") {
    const options = { ...ca, ...client, ...verify };
    return fetchTransport((input, init) =>
      fetch(input, { ...init, tls: options } as unknown as RequestInit)
    );
  }
  return nodeTlsTransport({ ...ca, ...client, ...verify });
}

/**
 * The transport a client uses when given no `fetch`: `node:http` on Node (whose `fetch` moved
 * half the bytes per second of the others here, and reads a streamed request body without
 * backpressure), the global `fetch` everywhere else; with `tls`, one that gives this registry's
 * TLS settings to the runtime.
 *
 * @param tls The registry's own TLS settings, if any.
 * @returns The runtime's default transport.
 * @throws {RegistryError} `UNSUPPORTED` when `tls` is given where the runtime cannot use it.
 * @example
 * ```ts
 * import { defaultTransport } from "./default_transport.ts";
 *
 * // node:http on Node; the global fetch (looked up at each request) on Deno, Bun and elsewhere.
 * const transport = defaultTransport();
 * ```
 */
export function defaultTransport(tls?: TlsOptions): Transport {
  if (tls !== undefined) return tlsTransport(tls);
  return runtimeName() === "node" && nodeHttpTransport !== null
    ? nodeHttpTransport
    : globalFetchTransport;
}
