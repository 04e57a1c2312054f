// Aligned plain-text tables, as `docker image ls` prints them: upper-case headers, columns
// separated by three spaces, no trailing blanks.
import { escapeControls } from "./escape.ts";

const GAP = "   ";

/** Terminal columns a string takes: one per code point (no East Asian width tables). */
function widthOf(text: string): number {
  let width = 0;
  for (const _ of text) width++;
  return width;
}

/**
 * Formats rows under headers; every column is as wide as its widest cell. Control
 * characters in cells are escaped first, so they can neither drive the terminal nor
 * break the alignment.
 *
 * @param headers The column titles.
 * @param cells The cells, one array per row, as many as `headers`.
 * @returns The table's lines, without newlines.
 */
export function formatTable(headers: readonly string[], cells: readonly string[][]): string[] {
  const rows = cells.map((row) => row.map(escapeControls));
  const widths = headers.map((header, column) =>
    Math.max(widthOf(header), ...rows.map((row) => widthOf(row[column] ?? "")))
  );
  return [headers, ...rows].map((row) =>
    row.map((cell, column) =>
      column === row.length - 1 ? cell : cell + " ".repeat(widths[column]! - widthOf(cell))
    ).join(GAP).trimEnd()
  );
}

/** Hex digits of a digest shown in tables, as `docker image ls` shows IDs. */
const SHORT_HEX = 12;

/**
 * Shortens `sha256:<64 hex>` to `sha256:<12 hex>`; other text is left alone.
 *
 * @param digest A digest or DiffID.
 * @param full Whether to keep it whole (`--no-trunc`).
 * @returns The text to show.
 */
export function shortDigest(digest: string, full: boolean): string {
  if (full) return digest;
  const match = /^([a-z0-9]+[a-z0-9+._-]*):([a-f0-9]{32,})$/.exec(digest);
  return match ? `${match[1]}:${match[2]!.slice(0, SHORT_HEX)}` : digest;
}
