// A registry repository as the destination of an image whose source holds its layers
// uncompressed (dockerd, a docker archive): pushed as `docker push` pushes ({@linkcode
// pushUncompressed}), each layer looked up by its DiffID first, only those left gzipped.
import { RegistryError } from "../errors.ts";
import { pushUncompressed, type UncompressedPushConfig } from "../push_uncompressed.ts";
import type { ImageDestination } from "../transfer/destination.ts";
import type { PushResult } from "../types.ts";

/**
 * The repository `ref` as a destination.
 *
 * @param ref Where to push, e.g. `registry.example.com/team/app:1`.
 * @param config Credentials, HMAC key, metadata service, concurrency, transport, file system.
 * @returns The destination; its result is the push's.
 */
export function registryPushDestination(
  ref: string,
  config: Omit<UncompressedPushConfig, "tempDir">,
): ImageDestination<PushResult> {
  return {
    async put(image, dir, signal) {
      if (image.manifest !== undefined) {
        // Its manifest's bytes would be lost: a registry's or a layout's image goes by copy or push.
        throw new RegistryError(
          "UNSUPPORTED",
          `Cannot push to "${ref}" an image that has a manifest: copy or push it`,
        );
      }
      return await pushUncompressed(ref, image, { ...config, tempDir: dir, signal });
    },
  };
}
