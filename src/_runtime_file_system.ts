// Picks the running runtime's FileSystem from its globals. The adapters only touch runtime
// APIs when called, so importing them here keeps the core loadable (and bundleable) anywhere.
import { MetadataError } from "./errors.ts";
import { denoNamespace, nodeBuiltin } from "./_runtime.ts";
import type { FileSystem } from "./file_system.ts";
import { denoFileSystem } from "./adapters/deno.ts";
import { nodeFileSystem } from "./adapters/node.ts";

/** The FileSystem of this runtime: Deno's APIs on Deno, `node:fs` on Node and Bun. */
export function runtimeFileSystem(): FileSystem {
  if (typeof denoNamespace<{ readFileSync?: unknown }>()?.readFileSync === "function") {
    return denoFileSystem;
  }
  if (nodeBuiltin("node:fs", "readFileSync") !== null) return nodeFileSystem;
  throw new MetadataError(
    "ENOSYS",
    "Cannot find a filesystem in this runtime: pass options.fs, e.g. new MemoryFileSystem()",
  );
}
