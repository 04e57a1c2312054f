/**
 * A {@linkcode ContentStore} in an OCI image layout directory (`oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`): the format skopeo, crane and oras read and write, on the core's
 * {@linkcode FileSystem}.
 *
 * @module
 */
import type { FileSystem } from "../file_system.ts";
import { mapError } from "../_map_error.ts";
import { runtimeFileSystem } from "../_runtime_file_system.ts";
import { MetadataError } from "../errors.ts";
import { LIMITS, parseJson, readAtMost } from "./transport/limits.ts";
import { isDigest, verifyDigest } from "./_digest.ts";
import { verifying } from "./_verify.ts";
import { RegistryError } from "./errors.ts";
import type { BlobOpenOptions, BlobReadOptions, ContentStore, Descriptor } from "./types.ts";

/** The annotation OCI layouts name images by (skopeo and oras write the tag there). */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** The annotation containerd (and `docker save`) write the full reference to. */
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";

/**
 * The OCI image layout's grammar for `org.opencontainers.image.ref.name`, as skopeo checks
 * it: components of letters and digits joined by one of `-._:@+` or by `--`, separated by `/`.
 */
const REF_NAME_COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const REF_NAME = new RegExp(`^${REF_NAME_COMPONENT}(?:/${REF_NAME_COMPONENT})*$`);

/**
 * Whether `name` may name an image in an OCI layout (the grammar skopeo and the image spec
 * give `org.opencontainers.image.ref.name`): `1.0`, `app:1.0`, `127.0.0.1:5000/app:1.0`, not
 * `../x`, `-x` or the empty string.
 *
 * @param name The tag or reference.
 * @returns Whether the grammar accepts it.
 */
export function isOciRefName(name: string): boolean {
  return REF_NAME.test(name);
}

const FILE_MODE = 0o644;
const DIRECTORY_MODE = 0o755;
const encoder = new TextEncoder();

interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  [key: string]: unknown;
}

function randomDigits(): string {
  return String(Math.floor(Math.random() * 1e9));
}

function malformedIndex(path: string, why: string): RegistryError {
  return new RegistryError("MALFORMED", `Cannot read "${path}": ${why}`, {
    url: path,
    reason: why,
  });
}

function notADigest(digest: string): MetadataError {
  return new MetadataError("EINVAL", `Cannot use blob "${digest}": not a digest`, { path: digest });
}

/**
 * An OCI image layout directory as a {@linkcode ContentStore}. Blobs are written atomically
 * (temp file and rename) after their digest is checked; `index.json` updates run one at a time.
 *
 * @example
 * ```ts
 * import { MemoryFileSystem } from "@distribution/metadata";
 * import { ociLayoutStore } from "@distribution/metadata/registry";
 *
 * const store = await ociLayoutStore("/images/app", { fs: new MemoryFileSystem() });
 * console.log(await store.resolve("latest")); // null
 * ```
 */
export class OciLayoutStore implements ContentStore {
  /** The layout's directory. */
  readonly dir: string;
  readonly #fs: FileSystem;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Use {@linkcode ociLayoutStore}, which also creates the layout.
   *
   * @param dir The absolute directory.
   * @param fs The filesystem.
   */
  constructor(dir: string, fs: FileSystem) {
    this.dir = dir.replace(/\/+$/, "") || "/";
    this.#fs = fs;
  }

  /** @internal Creates `oci-layout` and `index.json` when missing. */
  async init(): Promise<void> {
    await this.#mkdir(`${this.dir}/blobs`);
    if (await this.#fs.stat(`${this.dir}/oci-layout`) === null) {
      await this.#write(`${this.dir}/oci-layout`, encoder.encode('{"imageLayoutVersion":"1.0.0"}'));
    }
    if (await this.#fs.stat(`${this.dir}/index.json`) === null) {
      await this.#writeIndex({ schemaVersion: 2, manifests: [] });
    }
  }

  #blobPath(digest: string): string {
    if (!isDigest(digest)) throw notADigest(digest);
    const colon = digest.indexOf(":");
    return `${this.dir}/blobs/${digest.slice(0, colon)}/${digest.slice(colon + 1)}`;
  }

  async #mkdir(path: string): Promise<void> {
    try {
      await this.#fs.mkdir(path, DIRECTORY_MODE);
    } catch (error) {
      throw mapError(error, "create", "directory", path);
    }
  }

  #tempPath(path: string): string {
    const slash = path.lastIndexOf("/");
    return `${path.slice(0, slash)}/.tmp-${path.slice(slash + 1)}${randomDigits()}`;
  }

  async #write(path: string, data: Uint8Array): Promise<void> {
    const temp = this.#tempPath(path);
    try {
      await this.#fs.writeFileAtomic(path, temp, data, FILE_MODE);
    } catch (error) {
      throw mapError(error, "write", "file", path);
    }
  }

  /**
   * Whether the blob is present.
   *
   * @param digest `sha256:<hex>`.
   * @returns `true` when it is.
   */
  async has(digest: string): Promise<boolean> {
    const info = await this.#fs.stat(this.#blobPath(digest));
    return info !== null && info.kind === "file";
  }

  /**
   * A blob's size, from the filesystem's `stat` (nothing is read).
   *
   * @param digest `sha256:<hex>`.
   * @returns Its size; `ENOENT` when absent, `EINVAL` when not a regular file.
   */
  async stat(digest: string): Promise<{ size: number }> {
    const path = this.#blobPath(digest);
    let info;
    try {
      info = await this.#fs.stat(path);
    } catch (error) {
      throw mapError(error, "read", `blob ${digest}`, path);
    }
    if (info === null || info.kind !== "file") {
      const [code, reason] = info === null
        ? ["ENOENT", "no such file or directory"]
        : ["EINVAL", "not a regular file"];
      throw new MetadataError(code, `Cannot read "blob ${digest}" at "${path}": ${reason}`, {
        path,
      });
    }
    return { size: info.size };
  }

  /**
   * Reads a blob (a regular file: symlinks, FIFOs and devices are refused).
   *
   * @param digest `sha256:<hex>`.
   * @param options `maxBytes`: a bigger file is refused with `EFBIG` before it is read.
   * @returns Its bytes; `ENOENT` when absent.
   */
  async get(digest: string, options: BlobReadOptions = {}): Promise<Uint8Array> {
    const path = this.#blobPath(digest);
    try {
      return await this.#fs.readFile(path, { maxBytes: options.maxBytes });
    } catch (error) {
      throw mapError(error, "read", `blob ${digest}`, path);
    }
  }

  /**
   * Stores a blob after checking its digest (a present blob is left alone).
   *
   * @param digest `sha256:<hex>`.
   * @param data The bytes.
   * @returns Nothing.
   */
  async put(digest: string, data: Uint8Array): Promise<void> {
    const path = this.#blobPath(digest);
    await verifyDigest(data, digest, `blob "${digest}"`);
    if (await this.has(digest)) return;
    await this.#mkdir(path.slice(0, path.lastIndexOf("/")));
    await this.#write(path, data);
  }

  /**
   * A blob as a stream, read from the file as the consumer pulls (a regular file: symlinks,
   * FIFOs and devices are refused), checked against its digest unless `verify` is `false`.
   * On a filesystem without `openRead` the file is read whole first.
   *
   * @param digest `sha256:<hex>`.
   * @param options `maxBytes`: a bigger file is refused with `EFBIG` before it is read.
   * @returns The bytes; `ENOENT` when absent.
   */
  async open(digest: string, options: BlobOpenOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const path = this.#blobPath(digest);
    const readOptions = { maxBytes: options.maxBytes };
    let stream: ReadableStream<Uint8Array>;
    try {
      if (this.#fs.openRead !== undefined) {
        stream = (await this.#fs.openRead(path, readOptions)).stream;
      } else {
        const data = await this.#fs.readFile(path, readOptions);
        stream = new ReadableStream({
          start(controller) {
            controller.enqueue(data);
            controller.close();
          },
        });
      }
    } catch (error) {
      throw mapError(error, "read", `blob ${digest}`, path);
    }
    if (options.verify === false) return stream;
    return verifying(stream, digest, `blob "${digest}" in the content store`);
  }

  /**
   * Stores a blob from a stream: written to a temp file as it arrives, checked against its
   * digest, renamed to its name only once checked (a present blob is left alone). On a
   * filesystem without `writeFileStream` the bytes are collected first.
   *
   * @param digest `sha256:<hex>`.
   * @param data The bytes.
   * @param options `maxBytes`: more bytes fail with `TOO_LARGE` (and nothing is stored).
   * @returns Nothing.
   */
  async write(
    digest: string,
    data: ReadableStream<Uint8Array>,
    options: BlobReadOptions = {},
  ): Promise<void> {
    const path = this.#blobPath(digest);
    if (await this.has(digest)) {
      await data.cancel().catch(() => {});
      return;
    }
    await this.#mkdir(path.slice(0, path.lastIndexOf("/")));
    const checked = verifying(data, digest, `blob "${digest}"`, options.maxBytes ?? Infinity);
    if (this.#fs.writeFileStream === undefined) {
      return await this.#write(path, await readAtMost(checked, Infinity, `blob "${digest}"`));
    }
    try {
      await this.#fs.writeFileStream(path, this.#tempPath(path), checked, FILE_MODE);
    } catch (error) {
      // The filesystem's failures carry an errno code; the stream's own (a digest check, a
      // cut download, an abort) pass through as they are.
      const code = (error as { code?: unknown } | null)?.code;
      if (
        error instanceof RegistryError || typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)
      ) {
        throw error;
      }
      throw mapError(error, "write", "file", path);
    }
  }

  /** `index.json`: at most `LIMITS.layoutIndex` bytes, a JSON object whose manifests are descriptors. */
  async #readIndex(): Promise<Index> {
    const path = `${this.dir}/index.json`;
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(path, { maxBytes: LIMITS.layoutIndex });
    } catch (error) {
      throw mapError(error, "read", "index", path);
    }
    const index = parseJson(bytes, `"${path}"`, path) as Index | null;
    if (index === null || typeof index !== "object" || Array.isArray(index)) {
      throw malformedIndex(path, "not a JSON object");
    }
    if (index.manifests === undefined || index.manifests === null) index.manifests = [];
    if (!Array.isArray(index.manifests)) throw malformedIndex(path, "manifests is not a list");
    for (const [i, d] of index.manifests.entries()) {
      if (
        d === null || typeof d !== "object" || !isDigest(d.digest) ||
        !Number.isSafeInteger(d.size) || typeof d.mediaType !== "string" ||
        (d.annotations !== undefined &&
          (d.annotations === null || typeof d.annotations !== "object"))
      ) {
        throw malformedIndex(path, `manifests[${i}] is not a descriptor`);
      }
    }
    return index;
  }

  #writeIndex(index: Index): Promise<void> {
    return this.#write(`${this.dir}/index.json`, encoder.encode(JSON.stringify(index)));
  }

  /**
   * Every manifest `index.json` lists.
   *
   * @returns The descriptors, with their annotations.
   */
  async list(): Promise<Descriptor[]> {
    return (await this.#readIndex()).manifests;
  }

  /**
   * The manifest a name points at: a tag (`org.opencontainers.image.ref.name`), a full
   * reference (`io.containerd.image.name`, or a ref name holding one) or a digest.
   *
   * @param name e.g. `latest`, `127.0.0.1:5000/app:latest`, `sha256:<hex>`.
   * @returns The descriptor, or `null`.
   */
  async resolve(name: string): Promise<Descriptor | null> {
    const manifests = (await this.#readIndex()).manifests;
    const found = manifests.find((d) =>
      d.annotations?.[ANNOTATION_REF_NAME] === name ||
      d.annotations?.[ANNOTATION_IMAGE_NAME] === name
    ) ?? manifests.find((d) => d.digest === name);
    return found === undefined ? null : { ...found };
  }

  /**
   * Points a name at a manifest in `index.json`, replacing the entry that had that name.
   *
   * @param name The tag or reference to write to `org.opencontainers.image.ref.name`;
   * `TAG_INVALID` when the layout's grammar ({@linkcode isOciRefName}) refuses it.
   * @param descriptor The manifest's descriptor (its blob should be stored).
   * @returns Nothing.
   */
  tag(name: string, descriptor: Descriptor): Promise<void> {
    if (!isOciRefName(name)) {
      return Promise.reject(
        new RegistryError(
          "TAG_INVALID",
          `Cannot tag "${name}" in "${this.dir}": not an OCI reference name (letters and ` +
            "digits joined by one of -._:@+ or --, in components separated by /)",
          { url: this.dir },
        ),
      );
    }
    const run = this.#queue.then(async () => {
      const index = await this.#readIndex();
      index.manifests = index.manifests.filter((d) =>
        d.annotations?.[ANNOTATION_REF_NAME] !== name
      );
      const { mediaType, digest, size, platform } = descriptor;
      index.manifests.push({
        mediaType,
        digest,
        size,
        ...(platform === undefined ? {} : { platform }),
        annotations: { ...descriptor.annotations, [ANNOTATION_REF_NAME]: name },
      });
      await this.#writeIndex(index);
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

/**
 * Opens (creating when missing) an OCI image layout directory as a content store.
 *
 * @param dir The absolute directory.
 * @param options `fs`: the filesystem (default: the running runtime's).
 * @returns The store.
 *
 * @example
 * ```ts
 * import { MemoryFileSystem } from "@distribution/metadata";
 * import { ociLayoutStore } from "@distribution/metadata/registry";
 *
 * const store = await ociLayoutStore("/layout", { fs: new MemoryFileSystem() });
 * const data = new TextEncoder().encode("{}");
 * const digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
 * await store.put(digest, data);
 * console.log(await store.has(digest)); // true
 * ```
 */
export async function ociLayoutStore(
  dir: string,
  options: { fs?: FileSystem } = {},
): Promise<OciLayoutStore> {
  const store = new OciLayoutStore(dir, options.fs ?? runtimeFileSystem());
  await store.init();
  return store;
}
