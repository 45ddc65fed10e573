import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientError } from '../src/auth/clients.service.js';
import { BillPaymentError } from '../src/bills/bill-payments.errors.js';
import { BillError } from '../src/bills/bills.errors.js';
import { CardError } from '../src/cards/cards.errors.js';
import { LedgerError, LedgerErrorCode } from '../src/ledger/ledger.errors.js';
import { PaymentError } from '../src/payments/payments.errors.js';
import { PkiError } from '../src/pki/pki.errors.js';
import { ReaderError } from '../src/readers/readers.errors.js';
import { SessionError } from '../src/readers/session/session.errors.js';
import { OfflineBatchError } from '../src/settlement/offline-upload.service.js';
import { SettlementError } from '../src/settlement/settlement.errors.js';
import { TenancyError, TenancyErrorCode } from '../src/tenancy/tenancy.errors.js';
import { TopUpError } from '../src/topups/topups.errors.js';
import { WebhookError } from '../src/webhooks/webhooks.errors.js';
import { DomainError, withUserErrors } from '../src/graphql/domain-error.js';
import { type UserError, UserErrorCode } from '../src/graphql/user-error.js';

/** A mutation's payload: its object, null when refused, and its userErrors. */
interface Payload {
  thing: string | null;
  userErrors: UserError[];
}

describe('every context refuses with a DomainError, answered as its userError', () => {
  it.each([
    ['PaymentError', new PaymentError('INVALID_STATE', 'the payment is SUCCEEDED', 'payment'), { code: UserErrorCode.INVALID_PAYMENT_STATE, field: ['input', 'payment'] }],
    ['BillError (a nested field)', new BillError('INVALID_INPUT', 'a cap is positive', 'lateFee.cap'), { code: UserErrorCode.INVALID_INPUT, field: ['input', 'lateFee', 'cap'] }],
    ['BillPaymentError', new BillPaymentError('INVALID_STATE', 'not payable now'), { code: UserErrorCode.INVALID_INPUT, field: ['input'] }],
    ['TopUpError', new TopUpError('DAILY_LIMIT_EXCEEDED', 'over the day', 'amount'), { code: UserErrorCode.DAILY_LIMIT_EXCEEDED, field: ['input', 'amount'] }],
    ['CardError', new CardError('INVALID_TRANSITION', 'REPLACED → ACTIVE'), { code: UserErrorCode.INVALID_CARD_TRANSITION, field: ['input'] }],
    ['ReaderError', new ReaderError('DUPLICATE_SERIAL', 'taken', 'serial'), { code: UserErrorCode.INVALID_INPUT, field: ['input', 'serial'] }],
    ['ReaderError NOT_FOUND', new ReaderError('NOT_FOUND', 'no reader'), { code: UserErrorCode.NOT_FOUND, field: ['input'] }],
    ['SettlementError', new SettlementError('WINDOW_OPEN', 'close it first', 'window'), { code: UserErrorCode.WINDOW_OPEN, field: ['input', 'window'] }],
    ['OfflineBatchError', new OfflineBatchError('BATCH_ID_REUSED', 'another batch'), { code: UserErrorCode.OFFLINE_BATCH_ID_REUSED, field: ['input', 'batchId'], message: 'BATCH_ID_REUSED: another batch' }],
    ['OfflineBatchError refused', new OfflineBatchError('BAD_SIGNATURE', 'forged'), { code: UserErrorCode.OFFLINE_BATCH_REFUSED, field: ['input', 'body'], message: 'BAD_SIGNATURE: forged' }],
    ['TenancyError', new TenancyError(TenancyErrorCode.UNKNOWN_CITY, 'no city', 'city'), { code: UserErrorCode.NOT_FOUND, field: ['input', 'city'] }],
    ['WebhookError', new WebhookError('INVALID_WEBHOOK_URL', 'not https', 'url'), { code: UserErrorCode.INVALID_WEBHOOK_URL, field: ['input', 'url'] }],
    ['LedgerError', new LedgerError(LedgerErrorCode.TOO_FEW_LINES, 'two lines at least'), { code: UserErrorCode.UNBALANCED_ENTRY, field: ['input'] }],
    ['PkiError', new PkiError('ALREADY_EXISTS', 'a root is installed'), { code: UserErrorCode.INVALID_INPUT, field: ['input'] }],
    ['ClientError', new ClientError('INVALID_SCOPE', 'may not hold it'), { code: UserErrorCode.INVALID_INPUT, field: ['input'] }],
    ['SessionError', new SessionError('OUT_OF_ORDER', 'seq 3, expected 2'), { code: UserErrorCode.CARD_SESSION_REFUSED, field: ['input'], message: 'OUT_OF_ORDER: seq 3, expected 2' }],
  ] as const)('%s', async (_name, err, expected) => {
    expect(err).toBeInstanceOf(DomainError);
    const payload = await withUserErrors<Payload>(() => Promise.reject(err), { thing: null });
    expect(payload).toEqual({ thing: null, userErrors: [{ message: err.message, ...expected }] });
  });
});

describe('withUserErrors', () => {
  it('answers the work’s payload when nothing is refused', async () => {
    expect(await withUserErrors<Payload>(async () => ({ thing: 'made', userErrors: [] }), { thing: null })).toEqual({ thing: 'made', userErrors: [] });
  });

  it('lets anything that is not a refusal through (it becomes INTERNAL_SERVER_ERROR, not a userError)', async () => {
    await expect(withUserErrors<Payload>(() => Promise.reject(new Error('connection reset')), { thing: null })).rejects.toThrow('connection reset');
    // An error that only looks like a refusal is not one.
    await expect(withUserErrors<Payload>(() => Promise.reject(Object.assign(new Error('x'), { code: 'INVALID_INPUT' })), { thing: null })).rejects.toThrow('x');
  });

  it('hangs the field where the caller says, chosen from the refusal', async () => {
    const at = (err: DomainError) => (err instanceof LedgerError && err.accountId === 'acc-2' ? ['input', 'lines', 1] : ['input']);
    const payload = await withUserErrors<{ entry: string | null; userErrors: UserError[] }>(() => Promise.reject(new LedgerError(LedgerErrorCode.INSUFFICIENT_FUNDS, 'below zero', 'acc-2')), { entry: null }, at);
    expect(payload.userErrors).toEqual([{ code: UserErrorCode.INSUFFICIENT_FUNDS, message: 'below zero', field: ['input', 'lines', '1'] }]);
  });
});

describe('one refusal mechanism', () => {
  it('no context declares a refusal class of its own beside DomainError (every *.errors.ts class extends it)', () => {
    const src = path.resolve(__dirname, '../src');
    const files = (fs.readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.errors.ts'));
    expect(files.length).toBeGreaterThan(10);
    const own = files.flatMap((f) =>
      [...fs.readFileSync(path.join(src, f), 'utf8').matchAll(/class (\w+) extends (\w+)/g)]
        // cardcrypto/ imports nothing (bytes in, bytes out): its errors are not refusals a client sees.
        .filter(([, , base]) => base === 'Error' && !f.startsWith('cardcrypto'))
        .map(([, name]) => `${f}: ${name}`),
    );
    // BillsRefused (many refusals at once, answered as a list) and BillerUnavailable (a look-up that failed) are not one refusal.
    expect(own).toEqual(['bills/bills.errors.ts: BillsRefused', 'bills/bills.errors.ts: BillerUnavailable']);
  });
});
