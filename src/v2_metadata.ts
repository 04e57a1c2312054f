/**
 * The entry dockerd records for each place a layer was seen: {@linkcode V2Metadata}. A
 * file of its own, so that the JSON codec and the HMAC functions, which read entries, and
 * the service, which uses both, import it without importing each other.
 *
 * @module
 */

/** One place a layer was seen: a blob digest in a repository, tagged with a credentials HMAC. */
export interface V2Metadata {
  /** The registry blob digest, e.g. `sha256:<hex>` (JSON key `Digest`). */
  digest: string;
  /** The repository's full name, e.g. `docker.io/library/busybox` (`SourceRepository`). */
  sourceRepository: string;
  /** Hex HMAC of digest and repository under the credentials' key, or `""` (`HMAC`). */
  hmac: string;
}
