/**
 * URLs a registry hands over (an upload `Location`, a tag list's `Link`, a token realm),
 * parsed inside the typed-error boundary: one that does not parse, or is not http(s), is a
 * `MALFORMED` {@linkcode RegistryError}, never a raw `TypeError`.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";

/**
 * `value`, resolved against `base` when given, as an absolute http(s) URL.
 *
 * @param value The URL as the registry gave it.
 * @param base The URL of the answer that gave it, for a relative one.
 * @param what What it is, for the error (default `URL`).
 * @returns The absolute URL.
 * @throws {RegistryError} `MALFORMED` when it does not parse or is not http(s).
 *
 * @example
 * ```ts
 * import { answeredUrl } from "./url.ts";
 * console.log(answeredUrl("/v2/app/blobs/uploads/1", "http://127.0.0.1:5000/v2/app/blobs/uploads/"));
 * // http://127.0.0.1:5000/v2/app/blobs/uploads/1
 * ```
 */
export function answeredUrl(value: string, base?: string, what = "URL"): string {
  let url: URL | null = null;
  try {
    url = new URL(value, base);
  } catch {
    // refused below
  }
  if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new RegistryError(
      "MALFORMED",
      `Cannot follow the ${what} "${value}": not an http(s) URL`,
      {
        url: value,
        reason: "not an http(s) URL",
      },
    );
  }
  return url.toString();
}
