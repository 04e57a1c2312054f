/**
 * `WWW-Authenticate` challenges (RFC 7235), as registries send them on a 401.
 *
 * @module
 */

/** One authentication challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** Lower-case scheme: `basic` or `bearer`. */
  scheme: string;
  /** Its parameters (`realm`, `service`, `scope`, `error`, …), names in lower case. */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges.
 *
 * @param header The header's value.
 * @returns The challenges, in order.
 *
 * @example
 * ```ts
 * import { parseAuthChallenges } from "./challenge.ts";
 * const [c] = parseAuthChallenges('Bearer realm="https://auth.example/token",service="registry"');
 * console.log(c?.scheme, c?.params.realm); // bearer https://auth.example/token
 * ```
 */
export function parseAuthChallenges(header: string | null): AuthChallenge[] {
  if (header === null) return [];
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | null = null;
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const start = i;
    while (i < header.length && /[^\s,=]/.test(header[i]!)) i++;
    if (i === start) break;
    const token = header.slice(start, i);
    skip(/\s/);
    if (header[i] !== "=") {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      continue;
    }
    i++;
    skip(/\s/);
    let value = "";
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) {
        if (header[i] === "\\") i++;
        value += header[i] ?? "";
      }
      i++;
    } else {
      const from = i;
      while (i < header.length && /[^\s,]/.test(header[i]!)) i++;
      value = header.slice(from, i);
    }
    if (current !== null) current.params[token.toLowerCase()] = value;
  }
  return challenges;
}
