/**
 * dockerd's own distribution metadata store, opened where its API says it is.
 *
 * @module
 */
import { FSMetadataStore } from "../../fs_store.ts";
import { V2MetadataService } from "../../v2_metadata_service.ts";
import { RegistryError } from "../errors.ts";
import type { DockerdApi } from "./dockerd_api.ts";

/**
 * The metadata service on dockerd's store, `<DockerRootDir>/image/<Driver>/distribution`
 * (from `/info`); a dockerd on the containerd image store keeps none (`UNSUPPORTED`).
 *
 * @param api dockerd's API.
 * @param doing What needs it, for the message, e.g. `link "app:1"`.
 * @returns The service.
 */
export async function dockerdMetadataService(
  api: DockerdApi,
  doing: string,
): Promise<V2MetadataService> {
  const path = await api.distributionStore();
  if (path === null) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot ${doing}: dockerd uses the containerd image store, which keeps no ` +
        "distribution metadata (docker push finds the registry's layers by itself there)",
    );
  }
  return new V2MetadataService(await FSMetadataStore.open(path));
}
