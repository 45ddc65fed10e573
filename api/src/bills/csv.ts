/**
 * A small CSV reader (RFC 4180, and what spreadsheets really write): comma-separated fields,
 * records ended by CRLF, LF or a lone CR; a field in double quotes may hold commas, line breaks
 * and quotes written twice (`""`); a UTF-8 byte order mark at the start is dropped; blank lines are
 * skipped. It does not guess: a quote inside an unquoted field, text after a closing quote, or a
 * quote never closed is an error naming its line.
 */

export interface CsvRecord {
  /** The line of the file the record starts on (1 = the first line), as an editor numbers it. */
  line: number;
  fields: string[];
}

export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvSyntaxError';
  }
}

/** More records than the caller takes. */
export class CsvTooManyRecordsError extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} records`);
    this.name = 'CsvTooManyRecordsError';
  }
}

const COMMA = 44;
const LF = 10;
const CR = 13;
const QUOTE = 34;

/** Line breaks inside a quoted value (CRLF counts once). */
function lineBreaks(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === LF) n++;
    else if (c === CR && value.charCodeAt(i + 1) !== LF) n++;
  }
  return n;
}

/** Parses `input` into records; throws CsvSyntaxError, or CsvTooManyRecordsError past `maxRecords`. */
export function parseCsv(input: string, maxRecords = Number.POSITIVE_INFINITY): CsvRecord[] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const n = text.length;
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      if (text.charCodeAt(i) === QUOTE) {
        // A quoted field: up to the quote that is not doubled.
        let value = '';
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q === -1) throw new CsvSyntaxError(line, 'a quoted field is never closed (a missing ")');
          if (text.charCodeAt(q + 1) === QUOTE) {
            value += text.slice(from, q + 1);
            from = q + 2;
            continue;
          }
          value += text.slice(from, q);
          i = q + 1;
          break;
        }
        line += lineBreaks(value);
        const next = text.charCodeAt(i);
        if (i < n && next !== COMMA && next !== LF && next !== CR) throw new CsvSyntaxError(line, 'text after the closing quote of a field; write a quote inside a quoted field as ""');
        fields.push(value);
      } else {
        let j = i;
        for (; j < n; j++) {
          const c = text.charCodeAt(j);
          if (c === COMMA || c === LF || c === CR) break;
          if (c === QUOTE) throw new CsvSyntaxError(line, 'a quote inside an unquoted field; quote the whole field and write the quote as ""');
        }
        fields.push(text.slice(i, j));
        i = j;
      }
      if (i >= n) break;
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      // The end of the record: CRLF, LF or CR.
      i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      break;
    }
    if (fields.length === 1 && fields[0] === '') continue; // a blank line
    if (records.length >= maxRecords) throw new CsvTooManyRecordsError(maxRecords);
    records.push({ line: start, fields });
  }
  return records;
}
