/**
 * Docker's `V1IDService`: layers by their registry v1 image ID (docker 1.x–20.10).
 *
 * @module
 */
import { MetadataError } from "./errors.ts";
import type { MetadataStore } from "./metadata_store.ts";

const NAMESPACE = "v1id";
const V1_ID = /^[a-f0-9]{64}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function validate(v1ID: string): void {
  // Go quotes the ID with %q; JSON.stringify agrees for the escapes an ID plausibly has (\n).
  if (!V1_ID.test(v1ID)) {
    throw new MetadataError("EINVAL", `image ID ${JSON.stringify(v1ID)} is invalid`);
  }
}

/**
 * Maps `(registry, v1 ID)` to a layer DiffID under `v1id/<registry>,<v1ID>`, as dockerd
 * did for registries that spoke the v1 protocol.
 *
 * @example
 * ```ts
 * import { FSMetadataStore, MemoryFileSystem, V1IDService } from "@distribution/metadata";
 * import { equal } from "node:assert/strict";
 *
 * const service = new V1IDService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
 * await service.set("a".repeat(64), "registry.example.com", "sha256:1");
 * equal(await service.get("a".repeat(64), "registry.example.com"), "sha256:1");
 * ```
 */
export class V1IDService {
  readonly #store: MetadataStore | null;

  /**
   * Creates the service.
   *
   * @param store Where to keep the mapping; `null` makes `set` a no-op and `get` fail.
   */
  constructor(store: MetadataStore | null) {
    this.#store = store;
  }

  /**
   * The DiffID recorded for a v1 ID.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V1IDService } from "@distribution/metadata";
   *
   * const service = new V1IDService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * await service.get("not-an-id", "r").catch((error) => error.message); // 'image ID "not-an-id" is invalid'
   * ```
   *
   * @param v1ID 64 lower-case hex characters.
   * @param registry The registry's name (a `/` nests directories).
   * @returns The stored DiffID text; `EINVAL` for a malformed ID, `ENOENT` when unknown.
   */
  async get(v1ID: string, registry: string): Promise<string> {
    if (!this.#store) throw new MetadataError("ENODEV", "no v1IDService storage");
    validate(v1ID);
    return decoder.decode(await this.#store.get(NAMESPACE, `${registry},${v1ID}`));
  }

  /**
   * Records the DiffID for a v1 ID.
   *
   * @example
   * ```ts
   * import { FSMetadataStore, MemoryFileSystem, V1IDService } from "@distribution/metadata";
   *
   * const service = new V1IDService(await FSMetadataStore.open("/s", { fs: new MemoryFileSystem() }));
   * await service.set("b".repeat(64), "", "sha256:2"); // stored at v1id/,bbbb…
   * ```
   *
   * @param v1ID 64 lower-case hex characters.
   * @param registry The registry's name.
   * @param diffID The layer's DiffID, stored as is.
   */
  async set(v1ID: string, registry: string, diffID: string): Promise<void> {
    if (!this.#store) return;
    validate(v1ID);
    await this.#store.set(NAMESPACE, `${registry},${v1ID}`, encoder.encode(diffID));
  }
}
