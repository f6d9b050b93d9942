import { printable } from "./terminal-text.ts";

/**
 * An aligned text table: a header row, then one row per item, columns separated by two spaces and
 * padded to their widest cell (the last column is not padded, so lines carry no trailing blanks).
 * Cells are made printable first: names and metadata come from other users.
 */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const cells = [headers, ...rows].map((row) => row.map((cell) => printable(cell)));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => [...(row[column] ?? "")].length)));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell + " ".repeat((widths[column] ?? 0) - [...cell].length)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/** Label/value lines, labels aligned: for one record ("ID: …", "Name: …"). */
export function formatFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1;
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)} ${printable(value)}\n`).join("");
}
