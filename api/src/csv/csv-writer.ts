/**
 * The one CSV writer (settlement reports, billers' reconciliation files): RFC 4180 — a header row,
 * records ended by CRLF, a cell quoted when it holds a quote, comma or line break, a quote inside
 * written twice. A text cell a spreadsheet would take for a formula (starting with = + - @, tab or
 * CR) gets a leading single quote first (OWASP "CSV injection"): the text comes from payers and
 * participants. Integer cells are written as they are, and must be integers.
 */

export type CsvColumnKind = 'text' | 'int';
/** Each column: its header, its kind, and how to read its cell from a row (null, undefined or '' is an empty cell). */
export type CsvColumns<R> = readonly (readonly [name: string, kind: CsvColumnKind, value: (row: R) => string | null | undefined])[];

/** A text cell made safe for a spreadsheet and quoted when it must be. */
export function csvText(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csvInt(value: string): string {
  // Integers come from bigint columns as text; anything else here is a bug, not data to pass on.
  if (!/^-?\d+$/.test(value)) throw new Error(`not an integer cell: ${JSON.stringify(value)}`);
  return value;
}

export function toCsv<R>(columns: CsvColumns<R>, rows: readonly R[]): string {
  const header = columns.map(([name]) => csvText(name)).join(',');
  const body = rows.map((row) =>
    columns
      .map(([, kind, value]) => {
        const v = value(row);
        if (v === null || v === undefined || v === '') return '';
        return kind === 'int' ? csvInt(v) : csvText(v);
      })
      .join(','),
  );
  return `${header}\r\n${body.map((r) => `${r}\r\n`).join('')}`;
}
