// The one walk of a store's directory tree, shared by FSMetadataStore's recover() and keys()
// and the CLI's scan: each decides what it keeps and which failures stop it.
import type { FileInfo, FileSystem } from "./file_system.ts";

/** A name found under the root that is not a directory. */
export interface WalkEntry {
  /** The absolute path. */
  path: string;
  /** The path below the walk's root. */
  relative: string;
  name: string;
  /** What the FileSystem's `stat` says (symlinks are not followed); `null` when it is gone. */
  info: FileInfo | null;
}

/** What a walk does with what it finds. */
export interface WalkHandlers {
  /** Names to pass over, files and directories alike. */
  skip?(name: string): boolean;
  /** Called for each name that is not a directory, in name order per directory. */
  visit(entry: WalkEntry): void | Promise<void>;
  /**
   * Called when a directory cannot be listed (`list`) or a name cannot be looked at (`stat`):
   * throw to stop the walk, return to go on without it. `relative` is `""` for the root.
   */
  failed(error: unknown, path: string, relative: string, during: "list" | "stat"): void;
}

/**
 * Walks the tree under `root` depth first, entering directories (never symlinks), in name
 * order.
 */
export async function walkTree(
  fs: FileSystem,
  root: string,
  handlers: WalkHandlers,
): Promise<void> {
  const walk = async (directory: string, relative: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readDir(directory);
    } catch (error) {
      return handlers.failed(error, directory, relative, "list");
    }
    for (const name of names.sort()) {
      if (handlers.skip?.(name)) continue;
      const path = `${directory === "/" ? "" : directory}/${name}`;
      const below = relative === "" ? name : `${relative}/${name}`;
      let info: FileInfo | null;
      try {
        info = await fs.stat(path);
      } catch (error) {
        handlers.failed(error, path, below, "stat");
        continue;
      }
      if (info?.kind === "directory") await walk(path, below);
      else await handlers.visit({ path, relative: below, name, info });
    }
  };
  await walk(root, "");
}
