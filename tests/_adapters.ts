// The FileSystem adapters available in the running runtime, each with a fresh root.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FileSystem, MemoryFileSystem } from "../mod.ts";
import { denoFileSystem } from "../src/adapters/deno.ts";
import { nodeFileSystem } from "../src/adapters/node.ts";

export interface Adapter {
  name: string;
  /** Whether it writes to the real disk (symlinks, permissions and fsync exist there). */
  real: boolean;
  /** A FileSystem and an unused root directory path on it. */
  fresh(): { fs: FileSystem; root: string };
}

/** A new empty directory under the OS temp dir. */
export function tempDir(prefix = "dm-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export const adapters: Adapter[] = [
  { name: "memory", real: false, fresh: () => ({ fs: new MemoryFileSystem(), root: "/store" }) },
  {
    name: "node",
    real: true,
    fresh: () => ({ fs: nodeFileSystem, root: join(tempDir(), "store") }),
  },
  ...("Deno" in globalThis
    ? [{
      name: "deno",
      real: true,
      fresh: () => ({ fs: denoFileSystem, root: join(tempDir(), "store") }),
    }]
    : []),
];
