// A `docker save` archive as dockerd 25 and later write it, rearranged from one dockerd 20.10
// wrote (only 20.10 runs here). It follows moby's image/tarexport/save.go at v28.5.2 (the same
// layout since v25.0.5; 25.0.0–25.0.4 also put a platform in the descriptors): every file is an
// OCI blob `blobs/sha256/<hex>` (the configuration, each layer's uncompressed tar named by its
// DiffID, each legacy v1 JSON, the OCI manifest), manifest.json names them so and lists every
// layer under `LayerSources`, index.json names the manifest per tag, beside oci-layout and
// repositories; entries in the order archive.Tar walks the directory (names sorted).
// @needs tar (GNU)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { sha256, tar, tarHeader } from "./_image_builder.ts";

const encoder = new TextEncoder();

/** What dockerd 20.10's manifest.json says of an image. */
interface SavedImage {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** What {@linkcode docker25Save} made. */
export interface Docker25Save {
  archive: Uint8Array;
  /** Its files in order, to change and pass to {@linkcode docker25Tar}. */
  files: [string, Uint8Array][];
  /** The OCI manifest's digest and bytes, as index.json names it. */
  manifestDigest: string;
  manifest: Uint8Array;
  /** The image ID (its configuration's digest) and the layers' DiffIDs. */
  imageID: string;
  diffIDs: string[];
}

/** A directory entry, as archive.Tar writes one. */
function directory(name: string): Uint8Array {
  const header = tarHeader(`${name}/`, 0);
  header[156] = "5".charCodeAt(0);
  header.set(encoder.encode("0000755\0"), 100);
  header.fill(0x20, 148, 156);
  const sum = header.reduce((n, b) => n + b, 0);
  header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return header;
}

/** The files as such an archive: the blob directories first, as archive.Tar writes them. */
export function docker25Tar(files: [string, Uint8Array][]): Uint8Array {
  const entries = tar(files.map(([name, data]) => ({ name, data })));
  return new Uint8Array(Buffer.concat([directory("blobs"), directory("blobs/sha256"), entries]));
}

/** A reference as Go's `reference.ParseNormalizedNamed(...).String()` gives it. */
function fullName(repoTag: string): string {
  const first = repoTag.split("/")[0]!;
  const domained = repoTag.includes("/") && (first.includes(".") || first.includes(":"));
  if (domained || first === "localhost") return repoTag;
  return `docker.io/${repoTag.includes("/") ? "" : "library/"}${repoTag}`;
}

/**
 * The archive dockerd 25+ would save of the one image a dockerd 20.10 archive holds.
 *
 * @param saved20 The bytes `docker save` of dockerd 20.10 wrote.
 * @returns The archive and what it names.
 */
export function docker25Save(saved20: Uint8Array): Docker25Save {
  const dir = mkdtempSync(join(tmpdir(), "docker25-save-"));
  try {
    execFileSync("tar", ["-x", "-C", dir], { input: saved20 });
    const read = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
    const [image] = JSON.parse(new TextDecoder().decode(read("manifest.json"))) as SavedImage[];
    const config = read(image!.Config);
    const imageID = sha256(config);
    const blobs = new Map<string, Uint8Array>([[imageID, config]]);
    const diffIDs: string[] = [];
    for (const layerFile of image!.Layers) {
      const layer = read(layerFile);
      diffIDs.push(sha256(layer));
      blobs.set(sha256(layer), layer);
      const legacy = read(layerFile.replace(/layer\.tar$/, "json"));
      blobs.set(sha256(legacy), legacy);
    }
    const ociLayer = (diffID: string) => ({
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: diffID,
      size: blobs.get(diffID)!.length,
    });
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: imageID,
        size: config.length,
      },
      layers: diffIDs.map(ociLayer),
    }));
    const manifestDigest = sha256(manifest);
    blobs.set(manifestDigest, manifest);
    const repoTags = image!.RepoTags ?? [];
    const descriptor = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: manifestDigest,
      size: manifest.length,
    };
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: repoTags.length === 0 ? [descriptor] : repoTags.map((repoTag) => ({
        ...descriptor,
        annotations: {
          "io.containerd.image.name": fullName(repoTag),
          "org.opencontainers.image.ref.name": repoTag.slice(repoTag.lastIndexOf(":") + 1),
        },
      })),
    };
    const hex = (digest: string) => digest.slice("sha256:".length);
    const manifestJson = [{
      Config: `blobs/sha256/${hex(imageID)}`,
      RepoTags: repoTags.length === 0 ? null : repoTags,
      Layers: diffIDs.map((diffID) => `blobs/sha256/${hex(diffID)}`),
      LayerSources: Object.fromEntries(
        [...new Set(diffIDs)].sort().map((diffID) => {
          const { mediaType, size, digest } = ociLayer(diffID);
          return [diffID, { mediaType, size, digest }];
        }),
      ),
    }];
    const repositories: Record<string, Record<string, string>> = {};
    for (const repoTag of repoTags) {
      const colon = repoTag.lastIndexOf(":");
      (repositories[repoTag.slice(0, colon)] ??= {})[repoTag.slice(colon + 1)] = hex(
        diffIDs.at(-1)!,
      );
    }
    const json = (value: unknown, newline = "") => encoder.encode(JSON.stringify(value) + newline);
    const files: [string, Uint8Array][] = [
      ...[...blobs.keys()].sort().map((digest) =>
        [`blobs/sha256/${hex(digest)}`, blobs.get(digest)!] as [string, Uint8Array]
      ),
      ["index.json", json(index)],
      ["manifest.json", json(manifestJson, "\n")],
      ["oci-layout", encoder.encode('{"imageLayoutVersion": "1.0.0"}')],
    ];
    if (repoTags.length > 0) files.push(["repositories", json(repositories, "\n")]);
    return {
      archive: docker25Tar(files),
      files,
      manifestDigest,
      manifest,
      imageID,
      diffIDs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
