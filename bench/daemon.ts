/**
 * dockerd against this project on one image, all in one run (issue 23, item 5): a real dockerd
 * 20.10 (vfs, its own data root, exec root and socket, as the tests start it) and a
 * docker-registry on 127.0.0.1.
 *
 *     npm run bench:daemon -- [--scale 0.25]
 *
 * The image: 8 layers of random data, 1, 4, 16, 32, 64, 64, 128 and 512 MiB times `--scale`.
 * (a) The image is in the registry and `docker load`ed into a dockerd that knows nothing of it:
 *     `docker push` alone (layer bytes uploaded, wall time) against `link` (with and without
 *     `--no-verify`) then `docker push`.
 * (b) The image only in dockerd (`docker load`ed, nothing recorded): `copy docker-daemon:…
 *     docker://…` against `docker push` and `skopeo copy docker-daemon:…`, each to a repository
 *     of its own, each after dockerd forgot and loaded the image again.
 * (c) `copy docker://… docker-daemon:…` against `docker pull` and `skopeo copy`, each into a
 *     dockerd without the image; then `docker push` of each copy to another repository: layers
 *     mounted. `docker load` of the archive from local disk is the floor of a copy through
 *     `POST /images/load`.
 * (d) Right after (b)'s copy, the same copy again: every layer found (no layer compressed or
 *     uploaded), by the CLI and by `copyFromDockerd()` in-process.
 * `--cases` picks some of them (default `abcd`). `--runs N` runs (b)'s copy and skopeo's N times
 * each, one after the other in turn, and reports each time and the medians.
 * Between steps dockerd forgets the image and its distribution metadata. The CLI runs as a
 * process of the runtime this script runs on (`deno run -A bench/daemon.ts` by default),
 * measured with /usr/bin/time.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { copyFromDockerd, link } from "../src/registry/mod.ts";
import { runCli } from "../tests/_cli.ts";
import { type Dockerd, startDockerd } from "../tests/registry/_dockerd.ts";
import { imageConfig, tarHeader } from "../tests/registry/_image_builder.ts";
import { type RegistryServer, startRegistry } from "../tests/registry/_registry_server.ts";

const LAYERS_MIB = [1, 4, 16, 32, 64, 64, 128, 512];
const MiB = 1 << 20;

/** A peak RSS in MiB, or `?` where no GNU time measured it. */
const mib = (kib: number | null) => kib === null ? "?" : String(Math.round(kib / 1024));

const { values } = parseArgs({
  options: {
    scale: { type: "string", default: "0.25" },
    cases: { type: "string", default: "abcd" },
    runs: { type: "string", default: "1" },
  },
});
const scale = Number(values.scale);
const cases = new Set(values.cases);
const runs = Math.max(1, Number(values.runs));

/** The middle value (the mean of the two middle ones for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function padding(size: number): Uint8Array {
  return new Uint8Array((512 - (size % 512)) % 512);
}

/** Writes a `docker save` archive of the image to `path`, a layer at a time. */
function writeArchive(
  path: string,
  repoTag: string,
): { diffIDs: string[]; bytes: number[]; configDigest: string } {
  const fd = openSync(path, "w");
  const diffIDs: string[] = [];
  const bytes: number[] = [];
  const names: string[] = [];
  for (const [i, mib] of LAYERS_MIB.entries()) {
    const size = Math.round(mib * scale * MiB);
    const data = randomFillSync(new Uint8Array(size));
    const parts = [tarHeader(`layer-${i}.bin`, size), data, padding(size), new Uint8Array(1024)];
    const tarSize = parts.reduce((n, part) => n + part.length, 0);
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part);
    const diffID = `sha256:${hash.digest("hex")}`;
    const name = `${diffID.slice(7)}/layer.tar`;
    for (const part of [tarHeader(name, tarSize), ...parts, padding(tarSize)]) writeSync(fd, part);
    diffIDs.push(diffID);
    bytes.push(size);
    names.push(name);
  }
  const config = imageConfig(diffIDs);
  const configHex = createHash("sha256").update(config).digest("hex");
  const configName = `${configHex}.json`;
  const manifest = new TextEncoder().encode(
    JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: names }]),
  );
  for (const [name, data] of [[configName, config], ["manifest.json", manifest]] as const) {
    for (const part of [tarHeader(name, data.length), data, padding(data.length)]) {
      writeSync(fd, part);
    }
  }
  writeSync(fd, new Uint8Array(1024));
  closeSync(fd);
  return { diffIDs, bytes, configDigest: `sha256:${configHex}` };
}

/** Runs a program; rejects when it fails. */
function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => stderr += chunk);
    child.on("error", reject);
    child.on(
      "close",
      (code) => code === 0 ? resolve() : reject(new Error(`${program}: ${stderr}`)),
    );
  });
}

/** dockerd forgets every image and all it recorded about layers. */
async function forget(dockerd: Dockerd): Promise<void> {
  const ids = (await dockerd.docker(["image", "ls", "--quiet", "--no-trunc"])).stdout.trim();
  if (ids !== "") await dockerd.docker(["image", "rm", "--force", ...new Set(ids.split("\n"))]);
  for (const dir of ["v2metadata-by-diffid", "diffid-by-digest"]) {
    rmSync(join(dockerd.distribution, dir), { recursive: true, force: true });
  }
}

async function timed<T>(what: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await what();
  return { seconds: (performance.now() - started) / 1000, value };
}

/**
 * Layer uploads (PUT of a layer's digest; `null`: of any blob but configurations) and mounts
 * into `repository` since `since`, and upload sessions started there (POSTs not mounted).
 */
async function transfers(
  registry: RegistryServer,
  since: number,
  repository: string,
  layerDigests: Set<string> | null,
) {
  const requests = (await registry.requests()).slice(since);
  const query = (url: string) => new URL(url, registry.url).searchParams;
  const sessions = requests.filter((r) => r.url.startsWith(`/v2/${repository}/blobs/uploads/`));
  const isLayer = (digest: string) =>
    layerDigests === null ? !configDigests.has(digest) : layerDigests.has(digest);
  return {
    uploaded: sessions.filter((r) => r.method === "PUT" && isLayer(query(r.url).get("digest")!))
      .map((r) => query(r.url).get("digest")!),
    mounted: sessions.filter((r) => r.method === "POST" && r.status === 201).length,
    sessions: sessions.filter((r) => r.method === "POST" && r.status === 202).length,
  };
}

const dir = mkdtempSync(join(tmpdir(), "bench-daemon-"));
const registry = await startRegistry({ accessLog: true });
const dockerd = await startDockerd({ insecureRegistries: [registry.host] });
const rows: string[] = [];
/** The image's configuration digest: a blob, not a layer. */
const configDigests = new Set<string>();
try {
  const ref = `${registry.host}/bench/app:1`;
  const archive = join(dir, "app.tar");
  const { bytes, configDigest } = writeArchive(archive, ref);
  configDigests.add(configDigest);
  const total = bytes.reduce((a, b) => a + b, 0);
  const env = { DOCKER_HOST: dockerd.host, DOCKER_CONFIG: dockerd.clientConfig };
  const cli = (args: string[]) =>
    runCli(args, { env, denoPermissions: ["--allow-write", "--allow-net"], timeoutMs: 900_000 });
  const load = () => dockerd.docker(["load", "--input", archive]);

  // Set-up: the image into the registry, and the registry's digest of each layer.
  await load();
  await dockerd.docker(["push", ref]);
  const layerDigests = new Set<string>();
  const sizeOf = new Map<string, number>();
  const manifest = await fetch(`${registry.url}/v2/bench/app/manifests/1`, {
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
  }).then((r) => r.json()) as { layers: { digest: string; size: number }[] };
  for (const layer of manifest.layers) {
    layerDigests.add(layer.digest);
    sizeOf.set(layer.digest, layer.size);
  }
  const uploadedBytes = (digests: string[]) =>
    digests.reduce((n, digest) => n + (sizeOf.get(digest) ?? 0), 0);

  if (cases.has("a")) {
    // (a) docker load, then docker push alone.
    await forget(dockerd);
    await load();
    let since = (await registry.requests()).length;
    const alone = await timed(() => dockerd.docker(["push", ref]));
    const aloneUploads = await transfers(registry, since, "bench/app", layerDigests);
    rows.push(
      `| (a) docker push alone | ${alone.seconds.toFixed(2)} | — | ${
        (uploadedBytes(aloneUploads.uploaded) / MiB).toFixed(1)
      } MiB (${aloneUploads.uploaded.length}/8 layers) |`,
    );
    // (a) link, then docker push: trusting the manifest, and verifying each layer.
    for (const flags of [["--no-verify"], []]) {
      await forget(dockerd);
      await load();
      const linked = await cli(["link", ...flags, `docker-daemon:${ref}`, `docker://${ref}`]);
      if (linked.code !== 0) throw new Error(`link failed: ${linked.stderr}`);
      since = (await registry.requests()).length;
      const pushed = await timed(() => dockerd.docker(["push", ref]));
      const after = await transfers(registry, since, "bench/app", layerDigests);
      rows.push(
        `| (a) link ${flags.join(" ") || "(verify)"} + docker push | ${
          pushed.seconds.toFixed(2)
        } | link ${(linked.elapsedMs / 1000).toFixed(2)} s, ${mib(linked.maxRssKiB)} MiB | ${
          (uploadedBytes(after.uploaded) / MiB).toFixed(1)
        } MiB (${after.uploaded.length}/8 layers) |`,
      );
    }

    // (a) link() in-process, trusting the manifest: the library's time without a process start.
    await forget(dockerd);
    await load();
    const inProcess = await timed(() =>
      link(ref, ref, { dockerHost: dockerd.host, plainHttp: true, verify: false })
    );
    since = (await registry.requests()).length;
    const again = await timed(() => dockerd.docker(["push", ref]));
    const inProcessUploads = await transfers(registry, since, "bench/app", layerDigests);
    rows.push(
      `| (a) link() in-process --no-verify + docker push | ${again.seconds.toFixed(2)} | link() ${
        inProcess.seconds.toFixed(2)
      } s | ${
        (uploadedBytes(inProcessUploads.uploaded) / MiB).toFixed(1)
      } MiB (${inProcessUploads.uploaded.length}/8 layers) |`,
    );
  }
  if (cases.has("b") || cases.has("d")) {
    // (b) out of dockerd: docker push, our copy, skopeo's, each of a freshly loaded image.
    const fromDockerd = async (name: string, push: () => Promise<unknown>) => {
      await forget(dockerd);
      await load();
      const since = (await registry.requests()).length;
      const pushed = await timed(push);
      return { ...pushed, ...await transfers(registry, since, `bench/${name}`, null) };
    };
    const pushedBy = await fromDockerd("b-docker", async () => {
      await dockerd.docker(["tag", ref, `${registry.host}/bench/b-docker:1`]);
      await dockerd.docker(["push", `${registry.host}/bench/b-docker:1`]);
    });
    rows.push(
      `| (b) docker push | ${
        pushedBy.seconds.toFixed(2)
      } | — | ${pushedBy.uploaded.length}/8 layers uploaded |`,
    );
    const ours = `${registry.host}/bench/b-ours:1`;
    const copyOut = (name: string) =>
      fromDockerd(name, async () => {
        const copied = await cli([
          "copy",
          `docker-daemon:${ref}`,
          `docker://${registry.host}/bench/${name}:1`,
        ]);
        if (copied.code !== 0) throw new Error(`copy failed: ${copied.stderr}`);
        return copied;
      });
    const copiedBy = await copyOut("b-ours");
    const copiedRun = copiedBy.value as Awaited<ReturnType<typeof cli>>;
    rows.push(
      `| (b) copy docker-daemon: docker:// | ${(copiedRun.elapsedMs / 1000).toFixed(2)} | ${
        mib(copiedRun.maxRssKiB)
      } MiB peak RSS; ${copiedBy.uploaded.length}/8 layers uploaded | ${
        (copiedRun.elapsedMs / 1000 / pushedBy.seconds).toFixed(2)
      }× docker push |`,
    );
    // (d) the same copy again, the image and our records still in dockerd.
    if (cases.has("d")) {
      let since = (await registry.requests()).length;
      const again = await cli(["copy", `docker-daemon:${ref}`, `docker://${ours}`]);
      if (again.code !== 0) throw new Error(`copy failed: ${again.stderr}`);
      const byCli = await transfers(registry, since, "bench/b-ours", null);
      since = (await registry.requests()).length;
      const inProcess = await timed(() =>
        copyFromDockerd(ref, ours, { dockerHost: dockerd.host, plainHttp: true })
      );
      const byLibrary = await transfers(registry, since, "bench/b-ours", null);
      const found = inProcess.value.layers.filter((layer) => layer.transfer === "exists").length;
      rows.push(
        `| (d) copy docker-daemon: docker:// again | ${(again.elapsedMs / 1000).toFixed(2)} | ${
          mib(again.maxRssKiB)
        } MiB; ${byCli.uploaded.length + byCli.sessions} uploads started | CLI process |`,
        `| (d) copyFromDockerd() again, in-process | ${
          inProcess.seconds.toFixed(2)
        } | ${found}/8 found; ${
          byLibrary.uploaded.length + byLibrary.sessions
        } uploads started | library |`,
      );
    }
    // skopeo remembers which blobs a registry holds (its blob info cache) and mounts them the next
    // time: forgotten before each of its runs, as dockerd's metadata is before each of ours.
    const skopeoCaches = [
      "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
      join(process.env.HOME ?? "/root", ".local/share/containers/cache/blob-info-cache-v1.boltdb"),
    ];
    const skopeoOut = (name: string) =>
      fromDockerd(name, () => {
        for (const cache of skopeoCaches) rmSync(cache, { force: true });
        return run("skopeo", [
          "copy",
          "--dest-tls-verify=false",
          "--src-daemon-host",
          dockerd.host,
          `docker-daemon:${ref}`,
          `docker://${registry.host}/bench/${name}:1`,
        ]);
      });
    const bySkopeo = await skopeoOut("b-skopeo");
    rows.push(
      `| (b) skopeo copy docker-daemon: docker:// | ${
        bySkopeo.seconds.toFixed(2)
      } | ${bySkopeo.uploaded.length}/8 layers uploaded | ${
        (copiedRun.elapsedMs / 1000 / bySkopeo.seconds).toFixed(2)
      }× ours/skopeo |`,
    );
    // More runs of the two in turn, each into repositories of its own.
    const oursSeconds = [copiedRun.elapsedMs / 1000];
    const skopeoSeconds = [bySkopeo.seconds];
    for (let i = 2; i <= runs; i++) {
      const again = (await copyOut(`b-ours-${i}`)).value as Awaited<ReturnType<typeof cli>>;
      oursSeconds.push(again.elapsedMs / 1000);
      skopeoSeconds.push((await skopeoOut(`b-skopeo-${i}`)).seconds);
    }
    const shown = (seconds: number[]) => seconds.map((s) => s.toFixed(2)).join(", ");
    if (runs > 1) {
      rows.push(
        `| (b) copy / skopeo, ${runs} runs each in turn | ${median(oursSeconds).toFixed(2)} / ${
          median(skopeoSeconds).toFixed(2)
        } (medians) | ours ${shown(oursSeconds)}; skopeo ${shown(skopeoSeconds)} | ${
          (median(oursSeconds) / median(skopeoSeconds)).toFixed(2)
        }× ours/skopeo (medians) |`,
      );
    }
  }
  if (cases.has("c")) {
    let since: number;
    // (c) docker pull against copy docker:// docker-daemon:, then a push of the copy elsewhere.
    await forget(dockerd);
    const pulled = await timed(() => dockerd.docker(["pull", ref]));
    rows.push(`| (c) docker pull | ${pulled.seconds.toFixed(2)} | — | — |`);
    // The floor of any copy through `POST /images/load`: dockerd loading the archive from disk.
    await forget(dockerd);
    const loaded = await timed(load);
    rows.push(
      `| (c) docker load of the archive on local disk | ${loaded.seconds.toFixed(2)} | — | ${
        (loaded.seconds / pulled.seconds).toFixed(2)
      }× docker pull |`,
    );
    await forget(dockerd);
    const copy = `${registry.host}/bench/app2:1`;
    const copied = await cli(["copy", `docker://${ref}`, `docker-daemon:${copy}`]);
    if (copied.code !== 0) throw new Error(`copy failed: ${copied.stderr}`);
    since = (await registry.requests()).length;
    await dockerd.docker(["push", copy]);
    const mounts = await transfers(registry, since, "bench/app2", layerDigests);
    rows.push(
      `| (c) copy docker:// docker-daemon: | ${(copied.elapsedMs / 1000).toFixed(2)} | ${
        mib(copied.maxRssKiB)
      } MiB; then docker push to bench/app2 mounts ${mounts.mounted}/8, uploads ${mounts.uploaded.length} | ${
        (copied.elapsedMs / 1000 / pulled.seconds).toFixed(2)
      }× docker pull |`,
    );
    // (c) skopeo's way into dockerd, and what docker push finds afterwards.
    await forget(dockerd);
    const bySkopeo = `${registry.host}/bench/app3:1`;
    const skopeo = await timed(() =>
      run("skopeo", [
        "copy",
        "--src-tls-verify=false",
        "--dest-daemon-host",
        dockerd.host,
        `docker://${ref}`,
        `docker-daemon:${bySkopeo}`,
      ])
    );
    since = (await registry.requests()).length;
    await dockerd.docker(["push", bySkopeo]);
    const skopeoMounts = await transfers(registry, since, "bench/app3", layerDigests);
    rows.push(
      `| (c) skopeo copy docker:// docker-daemon: | ${
        skopeo.seconds.toFixed(2)
      } | then docker push to bench/app3 mounts ${skopeoMounts.mounted}/8, uploads ${skopeoMounts.uploaded.length} | ${
        (skopeo.seconds / pulled.seconds).toFixed(2)
      }× docker pull |`,
    );
  }
  console.log(`image: 8 layers, ${(total / MiB).toFixed(0)} MiB uncompressed (scale ${scale})`);
  console.log("| step | wall s | ours | layer bytes uploaded / ratio |");
  console.log("| ---- | -----: | ---- | ---------------------------- |");
  for (const row of rows) console.log(row);
} finally {
  await dockerd.stop();
  await registry.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
