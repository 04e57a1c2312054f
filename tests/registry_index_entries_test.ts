// An image index listing 10,000 manifests, served by a hostile registry on 127.0.0.1: pull
// (platform "all") and copy stop at LIMITS.indexEntries with TOO_LARGE after the index's own
// request, instead of fetching and copying every entry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copy, LIMITS, ociLayoutStore, pull, RegistryError } from "../src/registry/mod.ts";
import { type HostileServer, startHostile } from "./registry/_hostile_server.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** An index of `count` distinct (absent) linux/amd64 manifests. */
function index(count: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: Array.from({ length: count }, (_, n) => ({
      mediaType: OCI_MANIFEST,
      digest: "sha256:" + n.toString(16).padStart(64, "0"),
      size: 100,
      platform: { os: "linux", architecture: "amd64" },
    })),
  }));
}

async function withServers(fn: (source: HostileServer, target: HostileServer) => Promise<void>) {
  const servers = await Promise.all([startHostile(), startHostile()]);
  try {
    await fn(servers[0], servers[1]);
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }
}

function assertTooLarge(error: unknown): true {
  assert.ok(error instanceof RegistryError, String(error));
  assert.equal(error.code, "TOO_LARGE", error.message);
  assert.match(error.message, /10000 manifests, more than LIMITS\.indexEntries \(1000\)/);
  return true;
}

/** The requests for manifests other than the index's tag. */
const entryRequests = (server: HostileServer) =>
  server.log.filter((r) => r.url.pathname.includes("/manifests/sha256:")).length;

test("LIMITS.indexEntries is 1,000", () => {
  assert.equal(LIMITS.indexEntries, 1_000);
});

test("pull() of an index with 10,000 manifests fails with TOO_LARGE before fetching any", async () => {
  await withServers(async (source) => {
    source.manifests.set("1.0", { type: OCI_INDEX, body: index(10_000) });
    const dir = mkdtempSync(join(tmpdir(), "index-entries-"));
    try {
      await assert.rejects(
        pull(`${source.host}/team/app:1.0`, await ociLayoutStore(dir), {
          plainHttp: true,
          platform: "all",
        }),
        assertTooLarge,
      );
      assert.equal(entryRequests(source), 0);
      assert.deepEqual(readdirSync(join(dir, "blobs")), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("copy() of an index with 10,000 manifests fails with TOO_LARGE; nothing reaches the destination", async () => {
  await withServers(async (source, target) => {
    source.manifests.set("1.0", { type: OCI_INDEX, body: index(10_000) });
    await assert.rejects(
      copy(`${source.host}/team/app:1.0`, `${target.host}/team/app:1.0`, {
        source: { plainHttp: true },
        destination: { plainHttp: true },
      }),
      assertTooLarge,
    );
    assert.equal(entryRequests(source), 0);
    assert.ok(!target.log.some((r) => r.method !== "GET" && r.method !== "HEAD"));
  });
});

test("an index of exactly LIMITS.indexEntries manifests is read (the entries are then fetched)", async () => {
  await withServers(async (source) => {
    source.manifests.set("1.0", { type: OCI_INDEX, body: index(LIMITS.indexEntries) });
    const dir = mkdtempSync(join(tmpdir(), "index-entries-"));
    try {
      // The first entry is absent from the registry: the pull got past the index.
      await assert.rejects(
        pull(`${source.host}/team/app:1.0`, await ociLayoutStore(dir), {
          plainHttp: true,
          platform: "all",
        }),
        (error: unknown) => error instanceof RegistryError && error.code !== "TOO_LARGE",
      );
      assert.ok(entryRequests(source) > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
