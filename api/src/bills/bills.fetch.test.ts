import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BillerUnavailable } from './bills.errors.js';
import { lookUpMessage, readLookUpAnswer } from './bills.fetch.js';

describe('a live look-up request', () => {
  it('is the account as JSON, signed t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")', () => {
    const { body, headers } = lookUpMessage('bls_secret', 'A-1001', new Date('2026-11-25T08:00:00Z'));
    expect(body).toBe('{"accountNumber":"A-1001"}');
    const t = 1795593600;
    expect(headers['onecard-signature']).toBe(`t=${t},v1=${createHmac('sha256', 'bls_secret').update(`${t}.${body}`).digest('hex')}`);
    expect(headers['content-type']).toBe('application/json');
  });
});

describe('a biller’s answer', () => {
  it('gives the account’s bills, checked like published ones', () => {
    const answer = JSON.stringify({
      bills: [
        { billerReference: 'G-1', period: '2026-10', amountDue: 8800, dueDate: '2026-11-20' },
        { billerReference: 'G-2', period: '2026-11', amountDue: 9100, dueDate: '2026-12-20', allowPartial: true, lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 500 } },
      ],
    });
    expect(readLookUpAnswer(answer, 'A-1')).toEqual([
      { accountNumber: 'A-1', billerReference: 'G-1', period: '2026-10', amountDue: 8800n, dueDate: '2026-11-20', allowPartial: false, lateFee: { kind: 'NONE' } },
      { accountNumber: 'A-1', billerReference: 'G-2', period: '2026-11', amountDue: 9100n, dueDate: '2026-12-20', allowPartial: true, lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 500n } },
    ]);
    expect(readLookUpAnswer('{"bills":[]}', 'A-1')).toEqual([]);
  });

  it.each([
    ['<html>oops</html>', /not JSON/],
    ['[]', /no "bills" list/],
    ['{"bills":{}}', /no "bills" list/],
    ['{"bills":[1]}', /bills\[0\] is not an object/],
    ['{"bills":[{"billerReference":"G-1","period":"2026-10","amountDue":-5,"dueDate":"2026-11-20"}]}', /bills\[0\]: amountDue/],
    ['{"bills":[{"billerReference":"G-1","period":"2026-10","amountDue":5,"dueDate":"20/11/2026"}]}', /bills\[0\]: dueDate/],
    ['{"bills":[{"billerReference":"G-1","period":"2026-10","amountDue":5,"dueDate":"2026-11-20","lateFee":"5%"}]}', /lateFee is not an object/],
    ['{"bills":[{"billerReference":"G-1","period":"p","amountDue":5,"dueDate":"2026-11-20"},{"billerReference":"G-1","period":"q","amountDue":5,"dueDate":"2026-11-20"}]}', /twice/],
  ])('refuses %s', (text, reason) => {
    expect(() => readLookUpAnswer(text, 'A-1')).toThrow(BillerUnavailable);
    expect(() => readLookUpAnswer(text, 'A-1')).toThrow(reason);
  });
});
