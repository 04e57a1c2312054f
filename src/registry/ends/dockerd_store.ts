/**
 * dockerd's own image store on disk, found where its API says it is: its distribution
 * metadata, image configurations and layer sizes.
 *
 * @module
 */
import { FSMetadataStore } from "../../fs_store.ts";
import { V2MetadataService } from "../../v2_metadata_service.ts";
import { MetadataError } from "../../errors.ts";
import { RegistryError } from "../errors.ts";
import type { DockerdApi } from "./dockerd_api.ts";

/**
 * dockerd's `<DockerRootDir>/image/<Driver>` (from `/info`); a dockerd on the containerd
 * image store keeps none (`UNSUPPORTED`).
 *
 * @param api dockerd's API.
 * @param doing What needs it, for the message, e.g. `link "app:1"`.
 * @returns The directory, as dockerd sees it.
 */
export async function dockerdImageStore(api: DockerdApi, doing: string): Promise<string> {
  const path = await api.imageStore();
  if (path === null) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot ${doing}: dockerd uses the containerd image store, which keeps no ` +
        "distribution metadata (docker push finds the registry's layers by itself there)",
    );
  }
  return path;
}

/** Whether `error` is the kernel refusing this user (dockerd's directories are root's). */
export function isDenied(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EACCES" || code === "EPERM";
}

/**
 * The metadata service on dockerd's store, `<store>/distribution`; a user who may not open it
 * (it is root's) is told how to go on.
 *
 * @param store dockerd's image store, from {@linkcode dockerdImageStore}.
 * @param doing What needs it, for the message, e.g. `link "app:1"`.
 * @returns The service.
 */
export async function openDockerdMetadata(
  store: string,
  doing: string,
): Promise<V2MetadataService> {
  const path = `${store}/distribution`;
  try {
    return new V2MetadataService(await FSMetadataStore.open(path));
  } catch (error) {
    if (!isDenied(error)) throw error;
    throw new MetadataError(
      "EACCES",
      `Cannot ${doing}: dockerd's metadata store "${path}" is not open to this user (it is ` +
        "root's): run as root, or name another store (metadataService; the CLI's --root or --store)",
      { path, cause: error },
    );
  }
}

/**
 * The metadata service on dockerd's store, `<DockerRootDir>/image/<Driver>/distribution`.
 *
 * @param api dockerd's API.
 * @param doing What needs it, for the message, e.g. `link "app:1"`.
 * @returns The service.
 */
export async function dockerdMetadataService(
  api: DockerdApi,
  doing: string,
): Promise<V2MetadataService> {
  return await openDockerdMetadata(await dockerdImageStore(api, doing), doing);
}
