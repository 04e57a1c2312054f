// The `tls` option against docker-registry over https with a CA the test makes (openssl): the
// CA trusted for one registry, client certificates (mTLS, `http.tls.clientcas`), verification
// off, and certificate failures that say what would fix them, on Deno, Bun and Node.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { ociLayoutStore, push, RegistryError, tags } from "../src/registry/mod.ts";
import { tempDir } from "./_cli.ts";
import { runtimeName } from "./_runtime.ts";
import { makeCertificates } from "./registry/_certificates.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry } from "./registry/_registry_server.ts";

const certificates = makeCertificates();
const servers: Promise<RegistryServer>[] = [];

after(async () => {
  for (const server of servers) await (await server.catch(() => null))?.stop();
  certificates.remove();
});

function registry(clientCertificates: boolean): Promise<RegistryServer> {
  const started = startRegistry({
    tls: {
      certificate: certificates.serverCertPath,
      key: certificates.serverKeyPath,
      ...clientCertificates ? { clientCAs: [certificates.caPath] } : {},
    },
  });
  servers.push(started);
  return started;
}

const https = registry(false);
const mutual = registry(true);

async function pushImage(host: string, tls: Record<string, unknown>): Promise<void> {
  const store = await ociLayoutStore(tempDir(), { fs: nodeFileSystem });
  await buildImage(store, "1.0", [[{ name: "file", data: noise(50_000, 7) }]], "oci");
  await push(`${host}/team/app:1.0`, store, { tls });
}

/** How `promise` failed: its code, reason, and whether its message is one line. */
async function failure(promise: Promise<unknown>): Promise<[string, string | undefined, string]> {
  const error = await promise.then(() => null, (error) => error);
  assert.ok(error instanceof RegistryError, String(error));
  assert.ok(!error.message.includes("\n"), JSON.stringify(error.message));
  return [error.code, error.reason, error.message];
}

test("tls.caCertificates trusts a private CA for one registry: push and tags over https", async () => {
  const server = await https;
  await pushImage(server.host, { caCertificates: [certificates.ca] });
  assert.deepEqual(
    await tags(`${server.host}/team/app`, { tls: { caCertificates: [certificates.ca] } }),
    [
      "1.0",
    ],
  );
});

test("a registry whose CA is not trusted fails UNREACHABLE, saying to trust its CA", async () => {
  const server = await https;
  const [code, reason, message] = await failure(tags(`${server.host}/team/app`));
  assert.equal(code, "UNREACHABLE");
  assert.equal(reason, "certificate untrusted");
  assert.equal(
    message,
    `Cannot GET "https://${server.host}/v2/": the registry's certificate is signed by an unknown authority (trust its CA: tls.caCertificates)`,
  );
});

test("tls.insecureSkipVerify accepts the registry's certificate unverified", async () => {
  const server = await https;
  await pushImage(server.host, { insecureSkipVerify: true });
  assert.deepEqual(await tags(`${server.host}/team/app`, { tls: { insecureSkipVerify: true } }), [
    "1.0",
  ]);
});

test("tls.certificate and tls.key answer a registry that asks for a client certificate", async () => {
  const server = await mutual;
  const tls = {
    caCertificates: [certificates.ca],
    certificate: certificates.clientCert,
    key: certificates.clientKey,
  };
  await pushImage(server.host, tls);
  assert.deepEqual(await tags(`${server.host}/team/app`, { tls }), ["1.0"]);
  const [code, reason, message] = await failure(
    tags(`${server.host}/team/app`, { tls: { caCertificates: [certificates.ca] } }),
  );
  assert.equal(code, "UNREACHABLE");
  // Deno's TLS 1.3 client can finish its handshake before the server's alert arrives: the
  // refusal then reads as a closed connection, which says nothing about certificates.
  if (runtimeName === "deno" && reason === undefined) assert.match(message, /fetch failed/);
  else assert.equal(reason, "client certificate refused", message);
});

test("tls refuses a certificate without its key, and a caller's fetch beside it, as UNSUPPORTED", async () => {
  const server = await https;
  const [code, , message] = await failure(
    tags(`${server.host}/team/app`, { tls: { certificate: certificates.clientCert } }),
  );
  assert.deepEqual([code, message], [
    "UNSUPPORTED",
    "Cannot use a client certificate without its key",
  ]);
  const [fetchCode] = await failure(
    tags(`${server.host}/team/app`, { tls: { insecureSkipVerify: true }, fetch: globalThis.fetch }),
  );
  assert.equal(fetchCode, "UNSUPPORTED");
});
