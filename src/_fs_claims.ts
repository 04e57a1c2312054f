// Upload claims of the directory store opened with lock: true: claim files in a directory of
// their own, `<root>/.tmp-claims/<registry>/<alg>/<hex>`, each a small JSON record written
// under the same lock files as the values. dockerd only ever opens the paths of the keys it
// asks for (it lists nothing), and every listing of this library skips `.tmp-` names, so no
// reader of the metadata meets a claim.
import { claimsOnUpdate } from "./_claims_on_update.ts";
import { errorCode } from "./_map_error.ts";
import type { MetadataStore } from "./metadata_store.ts";
import type { UploadClaims } from "./upload_claims.ts";

/** `<registry>/<alg>/<hex>` as the claims directory's namespace and key. */
function split(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * {@linkcode UploadClaims} in a locked store of their own, opened by `open` at the first
 * claim (so a store that never pushes creates nothing), and again after a failed open.
 */
export function fsClaims(open: () => Promise<MetadataStore>): UploadClaims {
  let opened: Promise<MetadataStore> | undefined;
  const store = () =>
    opened ??= open().catch((error) => {
      opened = undefined;
      throw error;
    });
  return claimsOnUpdate(
    async (key, fn) => await (await store()).update!(...split(key), fn),
    async (key) => {
      try {
        return await (await store()).get(...split(key));
      } catch (error) {
        if (errorCode(error) === "ENOENT") return null;
        throw error;
      }
    },
  );
}
