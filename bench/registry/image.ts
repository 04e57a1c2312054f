/**
 * Writes the benchmark's image as an OCI image layout on disk: one gzip'd tar layer per size,
 * each holding one file of incompressible bytes. Layers stream from a keyed AES-CTR keystream
 * through tar, gzip and two SHA-256 hashes straight to a file, so a 2 GiB layer costs a few MiB
 * of memory. The same sizes give the same bytes (and digests) on every run.
 *
 * @module
 */
import { createCipheriv, createHash, type Hash } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { tarHeader } from "../../tests/registry/_image_builder.ts";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

/** The issue's image: 8 layers, 821 MiB in all. */
export const ISSUE_LAYERS_MIB: readonly number[] = [1, 4, 16, 32, 64, 64, 128, 512];
/** The extra layer `--big` adds for the memory goal. */
export const BIG_LAYER_MIB = 2048;
/** The tag the layout names the image by (`oci:<dir>:bench` for skopeo). */
export const IMAGE_TAG = "bench";

const MiB = 1 << 20;
const CHUNK = MiB;
const ZEROS = new Uint8Array(CHUNK);
const BLOCK = 512;
const SPEC_FILE = "bench-image.json";

/** What {@linkcode writeImage} made. */
export interface BenchImage {
  /** The layout's directory. */
  dir: string;
  /** `sha256:<hex>` of the manifest. */
  manifestDigest: string;
  /** Each layer's digest and size, in manifest order. */
  layers: { digest: string; size: number }[];
}

/** The layer's tar, a chunk at a time: header, keystream bytes, padding and the end blocks. */
async function* tarStream(size: number, key: Uint8Array): AsyncGenerator<Uint8Array> {
  yield tarHeader("data", size);
  const cipher = createCipheriv("aes-128-ctr", key, new Uint8Array(16));
  for (let left = size; left > 0; left -= CHUNK) {
    yield new Uint8Array(cipher.update(ZEROS.subarray(0, Math.min(CHUNK, left))));
  }
  yield new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK + 2 * BLOCK);
}

/** Passes chunks through unchanged, hashing them on the way. */
function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Uint8Array, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

function sha256(data: Uint8Array | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function writeBlob(dir: string, data: Uint8Array): { digest: string; size: number } {
  const digest = sha256(data);
  writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), data);
  return { digest, size: data.length };
}

/**
 * Streams one layer to `blobs/sha256/<hex>`: gzip level 0 (stored blocks), which is what
 * deflate makes of incompressible bytes at any level, at memory speed instead of ~50 MB/s.
 */
async function writeLayer(
  dir: string,
  index: number,
  size: number,
): Promise<{ digest: string; size: number; diffID: string }> {
  const key = createHash("sha256").update(`registry bench layer ${index} ${size}`).digest()
    .subarray(0, 16);
  const diffID = createHash("sha256");
  const digest = createHash("sha256");
  const temp = join(dir, "blobs", "sha256", `.tmp-layer-${index}`);
  let written = 0;
  const counting = new Transform({
    transform(chunk: Uint8Array, _encoding, done) {
      written += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(
    Readable.from(tarStream(size, key), { highWaterMark: 4 }),
    hashing(diffID),
    createGzip({ level: 0, chunkSize: CHUNK }),
    hashing(digest),
    counting,
    createWriteStream(temp),
  );
  const hex = digest.digest("hex");
  renameSync(temp, join(dir, "blobs", "sha256", hex));
  return { digest: `sha256:${hex}`, size: written, diffID: `sha256:${diffID.digest("hex")}` };
}

/**
 * Writes an OCI image layout at `dir` with one layer per entry of `sizes`, tagged
 * {@linkcode IMAGE_TAG}; a layout this function already wrote there for the same sizes is
 * reused as it is.
 *
 * @param dir The layout directory (created when missing).
 * @param sizes Each layer's file size in bytes.
 * @returns The manifest digest and the layers.
 *
 * @example
 * ```ts ignore
 * const image = await writeImage("/tmp/bench-image", [1 << 20, 4 << 20]);
 * console.log(image.layers.length); // 2
 * ```
 */
export async function writeImage(dir: string, sizes: readonly number[]): Promise<BenchImage> {
  const specPath = join(dir, SPEC_FILE);
  if (existsSync(specPath)) {
    const image = JSON.parse(readFileSync(specPath, "utf8")) as BenchImage & { sizes: number[] };
    if (JSON.stringify(image.sizes) === JSON.stringify(sizes)) return { ...image, dir };
  }
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const layers = [];
  for (const [index, size] of sizes.entries()) layers.push(await writeLayer(dir, index, size));
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const config = writeBlob(
    dir,
    encode({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffID) },
      history: layers.map((_, i) => ({ created_by: `registry bench layer ${i}` })),
    }),
  );
  const manifestType = "application/vnd.oci.image.manifest.v1+json";
  const manifest = writeBlob(
    dir,
    encode({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map(({ digest, size }) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest,
        size,
      })),
    }),
  );
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: manifestType,
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": IMAGE_TAG },
      }],
    }),
  );
  const image: BenchImage = {
    dir,
    manifestDigest: manifest.digest,
    layers: layers.map(({ digest, size }) => ({ digest, size })),
  };
  writeFileSync(specPath, JSON.stringify({ ...image, sizes }));
  return image;
}
