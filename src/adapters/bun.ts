/**
 * The {@linkcode FileSystem} for Bun: Bun implements `node:fs` natively, so this is the
 * Node.js adapter under Bun's name.
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore } from "@distribution/metadata";
 * import { bunFileSystem } from "@distribution/metadata/bun";
 *
 * const store = await FSMetadataStore.open("./store", { fs: bunFileSystem });
 * ```
 *
 * @module
 */
import type { FileSystem } from "../file_system.ts";
import { nodeFileSystem } from "./node.ts";

/**
 * A {@linkcode FileSystem} on Bun's native `node:fs`.
 *
 * @example
 * ```ts ignore
 * import { FSMetadataStore } from "@distribution/metadata";
 * import { bunFileSystem } from "@distribution/metadata/bun";
 *
 * const store = await FSMetadataStore.open("./store", { fs: bunFileSystem });
 * ```
 */
export const bunFileSystem: FileSystem = nodeFileSystem;
