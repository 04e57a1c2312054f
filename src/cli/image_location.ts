// The two sides of `copy`, as skopeo names them: `docker://REF` (a registry) and
// `oci:DIR[:TAG]` (an OCI image layout directory). Names are read by the registry's
// reference module, the one place Docker names are normalised.
import { formatReference, parseReference, type Reference } from "../registry/mod.ts";
import { isOciRefName } from "../registry/oci_layout.ts";
import { UsageError } from "./args.ts";

/** Where `copy` reads or writes an image. */
export type ImageLocation =
  | { kind: "docker"; reference: Reference; text: string }
  | { kind: "oci"; dir: string; tag: string | undefined; text: string };

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
    `Cannot copy "${text}": name a registry image as docker://REF or a layout as oci:DIR[:TAG]`,
  );
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
  return `oci:${location.dir}${location.tag === undefined ? "" : `:${location.tag}`}`;
}
