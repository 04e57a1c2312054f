// Bytes on their way through a temporary file: where such files go, and a stream's SHA-256,
// length and first byte taken as it passes (so a spooled file is known without reading it again).
import type { FileSystem } from "../file_system.ts";
import { removeTree } from "../_remove_tree.ts";
import { nodeBuiltin } from "../_runtime.ts";
import { createHasher } from "./_verify.ts";

/** The runtime's temporary directory. */
function systemTempDir(): string {
  const os = nodeBuiltin<{ tmpdir(): string }>("node:os", "tmpdir");
  return (os?.tmpdir() ?? "/tmp").replace(/\/+$/, "") || "/";
}

/**
 * Runs `task` in a new directory of this user's alone, `<base>/<prefix>-<uuid>` (`base` by
 * default the runtime's temporary directory), removed afterwards whatever happens.
 */
export async function inTempDir<T>(
  fs: FileSystem,
  base: string | undefined,
  prefix: string,
  task: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = `${base ?? systemTempDir()}/${prefix}-${crypto.randomUUID()}`;
  await fs.mkdir(dir, 0o700);
  try {
    return await task(dir);
  } finally {
    await removeTree(fs, dir);
  }
}

/**
 * Writes `bytes` to the scratch file `file` (through `<file>.tmp`, mode 0600) without an fsync:
 * nobody needs it after a crash, and forcing a layer to a busy disk cost more than writing it.
 */
export function spoolInto(
  fs: FileSystem,
  file: string,
  bytes: ReadableStream<Uint8Array>,
): Promise<number> {
  return fs.writeFileStream!(file, `${file}.tmp`, bytes, 0o600, { durable: false });
}

/** What {@linkcode hashing} saw pass. */
export interface Seen {
  /** Bytes passed so far. */
  size: number;
  /** The first byte, `-1` before any. */
  first: number;
  /** The SHA-256 of the bytes passed, `sha256:<hex>` (once they all passed). */
  digest(): string;
}

/** `stream`, its SHA-256, length and first byte taken as it passes. */
export function hashing(
  stream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): { passing: ReadableStream<Uint8Array>; seen: Seen } {
  const hasher = createHasher("sha256")!;
  const seen = { size: 0, first: -1, digest: () => `sha256:${hasher.hex()}` };
  const passing = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        signal?.throwIfAborted();
        hasher.update(chunk);
        if (seen.size === 0 && chunk.length > 0) seen.first = chunk[0]!;
        seen.size += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  return { passing, seen };
}
