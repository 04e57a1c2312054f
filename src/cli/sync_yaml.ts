// The YAML list of images `skopeo sync --src yaml` reads, in the subset it is written in: block
// mappings and sequences by indentation, `[]` and `[a, b]`, plain and quoted scalars, comments.
// Scalars stay strings (a tag `1.0` is not a number); anything else is an error naming its line.
//
//   registry.example.com:
//     images:
//       busybox: []            # every tag
//       team/app: ["1.0", "2.0"]
//     credentials:
//       username: ci
//       password: secret
//     tls-verify: false
//     cert-dir: /etc/certs/registry.example.com
import { UsageError } from "./args.ts";

/** A YAML value of the subset: strings, lists of strings, mappings. */
export type YamlValue = string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  indent: number;
  text: string;
  number: number;
}

/** The text of a line without its comment (`#` at its start or after a space, outside quotes). */
function withoutComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote !== null) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === "#" && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i);
  }
  return text;
}

function scalar(text: string, line: Line, path: string): string {
  const value = text.trim();
  if (value.startsWith('"')) {
    try {
      return JSON.parse(value);
    } catch {
      throw invalid(line, path, "a double-quoted string is not closed or has a bad escape");
    }
  }
  if (value.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(value)) throw invalid(line, path, "a quoted string is not closed");
    return value.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[[{&*!|>%@`]/.test(value)) throw invalid(line, path, `"${value}" is not supported here`);
  return value;
}

function invalid(line: Line, path: string, why: string): UsageError {
  return new UsageError(`Cannot read "${path}" line ${line.number}: ${why}`);
}

/** `[]` or `[a, "b"]`, or a scalar. */
function inlineValue(text: string, line: Line, path: string): YamlValue {
  const value = text.trim();
  if (value.startsWith("[")) {
    if (!value.endsWith("]")) throw invalid(line, path, "a list is not closed on its line");
    const inner = value.slice(1, -1).trim();
    return inner === "" ? [] : inner.split(",").map((item) => scalar(item, line, path));
  }
  return scalar(value, line, path);
}

/** The key of `key: value` (plain or quoted) and the rest, or `null` for no mapping entry. */
function entry(text: string): [string, string] | null {
  // A plain key may hold ":" not followed by a space (`127.0.0.1:5000:`), as YAML allows.
  const match = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^"'#\s](?:[^:]|:(?!\s|$))*?)\s*:(?:\s+(.*))?$/
    .exec(text);
  if (match === null) return null;
  const key = match[1]!;
  const name = key.startsWith('"')
    ? JSON.parse(key)
    : key.startsWith("'")
    ? key.slice(1, -1).replaceAll("''", "'")
    : key;
  return [name, match[2] ?? ""];
}

function block(lines: Line[], start: number, indent: number, path: string): [YamlValue, number] {
  const first = lines[start]!;
  if (first.text === "-" || first.text.startsWith("- ")) {
    const list: YamlValue[] = [];
    let i = start;
    for (; i < lines.length && lines[i]!.indent === indent; i++) {
      const line = lines[i]!;
      if (!line.text.startsWith("-")) throw invalid(line, path, "a list item was expected");
      list.push(inlineValue(line.text.slice(1), line, path));
    }
    return [list, i];
  }
  const mapping: { [key: string]: YamlValue } = {};
  let i = start;
  while (i < lines.length && lines[i]!.indent === indent) {
    const line = lines[i]!;
    const parsed = entry(line.text);
    if (parsed === null) throw invalid(line, path, 'a "key: value" line was expected');
    const [key, rest] = parsed;
    if (Object.hasOwn(mapping, key)) throw invalid(line, path, `"${key}" appears twice`);
    i++;
    if (rest.trim() !== "") {
      mapping[key] = inlineValue(rest, line, path);
    } else if (i < lines.length && lines[i]!.indent > indent) {
      [mapping[key], i] = block(lines, i, lines[i]!.indent, path);
    } else if (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith("-")) {
      [mapping[key], i] = block(lines, i, indent, path); // a list at its key's indent
    } else mapping[key] = "";
  }
  if (i < lines.length && lines[i]!.indent > indent) {
    throw invalid(lines[i]!, path, "the indentation does not match the lines above");
  }
  return [mapping, i];
}

/**
 * Parses a YAML list of images as skopeo sync writes it.
 *
 * @param text The file's text.
 * @param path The file's path, for messages.
 * @returns The document: a mapping of registries.
 * @throws {UsageError} For what the subset does not hold, naming the line.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { parseSyncYaml } from "./sync_yaml.ts";
 *
 * deepEqual(parseSyncYaml("r.test:\n  images:\n    app: [\"1.0\"] # one tag\n", "sync.yaml"), {
 *   "r.test": { images: { app: ["1.0"] } },
 * });
 * ```
 */
export function parseSyncYaml(text: string, path: string): { [key: string]: YamlValue } {
  const lines: Line[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    if (raw.includes("\t") && /^\s*\t/.test(raw)) {
      throw invalid({ indent: 0, text: raw, number: index + 1 }, path, "tabs cannot indent YAML");
    }
    const content = withoutComment(raw).trimEnd();
    if (content.trim() === "" || content.trim() === "---") continue;
    const indent = content.length - content.trimStart().length;
    lines.push({ indent, text: content.trim(), number: index + 1 });
  }
  if (lines.length === 0) return {};
  const [document, end] = block(lines, 0, lines[0]!.indent, path);
  if (end < lines.length) throw invalid(lines[end]!, path, "the indentation does not match");
  if (typeof document !== "object" || Array.isArray(document)) {
    throw invalid(lines[0]!, path, "the file must map registries to their images");
  }
  return document;
}
