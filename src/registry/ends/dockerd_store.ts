/**
 * dockerd's own image store on disk, found where its API says it is: its distribution
 * metadata, image configurations and layer sizes.
 *
 * @module
 */
import { FSMetadataStore } from "../../fs_store.ts";
import { V2MetadataService } from "../../v2_metadata_service.ts";
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
  const store = await dockerdImageStore(api, doing);
  return new V2MetadataService(await FSMetadataStore.open(`${store}/distribution`));
}
