import { describe, expect, it } from 'vitest';
import { amountOwed, checkLateFee, daysLate, epochDay, type LateFeeRule, lateFeeFor, lateFeeFromJson, lateFeeJson } from './late-fee.js';

const bill = (lateFee: LateFeeRule, amountDue = 10_000n, dueDate = '2026-10-31') => ({ amountDue, dueDate, lateFee });

describe('lateFeeFor', () => {
  it('NONE never adds anything', () => {
    expect(lateFeeFor(bill({ kind: 'NONE' }), '2026-10-01')).toBe(0n);
    expect(lateFeeFor(bill({ kind: 'NONE' }), '2030-01-01')).toBe(0n);
  });

  // Each rule at the day before, on, and after the due date, and long after.
  it.each([
    ['FIXED', { kind: 'FIXED', amount: 500n }, '2026-10-30', 0n],
    ['FIXED', { kind: 'FIXED', amount: 500n }, '2026-10-31', 0n],
    ['FIXED', { kind: 'FIXED', amount: 500n }, '2026-11-01', 500n],
    ['FIXED', { kind: 'FIXED', amount: 500n }, '2027-10-31', 500n],
    ['daily', { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, '2026-10-31', 0n],
    // 10000 × 5 / 10000 = 5 a day
    ['daily', { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, '2026-11-01', 5n],
    ['daily', { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, '2026-11-30', 150n],
    // 200 days: 1000, exactly the cap; 201 days would be 1005: capped
    ['daily', { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, '2027-05-19', 1_000n],
    ['daily', { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, '2027-05-20', 1_000n],
  ] as const)('%s %o on %s adds %s', (_name, rule, today, fee) => {
    expect(lateFeeFor(bill(rule as LateFeeRule), today)).toBe(fee);
  });

  it('rounds half up once over the whole period, never per day', () => {
    // 1234 × 5 / 10000 = 0.617 a day: a per-day rounding would give 1 a day.
    const b = bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000_000n }, 1_234n, '2026-10-31');
    expect(lateFeeFor(b, '2026-11-01')).toBe(1n); // 0.617 → 1
    expect(lateFeeFor(b, '2026-11-03')).toBe(2n); // 1.851 → 2
    // 1000 × 5 × 1 / 10000 = 0.5 → 1 (half up); 0.4999… stays 0
    expect(lateFeeFor(bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 100n }, 1_000n), '2026-11-01')).toBe(1n);
    expect(lateFeeFor(bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 100n }, 999n), '2026-11-01')).toBe(0n);
    // 3000 × 5 × 1 / 10000 = 1.5 → 2
    expect(lateFeeFor(bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 100n }, 3_000n), '2026-11-01')).toBe(2n);
  });

  it('counts calendar days across month ends, leap days and years, without overflow', () => {
    expect(daysLate('2028-02-28', '2028-03-01')).toBe(2); // 2028 is a leap year
    expect(daysLate('2027-02-28', '2027-03-01')).toBe(1);
    expect(daysLate('2026-12-31', '2027-01-01')).toBe(1);
    const huge = bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 10_000, cap: 100_000_000n }, 100_000_000n, '2000-01-01');
    expect(lateFeeFor(huge, '2099-12-31')).toBe(100_000_000n);
  });

  it('gives the worked example of docs/billers.md#late-fees', () => {
    const b = bill({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 800n }, 10_000n, '2026-10-31');
    const owed = (today: string) => amountOwed(b, today);
    expect([owed('2026-10-31'), owed('2026-11-01'), owed('2026-11-30'), owed('2027-04-08'), owed('2027-04-09'), owed('2030-01-01')]).toEqual([10_000n, 10_005n, 10_150n, 10_795n, 10_800n, 10_800n]);
  });

  it('amountOwed is the amount due plus the fee', () => {
    expect(amountOwed(bill({ kind: 'FIXED', amount: 250n }), '2026-11-01')).toBe(10_250n);
    expect(amountOwed(bill({ kind: 'FIXED', amount: 250n }), '2026-10-31')).toBe(10_000n);
  });

  it('refuses a day that is not a date', () => {
    expect(epochDay('2026-02-29')).toBeNull();
    expect(epochDay('2026-13-01')).toBeNull();
    expect(epochDay('26-1-1')).toBeNull();
    expect(() => lateFeeFor(bill({ kind: 'NONE' }), 'today')).toThrow(RangeError);
  });
});

describe('checkLateFee', () => {
  it('accepts each kind with exactly its fields', () => {
    expect(checkLateFee(null)).toEqual({ rule: { kind: 'NONE' }, problems: [] });
    expect(checkLateFee({ kind: 'FIXED', amount: 500 }).rule).toEqual({ kind: 'FIXED', amount: 500n });
    expect(checkLateFee({ kind: 'DAILY_BASIS_POINTS', basisPoints: '5', cap: '1000' }).rule).toEqual({ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1000n });
  });

  it.each([
    [{ kind: 'FIXED' }, ['lateFee.amount']],
    [{ kind: 'FIXED', amount: 0 }, ['lateFee.amount']],
    [{ kind: 'FIXED', amount: 1.5 }, ['lateFee.amount']],
    [{ kind: 'FIXED', amount: 5, cap: 9 }, ['lateFee.cap']],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 5 }, ['lateFee.cap']],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 10_001, cap: 5 }, ['lateFee.basisPoints']],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 5, amount: 1 }, ['lateFee.amount']],
    [{ kind: 'NONE', amount: 5 }, ['lateFee.amount']],
    [{ kind: 'WEEKLY' }, ['lateFee.kind']],
  ])('refuses %o', (parts, fields) => {
    const checked = checkLateFee(parts);
    expect(checked.rule).toBeNull();
    expect(checked.problems.map((p) => p.field)).toEqual(fields);
  });

  it('stores and reads back the same rule', () => {
    for (const rule of [{ kind: 'NONE' }, { kind: 'FIXED', amount: 7n }, { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 900n }] as LateFeeRule[]) {
      expect(lateFeeFromJson(JSON.parse(lateFeeJson(rule)))).toEqual(rule);
    }
  });
});

// What a biller sending a rule reads back: each refusal's message (it is the userError's message on
// publishBills and the CSV import's row problem), the limits that pass and the first that does not,
// and parts as a CSV row gives them (empty columns are absent, numbers arrive as text).
describe('checkLateFee, at its limits', () => {
  it.each([
    [{ kind: 'FIXED', amount: 0 }, 'lateFee.amount', 'a FIXED late fee has an amount of 1 to 100000000 minor units'],
    [{ kind: 'FIXED', amount: 5, basisPoints: 3 }, 'lateFee.basisPoints', 'a FIXED late fee takes no basisPoints'],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 0, cap: 5 }, 'lateFee.basisPoints', 'a daily late fee is 1 to 10000 basis points of the amount due a day'],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 0 }, 'lateFee.cap', 'a daily late fee has a cap of 1 to 100000000 minor units'],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 5, amount: 1 }, 'lateFee.amount', 'a DAILY_BASIS_POINTS late fee takes no amount'],
    [{ amount: 5 }, 'lateFee.amount', 'a NONE late fee takes no amount'],
    [{ kind: 'WEEKLY' }, 'lateFee.kind', 'a late fee kind is one of NONE, FIXED, DAILY_BASIS_POINTS'],
  ])('%o is refused: %s, "%s"', (parts, field, message) => {
    expect(checkLateFee(parts)).toEqual({ rule: null, problems: [{ field, message }] });
  });

  it('names every field at fault, under the prefix it is given', () => {
    expect(checkLateFee({ kind: 'NONE', amount: 1, basisPoints: 2, cap: 3 }, 'bills.3.lateFee').problems.map((p) => p.field)).toEqual([
      'bills.3.lateFee.amount',
      'bills.3.lateFee.basisPoints',
      'bills.3.lateFee.cap',
    ]);
    expect(checkLateFee({ kind: 'DAILY_BASIS_POINTS' }).problems.map((p) => p.field)).toEqual(['lateFee.basisPoints', 'lateFee.cap']);
  });

  it.each([
    [{ kind: 'FIXED', amount: 1 }, { kind: 'FIXED', amount: 1n }],
    [{ kind: 'FIXED', amount: 100_000_000n }, { kind: 'FIXED', amount: 100_000_000n }],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: 1, cap: 1 }, { kind: 'DAILY_BASIS_POINTS', basisPoints: 1, cap: 1n }],
    [{ kind: 'DAILY_BASIS_POINTS', basisPoints: '10000', cap: '100000000' }, { kind: 'DAILY_BASIS_POINTS', basisPoints: 10_000, cap: 100_000_000n }],
    // A CSV row's empty columns are no value at all.
    [{ kind: 'FIXED', amount: '0500', basisPoints: '', cap: '' }, { kind: 'FIXED', amount: 500n }],
    [{ kind: 'NONE', amount: '', basisPoints: null, cap: undefined }, { kind: 'NONE' }],
    [{}, { kind: 'NONE' }],
  ])('%o is accepted as %o', (parts, rule) => {
    expect(checkLateFee(parts)).toEqual({ rule, problems: [] });
  });

  it.each([
    ['one more than the largest amount', 100_000_001n],
    ['a number beyond 2^53, which is not exact', 2 ** 53],
    ['a negative number', -5],
    ['a negative string', '-5'],
    ['a decimal string', '5.0'],
    ['an exponent', '1e3'],
    ['digits with spaces', ' 5'],
    ['digits and more', '5x'],
    ['seventeen digits', '12345678901234567'],
  ])('a FIXED amount that is %s is refused', (_name, amount) => {
    expect(checkLateFee({ kind: 'FIXED', amount }).problems.map((p) => p.field)).toEqual(['lateFee.amount']);
  });

  it('a daily rate above 100 % and a cap above the largest amount are refused', () => {
    expect(checkLateFee({ kind: 'DAILY_BASIS_POINTS', basisPoints: 10_001, cap: 100_000_001n }).problems.map((p) => p.field)).toEqual(['lateFee.basisPoints', 'lateFee.cap']);
  });
});

describe('epochDay', () => {
  it('counts days from 1970-01-01 and refuses what is not a calendar date', () => {
    expect(epochDay('1970-01-01')).toBe(0);
    expect(epochDay('2026-10-31')).toBe(20_757);
    expect(epochDay('2028-02-29')).not.toBeNull();
    // Days and months that roll over into the next (or previous) month or year.
    for (const date of ['2026-04-31', '2026-00-10', '2026-12-32', '2026-10-00', '0026-01-01', '2026-1-01', ' 2026-10-31', '2026-10-31T00:00']) expect(epochDay(date)).toBeNull();
  });
});
