/**
 * Docker image references (`busybox`, `localhost:5000/team/app:1.0`, `name@sha256:…`), parsed
 * and normalised as Docker's `reference.ParseNormalizedNamed` does.
 *
 * @module
 */
import { RegistryError } from "./errors.ts";

/** A parsed, normalised Docker reference. */
export interface Reference {
  /** The registry host, e.g. `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** The repository path on that registry, e.g. `library/busybox`, `team/app`. */
  path: string;
  /** The full name, `domain/path`, e.g. `docker.io/library/busybox` (dockerd's SourceRepository). */
  name: string;
  /** The tag, when there is one (`latest` is filled in for a name alone). */
  tag: string | undefined;
  /** The digest, when the reference pins one. */
  digest: string | undefined;
}

/** The default registry of Docker references. */
export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPOSITORY_PREFIX = "library/";
const NAME_TOTAL_LENGTH_MAX = 255;

const ALPHA_NUMERIC = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]*)";
const NAME_COMPONENT = `${ALPHA_NUMERIC}(?:${SEPARATOR}${ALPHA_NUMERIC})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const NAME = `(?:${DOMAIN}/)?${NAME_COMPONENT}(?:/${NAME_COMPONENT})*`;
const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const HEX64_RE = /^[a-f0-9]{64}$/;
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, reason: string): RegistryError {
  return new RegistryError("NAME_INVALID", `Cannot parse reference "${input}": ${reason}`, {
    url: input,
    reason,
  });
}

/** Docker's `splitDockerDomain`: the registry part, and the path with `library/` filled in. */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf("/");
  let domain: string;
  let remainder: string;
  if (
    slash === -1 || (!/[.:]/.test(name.slice(0, slash)) && name.slice(0, slash) !== "localhost")
  ) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, slash);
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) {
    remainder = OFFICIAL_REPOSITORY_PREFIX + remainder;
  }
  return [domain, remainder];
}

/** Checks a digest's algorithm and length as `go-digest` does. */
function checkDigest(input: string, digest: string): void {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const expected = DIGEST_LENGTHS[algorithm];
  if (expected === undefined) throw invalid(input, "unsupported digest algorithm");
  if (digest.length - colon - 1 !== expected) {
    throw invalid(input, "invalid checksum digest length");
  }
  if (!/^[a-f0-9]+$/.test(digest.slice(colon + 1))) {
    throw invalid(input, "invalid checksum digest format");
  }
}

/**
 * Parses a Docker reference and normalises it as the docker CLI does: `busybox` →
 * `docker.io/library/busybox:latest`, `index.docker.io/x/y` → `docker.io/x/y`. A reference with
 * neither tag nor digest gets the tag `latest`.
 *
 * @param input The reference, e.g. `localhost:5000/team/app:1.0` or `name@sha256:<hex>`.
 * @param options `defaultTag: false` keeps a name alone without a tag.
 * @returns The parsed reference.
 * @throws {RegistryError} `NAME_INVALID`, with Docker's reason in `reason` (`invalid reference format`,
 * `repository name must be lowercase`, …).
 *
 * @example
 * ```ts
 * import { parseReference } from "@distribution/metadata/registry";
 * import { deepEqual } from "node:assert/strict";
 *
 * deepEqual(parseReference("busybox"), {
 *   domain: "docker.io",
 *   path: "library/busybox",
 *   name: "docker.io/library/busybox",
 *   tag: "latest",
 *   digest: undefined,
 * });
 * ```
 */
export function parseReference(input: string, options: { defaultTag?: boolean } = {}): Reference {
  if (typeof input !== "string" || input === "") {
    throw invalid(String(input), "repository name must have at least one component");
  }
  if (HEX64_RE.test(input)) {
    throw invalid(
      input,
      `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`,
    );
  }
  const [domain, remainder] = splitDockerDomain(input);
  const tagSep = remainder.indexOf(":");
  const remoteName = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remoteName.toLowerCase() !== remoteName) {
    throw invalid(input, "invalid reference format: repository name must be lowercase");
  }
  const full = `${domain}/${remainder}`;
  const match = REFERENCE_RE.exec(full);
  if (match === null) {
    if (REFERENCE_RE.test(full.toLowerCase())) {
      throw invalid(input, "invalid reference format: repository name must be lowercase");
    }
    throw invalid(input, "invalid reference format");
  }
  const name = match[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(
      input,
      `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`,
    );
  }
  const digest = match[3];
  if (digest !== undefined) checkDigest(input, digest);
  let tag = match[2];
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = "latest";
  return { domain, path: name.slice(domain.length + 1), name, tag, digest };
}

/**
 * The canonical string of a reference: `name[:tag][@digest]`.
 *
 * @param ref A parsed reference.
 * @returns e.g. `docker.io/library/busybox:latest`.
 *
 * @example
 * ```ts
 * import { formatReference, parseReference } from "@distribution/metadata/registry";
 * console.log(formatReference(parseReference("busybox"))); // docker.io/library/busybox:latest
 * ```
 */
export function formatReference(ref: Reference): string {
  return ref.name + (ref.tag === undefined ? "" : `:${ref.tag}`) +
    (ref.digest === undefined ? "" : `@${ref.digest}`);
}

/**
 * Docker's familiar name: the short form the CLI shows (`busybox`, `user/app`,
 * `localhost:5000/app`).
 *
 * @param ref A parsed reference.
 * @returns The name without `docker.io/` and `library/`.
 *
 * @example
 * ```ts
 * import { familiarName, parseReference } from "@distribution/metadata/registry";
 * console.log(familiarName(parseReference("docker.io/library/busybox"))); // busybox
 * ```
 */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return ref.name;
  const path = ref.path;
  const rest = path.slice(OFFICIAL_REPOSITORY_PREFIX.length);
  return path.startsWith(OFFICIAL_REPOSITORY_PREFIX) && !rest.includes("/") ? rest : path;
}

/**
 * Whether a string is a valid tag (`[\w][\w.-]{0,127}`).
 *
 * @param tag The candidate.
 * @returns `true` when Docker would accept it as a tag.
 *
 * @example
 * ```ts
 * import { isValidTag } from "./reference.ts";
 * console.log(isValidTag("1.0"), isValidTag(".x")); // true false
 * ```
 */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
