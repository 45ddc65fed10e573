/**
 * feeFor() refuses terms no fee plan may have, and an amount no transaction has, instead of
 * charging a fee computed from them: a plan of 10 001 bp would take more than the whole amount.
 * (Found by mutation testing, docs/testing.md; the fee amounts themselves are in api/test/tenancy.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { feeFor } from './fee.js';

const plan = (basisPoints: number, fixedFee = 0n, minimumFee = 0n) => ({ basisPoints, fixedFee, minimumFee });

describe('feeFor() refuses', () => {
  it.each([
    ['more than 10 000 basis points', 10_001, 'basis points are 0 to 10000; got 10001'],
    ['negative basis points', -1, 'basis points are 0 to 10000; got -1'],
    ['a fraction of a basis point', 0.5, 'basis points are 0 to 10000; got 0.5'],
  ])('%s', (_name, basisPoints, message) => {
    expect(() => feeFor(plan(basisPoints), 10_000n)).toThrow(new RangeError(message));
  });

  it('a negative amount, naming it', () => {
    expect(() => feeFor(plan(60), -1n)).toThrow(new RangeError('a fee is computed on a non-negative amount; got -1'));
  });
});

describe('feeFor() accepts the limits', () => {
  it('0 and 10 000 basis points, on 0 and on 1 minor unit', () => {
    expect(feeFor(plan(0, 0n, 0n), 0n)).toBe(0n);
    expect(feeFor(plan(10_000), 1n)).toBe(1n);
    expect(feeFor(plan(10_000, 2n), 0n)).toBe(2n);
  });
});
