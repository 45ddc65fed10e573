import { describe, expect, it } from 'vitest';
import { CsvSyntaxError, CsvTooManyRecordsError, parseCsv } from './csv.js';

const fields = (text: string) => parseCsv(text).map((r) => r.fields);

describe('parseCsv', () => {
  it('reads plain fields, with LF, CRLF or CR line ends, and a last line with or without an end', () => {
    expect(fields('a,b,c\n1,2,3\n')).toEqual([['a', 'b', 'c'], ['1', '2', '3']]);
    expect(fields('a,b\r\n1,2\r\n3,4')).toEqual([['a', 'b'], ['1', '2'], ['3', '4']]);
    expect(fields('a,b\r1,2\r')).toEqual([['a', 'b'], ['1', '2']]);
  });

  it('keeps empty fields, also at the end of a line and of the file', () => {
    expect(fields('a,,c\n,,\n1,2,')).toEqual([['a', '', 'c'], ['', '', ''], ['1', '2', '']]);
  });

  it('reads quoted fields with commas, line breaks and doubled quotes', () => {
    expect(fields('"a,b","say ""hi""","two\r\nlines"\nx,"",y')).toEqual([
      ['a,b', 'say "hi"', 'two\r\nlines'],
      ['x', '', 'y'],
    ]);
  });

  it('drops a byte order mark and skips blank lines, numbering records by the line they start on', () => {
    const records = parseCsv('\uFEFFh1,h2\n\n"multi\nline",2\n\r\nlast,3\n');
    expect(records).toEqual([
      { line: 1, fields: ['h1', 'h2'] },
      { line: 3, fields: ['multi\nline', '2'] },
      { line: 6, fields: ['last', '3'] },
    ]);
  });

  it('numbers records by their first line whatever ends the lines, inside quoted values too (CRLF counts once, a lone CR once)', () => {
    const lines = (text: string) => parseCsv(text).map((r) => r.line);
    expect(lines('a\r\nb\r\nc')).toEqual([1, 2, 3]);
    expect(lines('"x\r\ny",1\r\n"p\rq",2\r\nlast,3')).toEqual([1, 3, 5]);
  });

  it('takes a quoted field at the very end of the file, and before a CR', () => {
    expect(fields('a,"b"')).toEqual([['a', 'b']]);
    expect(fields('"a"\r\n"b"\r"c"')).toEqual([['a'], ['b'], ['c']]);
  });

  it.each([
    ['a,"never closed\n1,2', 1, /never closed/],
    ['a,b\n1,x"y', 2, /quote inside an unquoted field/],
    ['a,b\n"x"y,2', 2, /after the closing quote/],
    ['a\n"two\nlines"z', 3, /after the closing quote/],
  ])('refuses %j at line %i', (text, line, message) => {
    try {
      parseCsv(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CsvSyntaxError);
      expect((err as CsvSyntaxError).line).toBe(line);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('stops past the number of records the caller takes', () => {
    expect(parseCsv('h\n1\n2', 3)).toHaveLength(3);
    expect(() => parseCsv('h\n1\n2\n3', 3)).toThrow(CsvTooManyRecordsError);
  });

  it('reads 50,000 rows quickly', () => {
    const text = `h1,h2,h3\n${Array.from({ length: 50_000 }, (_, i) => `A${i},"quoted, ${i}",${i}`).join('\r\n')}`;
    const records = parseCsv(text);
    expect(records).toHaveLength(50_001);
    expect(records[50_000]!.fields).toEqual(['A49999', 'quoted, 49999', '49999']);
  });
});
