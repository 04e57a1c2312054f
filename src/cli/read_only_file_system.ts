// The CLI reads stores it did not write, dockerd's included: the FileSystem it opens them
// on cannot write, so no bug and no hostile store can make it change one.
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";

/**
 * Wraps a FileSystem for reading only: every write is refused with `EROFS`, and `mkdir` of
 * a path that exists writes nothing and passes (`FSMetadataStore.open` creates only a
 * missing root). Reads go to `fs` unchanged.
 *
 * @param fs The runtime's FileSystem.
 * @returns The read-only FileSystem.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { MemoryFileSystem } from "../../mod.ts";
 * import { readOnlyFileSystem } from "./read_only_file_system.ts";
 *
 * const fs = readOnlyFileSystem(new MemoryFileSystem());
 * await rejects(async () => await fs.mkdir("/store", 0o700), { code: "EROFS" });
 * ```
 */
export function readOnlyFileSystem(fs: FileSystem): FileSystem {
  const refuse = (path: string): never => {
    throw new MetadataError("EROFS", `Cannot write "${path}": the CLI never writes to a store`, {
      path,
    });
  };
  return {
    readFile: (path, options) => fs.readFile(path, options),
    writeFileAtomic: refuse,
    async mkdir(path) {
      if (await fs.stat(path) === null) refuse(path);
    },
    remove: refuse,
    stat: (path) => fs.stat(path),
    readDir: (path) => fs.readDir(path),
  };
}
