/**
 * The expiry job (`expirePayments`) and the merchant's cancel, at their edges: what a merchant and a
 * holder would see if the job canceled too early, too late or too little, or if a cancel refused
 * with the wrong reason. Written for the mutation run of `cancelPayment` and `expirePayments`
 * (docs/testing.md, payments). The job is called with the instant it runs at, so the tests name
 * exact instants; every test leaves no payment waiting, so the next one's counts are its own.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { expirePayments } from '../src/payments/payments.service.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, brokenRelay, createPaymentAs, expireSession, issueCard, OPEN, paymentParties, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

let merchant: OneCardClient;
let otherMerchant: OneCardClient;
let issuer: OneCardClient;
let counter: TestReader;
let app: ReturnType<typeof bearerClient>;
let home: TestReader;
let holderId: string;

// Parties only: no payment is made in a hook (mutation testing would count the payments code it
// runs as run by every test; docs/testing.md).
beforeAll(async () => {
  ({ merchant, issuer, counter, holderId, app, home } = await paymentParties(world, { tag: 'expiry', merchantName: 'Expiry Dumplings' }));
  otherMerchant = await apiClient(world, 'MERCHANT', (await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Expiry Noodles' })).id, ['payments:write', 'payments:read']);
});

type Errors = { code: string; field: string[] | null; message: string }[];
type Payment = { status: string; cancelReason: string | null; failureCode: string | null };
const PAYMENT = 'status cancelReason failureCode';
const CANCEL = `mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { payment { ${PAYMENT} } userErrors { code field message } } }`;

let orders = 0;
const newPayment = (amount = 300) => createPaymentAs(merchant, amount, `expiry-order-${++orders}`);

const get = async (id: string) => (await merchant.request<{ payment: Payment }>(`query($id: ID!) { payment(id: $id) { ${PAYMENT} } }`, { id })).payment;
const cancel = async (id: string) => (await merchant.request<{ cancelPayment: { payment: Payment | null; userErrors: Errors } }>(CANCEL, { input: { payment: id, idempotencyKey: `expiry-cancel-${id}-${++orders}` } })).cancelPayment;
const expiresAt = (id: string, at: Date) => world.db.orm.em.fork().execute(`update payment set expires_at = ? where id = ?`, [at, fromGlobalId(id, 'Payment').id]);
const expire = (now: Date) => expirePayments(world.db.orm.em.fork(), now);
const at = (base: Date, ms: number) => new Date(+base + ms);
const DAY = 24 * 3_600_000;

/** A registered card of the holder's with `balance` loaded at the counter. */
async function loadedCard(balance: number) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623199000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const atCounter = sessionsOf(issuer, () => counter);
  expect((await atCounter.agent(chip).run(await atCounter.open('LOAD', balance))).state).toBe('COMPLETED');
  return chip;
}

/** A payment the card may have paid: the session claimed it, MAC1 left the host, no answer came back. */
async function lostAnswer(): Promise<{ payment: string; session: string }> {
  const chip = await loadedCard(2_000);
  const payment = await newPayment(600);
  const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(chip).run(opened.openCardSession.session)).rejects.toThrow('connection lost');
  expect((await get(payment)).status).toBe('PROCESSING');
  return { payment, session: opened.openCardSession.session.id };
}

describe('the expiry job cancels a payment waiting for a card from its expiry instant on, not before', () => {
  it('past and at its expiry: CANCELED, EXPIRED, no failure code, counted; a millisecond before: still waiting, until the job runs again', async () => {
    // An hour from now, in whole milliseconds: no other payment of this file expires by then.
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);
    const [past, exactly, justBefore] = [await newPayment(), await newPayment(), await newPayment()];
    await expiresAt(past, at(t, -1_000));
    await expiresAt(exactly, t);
    await expiresAt(justBefore, at(t, 1));

    expect(await expire(at(t, -1_001))).toBe(0);
    expect((await get(past)).status).toBe('REQUIRES_CARD');

    expect(await expire(t)).toBe(2);
    for (const id of [past, exactly]) expect(await get(id)).toEqual({ status: 'CANCELED', cancelReason: 'EXPIRED', failureCode: null });
    expect(await get(justBefore)).toEqual({ status: 'REQUIRES_CARD', cancelReason: null, failureCode: null });

    expect(await expire(at(t, 1))).toBe(1);
    expect(await get(justBefore)).toEqual({ status: 'CANCELED', cancelReason: 'EXPIRED', failureCode: null });
    // Nothing left to cancel: the job counts nothing twice.
    expect(await expire(at(t, 1))).toBe(0);
  });

  it('more expired payments than one batch (50): one run cancels every one of them and counts each once', async () => {
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 3_600_000);
    const ids: string[] = [];
    for (let batch = 0; batch < 6; batch++) ids.push(...(await Promise.all(Array.from({ length: 20 }, () => newPayment()))));
    for (const id of ids) await expiresAt(id, at(t, -1_000));
    expect(await expire(t)).toBe(120);
    const statuses = await world.db.orm.em.fork().execute<{ status: string; n: string }[]>(`select status, count(*)::text as n from payment where id in (${ids.map(() => '?').join(', ')}) group by status`, ids.map((id) => fromGlobalId(id, 'Payment').id));
    expect(statuses).toEqual([{ status: 'CANCELED', n: '120' }]);
  });
});

describe('a payment the card may have paid (its answer lost)', () => {
  it('the merchant is told why it cannot cancel: a card paying right now, then a card that may have paid; the job gives it a day past its expiry to be settled, then cancels it as CARD_ANSWER_LOST', async () => {
    const { payment, session } = await lostAnswer();
    // The session may still answer: the merchant waits a moment.
    expect(await cancel(payment)).toEqual({ payment: null, userErrors: [{ code: 'PAYMENT_IN_PROGRESS', field: ['input', 'payment'], message: 'a card is paying it right now; try again in a moment' }] });
    await expireSession(world, session);
    // The session is over; the card may have paid: the holder's next tap settles it (or it expires).
    expect(await cancel(payment)).toEqual({
      payment: null,
      userErrors: [{ code: 'PAYMENT_IN_PROGRESS', field: ['input', 'payment'], message: 'a card may have paid it (its answer was lost); the holder’s next tap settles it, or it expires' }],
    });
    expect((await get(payment)).status).toBe('PROCESSING');

    const expiry = new Date(Math.floor(Date.now() / 1000) * 1000 - 1_000);
    await expiresAt(payment, expiry);
    expect(await expire(at(expiry, 1_000))).toBe(0);
    // A millisecond short of a day past its expiry: the holder may still tap.
    expect(await expire(at(expiry, DAY - 1))).toBe(0);
    expect(await get(payment)).toEqual({ status: 'PROCESSING', cancelReason: null, failureCode: null });
    // A day past: given up, marked so that the card's next session returns what it paid.
    expect(await expire(at(expiry, DAY))).toBe(1);
    expect(await get(payment)).toEqual({ status: 'CANCELED', cancelReason: 'EXPIRED', failureCode: 'CARD_ANSWER_LOST' });
  });
});

describe('the merchant cancels only a payment still waiting', () => {
  it('another merchant’s payment is not found (named by the id asked for), and stays waiting', async () => {
    const theirs = await newPayment();
    const uuid = fromGlobalId(theirs, 'Payment').id;
    const answer = (await otherMerchant.request<{ cancelPayment: { payment: Payment | null; userErrors: Errors } }>(CANCEL, { input: { payment: theirs, idempotencyKey: `expiry-foreign-${uuid}` } })).cancelPayment;
    expect(answer).toEqual({ payment: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'payment'], message: `no payment ${uuid}` }] });
    expect(await get(theirs)).toEqual({ status: 'REQUIRES_CARD', cancelReason: null, failureCode: null });
    // Its own merchant cancels it (no payment of this file left waiting).
    expect((await cancel(theirs)).userErrors).toEqual([]);
  });

  it('one canceled already, or failed, is refused with its state and stays as it was; one paid is refused with what to do instead', async () => {
    const once = await newPayment();
    expect(await cancel(once)).toEqual({ payment: { status: 'CANCELED', cancelReason: 'MERCHANT', failureCode: null }, userErrors: [] });
    expect(await cancel(once)).toEqual({ payment: null, userErrors: [{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'the payment is CANCELED' }] });
    expect(await get(once)).toEqual({ status: 'CANCELED', cancelReason: 'MERCHANT', failureCode: null });

    // Three attempts refused by a card that cannot pay: FAILED.
    const poor = await loadedCard(100);
    const failed = await newPayment(500);
    for (let i = 0; i < 3; i++) {
      const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: failed } });
      expect((await sessionsOf(app, () => home).agent(poor, home).run(opened.openCardSession.session)).refusal).toBe('INSUFFICIENT_BALANCE');
    }
    expect(await cancel(failed)).toEqual({ payment: null, userErrors: [{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'the payment is FAILED' }] });
    expect(await get(failed)).toEqual({ status: 'FAILED', cancelReason: null, failureCode: 'INSUFFICIENT_BALANCE' });

    const chip = await loadedCard(1_000);
    const paid = await newPayment(400);
    const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: paid } });
    expect((await sessionsOf(app, () => home).agent(chip, home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
    expect(await cancel(paid)).toEqual({ payment: null, userErrors: [{ code: 'INVALID_PAYMENT_STATE', field: ['input', 'payment'], message: 'the payment succeeded: refund it instead' }] });
    expect((await get(paid)).status).toBe('SUCCEEDED');
  });
});

describe('lost answers do not hold up the expiry of other payments', () => {
  it('more than a batch (50) of payments the card may have paid, in their day of grace, and one expired after them waiting for a card: the job cancels that one now, and the others a day past their expiry', async () => {
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 + 3 * 3_600_000);
    // 51 payments a card may have paid, as the one made for real (its claim and its session, over).
    const real = await lostAnswer();
    await expireSession(world, real.session);
    const lost = [real.payment, ...(await Promise.all(Array.from({ length: 50 }, () => newPayment())))];
    const uuids = lost.map((id) => fromGlobalId(id, 'Payment').id);
    await world.db.orm.em.fork().execute(
      `update payment p set status = 'PROCESSING', card_claim = r.card_claim, card_session_id = r.card_session_id, expires_at = ?
         from payment r where r.id = ? and p.id in (${uuids.map(() => '?').join(', ')})`,
      [at(t, -2_000), uuids[0], ...uuids],
    );
    const waiting = await newPayment();
    await expiresAt(waiting, at(t, -1_000));

    expect(await expire(t)).toBe(1);
    expect(await get(waiting)).toEqual({ status: 'CANCELED', cancelReason: 'EXPIRED', failureCode: null });
    for (const id of [lost[0]!, lost[50]!]) expect((await get(id)).status).toBe('PROCESSING');

    expect(await expire(at(t, DAY - 2_000))).toBe(51);
    for (const id of [lost[0]!, lost[50]!]) expect(await get(id)).toEqual({ status: 'CANCELED', cancelReason: 'EXPIRED', failureCode: 'CARD_ANSWER_LOST' });
  });
});
