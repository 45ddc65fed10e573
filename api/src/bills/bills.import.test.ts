import { describe, expect, it } from 'vitest';
import { checkCsv, MAX_CSV_BYTES, MAX_CSV_ROWS, readHeader } from './bills.import.js';

const HEADER = 'account_number,period,amount_due,due_date,biller_reference,allow_partial,late_fee_kind,late_fee_amount,late_fee_basis_points,late_fee_cap';

describe('checkCsv (the rows of a CSV import)', () => {
  it('turns good rows into bills, with every optional column', () => {
    const checked = checkCsv(
      [HEADER, '1001,2026-10,4520,2026-11-30,W-1,,,,,', ' 1002 ,2026-10,100,2026-11-30,W-2,yes,FIXED,50,,', '"1003",2026-10,300,2026-11-30,W-3,FALSE,daily_basis_points,,5,1000'].join('\r\n'),
    );
    expect(checked.fileProblem).toBeNull();
    expect(checked.refusals).toEqual([]);
    expect(checked.drafts.map((d) => d.draft)).toEqual([
      { accountNumber: '1001', period: '2026-10', amountDue: 4520n, dueDate: '2026-11-30', billerReference: 'W-1', allowPartial: false, lateFee: { kind: 'NONE' } },
      { accountNumber: '1002', period: '2026-10', amountDue: 100n, dueDate: '2026-11-30', billerReference: 'W-2', allowPartial: true, lateFee: { kind: 'FIXED', amount: 50n } },
      { accountNumber: '1003', period: '2026-10', amountDue: 300n, dueDate: '2026-11-30', billerReference: 'W-3', allowPartial: false, lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1000n } },
    ]);
  });

  it('takes the required columns alone, in any order', () => {
    const checked = checkCsv('biller_reference,due_date,amount_due,period,account_number\nR1,2026-12-01,99,2026-11,77');
    expect(checked.refusals).toEqual([]);
    expect(checked.drafts[0]!.draft).toMatchObject({ accountNumber: '77', amountDue: 99n, billerReference: 'R1', lateFee: { kind: 'NONE' } });
  });

  it('reports every refusal of every row by its line and column, in the file’s words', () => {
    const checked = checkCsv(
      [
        HEADER,
        '1001,2026-10,12.50,2026-11-31,W-1,,,,,', // line 2: amount and date
        '1002,2026-10,100,2026-11-30,W-1,,,,,', // line 3: fine but for the duplicate reference? no: W-1 first seen on line 2
        '1003,2026-10,100,2026-11-30,W-3,maybe,FIXED,,,', // line 4: allow_partial and late_fee_amount
        '1004,2026-10,100,2026-11-30', // line 5: too few values
        ',2026-10,100,2026-11-30,W-5,,,,,', // line 6: no account
      ].join('\n'),
    );
    expect(checked.fileProblem).toBeNull();
    expect(checked.rowCount).toBe(5);
    expect(checked.refusals.map((r) => [r.row, r.field, r.code])).toEqual([
      [2, 'amount_due', 'INVALID_INPUT'],
      [2, 'due_date', 'INVALID_INPUT'],
      [3, 'biller_reference', 'DUPLICATE_BILLER_REFERENCE'],
      [4, 'allow_partial', 'INVALID_INPUT'],
      [4, 'late_fee_amount', 'INVALID_INPUT'],
      [5, null, 'INVALID_INPUT'],
      [6, 'account_number', 'INVALID_INPUT'],
    ]);
    expect(checked.refusals[0]!.message).toMatch(/^amount_due is a whole number of minor units/);
    expect(checked.refusals[2]!.message).toBe('biller_reference W-1 is also on row 2');
  });

  it('refuses a header with unknown, doubled or missing columns', () => {
    expect(readHeader(HEADER.split(',')).problems).toEqual([]);
    expect(readHeader(['account_number', 'periode', 'amount_due', 'amount_due', 'due_date']).problems).toEqual([
      'unknown columns: "periode" (the columns are account_number,period,amount_due,due_date,biller_reference,allow_partial,late_fee_kind,late_fee_amount,late_fee_basis_points,late_fee_cap)',
      'columns given twice: amount_due',
      'missing columns: period, biller_reference',
    ]);
    const checked = checkCsv('account,period\n1,2');
    expect(checked.fileProblem?.code).toBe('INVALID_CSV');
    expect(checked.refusals).toEqual([expect.objectContaining({ row: 1, field: null, code: 'INVALID_CSV' })]);
  });

  it('refuses an empty file, a file of a header alone, and one that is not CSV', () => {
    expect(checkCsv('').fileProblem?.code).toBe('INVALID_CSV');
    expect(checkCsv(`${HEADER}\n`).fileProblem?.message).toMatch(/no rows/);
    const broken = checkCsv(`${HEADER}\n1,"2026-10,100,2026-11-30,W-1,,,,,\n`);
    expect(broken.fileProblem?.code).toBe('INVALID_CSV');
    expect(broken.refusals[0]!.row).toBe(2);
  });

  it('refuses a file over 50,000 rows or 10 MB, before reading its rows', () => {
    const rows = Array.from({ length: MAX_CSV_ROWS + 1 }, (_, i) => `${i},p,1,2026-11-30,R${i}`);
    expect(checkCsv(`account_number,period,amount_due,due_date,biller_reference\n${rows.join('\n')}`).fileProblem).toMatchObject({ code: 'CSV_TOO_LARGE', message: expect.stringMatching(/50000 rows/) });
    expect(checkCsv(`${HEADER}\n${'x'.repeat(MAX_CSV_BYTES)}`).fileProblem).toMatchObject({ code: 'CSV_TOO_LARGE', message: expect.stringMatching(/10 MB/) });
  });
});
