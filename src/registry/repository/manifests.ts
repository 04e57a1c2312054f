/**
 * The manifests of a repository: described (`HEAD`), fetched within `LIMITS.manifest` and
 * checked against the digest asked for or answered, stored, deleted.
 *
 * @module
 */
import { discard } from "../transport/http.ts";
import { LIMITS, readAtMost } from "../transport/limits.ts";
import { digestOf, isDigest, verifyDigest } from "../_digest.ts";
import { isRegistryError } from "../errors.ts";
import { MANIFEST_ACCEPT, parseManifest } from "../manifest.ts";
import type { Descriptor, Manifest, ManifestService } from "../types.ts";
import {
  apiPath,
  checkAnsweredDigest,
  declaredLength,
  type RepositoryContext,
  request,
  tooLarge,
} from "./context.ts";

/** The manifest service of a repository. */
export function manifestService(ctx: RepositoryContext): ManifestService {
  return {
    exists: (reference) => manifestExists(ctx, reference),
    get: (reference) => getManifest(ctx, reference),
    put: (manifest, options) => putManifest(ctx, manifest, options?.tag),
    delete: (digest) => deleteManifest(ctx, digest),
  };
}

/** Describes a manifest by tag or digest (`HEAD`), its digest checked when asked by one. */
export async function headManifest(
  ctx: RepositoryContext,
  reference: string,
): Promise<Descriptor> {
  const response = await request(ctx, "HEAD", apiPath(ctx, "manifests", reference), {
    headers: { accept: MANIFEST_ACCEPT },
    notFound: "MANIFEST_UNKNOWN",
  });
  await discard(response);
  if (reference.includes(":")) checkAnsweredDigest(response, reference, `"${reference}"`);
  const digest = response.headers.get("docker-content-digest");
  return {
    mediaType: (response.headers.get("content-type") ?? "").split(";")[0]!,
    size: declaredLength(response),
    digest: isDigest(digest) ? digest : "",
  };
}

async function manifestExists(ctx: RepositoryContext, reference: string): Promise<boolean> {
  try {
    await headManifest(ctx, reference);
    return true;
  } catch (error) {
    if (isRegistryError(error) && error.status === 404) return false;
    throw error;
  }
}

async function getManifest(ctx: RepositoryContext, reference: string): Promise<Manifest> {
  const response = await request(ctx, "GET", apiPath(ctx, "manifests", reference), {
    headers: { accept: MANIFEST_ACCEPT },
    notFound: "MANIFEST_UNKNOWN",
  });
  const byDigest = reference.includes(":");
  const shown = byDigest ? `${ctx.name}@${reference}` : `${ctx.name}:${reference}`;
  const what = `manifest "${shown}"`;
  if (declaredLength(response) > LIMITS.manifest) {
    await discard(response);
    throw tooLarge(what, LIMITS.manifest, response.url);
  }
  const payload = await readAtMost(response.body, LIMITS.manifest, what, response.url);
  const manifest = parseManifest(payload, response.headers.get("content-type") ?? "", shown);
  const header = response.headers.get("docker-content-digest");
  const expected = byDigest ? reference : isDigest(header) ? header : null;
  if (expected !== null) await verifyDigest(payload, expected, what);
  return manifest;
}

async function putManifest(
  ctx: RepositoryContext,
  manifest: Manifest,
  tag: string | undefined,
): Promise<string> {
  const digest = await digestOf(manifest.payload);
  const response = await request(ctx, "PUT", apiPath(ctx, "manifests", tag ?? digest), {
    headers: { "content-type": manifest.mediaType },
    body: manifest.payload,
  });
  await discard(response);
  checkAnsweredDigest(response, digest, `manifest "${digest}"`);
  return digest;
}

async function deleteManifest(ctx: RepositoryContext, digest: string): Promise<void> {
  const response = await request(ctx, "DELETE", apiPath(ctx, "manifests", digest), {
    notFound: "MANIFEST_UNKNOWN",
  });
  await discard(response);
}
