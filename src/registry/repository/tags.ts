/**
 * The tags of a repository: one looked up by its manifest (`TAG_UNKNOWN` when absent), or all
 * of them, following `Link` pages within `LIMITS.tagList` bytes and `LIMITS.tagPages` pages,
 * each tag valid, a page seen twice a `LOOP`.
 *
 * @module
 */
import type { HttpResponse } from "../transport/http.ts";
import { LIMITS, parseJson, readAtMost } from "../transport/limits.ts";
import { answeredUrl } from "../transport/url.ts";
import { isRegistryError, RegistryError } from "../errors.ts";
import { isValidTag } from "../reference.ts";
import type { TagService } from "../types.ts";
import { apiPath, type RepositoryContext, request } from "./context.ts";
import { headManifest } from "./manifests.ts";

/** The tag service of a repository. */
export function tagService(ctx: RepositoryContext): TagService {
  return {
    get: async (tag) => {
      try {
        return await headManifest(ctx, tag);
      } catch (error) {
        if (isRegistryError(error) && error.status === 404) {
          throw new RegistryError("TAG_UNKNOWN", `Cannot find tag "${tag}" in "${ctx.name}"`, {
            status: 404,
            method: "HEAD",
            url: error.url,
            errors: error.errors,
            cause: error,
          });
        }
        throw error;
      }
    },
    all: () => allTags(ctx),
  };
}

async function allTags(ctx: RepositoryContext): Promise<string[]> {
  const tags: string[] = [];
  const seen = new Set<string>();
  let budget: number = LIMITS.tagList;
  let next: string | null = `${ctx.client.endpoint}${apiPath(ctx, "tags", "list")}`;
  while (next !== null) {
    const what = `the tag list of "${ctx.name}"`;
    if (seen.has(next)) {
      throw new RegistryError("LOOP", `Cannot read ${what}: page "${next}" links back`, {
        url: next,
        reason: "paging loop",
      });
    }
    if (seen.size >= LIMITS.tagPages) {
      throw new RegistryError(
        "TOO_LARGE",
        `Cannot read ${what}: more than ${LIMITS.tagPages} pages`,
        { url: next, reason: `limit ${LIMITS.tagPages} pages` },
      );
    }
    seen.add(next);
    const response = await request(ctx, "GET", next, { notFound: "NAME_UNKNOWN" });
    const bytes = await readAtMost(response.body, budget, what, response.url);
    budget -= bytes.length;
    const body = parseJson(bytes, what, response.url) as { tags?: unknown } | null;
    const page = body === null || typeof body !== "object" ? undefined : body.tags ?? [];
    if (!Array.isArray(page) || !page.every((t) => typeof t === "string" && isValidTag(t))) {
      throw new RegistryError("MALFORMED", `Cannot read ${what}: "tags" is not a list of tags`, {
        url: response.url,
      });
    }
    tags.push(...page);
    next = nextPage(response);
  }
  return tags;
}

/** The next page of a tag list from a `Link: <url>; rel="next"` header, or `null`. */
function nextPage(response: HttpResponse): string | null {
  const link = response.headers.get("link");
  if (link === null) return null;
  const target = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  return target === undefined ? null : answeredUrl(target, response.url, "tag list's Link");
}
