/**
 * RFC 4180 cells with spreadsheet formula neutralisation: a cell starting with `=`, `+`, `-`, `@`, a tab
 * or a carriage return — or with `'`, so the rule stays reversible — gets a leading `'`, which a
 * spreadsheet shows as text instead of running it. {@link restoreCell} undoes it for verification.
 */
export function csvCell(value: string): string {
  const neutral = /^[=+\-@\t\r']/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(neutral) ? `"${neutral.replace(/"/g, '""')}"` : neutral;
}

export function csvRow(cells: readonly string[]): string {
  return `${cells.map(csvCell).join(",")}\r\n`;
}

/** The original value of a neutralised cell. */
export function restoreCell(cell: string): string {
  return cell.startsWith("'") ? cell.slice(1) : cell;
}

/** Parses RFC 4180 text into rows of raw (still neutralised) cells. Throws on an unterminated quote. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i += 1;
        continue;
      }
      cell += c;
      i += 1;
      continue;
    }
    if (c === '"' && cell === "") {
      quoted = true;
      i += 1;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
      i += 1;
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i += 2;
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i += 1;
    } else {
      cell += c;
      i += 1;
    }
  }
  if (quoted) throw new Error("unterminated quoted cell");
  if (cell !== "" || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

export const CSV_COLUMNS = [
  "sequence",
  "id",
  "time",
  "type",
  "outcome",
  "actor_kind",
  "actor_id",
  "actor_display_name",
  "target_kind",
  "target_id",
  "ip",
  "user_agent",
  "request_id",
  "method",
  "reason",
  "metadata",
  "prev_hash",
  "hash",
  // Added last, so that the columns before keep their positions for existing readers.
  "actor_on_behalf_of_user_id",
] as const;

/** The header of exports written before `actor_on_behalf_of_user_id` existed; still verifiable. */
export const LEGACY_CSV_COLUMNS = CSV_COLUMNS.filter((column) => column !== "actor_on_behalf_of_user_id");

/** The first cell of the closing row that carries the signed manifest. */
export const CSV_MANIFEST_MARKER = "#manifest";
