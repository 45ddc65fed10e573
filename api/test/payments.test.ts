/**
 * Merchant card-wallet payments end to end over real HTTP: the merchant's OAuth client creates a
 * payment, the holder's app (signed in with PKCE) pays it with a virtual card on the holder's own
 * reader (or the merchant on its till), refunds go back to the card as pending loads.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { makeWorkerUtils } from 'graphile-worker';
import { pino } from 'pino';
import { expirePayments } from '../src/payments/payments.service.js';
import { scheduledTasks } from '../src/platform.js';
import { JOB_SCHEMA } from '../src/webhooks/dispatcher.js';
import { startWebhookDelivery } from '../src/webhooks/delivery-worker.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, auditOf, balanceOnCard, brokenRelay, cardholderApp, expireSession, issueCard, newReader, OPEN, purseBalance, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

let merchant: OneCardClient;
let otherMerchant: OneCardClient;
let merchantId: string;
let till: TestReader;
let issuer: OneCardClient;
let counter: TestReader;
let app: ReturnType<typeof bearerClient>;
let home: TestReader;
let holderId: string;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' });
  const other = await createMerchant(em, { cityId: world.gz.cityId, name: 'Noodle Bar' });
  merchantId = shop.id;
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
  otherMerchant = await apiClient(world, 'MERCHANT', other.id, ['payments:write', 'payments:read', 'refunds:write']);
  till = await newReader(world, 'TEA-TILL-1', world.gz, { kind: 'MERCHANT', id: shop.id });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  counter = await newReader(world, 'GZ-COUNTER-PAY', world.gz);
  ({ id: holderId, app } = await cardholderApp(world, 'wang'));
  home = await newReader(world, 'HOME-wang', world.gz, { kind: 'CARDHOLDER', id: holderId });
});

/** A registered card loaded at the counter with `balance` (chip and ledger shadow agree). */
async function loadedCard(balance: number) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623177000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  if (balance > 0) {
    const counterSessions = sessionsOf(issuer, () => counter);
    expect((await counterSessions.agent(chip).run(await counterSessions.open('LOAD', balance))).state).toBe('COMPLETED');
  }
  return { chip, id: toGlobalId('Card', row.id), uuid: row.id };
}

const PAYMENT = `id status amount { amount currency } orderReference metadata failureCode cancelReason refundedAmount { amount } card merchantName
  refunds { amount { amount } pendingLoad reason } ledgerEntries { kind amount { amount } }`;
const CREATE = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { ${PAYMENT} } userErrors { code field message } } }`;
const CANCEL = `mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { payment { ${PAYMENT} } userErrors { code message } } }`;
const REFUND = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { payment { ${PAYMENT} } refund { amount { amount } pendingLoad } userErrors { code message } } }`;
const GET = `query($id: ID!) { payment(id: $id) { ${PAYMENT} } }`;

type Payment = { id: string; status: string; failureCode: string | null; cancelReason: string | null; refundedAmount: { amount: number }; card: string | null; refunds: { amount: { amount: number }; pendingLoad: string }[]; ledgerEntries: { kind: string; amount: { amount: number } }[] };
type Errors = { code: string; field?: string[]; message: string }[];
let orders = 0;

async function newPayment(amount: number, extra: Record<string, unknown> = {}, by: OneCardClient = merchant): Promise<Payment> {
  const made = await by.request<{ createPayment: { payment: Payment; userErrors: Errors } }>(CREATE, { input: { amount, currency: 'CNY', orderReference: `order-${++orders}`, idempotencyKey: `create-${orders}`, ...extra } });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment;
}

const get = async (id: string, by: { request: OneCardClient['request'] } = merchant) => (await by.request<{ payment: Payment | null }>(GET, { id })).payment;

/** The holder's app opens a purchase session for the payment on the holder's reader. */
async function openPay(paymentId: string, reader = home, by: { request: OneCardClient['request'] } = app) {
  const opened = await by.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: Errors } }>(OPEN, { input: { reader: reader.id, operation: 'PURCHASE', payment: paymentId } });
  return opened.openCardSession;
}

async function pay(paymentId: string, chip: VirtualCpuCard, reader = home, by: { request: OneCardClient['request'] } = app) {
  const opened = await openPay(paymentId, reader, by);
  expect(opened.userErrors).toEqual([]);
  return sessionsOf(by, () => reader).agent(chip, reader).run(opened.session!);
}

async function ledgerOk() {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
}

async function merchantPayable(): Promise<bigint> {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`merchant.${merchantId}.payable.CNY`]);
  return BigInt(row?.balance ?? 0);
}

describe('the full payment with a virtual card', () => {
  it('the merchant creates it, the holder’s app pays it with the card on the holder’s reader, the ledger moves purse → merchant', async () => {
    const card = await loadedCard(5_000);
    const before = await merchantPayable();
    const payment = await newPayment(1_280, { description: 'two teas', metadata: { cart: 'c-77' } });
    expect(payment).toMatchObject({ status: 'REQUIRES_CARD', amount: { amount: 1280, currency: 'CNY' }, metadata: { cart: 'c-77' }, merchantName: 'Tea House' });
    // The holder's app sees what it is asked to pay (only that: authorization-properties.test.ts).
    const asked = await app.request<{ payment: unknown }>('query($id: ID!) { payment(id: $id) { status merchantName amount { amount } description } }', { id: payment.id });
    expect(asked.payment).toMatchObject({ status: 'REQUIRES_CARD', merchantName: 'Tea House', amount: { amount: 1280 }, description: 'two teas' });

    const done = await pay(payment.id, card.chip);
    expect(done.state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(3_720);
    expect(await purseBalance(world, card.chip.asn)).toBe(3_720n);
    expect(await merchantPayable()).toBe(before + 1_280n);
    const paid = (await get(payment.id))!;
    expect(paid).toMatchObject({ status: 'SUCCEEDED', card: card.id, ledgerEntries: [{ kind: 'PAYMENT', amount: { amount: 1280 } }] });
    const events = await world.db.orm.em.fork().execute<{ type: string; owner_id: string; payload: { orderReference: string } }[]>(`select type, owner_id, payload from event_outbox where subject_id = ?`, [payment.id]);
    expect(events).toEqual([{ type: 'payment.succeeded', owner_id: merchantId, payload: expect.objectContaining({ orderReference: expect.stringMatching(/^order-/) }) }]);
    // Paid once: a second session for it is refused at the door.
    expect((await openPay(payment.id)).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/SUCCEEDED/) });
    await ledgerOk();
  });

  it('the merchant can take it on its own till too', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(500);
    expect((await pay(payment.id, card.chip, till, merchant)).state).toBe('COMPLETED');
    expect((await get(payment.id))!.status).toBe('SUCCEEDED');
    // Another merchant's till cannot be used for it, nor can another merchant see it.
    expect((await openPay(payment.id, till, otherMerchant)).userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(await get(payment.id, otherMerchant)).toBeNull();
  });

  it('one live payment per order reference; a new one after a cancel', async () => {
    await newPayment(100, { orderReference: 'order-unique' });
    const again = await merchant.request<{ createPayment: { userErrors: Errors } }>(CREATE, { input: { amount: 100, currency: 'CNY', orderReference: 'order-unique', idempotencyKey: 'dup-2' } });
    expect(again.createPayment.userErrors.map((e) => e.code)).toEqual(['DUPLICATE_ORDER']);
    const bad = await merchant.request<{ createPayment: { userErrors: Errors } }>(CREATE, { input: { amount: 100, currency: 'USD', orderReference: 'order-usd', idempotencyKey: 'usd' } });
    expect(bad.createPayment.userErrors.map((e) => e.code)).toEqual(['CURRENCY_MISMATCH']);
  });
});

describe('cancel and expiry', () => {
  it('the merchant cancels a payment waiting for the card; a session for it is refused; a paid one cannot be canceled', async () => {
    const payment = await newPayment(700);
    const canceled = await merchant.request<{ cancelPayment: { payment: Payment; userErrors: Errors } }>(CANCEL, { input: { payment: payment.id, idempotencyKey: 'cancel-1' } });
    expect(canceled.cancelPayment.payment).toMatchObject({ status: 'CANCELED', cancelReason: 'MERCHANT' });
    // A canceled payment no longer exists for a holder's app; the merchant's till is told why.
    expect((await openPay(payment.id)).userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect((await openPay(payment.id, till, merchant)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);

    const card = await loadedCard(1_000);
    const paid = await newPayment(300);
    await pay(paid.id, card.chip);
    const late = await merchant.request<{ cancelPayment: { userErrors: Errors } }>(CANCEL, { input: { payment: paid.id, idempotencyKey: 'cancel-2' } });
    expect(late.cancelPayment.userErrors.map((e) => e.code)).toEqual(['INVALID_PAYMENT_STATE']);
    const foreign = await otherMerchant.request<{ cancelPayment: { userErrors: Errors } }>(CANCEL, { input: { payment: paid.id, idempotencyKey: 'cancel-3' } });
    expect(foreign.cancelPayment.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });

  it('a payment past its expiry is canceled by the job, and a session opened before expiry is refused before the card pays', async () => {
    const card = await loadedCard(1_000);
    const waiting = await newPayment(400);
    const opened = await openPay(waiting.id);
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(waiting.id).id]);
    const refused = await sessionsOf(app, () => home).agent(card.chip).run(opened.session!);
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    expect(await expirePayments(world.db.orm.em.fork())).toBeGreaterThanOrEqual(1);
    expect(await get(waiting.id)).toMatchObject({ status: 'CANCELED', cancelReason: 'EXPIRED' });
    expect((await openPay(waiting.id, till, merchant)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
  });
});

describe('the expiry task on the job queue', () => {
  it('graphile-worker runs payments_expire (the platform schedules it every minute): an expired payment is canceled', async () => {
    const waiting = await newPayment(250);
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(waiting.id).id]);
    const log = pino({ level: 'silent' });
    const queue = await startWebhookDelivery({ orm: world.db.orm, config: world.server.config, log, jobPollIntervalMs: 100, ...scheduledTasks(world.db.orm, log) });
    const utils = await makeWorkerUtils({ connectionString: world.db.orm.config.get('clientUrl'), schema: JOB_SCHEMA });
    try {
      await utils.addJob('payments_expire', {});
      for (let i = 0; i < 100 && (await get(waiting.id))!.status !== 'CANCELED'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await get(waiting.id)).toMatchObject({ status: 'CANCELED', cancelReason: 'EXPIRED' });
    } finally {
      await utils.release();
      await queue.stop();
    }
  });
});

describe('refunds', () => {
  it('partial and full refunds up to the paid amount go back to the card as pending loads; over-refund is refused', async () => {
    const card = await loadedCard(3_000);
    const payment = await newPayment(1_000);
    await pay(payment.id, card.chip);
    const refund = (amount: number | undefined, key: string) => merchant.request<{ refundPayment: { payment: Payment | null; userErrors: Errors } }>(REFUND, { input: { payment: payment.id, amount, reason: 'returned', idempotencyKey: key } });
    expect((await refund(300, 'r1')).refundPayment.payment!.refundedAmount.amount).toBe(300);
    expect((await refund(200, 'r2')).refundPayment.payment!.refundedAmount.amount).toBe(500);
    expect((await refund(501, 'r3')).refundPayment.userErrors.map((e) => e.code)).toEqual(['REFUND_EXCEEDS_PAYMENT']);
    const rest = (await refund(undefined, 'r4')).refundPayment.payment!;
    expect(rest.refundedAmount.amount).toBe(1_000);
    expect(rest.status).toBe('SUCCEEDED');
    expect(rest.refunds.map((r) => r.amount.amount)).toEqual([300, 200, 500]);
    expect(rest.ledgerEntries.map((e) => e.kind)).toEqual(['PAYMENT', 'REFUND', 'REFUND', 'REFUND']);
    expect((await refund(1, 'r5')).refundPayment.userErrors.map((e) => e.code)).toEqual(['INVALID_PAYMENT_STATE']);
    expect((await otherMerchant.request<{ refundPayment: { userErrors: Errors } }>(REFUND, { input: { payment: payment.id, idempotencyKey: 'r6' } })).refundPayment.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);

    // The card's next tap writes the refunds onto it.
    expect((await app.request<{ card: { pendingLoad: { amount: number } } }>(`query($id: ID!) { card(id: $id) { pendingLoad { amount } } }`, { id: card.id })).card.pendingLoad.amount).toBe(1_000);
    for (const r of rest.refunds) {
      const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp: r.pendingLoad } });
      expect((await sessionsOf(app, () => home).agent(card.chip).run(opened.openCardSession.session)).state).toBe('COMPLETED');
    }
    expect(await balanceOnCard(card.chip)).toBe(3_000);
    expect(await purseBalance(world, card.chip.asn)).toBe(3_000n);
    await ledgerOk();
  });

  it('concurrent refunds never pass what was paid', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(1_000);
    await pay(payment.id, card.chip);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => merchant.request<{ refundPayment: { userErrors: Errors } }>(REFUND, { input: { payment: payment.id, amount: 300, idempotencyKey: `cr-${i}` } })));
    expect(results.filter((r) => r.refundPayment.userErrors.length === 0)).toHaveLength(3);
    expect((await get(payment.id))!.refundedAmount.amount).toBe(900);
    await ledgerOk();
  });
});

describe('double spend and lost answers', () => {
  it('many concurrent payments against one card’s purse (copies of the card on many readers) never take the purse below zero', async () => {
    const card = await loadedCard(1_000);
    const payments = await Promise.all(Array.from({ length: 6 }, () => newPayment(300)));
    const readers = await Promise.all(payments.map((_, i) => newReader(world, `HOME-wang-${i}-${Date.now()}`, world.gz, { kind: 'CARDHOLDER', id: holderId })));
    const results = await Promise.all(payments.map((p, i) => pay(p.id, VirtualCpuCard.fromJSON(card.chip.toJSON()), readers[i])));
    const succeeded = results.filter((r) => r.state === 'COMPLETED').length;
    expect(succeeded).toBeLessThanOrEqual(3);
    expect(succeeded).toBeGreaterThanOrEqual(1);
    const purse = (await purseBalance(world, card.chip.asn))!;
    expect(purse).toBeGreaterThanOrEqual(0n);
    expect(purse).toBe(1_000n - 300n * BigInt(succeeded));
    const statuses = await Promise.all(payments.map(async (p) => (await get(p.id))!.status));
    expect(statuses.filter((s) => s === 'SUCCEEDED')).toHaveLength(succeeded);
    await ledgerOk();
  });

  it('the card paid but its answer was lost: the next tap settles the payment from the card’s log, and the card is not charged twice', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(600);
    const first = await openPay(payment.id);
    const lossy = sessionsOf(brokenRelay(app, 2, 'request'), () => home);
    await expect(lossy.agent(card.chip).run(first.session!)).rejects.toThrow('connection lost');
    expect(await balanceOnCard(card.chip)).toBe(1_400);
    expect((await get(payment.id))!.status).toBe('PROCESSING');
    // While that session may still answer, the merchant cannot cancel and no other session may pay.
    expect((await merchant.request<{ cancelPayment: { userErrors: Errors } }>(CANCEL, { input: { payment: payment.id, idempotencyKey: 'lost-cancel' } })).cancelPayment.userErrors.map((e) => e.code)).toEqual(['PAYMENT_IN_PROGRESS']);
    await expireSession(world, first.session!.id);
    const retry = await openPay(payment.id);
    const settled = await sessionsOf(app, () => home).agent(card.chip).run(retry.session!);
    expect(settled).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_PAID' });
    expect(await balanceOnCard(card.chip)).toBe(1_400);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_400n);
    expect((await get(payment.id))!.status).toBe('SUCCEEDED');
    expect((await auditOf(world, retry.session!.id)).at(-1)).toMatchObject({ refusal: 'ALREADY_PAID' });
    await ledgerOk();
  });

  it('the card paid but its answer was lost, and the payment is past its expiry before the job cancels it: the holder’s next tap still opens a session and settles it from the card’s log', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(650);
    const first = await openPay(payment.id);
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(first.session!)).rejects.toThrow('connection lost');
    await expireSession(world, first.session!.id);
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(payment.id).id]);
    expect((await get(payment.id))!.status).toBe('PROCESSING');
    // Only a payment still waiting for a card is refused for its expiry: this one the card may have paid.
    const retry = await openPay(payment.id);
    expect(retry.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(retry.session!)).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_PAID' });
    expect((await get(payment.id))!.status).toBe('SUCCEEDED');
    expect(await balanceOnCard(card.chip)).toBe(1_350);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_350n);
    await ledgerOk();
  });

  it('the card paid but its answer was lost: its next balance read proves the purchase (GET TRANSACTION PROVE) and the payment SUCCEEDS once, with its event', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(700);
    const first = await openPay(payment.id);
    const lossy = sessionsOf(brokenRelay(app, 2, 'request'), () => home);
    await expect(lossy.agent(card.chip).run(first.session!)).rejects.toThrow('connection lost');
    await expireSession(world, first.session!.id);
    expect((await get(payment.id))!.status).toBe('PROCESSING');
    // Not a retry of the payment: the holder only reads the balance, twice, the second time with a copy of the card at once.
    const reader = sessionsOf(app, () => home);
    expect((await reader.agent(card.chip).run(await reader.open('BALANCE'))).state).toBe('COMPLETED');
    expect((await get(payment.id))!.status).toBe('SUCCEEDED');
    const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
    const [a, b] = await Promise.all([reader.open('BALANCE'), reader.open('BALANCE')]);
    expect((await Promise.all([reader.agent(card.chip).run(a), reader.agent(copy).run(b)])).map((r) => r.state)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(await balanceOnCard(card.chip)).toBe(1_300);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_300n);
    const events = await world.db.orm.em.fork().execute<{ type: string }[]>(`select type from event_outbox where subject_id = ?`, [payment.id]);
    expect(events.filter((e) => e.type === 'payment.succeeded')).toHaveLength(1);
    // Paying it again is refused: it is paid.
    expect((await openPay(payment.id)).session).toBeNull();
    await ledgerOk();
  });

  it('a card that proves it paid a payment canceled since (CARD_ANSWER_LOST): the value it paid comes back to the holder as a pending load, once, and the card company hears of it', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(500);
    const first = await openPay(payment.id);
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(first.session!)).rejects.toThrow('connection lost');
    await expireSession(world, first.session!.id);
    // What the expiry job does a day later when nobody tapped again.
    await world.db.orm.em.fork().execute(`update payment set status = 'CANCELED', cancel_reason = 'EXPIRED', failure_code = 'CARD_ANSWER_LOST', canceled_at = now() where id = ?`, [Buffer.from(payment.id, 'base64url').toString().split(':')[1]]);
    const reader = sessionsOf(app, () => home);
    expect((await reader.agent(card.chip).run(await reader.open('BALANCE'))).state).toBe('COMPLETED');
    expect((await get(payment.id))!.status).toBe('CANCELED');
    // The chip paid 500 the merchant never got: the ledger follows the chip, and the 500 waits to be written back.
    expect(await balanceOnCard(card.chip)).toBe(1_500);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_500n);
    const pendingLoad = async () => (await app.request<{ card: { pendingLoad: { amount: number } | null } }>(`query($id: ID!) { card(id: $id) { pendingLoad { amount } } }`, { id: card.id })).card.pendingLoad?.amount ?? 0;
    expect(await pendingLoad()).toBe(500);
    const events = await world.db.orm.em.fork().execute<{ type: string; owner_kind: string }[]>(`select type, owner_kind from event_outbox where type = 'card.proved_purchase_returned'`);
    expect(events).toEqual([{ type: 'card.proved_purchase_returned', owner_kind: 'ISSUER' }]);
    // The next tap asks nothing again and returns nothing twice.
    expect((await reader.agent(card.chip).run(await reader.open('BALANCE'))).state).toBe('COMPLETED');
    expect(await pendingLoad()).toBe(500);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_500n);
    await ledgerOk();
  });

  it('a proof the host cannot check (the claim’s key version is retired) does not lock the card out: the session goes on, the proof is audited', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(300);
    const first = await openPay(payment.id);
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(first.session!)).rejects.toThrow('connection lost');
    await expireSession(world, first.session!.id);
    // The card company retired the key version the claim was made under.
    await world.db.orm.em.fork().execute(`update card_session set context = jsonb_set(context, '{purchase,keyVersion}', '99') where id = ?`, [Buffer.from(first.session!.id, 'base64url').toString().split(':')[1]]);
    const reader = sessionsOf(app, () => home);
    for (let i = 0; i < 2; i++) expect((await reader.agent(card.chip).run(await reader.open('BALANCE'))).state).toBe('COMPLETED');
    expect((await get(payment.id))!.status).toBe('PROCESSING');
    expect(await purseBalance(world, card.chip.asn)).toBe(2_000n);
    expect((await auditOf(world, first.session!.id)).at(-1)).toEqual({ step: 'proved', outcome: 'REFUSED', refusal: null });
    await ledgerOk();
  });

  it('a card that cannot pay is refused; after three refused attempts the payment FAILED with the reason', async () => {
    const card = await loadedCard(100);
    const payment = await newPayment(500);
    for (let i = 0; i < 3; i++) expect((await pay(payment.id, card.chip)).refusal).toBe('INSUFFICIENT_BALANCE');
    expect(await get(payment.id)).toMatchObject({ status: 'FAILED', failureCode: 'INSUFFICIENT_BALANCE' });
    expect((await openPay(payment.id, till, merchant)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    // Sessions that never reached a card do not count: junk from a reader cannot make a payment fail.
    const other = await newPayment(500);
    for (let i = 0; i < 4; i++) {
      const opened = await openPay(other.id);
      await app.request(`mutation($input: CardSessionMessageInput!) { cardSessionMessage(input: $input) { userErrors { code } } }`, { input: { session: opened.session!.id, seq: 0, body: '{}', signature: 'AAAA' } });
    }
    expect((await get(other.id))!.status).toBe('REQUIRES_CARD');
  });
});

describe('idempotency', () => {
  it('20 concurrent createPayment calls with one key make one payment; a retry gets the same answer; another request with the key is refused', async () => {
    const input = { amount: 900, currency: 'CNY', orderReference: 'order-idem', idempotencyKey: 'idem-create' };
    const answers = await Promise.allSettled(Array.from({ length: 20 }, () => merchant.request<{ createPayment: { payment: Payment } }>(CREATE, { input })));
    const ids = new Set(answers.filter((a) => a.status === 'fulfilled').map((a) => (a as PromiseFulfilledResult<{ createPayment: { payment: Payment } }>).value.createPayment.payment.id));
    expect(ids.size).toBe(1);
    for (const a of answers) if (a.status === 'rejected') expect(String((a.reason as { code?: string }).code)).toBe('IDEMPOTENCY_CONFLICT');
    const [{ n }] = await world.db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from payment where order_reference = 'order-idem'`);
    expect(n).toBe(1);
    expect((await merchant.request<{ createPayment: { payment: Payment } }>(CREATE, { input })).createPayment.payment.id).toBe([...ids][0]);
    await expect(merchant.request(CREATE, { input: { ...input, amount: 901 } })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('a refund retried with its key refunds once', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(800);
    await pay(payment.id, card.chip);
    const input = { payment: payment.id, amount: 300, idempotencyKey: 'idem-refund' };
    const [a, b] = await Promise.allSettled([merchant.request(REFUND, { input }), merchant.request(REFUND, { input })]);
    expect([a, b].some((r) => r.status === 'fulfilled')).toBe(true);
    await merchant.request(REFUND, { input });
    expect((await get(payment.id))!.refundedAmount.amount).toBe(300);
  });
});

describe('listing', () => {
  it('a merchant lists its own payments, newest first, filtered by status and order', async () => {
    const page = await merchant.request<{ payments: { edges: { node: { id: string; status: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } }>(
      `query($filter: PaymentFilterInput) { payments(first: 2, filter: $filter) { edges { node { id status } } pageInfo { hasNextPage endCursor } } }`,
      { filter: { status: ['SUCCEEDED'] } },
    );
    expect(page.payments.edges).toHaveLength(2);
    expect(page.payments.edges.every((e) => e.node.status === 'SUCCEEDED')).toBe(true);
    expect(page.payments.pageInfo.hasNextPage).toBe(true);
    const theirs = await otherMerchant.request<{ payments: { edges: unknown[] } }>(`{ payments(first: 50) { edges { node { id } } } }`);
    expect(theirs.payments.edges).toEqual([]);
  });
});
