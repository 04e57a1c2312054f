// What the CLI prints comes from the store (file names, source repositories) and must not
// drive the terminal: control characters are shown as JSON-style escapes.

/**
 * `\p{Cc}` (C0 such as ESC, BEL, CR, LF, TAB; DEL; C1, whose U+009B is CSI), the line and
 * paragraph separators, and the bidirectional marks and overrides that reorder text.
 */
const CONTROLS = /[\p{Cc}\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/gu;

/**
 * Replaces every control character with its `\uXXXX` escape, leaving other text alone. The
 * result of a JSON text is the same JSON value: JSON reads `\uXXXX` as the character.
 *
 * @param text Text that may hold bytes from a hostile store.
 * @returns Text safe to write to a terminal, e.g. `"\u001b]0;x\u0007"` for `ESC ] 0 ; x BEL`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { escapeControls } from "./escape.ts";
 *
 * equal(escapeControls("repo\x1b[2J"), "repo\\u001b[2J");
 * ```
 */
export function escapeControls(text: string): string {
  return text.replace(
    CONTROLS,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
