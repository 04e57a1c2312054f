// The library against a real dockerd (Debian's docker.io, 20.10) on one live metadata store,
// <data-root>/image/vfs/distribution, both ways: what dockerd records the library reads,
// checks and mounts from; what the library records dockerd mounts from; and a pull by each
// leaves the same files. dockerd and docker-registry (htpasswd, access log kept) are started
// by the first test on 127.0.0.1 and stopped by PID after the last. Images reach dockerd by
// `docker load` of an archive built here, so no network is needed. Needs root, as dockerd does.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  computeV2MetadataHMAC,
  computeV2MetadataHMACKey,
  FSMetadataStore,
  V2MetadataService,
} from "../mod.ts";
import { ociLayoutStore, pull, push, type RegistryConfig } from "../src/registry/mod.ts";
import { runCli } from "./_cli.ts";
import {
  ALICE,
  daemons,
  dockerdHmac,
  randomLayers,
  stopDaemons,
  tempDir,
} from "./registry/_daemons.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import type { Dockerd } from "./registry/_dockerd.ts";
import { buildImage } from "./registry/_image_builder.ts";
import type { LoggedRequest } from "./registry/_registry_server.ts";

after(stopDaemons);

/** The library's view of dockerd's own store. */
async function storeOf(dockerd: Dockerd): Promise<V2MetadataService> {
  return new V2MetadataService(await FSMetadataStore.open(dockerd.distribution));
}

/** The library's registry settings for alice, recording in `metadataService`. */
async function asAlice(metadataService?: V2MetadataService): Promise<RegistryConfig> {
  const config: RegistryConfig = {
    auth: ALICE,
    hmacKey: await computeV2MetadataHMACKey(ALICE),
    plainHttp: true,
  };
  if (metadataService !== undefined) config.metadataService = metadataService;
  return config;
}

/** The mount requests of a blob into a repository, and its uploads there. */
function transfersOf(requests: LoggedRequest[], repository: string, digest: string) {
  const uploads = `/v2/${repository}/blobs/uploads/`;
  const query = (r: LoggedRequest) => new URL(r.url, "http://registry").searchParams;
  return {
    mounts: requests.filter((r) =>
      r.method === "POST" && r.url.startsWith(uploads) && query(r).get("mount") === digest
    ),
    uploads: requests.filter((r) =>
      r.method === "PUT" && r.url.startsWith(uploads) && query(r).get("digest") === digest
    ),
  };
}

test("dockerd's push: the library reads its entries, reproduces its HMACs and mounts from them", async () => {
  const { registry, dockerd } = await daemons();
  const layers = randomLayers(3);
  const ref = `${registry.host}/dockerd/pushed:1`;
  const { archive, diffIDs } = dockerArchive(ref, layers);
  await dockerd.docker(["load"], archive);
  await dockerd.docker(["push", ref]);

  // What dockerd recorded: one entry per layer, tagged with the HMAC of alice's credentials.
  const service = await storeOf(dockerd);
  const key = await computeV2MetadataHMACKey(ALICE);
  const repository = `${registry.host}/dockerd/pushed`;
  const digests: string[] = [];
  for (const diffID of diffIDs) {
    const [entry, ...rest] = await service.getMetadata(diffID);
    assert.equal(rest.length, 0);
    assert.equal(entry!.sourceRepository, repository);
    assert.equal(entry!.hmac, dockerdHmac(entry!.digest, repository));
    assert.equal(await computeV2MetadataHMAC(key, entry!), entry!.hmac);
    assert.equal(await service.getDiffID(entry!.digest), diffID);
    digests.push(entry!.digest);
  }

  // The CLI, with the docker CLI's own config.json, marks every entry as alice's.
  const target = `${registry.host}/dockerd/mounted`;
  const config = join(dockerd.clientConfig, "config.json");
  const checked = await runCli(
    ["--root", dockerd.distribution, "check", "--auth", config, "--target", target, "--json"],
  );
  assert.equal(checked.code, 0, checked.stderr);
  const rows = (JSON.parse(checked.stdout) as {
    entries: { digest: string; credentials: string; hmacMatches: boolean; verdict: string }[];
  }).entries;
  assert.deepEqual(rows.map((row) => row.digest).sort(), [...digests].sort());
  for (const row of rows) {
    assert.deepEqual([row.credentials, row.hmacMatches, row.verdict], [
      "config.json",
      true,
      "preferred",
    ]);
  }

  // The library pushes the same blobs (pulled without recording) to another repository:
  // every layer is mounted from where dockerd recorded it, none uploaded.
  const local = await ociLayoutStore(tempDir());
  await pull(ref, local, { auth: ALICE, plainHttp: true });
  await push(`${target}:1`, local, await asAlice(service));
  const requests = await registry.requests();
  for (const digest of digests) {
    const { mounts, uploads } = transfersOf(requests, "dockerd/mounted", digest);
    assert.deepEqual(
      mounts.map((r) => [new URL(r.url, registry.url).searchParams.get("from"), r.status]),
      [["dockerd/pushed", 201]],
    );
    assert.equal(uploads.length, 0);
  }
  // …and records the mount after dockerd's entry, as dockerd would.
  for (const [i, diffID] of diffIDs.entries()) {
    assert.deepEqual(await service.getMetadata(diffID), [
      {
        digest: digests[i]!,
        sourceRepository: repository,
        hmac: dockerdHmac(digests[i]!, repository),
      },
      { digest: digests[i]!, sourceRepository: target, hmac: dockerdHmac(digests[i]!, target) },
    ]);
  }
});

test("the library's push records into dockerd's store; docker push mounts every layer from there", async () => {
  const { registry, dockerd } = await daemons();
  const layers = randomLayers(3);
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", layers);
  const service = await storeOf(dockerd);
  const recorded = `${registry.host}/library/pushed`;
  await push(`${recorded}:1`, source, await asAlice(service));

  // dockerd gets the same layers by docker load: same tars, same DiffIDs, no metadata.
  const ref = `${registry.host}/library/by-dockerd:1`;
  const { archive, diffIDs } = dockerArchive(ref, layers);
  assert.deepEqual(diffIDs, image.diffIDs);
  await dockerd.docker(["load"], archive);
  await dockerd.docker(["push", ref]);

  const requests = (await registry.requests()).filter((r) => r.userAgent.startsWith("docker/"));
  const target = `${registry.host}/library/by-dockerd`;
  for (const [i, layer] of image.layers.entries()) {
    const { mounts, uploads } = transfersOf(requests, "library/by-dockerd", layer.digest);
    assert.deepEqual(
      mounts.map((r) => [new URL(r.url, registry.url).searchParams.get("from"), r.status]),
      [["library/pushed", 201]],
    );
    assert.equal(uploads.length, 0);
    // dockerd recorded its mount after the library's entry, tagged with the same key.
    assert.deepEqual(await service.getMetadata(image.diffIDs[i]!), [
      {
        digest: layer.digest,
        sourceRepository: recorded,
        hmac: dockerdHmac(layer.digest, recorded),
      },
      { digest: layer.digest, sourceRepository: target, hmac: dockerdHmac(layer.digest, target) },
    ]);
  }
});

test("docker pull and the library's pull of one image leave equivalent entries", async () => {
  const { registry, dockerd } = await daemons();
  const source = await ociLayoutStore(tempDir());
  const image = await buildImage(source, "1", randomLayers(2));
  const ref = `${registry.host}/pulled/app:1`;
  const repository = `${registry.host}/pulled/app`;
  await push(ref, source, { auth: ALICE, plainHttp: true });
  await dockerd.docker(["pull", ref]);

  // Without an HMAC key the library records what dockerd does (`Add`, untagged): the same
  // bytes and modes, file for file.
  const untagged = join(tempDir(), "distribution");
  const config = { auth: ALICE, plainHttp: true };
  const untaggedService = new V2MetadataService(await FSMetadataStore.open(untagged));
  await pull(ref, await ociLayoutStore(tempDir()), { ...config, metadataService: untaggedService });
  for (const [i, diffID] of image.diffIDs.entries()) {
    for (
      const file of [
        join("v2metadata-by-diffid", "sha256", diffID.slice("sha256:".length)),
        join("diffid-by-digest", "sha256", image.layers[i]!.digest.slice("sha256:".length)),
      ]
    ) {
      const [byDockerd, byLibrary] = [join(dockerd.distribution, file), join(untagged, file)];
      assert.equal(readFileSync(byLibrary, "utf8"), readFileSync(byDockerd, "utf8"), file);
      assert.equal(statSync(byLibrary).mode & 0o777, statSync(byDockerd).mode & 0o777, file);
    }
  }

  // With the key, the one deliberate difference (SPEC Part 4, docs/registry.md): the same
  // entry, tagged with the HMAC dockerd itself would give it on push.
  const tagged = new V2MetadataService(await FSMetadataStore.open(join(tempDir(), "d")));
  await pull(ref, await ociLayoutStore(tempDir()), await asAlice(tagged));
  const dockerdService = await storeOf(dockerd);
  for (const [i, diffID] of image.diffIDs.entries()) {
    const digest = image.layers[i]!.digest;
    assert.deepEqual(await dockerdService.getMetadata(diffID), [
      { digest, sourceRepository: repository, hmac: "" },
    ]);
    assert.deepEqual(await tagged.getMetadata(diffID), [
      { digest, sourceRepository: repository, hmac: dockerdHmac(digest, repository) },
    ]);
  }
});
