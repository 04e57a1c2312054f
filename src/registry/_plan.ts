// What push will send, read from the content store and checked before the first request:
// each manifest and configuration against its digest and size limit, DiffIDs as digests (they
// become metadata keys), and the depth of indexes within indexes. Checking each manifest's
// digest is what ends an index that names itself: content addressing admits no cycle, so a
// crafted one is a manifest whose bytes are not its name (DIGEST_INVALID).
import { LIMITS } from "./transport/limits.ts";
import { isDigest, readVerified } from "./_digest.ts";
import { imageParts } from "./_image.ts";
import { RegistryError } from "./errors.ts";
import { isIndexMediaType, parseManifest } from "./manifest.ts";
import type { ContentStore, Descriptor, Manifest } from "./types.ts";

/** A manifest of the store, ready to push. */
export type PlannedManifest =
  & { descriptor: Descriptor; manifest: Manifest }
  & (
    | { kind: "index"; children: PlannedManifest[] }
    | {
      kind: "image";
      config: Descriptor;
      configBytes: Uint8Array;
      layers: { layer: Descriptor; diffID: string }[];
    }
  );

async function readLimited(
  store: ContentStore,
  digest: string,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  const data = await readVerified(store, digest, what, limit);
  if (data.length > limit) {
    throw new RegistryError("TOO_LARGE", `Cannot push ${what}: larger than ${limit} bytes`, {
      url: digest,
      reason: `limit ${limit} bytes`,
    });
  }
  return data;
}

/**
 * Reads and checks the image `descriptor` names, and every manifest of an index that the
 * store has, depth first.
 *
 * @param store The content store.
 * @param descriptor The top manifest.
 * @param shown The reference, for messages.
 * @returns The plan.
 */
export function planImage(
  store: ContentStore,
  descriptor: Descriptor,
  shown: string,
): Promise<PlannedManifest> {
  const planned = new Map<string, Promise<PlannedManifest>>();
  const plan = async (node: Descriptor, depth: number): Promise<PlannedManifest> => {
    if (depth > LIMITS.indexDepth) {
      throw new RegistryError(
        "TOO_LARGE",
        `Cannot push "${shown}": indexes nested deeper than ${LIMITS.indexDepth} levels`,
        { url: node.digest, reason: `limit ${LIMITS.indexDepth} levels` },
      );
    }
    const payload = await readLimited(
      store,
      node.digest,
      LIMITS.manifest,
      `manifest "${node.digest}"`,
    );
    const manifest = parseManifest(payload, node.mediaType, shown);
    const base = { descriptor: { ...node, size: payload.length }, manifest };
    const refs = manifest.references();
    if (isIndexMediaType(manifest.mediaType)) {
      const children: PlannedManifest[] = [];
      for (const child of refs) {
        if (!(await store.has(child.digest))) continue;
        // An index may name a manifest many times: it is read and checked once.
        let planning = planned.get(child.digest);
        if (planning === undefined) {
          planning = plan(child, depth + 1);
          planned.set(child.digest, planning);
        }
        children.push(await planning);
      }
      return { ...base, kind: "index", children };
    }
    const { config, configBytes, layers: pairs } = await imageParts(
      manifest,
      (descriptor) =>
        readLimited(
          store,
          descriptor.digest,
          LIMITS.config,
          `image configuration "${descriptor.digest}"`,
        ),
      shown,
    );
    for (const { diffID } of pairs) {
      if (!isDigest(diffID)) {
        throw new RegistryError(
          "MALFORMED",
          `Cannot push "${shown}": rootfs.diff_ids entry "${diffID}" is not a digest`,
          { url: diffID, reason: "DiffID is not a digest" },
        );
      }
    }
    return { ...base, kind: "image", config, configBytes, layers: pairs };
  };
  return plan(descriptor, 0);
}
