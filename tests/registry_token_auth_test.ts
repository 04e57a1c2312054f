// Token auth as distribution does it: docker-registry with `auth.token` and a token server of the
// test's own issuing RS256 JWTs (x5c-signed under a CA the test makes with openssl). The library's
// keychain resolves the credentials, the HMAC key is derived from them, and skopeo sees the same.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  V2MetadataService,
} from "../mod.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";
import { dockerKeychain, ociLayoutStore, push, RegistryError, tags } from "../src/registry/mod.ts";
import { tempDir } from "./_cli.ts";
import { makeCertificates } from "./registry/_certificates.ts";
import { buildImage, type BuiltImage, noise } from "./registry/_image_builder.ts";
import { type RegistryServer, startRegistry, USERS } from "./registry/_registry_server.ts";
import { ISSUER, SERVICE, startTokenServer, type TokenServer } from "./registry/_token_server.ts";

const ALICE = { username: "alice", password: USERS.alice! };
const certificates = makeCertificates();
const temps: string[] = [];
let started: Promise<{ registry: RegistryServer; tokens: TokenServer }> | undefined;

function scratch(): string {
  const dir = tempDir();
  temps.push(dir);
  return dir;
}

after(async () => {
  const servers = await started?.catch(() => null);
  await servers?.registry.stop();
  await servers?.tokens.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  certificates.remove();
});

function servers() {
  started ??= (async () => {
    const tokens = await startTokenServer(certificates.serverCertPath, certificates.serverKeyPath);
    const registry = await startRegistry({
      token: {
        realm: tokens.realm,
        service: SERVICE,
        issuer: ISSUER,
        rootCertBundle: certificates.caPath,
      },
    });
    return { registry, tokens };
  })();
  return started;
}

async function layout(): Promise<
  { store: Awaited<ReturnType<typeof ociLayoutStore>>; image: BuiltImage }
> {
  const store = await ociLayoutStore(scratch(), { fs: nodeFileSystem });
  const image = await buildImage(store, "1.0", [[{ name: "f", data: noise(40_000, 90) }]], "oci");
  return { store, image };
}

test("push() with dockerKeychain() through token auth records under the HMAC of the keychain's credentials", async () => {
  const { registry, tokens } = await servers();
  const configFile = join(scratch(), "config.json");
  writeFileSync(
    configFile,
    JSON.stringify({ auths: { [registry.host]: { auth: btoa(`alice:${ALICE.password}`) } } }),
  );
  const keychain = await dockerKeychain({ configFile });
  const metadataService = new V2MetadataService(
    await FSMetadataStore.open(join(scratch(), "metadata"), { fs: nodeFileSystem }),
  );
  const { store, image } = await layout();
  const pushed = await push(`${registry.host}/team/app:1.0`, store, {
    keychain,
    metadataService,
    plainHttp: true,
  });
  assert.equal(pushed.digest, image.manifest.digest);
  const key = await computeV2MetadataHMACKey(ALICE);
  const [entry] = await metadataService.getMetadata(image.diffIDs[0]!);
  assert.equal(entry!.hmac, await computeV2MetadataHMAC(key, { ...entry!, hmac: "" }));
  // The token server heard alice, for this repository only.
  const asked = tokens.requests.filter((request) => request.user !== "-");
  assert.ok(asked.length > 0);
  for (const request of asked) {
    assert.equal(request.user, "alice");
    assert.deepEqual(request.scope, ["repository:team/app:pull,push"]);
  }
  assert.deepEqual(await tags(`${registry.host}/team/app`, { keychain, plainHttp: true }), ["1.0"]);
  // skopeo, with the same credentials, sees the same image (run without blocking: the token
  // server answering it lives in this process).
  const skopeo = JSON.parse(
    (await promisify(execFile)("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--creds",
      `alice:${ALICE.password}`,
      `docker://${registry.host}/team/app:1.0`,
    ], { encoding: "utf8" })).stdout,
  );
  assert.equal(skopeo.Digest, image.manifest.digest);
});

test("token auth: a wrong password is UNAUTHORIZED; anonymous callers get only what the token server grants", async () => {
  const { registry } = await servers();
  const { store } = await layout();
  await push(`${registry.host}/public/app:1.0`, store, { auth: ALICE, plainHttp: true });
  await assert.rejects(
    tags(`${registry.host}/team/app`, {
      auth: { username: "alice", password: "wrong" },
      plainHttp: true,
    }),
    (error) => error instanceof RegistryError && error.code === "UNAUTHORIZED",
  );
  assert.deepEqual(await tags(`${registry.host}/public/app`, { plainHttp: true }), ["1.0"]);
  await assert.rejects(
    tags(`${registry.host}/team/app`, { plainHttp: true }),
    (error) => error instanceof RegistryError && error.code === "UNAUTHORIZED",
  );
});
