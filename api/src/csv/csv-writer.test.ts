import { describe, expect, it } from 'vitest';
import { reconciliationCsv } from '../bills/bill-payments.service.js';
import { csvText, toCsv } from './csv-writer.js';

describe('the CSV writer', () => {
  it.each([
    ['plain text as it is', 'Water 2026-11', 'Water 2026-11'],
    ['a comma quoted', 'a,b', '"a,b"'],
    ['a quote doubled inside quotes', 'say "hi"', '"say ""hi"""'],
    ['a CRLF quoted', 'one\r\ntwo', '"one\r\ntwo"'],
    ['a formula made inert', '=HYPERLINK("http://x")', `"'=HYPERLINK(""http://x"")"`],
    ['a leading + made inert', '+1', "'+1"],
    ['a leading @ made inert', '@SUM(A1)', "'@SUM(A1)"],
    ['a leading tab made inert', '\tx', "'\tx"],
    ['a leading CR made inert and quoted', '\rx', `"'\rx"`],
    ['a formula sign not at the start left alone', 'a=b', 'a=b'],
  ])('writes %s', (_name, value, cell) => {
    expect(csvText(value)).toBe(cell);
  });

  it('ends every record, the header included, with CRLF and leaves empty cells empty', () => {
    const columns = [['name', 'text', (r: { n?: string }) => r.n] as const, ['n', 'int', () => '0'] as const];
    expect(toCsv(columns, [{ n: 'x' }, {}])).toBe('name,n\r\nx,0\r\n,0\r\n');
    expect(toCsv(columns, [])).toBe('name,n\r\n');
  });

  it('writes negative integers as numbers, not as text made inert, and refuses a cell that is not an integer', () => {
    expect(toCsv([['amount', 'int', () => '-1300'] as const], [{}])).toBe('amount\r\n-1300\r\n');
    expect(() => toCsv([['amount', 'int', () => '12.5'] as const], [{}])).toThrow(/not an integer cell/);
  });
});

describe("a biller's reconciliation file", () => {
  it('is written by the same writer: a payer-typed account number cannot become a formula, a comma cannot shift the columns', () => {
    const csv = reconciliationCsv([
      { id: 'p1', receipt_number: 'R-1', paid_at: new Date('2026-11-25T04:00:00Z'), account_number: '=cmd|"/c calc"!A1', period: '2026-11', biller_reference: 'flat 3, block 2', amount: '4200', currency: 'CNY', card_number: '6231000000001234' },
      { id: 'p2', receipt_number: 'R-2', paid_at: new Date('2026-11-25T05:00:00Z'), account_number: '-1', period: '2026-11', biller_reference: 'B-2', amount: '100', currency: 'CNY', card_number: null },
    ]);
    expect(csv).toBe(
      'receipt_number,paid_at,account_number,period,biller_reference,amount,currency,card\r\n' +
        `R-1,2026-11-25T04:00:00.000Z,"'=cmd|""/c calc""!A1",2026-11,"flat 3, block 2",4200,CNY,**** 1234\r\n` +
        `R-2,2026-11-25T05:00:00.000Z,'-1,2026-11,B-2,100,CNY,\r\n`,
    );
  });
});
