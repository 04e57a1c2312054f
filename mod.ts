/**
 * Read and write Docker's distribution metadata — the store in which dockerd remembers
 * which registry blobs a layer came from, in which repositories, tagged with an HMAC of the
 * credentials used — byte-for-byte as dockerd does, on Deno, Bun, Node and edge runtimes.
 *
 * @example Record a pulled layer and ask where it can be mounted from
 * ```ts
 * import {
 *   checkV2MetadataHMAC,
 *   computeV2MetadataHMACKey,
 *   FSMetadataStore,
 *   MemoryFileSystem,
 *   V2MetadataService,
 * } from "@distribution/metadata";
 * import { ok } from "node:assert/strict";
 *
 * // On a real daemon: FSMetadataStore.open("/var/lib/docker/image/overlay2/distribution")
 * const store = await FSMetadataStore.open("/store", { fs: new MemoryFileSystem() });
 * const service = new V2MetadataService(store);
 * const key = await computeV2MetadataHMACKey({ username: "ci", password: "secret" });
 * const diffID = "sha256:" + "a".repeat(64);
 * await service.tagAndAdd(diffID, key, {
 *   digest: "sha256:" + "b".repeat(64),
 *   sourceRepository: "docker.io/library/busybox",
 *   hmac: "",
 * });
 * const [entry] = await service.getMetadata(diffID);
 * ok(await checkV2MetadataHMAC(entry!, key));
 * ```
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/file_system.ts";
export * from "./src/metadata_store.ts";
export * from "./src/fs_store.ts";
export * from "./src/adapters/memory.ts";
export * from "./src/v2_metadata.ts";
export * from "./src/v2_metadata_service.ts";
export * from "./src/v1_id_service.ts";
export * from "./src/hmac.ts";
