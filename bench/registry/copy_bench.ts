/**
 * Registry-to-registry copy, the library's `copy` against `skopeo copy docker://… docker://…`
 * in the same run: an image of ~205 MiB (the issue's layers at a quarter of their size; `--scale`
 * changes it) is pushed once to a source docker-registry on 127.0.0.1, then each tool copies it,
 * in its own process under `/usr/bin/time`, to a fresh destination registry per copy (so none
 * finds blobs there, and nothing is mounted). Prints each copy's wall time and peak RSS, and the
 * medians.
 *
 *     node --import tsx bench/registry/copy_bench.ts [--runs 3] [--scale 0.25]
 *       [--tools deno,bun,node,skopeo]
 *
 * The same file is the child each runtime runs: `copy_bench.ts copy <src> <dst> <metadata dir>`
 * copies with the library and prints `{"digest", "ms"}`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FSMetadataStore, V2MetadataService } from "../../mod.ts";
import { copy } from "../../src/registry/mod.ts";
import { IMAGE_TAG, ISSUE_LAYERS_MIB, writeImage } from "./image.ts";
import { measure } from "./measure.ts";
import { startBenchRegistry } from "./registry_server.ts";
import { median } from "./report.ts";
import { runtimeCommands } from "./rounds.ts";

const MiB = 1 << 20;
const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const self = fileURLToPath(import.meta.url);

/** The child: one copy with the library, recording into a metadata store of its own. */
async function copyOnce(source: string, destination: string, metadataDir: string) {
  const started = performance.now();
  const copied = await copy(source, destination, {
    source: { plainHttp: true },
    destination: { plainHttp: true },
    metadataService: new V2MetadataService(await FSMetadataStore.open(metadataDir)),
  });
  const ms = performance.now() - started;
  console.log(JSON.stringify({ digest: copied.digest, ms }));
}

async function main() {
  const { values: flags } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      scale: { type: "string", default: "0.25" },
      tools: { type: "string", default: "deno,bun,node,skopeo" },
    },
  });
  const runs = Number(flags.runs);
  const tools = flags.tools.split(",");
  const say = (text: string) => console.error(`[copy-bench] ${text}`);
  const work = mkdtempSync(join(tmpdir(), "copy-bench-"));
  const source = await startBenchRegistry();
  try {
    const sizes = ISSUE_LAYERS_MIB.map((mib) =>
      Math.max(1, Math.round(mib * Number(flags.scale) * MiB))
    );
    const image = await writeImage(join(work, "image"), sizes);
    const total = image.layers.reduce((n, layer) => n + layer.size, 0) / MiB;
    const sourceRef = `${source.host}/bench/source:${IMAGE_TAG}`;
    const pushed = spawnSync("skopeo", [
      "copy",
      "-q",
      "--dest-tls-verify=false",
      `oci:${image.dir}:${IMAGE_TAG}`,
      `docker://${sourceRef}`,
    ], { encoding: "utf8" });
    if (pushed.status !== 0) throw new Error(`skopeo cannot push the image: ${pushed.stderr}`);
    say(`image: ${image.layers.length} layers, ${total.toFixed(1)} MiB gzip'd, at ${sourceRef}`);
    const commands = runtimeCommands(work, "bundle", self);
    const results: Record<string, { wall: number; rssMiB: number }[]> = {};
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < tools.length; i++) {
        const tool = tools[(i + run) % tools.length]!;
        const destination = await startBenchRegistry();
        const target = `${destination.host}/bench/copy:${IMAGE_TAG}`;
        const metadata = mkdtempSync(join(work, "metadata-"));
        try {
          const command = tool === "skopeo"
            ? [
              "skopeo",
              "copy",
              "-q",
              "--src-tls-verify=false",
              "--dest-tls-verify=false",
              `docker://${sourceRef}`,
              `docker://${target}`,
            ]
            : [...commands[tool]!, "copy", sourceRef, target, metadata];
          const measured = await measure(command, { cwd: root, timeoutSeconds: 600 });
          if (measured.code !== 0) throw new Error(`${tool} failed: ${measured.stderr}`);
          const check = await fetch(
            `http://${destination.host}/v2/bench/copy/manifests/${IMAGE_TAG}`,
            {
              method: "HEAD",
              headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
            },
          );
          const digest = check.headers.get("docker-content-digest");
          if (digest !== image.manifestDigest) {
            throw new Error(`${tool} copied manifest ${digest}, expected ${image.manifestDigest}`);
          }
          (results[tool] ??= []).push({ wall: measured.wall, rssMiB: measured.rssMiB });
          say(
            `run ${run + 1}/${runs} ${tool}: ${measured.wall.toFixed(2)} s, ${
              Math.round(measured.rssMiB)
            } MiB`,
          );
        } finally {
          await destination.stop();
          rmSync(metadata, { recursive: true, force: true });
        }
      }
    }
    console.log(
      `Registry → registry copy of ${
        total.toFixed(1)
      } MiB (${image.layers.length} layers), median of ${runs}:`,
    );
    console.log("| tool | wall s | peak RSS MiB | wall vs skopeo |");
    console.log("|---|---|---|---|");
    const skopeo = results.skopeo ? median(results.skopeo.map((r) => r.wall)) : NaN;
    for (const [tool, list] of Object.entries(results)) {
      const wall = median(list.map((r) => r.wall));
      const rss = median(list.map((r) => r.rssMiB));
      console.log(
        `| ${tool} | ${wall.toFixed(2)} | ${Math.round(rss)} | ${(wall / skopeo).toFixed(2)} |`,
      );
    }
  } finally {
    await source.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "copy") await copyOnce(rest[0]!, rest[1]!, rest[2]!);
else await main();
