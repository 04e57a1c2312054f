// Shared set-up of the transfer-engine tests: temp directories removed at exit, layouts with
// images of incompressible layers, a metadata service on disk, and what a layout holds.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FSMetadataStore, V2MetadataService } from "../../mod.ts";
import {
  type OciLayoutStore,
  ociLayoutStore,
  type TransferProgress,
} from "../../src/registry/mod.ts";
import { buildImage, type BuiltImage, noise, sha256 } from "./_image_builder.ts";
import { onExit } from "./_on_exit.ts";

const dirs: string[] = [];
onExit(() => removeTempDirs());

/** A new temp directory, removed by {@linkcode removeTempDirs} or at exit. */
export function tempDir(prefix = "engine-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Removes every temp directory made so far. */
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A layout in a temp directory holding an image tagged `1.0` of one file of `size` noise per layer. */
export async function layoutWithImage(
  sizes: number[],
  seed = 1,
  tag = "1.0",
): Promise<{ dir: string; store: OciLayoutStore; image: BuiltImage }> {
  const dir = tempDir();
  const store = await ociLayoutStore(dir);
  const image = await buildImage(
    store,
    tag,
    sizes.map((size, i) => [{ name: `f${i}`, data: noise(size, seed * 100 + i) }]),
  );
  return { dir, store, image };
}

/** A metadata service on an FSMetadataStore in a temp directory. */
export async function metadata(): Promise<{ service: V2MetadataService; root: string }> {
  const root = tempDir("engine-meta-");
  return { service: new V2MetadataService(await FSMetadataStore.open(root)), root };
}

/** Every file name under the layout's `blobs/sha256` (temp files included). */
export function blobFiles(dir: string): string[] {
  try {
    return readdirSync(join(dir, "blobs", "sha256")).sort();
  } catch {
    return [];
  }
}

/** Whether the layout holds `digest` with exactly those bytes' digest. */
export function holdsBlob(dir: string, digest: string): boolean {
  try {
    return sha256(readFileSync(join(dir, "blobs", "sha256", digest.slice(7)))) === digest;
  } catch {
    return false;
  }
}

/** Collects progress events. */
export function progressLog(): {
  events: TransferProgress[];
  onProgress: (e: TransferProgress) => void;
} {
  const events: TransferProgress[] = [];
  return { events, onProgress: (event) => events.push(event) };
}

/** A retry policy quick enough for tests. */
export const QUICK_RETRY = { attempts: 4, baseDelay: 20, maxDelay: 100 };
