// Builds small images for the tests: layer tars (a minimal ustar writer), deterministic gzip,
// an image configuration with rootfs.diff_ids, and a schema 2 or OCI manifest, all stored in a
// ContentStore and tagged.
import { createHash } from "node:crypto";
import type { ContentStore, Descriptor } from "../../src/registry/mod.ts";

const encoder = new TextEncoder();

/** `sha256:<hex>` of bytes (node:crypto, independent of the library's hashing). */
export function sha256(data: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** A ustar archive of regular files. */
/** The ustar header of one regular file `name` of `size` bytes (mode 0644, owner 0, mtime 0). */
export function tarHeader(name: string, size: number): Uint8Array {
  const header = new Uint8Array(512);
  const put = (text: string, offset: number) => header.set(encoder.encode(text), offset);
  put(name, 0);
  put(octal(0o644, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put("        ", 148);
  put("0", 156);
  put("ustar\u000000", 257);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(octal(sum, 7) + " ", 148);
  return header;
}

export function tar(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const file of files) {
    const header = tarHeader(file.name, file.data.length);
    blocks.push(header, file.data, new Uint8Array((512 - (file.data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const block of blocks) {
    out.set(block, offset);
    offset += block.length;
  }
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * gzip with stored (uncompressed) deflate blocks: valid for any gunzip, and the same bytes on
 * every runtime (CompressionStream's output differs between zlib builds), so layer digests
 * are fixed and can be compared with fixtures recorded by Docker's Go package.
 */
export function gzip(data: Uint8Array): Uint8Array {
  const BLOCK = 0xffff;
  const blocks = Math.max(1, Math.ceil(data.length / BLOCK));
  const out = new Uint8Array(10 + data.length + 5 * blocks + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]); // no name, no mtime, unknown OS
  const view = new DataView(out.buffer);
  let offset = 10;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * BLOCK, (i + 1) * BLOCK);
    out[offset] = i === blocks - 1 ? 1 : 0; // BFINAL, BTYPE 00 (stored)
    view.setUint16(offset + 1, chunk.length, true);
    view.setUint16(offset + 3, ~chunk.length & 0xffff, true);
    out.set(chunk, offset + 5);
    offset += 5 + chunk.length;
  }
  view.setUint32(offset, crc32(data), true);
  view.setUint32(offset + 4, data.length >>> 0, true);
  return out;
}

/** Deterministic pseudo-random bytes (incompressible), so layers can be made large. */
export function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** What buildImage made. */
export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIDs: string[];
}

/**
 * The config of a linux/amd64 image whose layers have `diffIDs`, one history entry each: what
 * {@linkcode buildImage} pushes and a `docker save` archive holds, byte for byte.
 *
 * @param diffIDs The layers' DiffIDs, base first.
 * @returns The config's JSON bytes.
 */
export function imageConfig(diffIDs: string[]): Uint8Array {
  return encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/true"] },
    rootfs: { type: "layers", diff_ids: diffIDs },
    history: diffIDs.map((_, i) => ({ created_by: `layer ${i}` })),
  }));
}

/**
 * Builds an image of one layer per entry of `layers` (each a list of files) and tags it.
 *
 * @param store Where to put the blobs.
 * @param name The name to tag it with in the store.
 * @param layers The files of each layer.
 * @param format `docker` (schema 2) or `oci`.
 */
export async function buildImage(
  store: ContentStore,
  name: string,
  layers: { name: string; data: Uint8Array }[][],
  format: "docker" | "oci" = "docker",
): Promise<BuiltImage> {
  const diffIDs: string[] = [];
  const layerDescriptors: Descriptor[] = [];
  const layerType = format === "docker"
    ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
    : "application/vnd.oci.image.layer.v1.tar+gzip";
  for (const files of layers) {
    const raw = tar(files);
    const compressed = gzip(raw);
    diffIDs.push(sha256(raw));
    const digest = sha256(compressed);
    await store.put(digest, compressed);
    layerDescriptors.push({ mediaType: layerType, size: compressed.length, digest });
  }
  const configBytes = imageConfig(diffIDs);
  const config: Descriptor = {
    mediaType: format === "docker"
      ? "application/vnd.docker.container.image.v1+json"
      : "application/vnd.oci.image.config.v1+json",
    size: configBytes.length,
    digest: sha256(configBytes),
  };
  await store.put(config.digest, configBytes);
  const manifestType = format === "docker"
    ? "application/vnd.docker.distribution.manifest.v2+json"
    : "application/vnd.oci.image.manifest.v1+json";
  const manifestBytes = encoder.encode(JSON.stringify(
    { schemaVersion: 2, mediaType: manifestType, config, layers: layerDescriptors },
    null,
    3,
  ));
  const manifest: Descriptor = {
    mediaType: manifestType,
    size: manifestBytes.length,
    digest: sha256(manifestBytes),
  };
  await store.put(manifest.digest, manifestBytes);
  await store.tag(name, manifest);
  return { manifest, config, layers: layerDescriptors, diffIDs };
}

/** `data` as a stream of `size`-byte chunks (copies), each made as the reader asks. */
export function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.length) return controller.close();
      controller.enqueue(data.slice(at, at += size));
    },
  });
}
