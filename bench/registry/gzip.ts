/**
 * What gzipping a layer costs (`src/registry/_gzip.ts`, how `copy docker-daemon:` and
 * `docker-archive:` sources compress), against the runtime's bare primitive, node:zlib's
 * `createGzip` at the same level 1, and `CompressionStream("gzip")`, each in a process of its
 * own per runtime, on two inputs: random bytes (what nothing compresses: archives, images,
 * packed binaries) and a tar of real files (this checkout's node_modules):
 *
 *     node --import tsx bench/registry/gzip.ts [--runs 3] [--mib 128] [--tools deno,bun,node]
 *
 * Each input is read from its file in 64 KiB chunks. As a child (`run <way> <file>`) it prints
 * one JSON line: the milliseconds and the compressed size.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  createReadStream,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import { gzipStream } from "../../src/registry/_gzip.ts";
import { measure } from "./measure.ts";
import { median } from "./report.ts";
import { runtimeCommands } from "./rounds.ts";

const MiB = 1 << 20;
const WAYS = ["segments", "zlib createGzip", "CompressionStream"] as const;
type Way = typeof WAYS[number];

function fileStream(path: string): ReadableStream<Uint8Array> {
  return Readable.toWeb(createReadStream(path, { highWaterMark: 64 << 10 })) as ReadableStream<
    Uint8Array
  >;
}

/** The bytes of `stream` counted as they come. */
async function counted(stream: ReadableStream<Uint8Array>): Promise<number> {
  let size = 0;
  for await (const chunk of stream) size += chunk.length;
  return size;
}

/** `path` gzipped `way`: the milliseconds and the compressed size. */
async function gzipFile(way: Way, path: string): Promise<{ ms: number; size: number }> {
  const start = performance.now();
  let size: number;
  if (way === "segments") size = await counted(gzipStream(fileStream(path), "segments"));
  else if (way === "CompressionStream") {
    size = await counted(
      fileStream(path).pipeThrough(
        new CompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
      ),
    );
  } else {
    size = 0;
    for await (const chunk of createReadStream(path).pipe(createGzip({ level: 1 }))) {
      size += (chunk as Uint8Array).length;
    }
  }
  return { ms: performance.now() - start, size };
}

/** The inputs: random bytes, and a tar of real files cut at the same size. */
function writeInputs(dir: string, bytes: number): Record<string, string> {
  const random = join(dir, "random");
  const fd = openSync(random, "w");
  for (let at = 0; at < bytes; at += MiB) {
    writeSync(fd, randomBytes(Math.min(MiB, bytes - at)));
  }
  closeSync(fd);
  const files = join(dir, "files");
  execFileSync("tar", ["cf", files, "-C", process.cwd(), "node_modules"]);
  truncateSync(files, bytes);
  return { random, "real files": files };
}

const [mode, way, path] = process.argv.slice(2);
if (mode === "run") {
  console.log(JSON.stringify(await gzipFile(way as Way, path!)));
} else {
  const { values: flags } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      mib: { type: "string", default: "128" },
      tools: { type: "string", default: "deno,bun,node" },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "gzip-bench-"));
  try {
    const inputs = writeInputs(dir, Number(flags.mib) * MiB);
    const commands = runtimeCommands(dir, "bundle", fileURLToPath(import.meta.url));
    console.log(`${flags.mib} MiB per input, median of ${flags.runs}.\n`);
    console.log(
      "| runtime | input | way | s | MB/s | size % | × bare zlib |\n" +
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    );
    for (const tool of flags.tools.split(",")) {
      for (const [input, file] of Object.entries(inputs)) {
        const bytes = statSync(file).size;
        const rows = new Map<Way, { s: number; size: number }>();
        for (const way of WAYS) {
          const times: number[] = [];
          let size = 0;
          for (let i = 0; i < Number(flags.runs); i++) {
            const run = await measure([...commands[tool]!, "run", way, file], {
              cwd: process.cwd(),
              timeoutSeconds: 600,
            });
            if (run.code !== 0) throw new Error(`${tool} ${way}: ${run.stderr}`);
            const result = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
            times.push(result.ms / 1000);
            size = result.size;
          }
          rows.set(way, { s: median(times), size });
        }
        const bare = rows.get("zlib createGzip")!.s;
        for (const [way, { s, size }] of rows) {
          console.log(
            `| ${tool} | ${input} | ${way} | ${s.toFixed(2)} | ${(bytes / s / 1e6).toFixed(0)} | ${
              (size / bytes * 100).toFixed(1)
            } | ${(s / bare).toFixed(2)} |`,
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
