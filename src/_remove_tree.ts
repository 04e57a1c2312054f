// Removing a directory tree through a FileSystem, as `rm -r` does (symlinks removed, never
// followed): what a failed copy created, or a temporary directory.
import type { FileSystem } from "./file_system.ts";

/**
 * Removes `path` and everything under it; nothing when it does not exist.
 *
 * @param fs The file system.
 * @param path An absolute path.
 * @returns Nothing.
 */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  const info = await fs.stat(path);
  if (info === null) return;
  if (info.kind === "directory") {
    for (const name of await fs.readDir(path)) await removeTree(fs, `${path}/${name}`);
  }
  await fs.remove(path);
}
