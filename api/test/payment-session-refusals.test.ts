/**
 * Who may open a card session to pay a payment, and on which reader (payment-card-step.ts, the
 * purpose's open): the holder's app with card:topup, or the payment's merchant with payments:write
 * on a reader it owns. Every other opening is refused before any session exists, and the payment
 * stays waiting for a card. A reader the caller may not use is refused on `reader` before the
 * payment is looked at (readers the caller does not own, or a holder's app without card:topup). Over real HTTP. Written from the mutation testing of the payments unit
 * (docs/testing.md, payments).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, cardholderApp, newReader, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();

type Caller = Pick<OneCardClient, 'request'>;
type Errors = { code: string; field?: string[] | null; message: string }[];
const OPEN = `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id state } userErrors { code field message } } }`;
type Opened = { openCardSession: { session: { id: string; state: string } | null; userErrors: Errors } };

let teaId: string;
let tea: OneCardClient;
let teaReadOnly: OneCardClient;
let noodles: OneCardClient;
let teaTill: TestReader;
let noodleTill: TestReader;
let counter: TestReader;
let payer: Caller;
let reader: Caller;
let home: TestReader;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  teaId = (await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' })).id;
  const noodlesId = (await createMerchant(em, { cityId: world.gz.cityId, name: 'Noodle Bar' })).id;
  tea = await apiClient(world, 'MERCHANT', teaId, ['payments:write', 'payments:read']);
  teaReadOnly = await apiClient(world, 'MERCHANT', teaId, ['payments:read']);
  noodles = await apiClient(world, 'MERCHANT', noodlesId, ['payments:write', 'payments:read']);
  teaTill = await newReader(world, 'REFUSE-TEA-TILL', world.gz, { kind: 'MERCHANT', id: teaId });
  noodleTill = await newReader(world, 'REFUSE-NOODLE-TILL', world.gz, { kind: 'MERCHANT', id: noodlesId });
  counter = await newReader(world, 'REFUSE-COUNTER', world.gz);
  const paying = await cardholderApp(world, 'refuse-payer', ['card:read', 'card:topup']);
  payer = paying.app;
  home = await newReader(world, 'HOME-refuse-payer', world.gz, { kind: 'CARDHOLDER', id: paying.id });
  reader = (await cardholderApp(world, 'refuse-reader', ['card:read'])).app;
});

let orders = 0;
async function newPayment(amount = 450): Promise<string> {
  const made = await tea.request<{ createPayment: { payment: { id: string }; userErrors: Errors } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
    input: { amount, currency: 'CNY', orderReference: `open-order-${++orders}`, idempotencyKey: `open-create-${orders}` },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

const open = (by: Caller, on: TestReader, payment: string, extra: Record<string, unknown> = {}) => by.request<Opened>(OPEN, { input: { reader: on.id, operation: 'PURCHASE', payment, ...extra } });

async function stateOf(payment: string) {
  const [row] = await world.db.orm.em.fork().execute<{ status: string; attempts: number; card_session_id: string | null }[]>(`select status, attempts, card_session_id from payment where id = ?`, [fromGlobalId(payment, 'Payment').id]);
  return row;
}

describe('opening a session to pay a payment', () => {
  it('its merchant on its own till (payments:write) and the holder’s app on the holder’s reader (card:topup) may: a session for the payment’s amount', async () => {
    for (const [by, on] of [
      [tea, teaTill],
      [payer, home],
    ] as const) {
      const payment = await newPayment();
      const opened = await open(by, on, payment);
      expect(opened.openCardSession.userErrors).toEqual([]);
      expect(opened.openCardSession.session).toMatchObject({ id: expect.any(String) });
    }
  });

  const refusals: { who: string; by: () => Caller; on: () => TestReader; extra?: Record<string, unknown>; code: string; field: string; says: string }[] = [
    { who: 'its merchant on a till it does not own', by: () => tea, on: () => noodleTill, code: 'NOT_FOUND', field: 'reader', says: 'no reader' },
    { who: 'its merchant on the card company’s counter', by: () => tea, on: () => counter, code: 'NOT_FOUND', field: 'reader', says: 'no reader' },
    { who: 'its merchant with payments:read only, on its own till', by: () => teaReadOnly, on: () => teaTill, code: 'NOT_FOUND', field: 'payment', says: 'you may pay on this reader' },
    { who: 'another merchant, on its own till', by: () => noodles, on: () => noodleTill, code: 'NOT_FOUND', field: 'payment', says: 'you may pay on this reader' },
    { who: 'a holder’s app without card:topup', by: () => reader, on: () => home, code: 'NOT_FOUND', field: 'reader', says: 'no reader' },
    { who: 'its merchant naming an amount (the payment’s is the amount)', by: () => tea, on: () => teaTill, extra: { amount: 1 }, code: 'INVALID_INPUT', field: 'amount', says: 'takes its amount from the payment' },
    { who: 'the holder’s app naming the payment’s own amount', by: () => payer, on: () => home, extra: { amount: 450 }, code: 'INVALID_INPUT', field: 'amount', says: 'takes its amount from the payment' },
  ];

  it('a payment named by the id of something else (the till’s own Reader id) is refused as “not a Payment id”, not looked up as a payment', async () => {
    await expect(open(tea, teaTill, teaTill.id)).rejects.toThrow(/is not a Payment id/);
  });

  it.each(refusals)('$who: $code on $field, no session, the payment still waits for a card', async ({ by, on, extra, code, field, says }) => {
    const payment = await newPayment();
    const opened = await open(by(), on(), payment, extra);
    expect(opened.openCardSession.userErrors).toEqual([{ code, field: ['input', field], message: expect.stringContaining(says) }]);
    expect(opened.openCardSession.session).toBeNull();
    expect(await stateOf(payment)).toEqual({ status: 'REQUIRES_CARD', attempts: 0, card_session_id: null });
  });

  it('a canceled payment is refused (the merchant: INVALID_INPUT; the holder’s app no longer sees it: NOT_FOUND), and one past its expiry that the expiry job has not canceled yet too (INVALID_INPUT to both)', async () => {
    const canceled = await newPayment();
    const cancel = await tea.request<{ cancelPayment: { userErrors: Errors } }>(`mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { userErrors { code message } } }`, { input: { payment: canceled, idempotencyKey: `cancel-${canceled}` } });
    expect(cancel.cancelPayment.userErrors).toEqual([]);
    const expired = await newPayment();
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(expired, 'Payment').id]);
    for (const [by, on, canceledCode, says] of [
      [payer, home, 'NOT_FOUND', 'no payment'],
      [tea, teaTill, 'INVALID_INPUT', 'CANCELED'],
    ] as const) {
      const afterCancel = await open(by, on, canceled);
      expect(afterCancel.openCardSession.userErrors).toEqual([{ code: canceledCode, field: ['input', 'payment'], message: expect.stringContaining(says) }]);
      const afterExpiry = await open(by, on, expired);
      expect(afterExpiry.openCardSession.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'payment'], message: expect.stringContaining('expired') }]);
      expect(afterExpiry.openCardSession.session).toBeNull();
    }
    expect(await stateOf(expired)).toEqual({ status: 'REQUIRES_CARD', attempts: 0, card_session_id: null });
  });
});
