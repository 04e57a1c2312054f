/**
 * The typed errors of the registry side: one class per kind of failure the registry API (or
 * Docker's `distribution` package) distinguishes, all {@linkcode MetadataError}s.
 *
 * @module
 */
import { MetadataError } from "../errors.ts";

/** One entry of the registry's JSON error body (`{"errors":[{code,message,detail}]}`). */
export interface RegistryErrorEntry {
  /** The registry error code, e.g. `BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`, `DENIED`. */
  code: string;
  /** The registry's message. */
  message: string;
  /** Whatever detail the registry attached. */
  detail?: unknown;
}

/** Options every registry error takes. */
export interface RegistryErrorOptions {
  /** The HTTP status of the answer, when the error comes from one. */
  status?: number;
  /** The registry's error entries. */
  errors?: RegistryErrorEntry[];
  /** The underlying error. */
  cause?: unknown;
  /** The repository or URL concerned. */
  path?: string;
}

/**
 * Any failure talking to a registry. `code` is the registry error code (`BLOB_UNKNOWN`,
 * `UNAUTHORIZED`, …, or `UNKNOWN`), `status` the HTTP status, `errors` the registry's list.
 *
 * @example Tell "not there" from other failures
 * ```ts
 * import { ErrManifestUnknown, RegistryError } from "@distribution/metadata/registry";
 *
 * const error: unknown = new ErrManifestUnknown("manifest unknown", { status: 404 });
 * if (error instanceof RegistryError && error.status === 404) console.log(error.code);
 * ```
 */
export class RegistryError extends MetadataError {
  /** The HTTP status of the answer, when the error comes from one. */
  readonly status: number | undefined;
  /** The registry's error entries (empty when the answer had none). */
  readonly errors: RegistryErrorEntry[];

  /**
   * Creates an error.
   *
   * @param code The registry error code, e.g. `BLOB_UNKNOWN`.
   * @param message What was attempted and why it failed.
   * @param options Status, registry errors, cause and path.
   */
  constructor(code: string, message: string, options: RegistryErrorOptions = {}) {
    super(code, message, {
      ...(options.path === undefined ? {} : { path: options.path }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = "RegistryError";
    this.status = options.status;
    this.errors = options.errors ?? [];
  }
}

/**
 * The blob is not in the repository (`BLOB_UNKNOWN`, or a 404 on a blob).
 *
 * @example
 * ```ts
 * import { ErrBlobUnknown } from "@distribution/metadata/registry";
 * console.log(new ErrBlobUnknown("unknown blob").code); // "BLOB_UNKNOWN"
 * ```
 */
export class ErrBlobUnknown extends RegistryError {
  /**
   * Creates an error.
   *
   * @param message What was looked for.
   * @param options Status, registry errors, cause and path.
   */
  constructor(message = "unknown blob", options: RegistryErrorOptions = {}) {
    super("BLOB_UNKNOWN", message, options);
    this.name = "ErrBlobUnknown";
  }
}

/**
 * A blob's content does not match its digest (Docker's `ErrBlobInvalidDigest`).
 *
 * @example
 * ```ts
 * import { ErrBlobInvalidDigest } from "@distribution/metadata/registry";
 * console.log(new ErrBlobInvalidDigest("digest mismatch").code); // "DIGEST_INVALID"
 * ```
 */
export class ErrBlobInvalidDigest extends RegistryError {
  /**
   * Creates an error.
   *
   * @param message Which digest was expected and which was seen.
   * @param options Status, registry errors, cause and path.
   */
  constructor(message: string, options: RegistryErrorOptions = {}) {
    super("DIGEST_INVALID", message, options);
    this.name = "ErrBlobInvalidDigest";
  }
}

/**
 * The manifest is not known by the registry (`MANIFEST_UNKNOWN`).
 *
 * @example
 * ```ts
 * import { ErrManifestUnknown } from "@distribution/metadata/registry";
 * console.log(new ErrManifestUnknown("manifest unknown").code); // "MANIFEST_UNKNOWN"
 * ```
 */
export class ErrManifestUnknown extends RegistryError {
  /**
   * Creates an error.
   *
   * @param message What was looked for.
   * @param options Status, registry errors, cause and path.
   */
  constructor(message = "manifest unknown", options: RegistryErrorOptions = {}) {
    super("MANIFEST_UNKNOWN", message, options);
    this.name = "ErrManifestUnknown";
  }
}

/**
 * The tag is not known (Docker's `ErrTagUnknown`): a tag lookup answered 404.
 *
 * @example
 * ```ts
 * import { ErrTagUnknown } from "@distribution/metadata/registry";
 * console.log(new ErrTagUnknown("1.0").tag); // "1.0"
 * ```
 */
export class ErrTagUnknown extends RegistryError {
  /** The tag. */
  readonly tag: string;
  /**
   * Creates an error.
   *
   * @param tag The tag that was looked up.
   * @param options Status, registry errors, cause and path.
   */
  constructor(tag: string, options: RegistryErrorOptions = {}) {
    super("TAG_UNKNOWN", `unknown tag=${tag}`, options);
    this.name = "ErrTagUnknown";
    this.tag = tag;
  }
}

/**
 * The repository is not known by the registry (`NAME_UNKNOWN`).
 *
 * @example
 * ```ts
 * import { ErrRepositoryUnknown } from "@distribution/metadata/registry";
 * console.log(new ErrRepositoryUnknown("team/app").message); // "unknown repository name=team/app"
 * ```
 */
export class ErrRepositoryUnknown extends RegistryError {
  /** The repository name. */
  readonly repository: string;
  /**
   * Creates an error.
   *
   * @param repository The repository name.
   * @param options Status, registry errors, cause and path.
   */
  constructor(repository: string, options: RegistryErrorOptions = {}) {
    super("NAME_UNKNOWN", `unknown repository name=${repository}`, options);
    this.name = "ErrRepositoryUnknown";
    this.repository = repository;
  }
}

/**
 * A repository name or reference is invalid (`NAME_INVALID`, and every reference parse error).
 *
 * @example
 * ```ts
 * import { ErrRepositoryNameInvalid, parseReference } from "@distribution/metadata/registry";
 * try {
 *   parseReference("Busybox");
 * } catch (error) {
 *   console.log(error instanceof ErrRepositoryNameInvalid); // true
 * }
 * ```
 */
export class ErrRepositoryNameInvalid extends RegistryError {
  /** The name or reference that was refused. */
  readonly repository: string;
  /** Why it was refused, e.g. `repository name must be lowercase`. */
  readonly reason: string;
  /**
   * Creates an error.
   *
   * @param repository The refused name or reference.
   * @param reason Why it was refused.
   * @param options Status, registry errors, cause and path.
   */
  constructor(repository: string, reason: string, options: RegistryErrorOptions = {}) {
    super("NAME_INVALID", `Cannot parse reference "${repository}": ${reason}`, options);
    this.name = "ErrRepositoryNameInvalid";
    this.repository = repository;
    this.reason = reason;
  }
}

/**
 * Access to the resource was denied: `DENIED` (403) or, as {@linkcode ErrUnauthorized},
 * `UNAUTHORIZED` (401, missing or wrong credentials).
 *
 * @example
 * ```ts
 * import { ErrAccessDenied } from "@distribution/metadata/registry";
 * console.log(new ErrAccessDenied("requested access to the resource is denied").code); // "DENIED"
 * ```
 */
export class ErrAccessDenied extends RegistryError {
  /**
   * Creates an error.
   *
   * @param message The registry's message.
   * @param options Status, registry errors, cause and path.
   * @param code `DENIED`, or `UNAUTHORIZED` for the subclass.
   */
  constructor(message: string, options: RegistryErrorOptions = {}, code = "DENIED") {
    super(code, message, options);
    this.name = "ErrAccessDenied";
  }
}

/**
 * Authentication is required or failed (HTTP 401, `UNAUTHORIZED`).
 *
 * @example
 * ```ts
 * import { ErrAccessDenied, ErrUnauthorized } from "@distribution/metadata/registry";
 * console.log(new ErrUnauthorized("authentication required") instanceof ErrAccessDenied); // true
 * ```
 */
export class ErrUnauthorized extends ErrAccessDenied {
  /**
   * Creates an error.
   *
   * @param message The registry's message.
   * @param options Status, registry errors, cause and path.
   */
  constructor(message: string, options: RegistryErrorOptions = {}) {
    super(message, options, "UNAUTHORIZED");
    this.name = "ErrUnauthorized";
  }
}

/**
 * The operation is unsupported (`UNSUPPORTED`, e.g. a read-only registry, or 405).
 *
 * @example
 * ```ts
 * import { ErrUnsupported } from "@distribution/metadata/registry";
 * console.log(new ErrUnsupported("operation is unsupported").code); // "UNSUPPORTED"
 * ```
 */
export class ErrUnsupported extends RegistryError {
  /**
   * Creates an error.
   *
   * @param message What is unsupported.
   * @param options Status, registry errors, cause and path.
   * @param code `UNSUPPORTED`, or `SCHEMA1_DEPRECATED` for the subclass.
   */
  constructor(
    message = "operation is unsupported",
    options: RegistryErrorOptions = {},
    code = "UNSUPPORTED",
  ) {
    super(code, message, options);
    this.name = "ErrUnsupported";
  }
}

/**
 * A schema 1 manifest was met: refused, as dockerd v28 does, with its deprecation message
 * (`DeprecatedSchema1ImageError`).
 *
 * @example
 * ```ts
 * import { ErrSchema1Deprecated } from "@distribution/metadata/registry";
 * console.log(new ErrSchema1Deprecated("docker.io/library/old:1").code); // "SCHEMA1_DEPRECATED"
 * ```
 */
export class ErrSchema1Deprecated extends ErrUnsupported {
  /**
   * Creates the error with dockerd's message.
   *
   * @param ref The full reference of the image, or `null`.
   * @param options Status, registry errors, cause and path.
   */
  constructor(ref: string | null, options: RegistryErrorOptions = {}) {
    let message =
      "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed.";
    if (ref !== null) {
      message += ` Suggest the author of ${ref} to upgrade the image to the OCI Format or ` +
        "Docker Image manifest v2, schema 2.";
    }
    message += " More information at https://docs.docker.com/go/deprecated-image-specs/";
    super(message, options, "SCHEMA1_DEPRECATED");
    this.name = "ErrSchema1Deprecated";
  }
}
