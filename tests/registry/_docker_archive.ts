// Builds the archive `docker save` writes and `docker load` reads, so dockerd gets images
// without a network: manifest.json, the image configuration <hex>.json, one uncompressed
// layer.tar per layer, and the legacy `repositories` file.
import { imageConfig, sha256, tar } from "./_image_builder.ts";

const encoder = new TextEncoder();

/** A file of a layer. */
export interface LayerFile {
  name: string;
  data: Uint8Array;
}

/** What dockerArchive made. */
export interface DockerArchive {
  /** The tar to pipe into `docker load`. */
  archive: Uint8Array;
  /** The image ID dockerd gives it: the digest of its configuration. */
  imageID: string;
  /** The layers' DiffIDs: digests of the uncompressed layer tars. */
  diffIDs: string[];
}

/**
 * A `docker save` archive of one image with one layer per entry of `layers`. A layer's tar is
 * the same bytes `buildImage` compresses for the same files, so both give the same DiffIDs.
 *
 * @param repoTag The name `docker load` tags it with, e.g. `127.0.0.1:5000/team/app:1`.
 * @param layers The files of each layer.
 * @returns The archive, the image ID and the DiffIDs.
 */
export function dockerArchive(repoTag: string, layers: LayerFile[][]): DockerArchive {
  const tars = layers.map((files) => tar(files));
  const diffIDs = tars.map(sha256);
  const config = imageConfig(diffIDs);
  const imageID = sha256(config);
  const configName = `${imageID.slice("sha256:".length)}.json`;
  // docker save names a layer's directory by its v1 ID; any unique name loads the same.
  const layerNames = diffIDs.map((diffID) => `${diffID.slice("sha256:".length)}/layer.tar`);
  const colon = repoTag.lastIndexOf(":");
  const topLayer = diffIDs.at(-1)!.slice("sha256:".length);
  const json = (value: unknown) => encoder.encode(JSON.stringify(value));
  const archive = tar([
    ...tars.map((data, i) => ({ name: layerNames[i]!, data })),
    { name: configName, data: config },
    {
      name: "manifest.json",
      data: json([{ Config: configName, RepoTags: [repoTag], Layers: layerNames }]),
    },
    {
      name: "repositories",
      data: json({ [repoTag.slice(0, colon)]: { [repoTag.slice(colon + 1)]: topLayer } }),
    },
  ]);
  return { archive, imageID, diffIDs };
}
