// The sides of `copy`, as skopeo names them: `docker://REF` (a registry), `oci:DIR[:TAG]` (an
// OCI image layout directory), `docker-daemon:NAME:TAG` (dockerd's images) and
// `docker-archive:PATH[:NAME:TAG]` (a `docker save` archive), `oci-archive:PATH[:TAG]` (an OCI
// image layout in a tar). Names are read by the registry's
// reference module, the one place Docker names are normalised.
import type { ArchiveFormat } from "../registry/ends/_image_archive.ts";
import {
  familiarName,
  formatReference,
  parseReference,
  type Reference,
} from "../registry/reference.ts";
import { isOciRefName } from "../registry/oci_layout.ts";
import { UsageError } from "./args.ts";

/** Where `copy` reads or writes an image. */
export type ImageLocation =
  | { kind: "docker"; reference: Reference; text: string }
  | { kind: "oci"; dir: string; tag: string | undefined; text: string }
  | { kind: "docker-daemon"; reference: Reference; text: string }
  | { kind: "archive"; format: ArchiveFormat; path: string; tag: string | undefined; text: string };

const ARCHIVES: readonly ArchiveFormat[] = ["docker-archive", "oci-archive"];

/**
 * Reads one side of `copy`.
 *
 * @param text e.g. `docker://127.0.0.1:5000/team/app:1.0`, `oci:/tmp/app:1.0`, `oci:/tmp/app`.
 * @param cwd The directory a relative `oci:` path is taken from.
 * @returns The location; a bad one is a {@linkcode UsageError} naming it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseImageLocation } from "./image_location.ts";
 *
 * const side = parseImageLocation("docker://busybox", "/");
 * equal(side.kind === "docker" && side.reference.name, "docker.io/library/busybox");
 * ```
 */
export function parseImageLocation(text: string, cwd: string): ImageLocation {
  if (text.startsWith("docker://")) {
    let reference: Reference;
    try {
      reference = parseReference(text.slice("docker://".length));
    } catch (error) {
      throw new UsageError(`Cannot copy "${text}": ${(error as Error).message}`);
    }
    return { kind: "docker", reference, text };
  }
  const archive = ARCHIVES.find((format) => text.startsWith(`${format}:`));
  if (archive !== undefined) {
    // As skopeo: the path ends at the first ":"; a docker archive's NAME:TAG or an OCI
    // archive's TAG may follow.
    const rest = text.slice(archive.length + 1);
    const colon = rest.indexOf(":");
    let path = colon < 0 ? rest : rest.slice(0, colon);
    let tag = colon < 0 ? undefined : rest.slice(colon + 1);
    if (tag !== undefined && archive === "docker-archive") {
      let reference: Reference;
      try {
        reference = parseReference(tag, { defaultTag: false });
      } catch (error) {
        throw new UsageError(`Cannot copy "${text}": ${(error as Error).message}`);
      }
      if (reference.tag === undefined || reference.digest !== undefined) {
        throw new UsageError(
          `Cannot copy "${text}": name the image as docker-archive:PATH:NAME:TAG`,
        );
      }
      tag = taggedName(reference);
    } else if (tag !== undefined && !isOciRefName(tag)) {
      throw new UsageError(`Cannot copy "${text}": "${tag}" is not an OCI layout's image name`);
    }
    if (path === "") throw new UsageError(`Cannot copy "${text}": no path`);
    if (!path.startsWith("/")) path = `${cwd.replace(/\/+$/, "")}/${path}`;
    return { kind: "archive", format: archive, path, tag, text };
  }
  if (text.startsWith("docker-daemon:")) {
    // As skopeo: a name with a tag (dockerd tags what it loads), no digest.
    let reference: Reference;
    try {
      reference = parseReference(text.slice("docker-daemon:".length), { defaultTag: false });
    } catch (error) {
      throw new UsageError(`Cannot copy "${text}": ${(error as Error).message}`);
    }
    if (reference.tag === undefined || reference.digest !== undefined) {
      throw new UsageError(`Cannot copy "${text}": name dockerd's image as docker-daemon:NAME:TAG`);
    }
    return { kind: "docker-daemon", reference, text };
  }
  if (text.startsWith("oci:")) {
    // As skopeo: the directory ends at the first ":", and what follows must be a name the
    // layout's grammar accepts, so `oci:d/x:../../y` is refused, not the directory `x:..`.
    let dir = text.slice("oci:".length);
    let tag: string | undefined;
    const colon = dir.indexOf(":");
    if (colon >= 0) {
      tag = dir.slice(colon + 1);
      dir = dir.slice(0, colon);
      if (!isOciRefName(tag)) {
        throw new UsageError(
          `Cannot copy "${text}": invalid image "${tag}": an OCI layout names images by ` +
            "letters and digits joined by one of -._:@+ or --, in components separated by /",
        );
      }
    }
    if (dir === "") throw new UsageError(`Cannot copy "${text}": no directory`);
    if (!dir.startsWith("/")) dir = `${cwd.replace(/\/+$/, "")}/${dir}`;
    return { kind: "oci", dir, tag, text };
  }
  throw new UsageError(
    `Cannot copy "${text}": name a registry image as docker://REF or a layout as oci:DIR[:TAG], ` +
      "dockerd's image as docker-daemon:NAME:TAG or an archive as docker-archive:PATH[:NAME:TAG] " +
      "or oci-archive:PATH[:TAG]",
  );
}

/**
 * A tagged reference as docker load and docker save name images: `app:1`, `busybox:latest`.
 *
 * @param reference A reference with a tag.
 * @returns Its familiar name and tag.
 */
export function taggedName(reference: Reference): string {
  return `${familiarName(reference)}:${reference.tag}`;
}

/**
 * A location as shown in messages and events: `docker://` with the full reference.
 *
 * @param location A side of `copy`.
 * @returns e.g. `docker://docker.io/library/busybox:latest`, `oci:/tmp/app:1.0`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseImageLocation, showImageLocation } from "./image_location.ts";
 *
 * equal(showImageLocation(parseImageLocation("docker://busybox", "/")), "docker://docker.io/library/busybox:latest");
 * ```
 */
export function showImageLocation(location: ImageLocation): string {
  if (location.kind === "docker") return `docker://${formatReference(location.reference)}`;
  if (location.kind === "docker-daemon") return `docker-daemon:${taggedName(location.reference)}`;
  if (location.kind === "archive") {
    return `${location.format}:${location.path}${
      location.tag === undefined ? "" : `:${location.tag}`
    }`;
  }
  return `oci:${location.dir}${location.tag === undefined ? "" : `:${location.tag}`}`;
}
