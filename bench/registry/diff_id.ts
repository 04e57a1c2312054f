/**
 * What each way of inflating a layer for its DiffID costs (`src/registry/_diff_id.ts`): node:zlib's
 * native handle (private API, the default where found), its stream and `DecompressionStream`
 * (public), each in a process of its own per runtime, timed and its peak RSS taken:
 *
 *     node --import tsx bench/registry/diff_id.ts [--runs 3] [--mib 2048] [--image DIR]
 *       [--tools deno,bun,node]
 *
 * The layer is the registry benchmark's (gzip level 0, image.ts), read from its file in 64 KiB
 * chunks into one buffer, as a pull hands chunks over. As a child (`run <way> <file>`) it prints
 * one JSON line: the milliseconds and the DiffID.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { diffIDSink, type GunzipWay, gunzipWays } from "../../src/registry/_diff_id.ts";
import { writeImage } from "./image.ts";
import { measure } from "./measure.ts";
import { median } from "./report.ts";
import { runtimeCommands } from "./rounds.ts";

const MiB = 1 << 20;

/** The DiffID of the gzip'd file at `path`, inflated `way`, and the milliseconds it took. */
async function diffIDOfFile(way: GunzipWay, path: string): Promise<{ ms: number; diffID: string }> {
  const file = await open(path);
  const buffer = new Uint8Array(64 * 1024);
  const start = performance.now();
  const sink = diffIDSink(way);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length);
      if (bytesRead === 0) break;
      await sink.write(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  const diffID = await sink.close();
  if (diffID === null) throw new Error(`${path}: no DiffID ${way}`);
  return { ms: performance.now() - start, diffID };
}

const [mode, way, path] = process.argv.slice(2);
if (mode === "run") {
  console.log(JSON.stringify(await diffIDOfFile(way as GunzipWay, path!)));
} else {
  const { values: flags } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      mib: { type: "string", default: "2048" },
      image: { type: "string" },
      tools: { type: "string", default: "deno,bun,node" },
    },
  });
  const imageDir = flags.image !== undefined
    ? resolve(flags.image)
    : mkdtempSync(join(tmpdir(), "diff-id-bench-image-"));
  const bundleDir = mkdtempSync(join(tmpdir(), "diff-id-bench-bundle-"));
  try {
    const image = await writeImage(imageDir, [Number(flags.mib) * MiB]);
    const layer = join(imageDir, "blobs", "sha256", image.layers[0]!.digest.slice(7));
    const commands = runtimeCommands(bundleDir, "bundle", fileURLToPath(import.meta.url));
    console.log(
      `A ${flags.mib} MiB layer (gzip level 0), median of ${flags.runs}: seconds, peak RSS MiB.\n`,
    );
    console.log("| runtime | way | s | peak RSS MiB |\n| --- | --- | ---: | ---: |");
    const diffIDs = new Set<string>(); // one, from every runtime and way
    for (const tool of flags.tools.split(",")) {
      for (const way of gunzipWays()) {
        const times: number[] = [];
        const peaks: number[] = [];
        for (let i = 0; i < Number(flags.runs); i++) {
          const run = await measure([...commands[tool]!, "run", way, layer], {
            cwd: process.cwd(),
            timeoutSeconds: 600,
          });
          if (run.code !== 0) throw new Error(`${tool} ${way}: ${run.stderr}`);
          const result = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
          times.push(result.ms / 1000);
          peaks.push(run.rssMiB);
          diffIDs.add(result.diffID);
        }
        console.log(
          `| ${tool} | ${way} | ${median(times).toFixed(2)} | ${Math.round(median(peaks))} |`,
        );
      }
    }
    if (diffIDs.size !== 1) throw new Error(`Different DiffIDs: ${[...diffIDs].join(", ")}`);
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
    if (flags.image === undefined) rmSync(imageDir, { recursive: true, force: true });
  }
}
