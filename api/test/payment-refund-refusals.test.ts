/**
 * Refunds are money out of a merchant's payable: every refusal leaves nothing written (the refunded
 * amount, the card's pending load, the ledger and the merchant's payable unchanged), and a refund
 * that is made moves exactly its amount and records its reason. Over real HTTP, the payments paid
 * with virtual cards on the holder's reader. Written from the mutation run of refundPayment
 * (docs/testing.md, payments).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { purgeExpiredIdempotencyRecords } from '../src/graphql/idempotency.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { apiClient, createPaymentAs, issueCard, OPEN, paymentParties, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

let merchantId: string;
let merchant: OneCardClient;
let issuer: OneCardClient;
let counter: TestReader;
let app: ReturnType<typeof bearerClient>;
let home: TestReader;
let holderId: string;

beforeAll(async () => {
  ({ merchantId, merchant, issuer, counter, holderId, app, home } = await paymentParties(world, {
    tag: 'refund',
    merchantName: 'Refund Tea',
    merchantScopes: ['payments:write', 'payments:read', 'refunds:write'],
  }));
});

type Errors = { code: string; field: string[] | null; message: string }[];
type Payment = { id: string; status: string; refundedAmount: { amount: number }; refunds: { amount: { amount: number }; reason: string | null; pendingLoad: string }[]; ledgerEntries: { kind: string; amount: { amount: number } }[] };
const PAYMENT = `id status refundedAmount { amount } refunds { amount { amount } reason pendingLoad } ledgerEntries { kind amount { amount } }`;
const REFUND = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { payment { ${PAYMENT} } refund { amount { amount } reason pendingLoad } userErrors { code field message } } }`;
type Refunded = { refundPayment: { payment: Payment | null; refund: { amount: { amount: number }; reason: string | null; pendingLoad: string } | null; userErrors: Errors } };

let orders = 0;
let keys = 0;
const newPayment = (amount: number) => createPaymentAs(merchant, amount, `refund-order-${++orders}`);

/** A payment of `amount` paid with a registered card of the holder's, loaded at the counter first. */
async function paidPayment(amount: number): Promise<{ id: string; card: string }> {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623188000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const atCounter = sessionsOf(issuer, () => counter);
  expect((await atCounter.agent(chip).run(await atCounter.open('LOAD', amount + 1_000))).state).toBe('COMPLETED');
  const id = await newPayment(amount);
  const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: id } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  expect((await sessionsOf(app, () => home).agent(chip, home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
  return { id, card: toGlobalId('Card', row.id) };
}

const refund = (input: Record<string, unknown>) => merchant.request<Refunded>(REFUND, { input: { idempotencyKey: `refund-${++keys}`, ...input } });
const get = async (id: string) => (await merchant.request<{ payment: Payment }>(`query($id: ID!) { payment(id: $id) { ${PAYMENT} } }`, { id })).payment;
const pendingLoadOf = async (card: string) => (await app.request<{ card: { pendingLoad: { amount: number } | null } }>(`query($id: ID!) { card(id: $id) { pendingLoad { amount } } }`, { id: card })).card.pendingLoad?.amount ?? 0;
async function merchantPayable(): Promise<bigint> {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`merchant.${merchantId}.payable.CNY`]);
  return BigInt(row?.balance ?? 0);
}

describe('a refund refused leaves nothing written', () => {
  // Made by the first test that needs it, not in a beforeAll: mutation testing then knows which
  // tests ran the refund (code run in a hook is "static", tried against every test; docs/testing.md).
  let made: Promise<{ id: string; card: string }> | undefined;
  const paidAndPartlyRefunded = () =>
    (made ??= (async () => {
      const paid = await paidPayment(1_000);
      // 400 of it refunded already: what is left is 600.
      expect((await refund({ payment: paid.id, amount: 400 })).refundPayment.userErrors).toEqual([]);
      return paid;
    })());

  const refusals: { why: string; input: (paid: { id: string }) => Record<string, unknown>; code: string; field?: string[]; message: string | RegExp }[] = [
    { why: 'a refund of 0', input: (paid) => ({ payment: paid.id, amount: 0 }), code: 'INVALID_INPUT', field: ['input', 'amount'], message: 'a refund is at least 1 minor unit' },
    { why: 'a negative refund', input: (paid) => ({ payment: paid.id, amount: -100 }), code: 'INVALID_INPUT', field: ['input', 'amount'], message: 'a refund is at least 1 minor unit' },
    { why: 'one minor unit more than is left', input: (paid) => ({ payment: paid.id, amount: 601 }), code: 'REFUND_EXCEEDS_PAYMENT', field: ['input', 'amount'], message: 'at most 600 is left to refund' },
    { why: 'a reason of 501 characters', input: (paid) => ({ payment: paid.id, amount: 100, reason: 'x'.repeat(501) }), code: 'INVALID_INPUT', field: ['input', 'reason'], message: 'a reason is at most 500 characters' },
    { why: 'a payment id that is not a uuid', input: () => ({ payment: toGlobalId('Payment', 'not-a-uuid'), amount: 100 }), code: 'NOT_FOUND', field: ['input', 'payment'], message: 'no payment not-a-uuid' },
  ];

  it.each(refusals)('$why: $code, and the payment, the card’s pending load, the ledger and the merchant’s payable are unchanged', async ({ input, code, field, message }) => {
    const paid = await paidAndPartlyRefunded();
    const before = { payment: await get(paid.id), pending: await pendingLoadOf(paid.card), payable: await merchantPayable() };
    const answer = await refund(input(paid));
    expect(answer.refundPayment.userErrors).toEqual([{ code, field, message }]);
    expect(answer.refundPayment.payment).toBeNull();
    expect(await get(paid.id)).toEqual(before.payment);
    expect(await pendingLoadOf(paid.card)).toBe(before.pending);
    expect(await merchantPayable()).toBe(before.payable);
  });

  it('a payment not paid yet, or canceled, cannot be refunded (INVALID_PAYMENT_STATE), and nothing moves', async () => {
    const waiting = await newPayment(500);
    const payable = await merchantPayable();
    expect((await refund({ payment: waiting, amount: 100 })).refundPayment.userErrors).toEqual([{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'a REQUIRES_CARD payment cannot be refunded' }]);
    const canceled = await merchant.request<{ cancelPayment: { userErrors: Errors } }>(`mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { userErrors { code field message } } }`, { input: { payment: waiting, idempotencyKey: `cancel-${waiting}` } });
    expect(canceled.cancelPayment.userErrors).toEqual([]);
    expect((await refund({ payment: waiting })).refundPayment.userErrors).toEqual([{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'a CANCELED payment cannot be refunded' }]);
    expect((await get(waiting)).refundedAmount.amount).toBe(0);
    expect(await merchantPayable()).toBe(payable);
  });
});

describe('a payment paid by a card the registry does not know (anonymous)', () => {
  it('is not the merchant’s to refund (its card company refunds it): INVALID_PAYMENT_STATE, and nothing moves', async () => {
    const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const atCounter = sessionsOf(issuer, () => counter);
    expect((await atCounter.agent(chip).run(await atCounter.open('LOAD', 2_000))).state).toBe('COMPLETED');
    const id = await newPayment(700);
    const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: id } });
    expect(opened.openCardSession.userErrors).toEqual([]);
    expect((await sessionsOf(app, () => home).agent(chip, home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
    expect((await get(id)).status).toBe('SUCCEEDED');
    const payable = await merchantPayable();
    const answer = await refund({ payment: id, amount: 100 });
    expect(answer.refundPayment.userErrors.map((e) => ({ code: e.code, field: e.field, message: e.message }))).toEqual([{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: expect.stringContaining('not in the card registry') }]);
    expect((await get(id)).refundedAmount.amount).toBe(0);
    expect(await merchantPayable()).toBe(payable);
  });
});

describe('a refund made', () => {
  it('moves exactly its amount from the merchant’s payable to the card’s pending load, with its reason; exactly what is left may be refunded, and then nothing more', async () => {
    const paid = await paidPayment(900);
    const payable = await merchantPayable();
    const first = (await refund({ payment: paid.id, amount: 250, reason: 'one cup returned' })).refundPayment;
    expect(first.userErrors).toEqual([]);
    expect(first.refund).toEqual({ amount: { amount: 250 }, reason: 'one cup returned', pendingLoad: expect.any(String) });
    expect(first.payment!.refundedAmount.amount).toBe(250);
    expect(await merchantPayable()).toBe(payable - 250n);
    expect(await pendingLoadOf(paid.card)).toBe(250);

    // Exactly what is left (650), named: allowed.
    const rest = (await refund({ payment: paid.id, amount: 650 })).refundPayment;
    expect(rest.userErrors).toEqual([]);
    expect(rest.refund!.reason).toBeNull();
    expect(rest.payment!.refundedAmount.amount).toBe(900);
    expect(rest.payment!.status).toBe('SUCCEEDED');
    expect(rest.payment!.refunds.map((r) => [r.amount.amount, r.reason])).toEqual([
      [250, 'one cup returned'],
      [650, null],
    ]);
    expect(rest.payment!.ledgerEntries.map((e) => [e.kind, e.amount.amount])).toEqual([
      ['PAYMENT', 900],
      ['REFUND', 250],
      ['REFUND', 650],
    ]);
    expect(await merchantPayable()).toBe(payable - 900n);
    expect(await pendingLoadOf(paid.card)).toBe(900);

    // Fully refunded: even 1 is refused, and an omitted amount too.
    for (const amount of [1, undefined]) {
      expect((await refund({ payment: paid.id, amount })).refundPayment.userErrors).toEqual([{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'the payment is fully refunded' }]);
    }
    expect(await merchantPayable()).toBe(payable - 900n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a reason of exactly 500 characters is kept whole', async () => {
    const paid = await paidPayment(300);
    const reason = 'r'.repeat(500);
    const made = (await refund({ payment: paid.id, amount: 1, reason })).refundPayment;
    expect(made.userErrors).toEqual([]);
    expect(made.refund!.reason).toBe(reason);
  });
});

describe('a refund retried with its key after the API forgot the key (its idempotency record purged after 48 hours)', () => {
  it('is the same refund, not a second one; another client of the merchant with the same key makes its own', async () => {
    const paid = await paidPayment(1_000);
    const payable = await merchantPayable();
    const input = { payment: paid.id, amount: 200, reason: 'late retry', idempotencyKey: 'refund-late-retry' };
    const first = (await merchant.request<Refunded>(REFUND, { input })).refundPayment;
    expect(first.userErrors).toEqual([]);

    // Two days on: the job has purged the API's record of the key.
    expect(await purgeExpiredIdempotencyRecords(world.db.orm.em.fork(), new Date(Date.now() + 49 * 3_600_000))).toBeGreaterThan(0);
    const again = (await merchant.request<Refunded>(REFUND, { input })).refundPayment;
    expect(again.userErrors).toEqual([]);
    expect(again.refund).toEqual(first.refund);
    expect(again.payment!.refundedAmount.amount).toBe(200);
    expect(again.payment!.refunds).toHaveLength(1);
    expect(await merchantPayable()).toBe(payable - 200n);
    expect(await pendingLoadOf(paid.card)).toBe(200);

    const otherClient = await apiClient(world, 'MERCHANT', merchantId, ['payments:write', 'payments:read', 'refunds:write']);
    const theirs = (await otherClient.request<Refunded>(REFUND, { input })).refundPayment;
    expect(theirs.userErrors).toEqual([]);
    expect(theirs.refund!.pendingLoad).not.toBe(first.refund!.pendingLoad);
    expect(theirs.payment!.refundedAmount.amount).toBe(400);
    expect(await merchantPayable()).toBe(payable - 400n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('a refund made is recorded for those who act on it next', () => {
  // Settlement nets the clearing item out of the merchant's payout, webhook delivery sends the
  // event to the merchant, the card's next tap loads the pending load: each reads its own row.
  it('one clearing item (REFUND, the merchant, the card company, the amount), the merchant’s payment.refunded event, a REFUND pending load of the card (its history naming the payment), and a ledger entry that names the refund', async () => {
    const paid = await paidPayment(800);
    const made = (await merchant.request<{ refundPayment: { refund: { id: string; pendingLoad: string }; userErrors: Errors } }>(
      `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { id pendingLoad } userErrors { code field message } } }`,
      { input: { payment: paid.id, amount: 300, reason: 'a cup short', idempotencyKey: 'refund-records' } },
    )).refundPayment;
    expect(made.userErrors).toEqual([]);
    const em = world.db.orm.em.fork();
    const uuid = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
    const [paymentUuid, refundUuid, pendingUuid, cardUuid] = [uuid(paid.id), uuid(made.refund.id), uuid(made.refund.pendingLoad), uuid(paid.card)];
    const entryKey = `payment-refund:${paymentUuid}:${refundUuid}`;

    const items = await em.execute(`select kind, participant_kind, participant_id, card_company_id, amount::int as amount, currency, reference from clearing_item where entry_key = ?`, [entryKey]);
    expect(items).toEqual([{ kind: 'REFUND', participant_kind: 'MERCHANT', participant_id: merchantId, card_company_id: world.gz.cardCompanyId, amount: 300, currency: 'CNY', reference: refundUuid }]);

    const events = await em.execute<{ owner_kind: string; owner_id: string; payload: Record<string, unknown> }[]>(`select owner_kind, owner_id, payload from event_outbox where type = 'payment.refunded' and subject_id = ?`, [paid.id]);
    expect(events).toEqual([{ owner_kind: 'MERCHANT', owner_id: merchantId, payload: expect.objectContaining({ payment: paid.id, status: 'SUCCEEDED', amount: 800, refundedAmount: 300, refund: { id: made.refund.id, amount: 300 } }) }]);

    const loads = await em.execute(`select card_id, origin, amount::int as amount, currency, status from top_up where id = ?`, [pendingUuid]);
    expect(loads).toEqual([{ card_id: cardUuid, origin: 'REFUND', amount: 300, currency: 'CNY', status: 'PAID' }]);
    // Its history says where it came from (the holder's app shows it).
    const history = await em.execute(`select from_status, to_status, cause from top_up_history where top_up_id = ?`, [pendingUuid]);
    expect(history).toEqual([{ from_status: null, to_status: 'PAID', cause: `refund of payment ${paymentUuid}` }]);

    const entries = await em.execute<{ description: string; metadata: Record<string, unknown> }[]>(`select description, metadata from journal_entry where entry_key = ?`, [entryKey]);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.description).toContain(paymentUuid);
    expect(entries[0]!.metadata).toMatchObject({ kind: 'REFUND', payment: paymentUuid, refund: refundUuid, merchant: merchantId });
  });
});
