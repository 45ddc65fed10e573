/**
 * What each signed gateway event makes of a top-up, over HTTP (issue 15, the topups survivors):
 * a failed payment's decline code and message, a cancel, an intent still processing; how an event
 * finds its top-up (metadata, or the intent id the top-up recorded), and what it does when it finds
 * none, finds another intent's top-up, or is of a kind we do not handle; a duplicate; a body that is
 * not an event; a server with no webhook secret. nock stands in for the outside gateway only.
 */
import { randomUUID } from 'node:crypto';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import type { PaymentIntent } from '../src/topups/gateway/gateway-client.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { useMockedGateway } from './support/gateway-mock.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';
import { testCardNumber } from './support/card-sessions.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_events';
const WEBHOOK_SECRET = 'whsec_events_0123456789';

let db: TestDatabase;
let server: TestServer;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let companyId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm, { GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET });
  const em = db.orm.em.fork();
  companyId = (await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Shenzhen Tong' })).cardCompany.id;
  holderId = (await createCardholder(em, { username: 'zhou', password: 'zhou password 1', displayName: 'Zhou' })).id;
  const redirectUri = 'http://127.0.0.1:8797/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  app = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username: 'zhou', password: 'zhou password 1', scope: 'card:read card:topup' }));
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});
useMockedGateway();

let cards = 0;
async function newCard(): Promise<string> {
  const row = await registerCard(db.orm.em.fork(), companyId, { cardNumber: testCardNumber('623188000000'), asn: `58188000000000${String(++cards).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  return toGlobalId('Card', row.id);
}

const TOP_UP = `id status failureCode failureMessage paidAt history { from to cause }`;
type TopUp = { id: string; status: string; failureCode: string | null; failureMessage: string | null; paidAt: string | null; history: { from: string | null; to: string; cause: string }[] };
const get = async (id: string) => (await app.request<{ topUp: TopUp }>(`query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`, { id })).topUp;
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/** A 1,000-fen top-up awaiting payment at the (nock) gateway, and the intent the gateway made for it. */
async function awaiting(key: string): Promise<{ topUp: TopUp; pi: PaymentIntent }> {
  let pi!: PaymentIntent;
  nock(GATEWAY)
    .post('/v1/payment_intents')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      pi = { id: `pi_events_${key}`, object: 'payment_intent', amount: 1_000, currency: 'cny', status: 'requires_payment_method', client_secret: `pi_events_${key}_secret`, metadata: { topUpId: form.get('metadata[topUpId]')! }, payment_method: null, last_payment_error: null, latest_charge: null, created: Math.floor(Date.now() / 1000) };
      return [200, pi];
    });
  const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`, { input: { card: await newCard(), amount: 1_000, idempotencyKey: key } });
  expect(made.createTopUp.userErrors).toEqual([]);
  expect(made.createTopUp.topUp.status).toBe('AWAITING_PAYMENT');
  return { topUp: made.createTopUp.topUp, pi };
}

let events = 0;
async function send(type: string, object: unknown, id = `evt_events_${++events}`) {
  const body = JSON.stringify({ id, object: 'event', type, created: Math.floor(Date.now() / 1000), data: { object } });
  return { id, ...(await post(body)) };
}
async function post(body: string, url = server.url) {
  const res = await fetch(`${url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function outcomeOf(eventId: string): Promise<string | undefined> {
  const [row] = await db.orm.em.fork().execute<{ outcome: string }[]>(`select outcome from gateway_event where id = ?`, [eventId]);
  return row?.outcome;
}
async function outboxTypes(topUpGlobalId: string): Promise<string[]> {
  const rows = await db.orm.em.fork().execute<{ type: string }[]>(`select type from event_outbox where subject_id = ? order by created_at, id`, [topUpGlobalId]);
  return rows.map((r) => r.type);
}
/** What a ledger entry says and moves: its description, metadata, the entry it reverses (by key), and its postings by account code. */
async function booked(entryKey: string) {
  const em = db.orm.em.fork();
  const [entry] = await em.execute<{ id: string; description: string; metadata: Record<string, unknown>; reverses: string | null }[]>(
    `select e.id, e.description, e.metadata, r.entry_key as reverses from journal_entry e left join journal_entry r on r.id = e.reverses_id where e.entry_key = ?`,
    [entryKey],
  );
  if (!entry) return null;
  const postings = await em.execute<{ code: string; amount: number }[]>(`select a.code, p.amount::int as amount from posting p join ledger_account a on a.id = p.account_id where p.entry_id = ? order by p.amount`, [entry.id]);
  return { description: entry.description, metadata: entry.metadata, reverses: entry.reverses, postings };
}
/** The clearing items that mirror a ledger entry (what settlement nets and pays out). */
const clearingItems = (entryKey: string) =>
  db.orm.em.fork().execute(`select kind, participant_kind, participant_id::text, card_company_id::text, amount::int, btrim(currency) as currency, reference, gateway_reference from clearing_item where entry_key = ?`, [entryKey]);
/** What the card company is told about a top-up, in order. */
const outbox = (topUpGlobalId: string) => db.orm.em.fork().execute(`select type, owner_kind, owner_id::text, payload from event_outbox where subject_id = ? order by id`, [topUpGlobalId]);
const topUpRow = async (topUpGlobalId: string) =>
  (await db.orm.em.fork().execute<{ card_id: string; paid_at: Date | null; refunded_at: Date | null; refund_attempt: string | null; gateway_refund_id: string | null }[]>(`select card_id::text, paid_at, refunded_at, refund_attempt, gateway_refund_id from top_up where id = ?`, [uuidOf(topUpGlobalId)]))[0]!;
const PENDING = () => `card-company.${companyId}.pending-loads.CNY`;
const CLEARING = 'gateway.clearing.CNY';
const companyItem = () => ({ participant_kind: 'CARD_COMPANY', participant_id: companyId, card_company_id: companyId, amount: 1000, currency: 'CNY' });
const told = (type: string, topUpGlobalId: string, cardId: string, status: string) => ({ type, owner_kind: 'ISSUER', owner_id: companyId, payload: { topUp: topUpGlobalId, card: toGlobalId('Card', cardId), amount: 1000, currency: 'CNY', status } });

async function entriesOf(topUpUuid: string): Promise<number> {
  const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where metadata->>'topUp' = ?`, [topUpUuid]);
  return row!.n;
}

describe('what a payment-intent event makes of a top-up awaiting payment', () => {
  it('a failed payment: FAILED with the decline code and the gateway’s message, the event named in the history, the card company told', async () => {
    const { topUp, pi } = await awaiting('declined');
    const sent = await send('payment_intent.payment_failed', { ...pi, last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' } });
    expect(sent).toMatchObject({ status: 200, body: { received: true, duplicate: false, outcome: 'applied' } });
    expect(await get(topUp.id)).toMatchObject({ status: 'FAILED', failureCode: 'insufficient_funds', failureMessage: 'Your card has insufficient funds.', paidAt: null });
    expect((await get(topUp.id)).history.at(-1)).toEqual({ from: 'AWAITING_PAYMENT', to: 'FAILED', cause: `gateway event ${sent.id}` });
    expect(await outboxTypes(topUp.id)).toEqual(['topup.failed']);
    expect(await entriesOf(uuidOf(topUp.id))).toBe(0);
  });

  it('a failed payment without a decline code: its error code is the failure code', async () => {
    const { topUp, pi } = await awaiting('expired-card');
    await send('payment_intent.payment_failed', { ...pi, last_payment_error: { code: 'expired_card', message: 'Your card has expired.' } });
    expect(await get(topUp.id)).toMatchObject({ status: 'FAILED', failureCode: 'expired_card', failureMessage: 'Your card has expired.' });
  });

  it('a failed payment with neither a decline code nor an error code: payment_failed', async () => {
    const { topUp, pi } = await awaiting('no-code');
    await send('payment_intent.payment_failed', { ...pi, last_payment_error: { message: 'Something went wrong.' } });
    expect(await get(topUp.id)).toMatchObject({ status: 'FAILED', failureCode: 'payment_failed', failureMessage: 'Something went wrong.' });
  });

  it('a canceled intent: CANCELED, nothing booked, the card company told', async () => {
    const { topUp, pi } = await awaiting('canceled');
    const sent = await send('payment_intent.canceled', { ...pi, status: 'canceled' });
    expect(sent.body).toMatchObject({ outcome: 'applied' });
    expect(await get(topUp.id)).toMatchObject({ status: 'CANCELED', failureCode: null, paidAt: null });
    expect(await outboxTypes(topUp.id)).toEqual(['topup.canceled']);
    expect(await entriesOf(uuidOf(topUp.id))).toBe(0);
  });

  it('an intent the gateway answers canceled to the create call itself: CANCELED straight from CREATED, nothing booked, the card company told', async () => {
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(async (req: Request) => {
        const form = new URLSearchParams(await req.text());
        return [200, { id: 'pi_events_canceled_at_once', object: 'payment_intent', amount: 1_000, currency: 'cny', status: 'canceled', client_secret: 'pi_events_canceled_at_once_secret', metadata: { topUpId: form.get('metadata[topUpId]')! }, payment_method: null, last_payment_error: null, latest_charge: null, created: Math.floor(Date.now() / 1000) }];
      });
    const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`, { input: { card: await newCard(), amount: 1_000, idempotencyKey: 'canceled-at-once' } });
    expect(made.createTopUp.userErrors).toEqual([]);
    expect(made.createTopUp.topUp).toMatchObject({ status: 'CANCELED', paidAt: null, history: [{ from: null, to: 'CREATED', cause: 'create' }, { from: 'CREATED', to: 'CANCELED', cause: 'create' }] });
    expect(await outboxTypes(made.createTopUp.topUp.id)).toEqual(['topup.canceled']);
    expect(await entriesOf(uuidOf(made.createTopUp.topUp.id))).toBe(0);
  });

  it.each(['processing', 'requires_confirmation', 'requires_payment_method'] as const)('an intent %s (no error): still AWAITING_PAYMENT, no history, stale', async (status) => {
    const { topUp, pi } = await awaiting(`still-${status}`);
    const sent = await send('payment_intent.processing', { ...pi, status });
    expect(sent.body).toMatchObject({ outcome: 'stale' });
    expect(await get(topUp.id)).toEqual(topUp);
  });

  it('a succeeded intent books the payment under the gateway’s charge id', async () => {
    const { topUp, pi } = await awaiting('charge-id');
    await send('payment_intent.succeeded', { ...pi, status: 'succeeded', latest_charge: 'ch_events_1' });
    expect((await get(topUp.id)).status).toBe('PAID');
    const [item] = await db.orm.em.fork().execute<{ gateway_reference: string; amount: string }[]>(`select gateway_reference, amount::text as amount from clearing_item where entry_key = ?`, [`top-up:${uuidOf(topUp.id)}:paid`]);
    expect(item).toEqual({ gateway_reference: 'ch_events_1', amount: '1000' });
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });
});

describe('what the move to PAID books, exactly (what the card company, settlement and reconciliation read)', () => {
  it('the value goes from the gateway’s clearing to the card company’s pending loads under the top-up’s key, one clearing item under the intent when no charge is named, topup.paid with the card, amount and status', async () => {
    const { topUp, pi } = await awaiting('books-exactly');
    await send('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    const id = uuidOf(topUp.id);
    const row = await topUpRow(topUp.id);
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(row.paid_at).not.toBeNull();
    expect(await booked(`top-up:${id}:paid`)).toEqual({
      description: expect.stringMatching(/^top-up of card \*{4} \d{4} paid at the gateway$/),
      metadata: { kind: 'TOP_UP_PAID', topUp: id, intent: pi.id },
      reverses: null,
      postings: [{ code: PENDING(), amount: -1000 }, { code: CLEARING, amount: 1000 }],
    });
    expect(await clearingItems(`top-up:${id}:paid`)).toEqual([{ kind: 'TOP_UP', ...companyItem(), reference: id, gateway_reference: pi.id }]);
    expect(await outbox(topUp.id)).toEqual([told('topup.paid', topUp.id, row.card_id, 'PAID')]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a failed payment books nothing and tells the card company topup.failed with the card, amount and status', async () => {
    const { topUp, pi } = await awaiting('failed-told');
    await send('payment_intent.payment_failed', { ...pi, status: 'requires_payment_method', last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' } });
    expect((await get(topUp.id)).status).toBe('FAILED');
    expect(await booked(`top-up:${uuidOf(topUp.id)}:paid`)).toBeNull();
    expect(await outbox(topUp.id)).toEqual([told('topup.failed', topUp.id, (await topUpRow(topUp.id)).card_id, 'FAILED')]);
  });
});

describe('how an event finds its top-up', () => {
  it('without the top-up in its metadata, by the intent id the top-up recorded', async () => {
    const { topUp, pi } = await awaiting('by-intent-id');
    const sent = await send('payment_intent.succeeded', { ...pi, status: 'succeeded', metadata: {} });
    expect(sent.body).toMatchObject({ outcome: 'applied' });
    expect((await get(topUp.id)).status).toBe('PAID');
  });

  it.each([
    ['an intent nobody recorded, with no metadata', { metadata: {} }],
    ['metadata naming a top-up that does not exist', { metadata: { topUpId: randomUUID() } }],
    ['metadata naming something that is not a top-up id', { metadata: { topUpId: 'not-a-top-up' } }],
  ])('%s: answered 200 and recorded unknown, nothing changes', async (_name, over) => {
    const { topUp, pi } = await awaiting(`unknown-${_name.length}`);
    const sent = await send('payment_intent.succeeded', { ...pi, id: `pi_nobody_${_name.length}`, status: 'succeeded', ...over });
    expect(sent).toMatchObject({ status: 200, body: { received: true, duplicate: false, outcome: 'unknown' } });
    expect(await outcomeOf(sent.id)).toBe('unknown');
    expect(await get(topUp.id)).toEqual(topUp);
  });

  it('another intent than the one the top-up recorded (an older attempt): stale, nothing booked', async () => {
    const { topUp, pi } = await awaiting('other-intent');
    const sent = await send('payment_intent.succeeded', { ...pi, id: 'pi_events_someone_else', status: 'succeeded' });
    expect(sent.body).toMatchObject({ outcome: 'stale' });
    expect(await get(topUp.id)).toEqual(topUp);
    expect(await entriesOf(uuidOf(topUp.id))).toBe(0);
  });

  it('an event of a kind we do not handle is recorded as ignored', async () => {
    const { topUp, pi } = await awaiting('ignored');
    const sent = await send('charge.succeeded', { ...pi, status: 'succeeded' });
    expect(sent).toMatchObject({ status: 200, body: { duplicate: false, outcome: 'ignored' } });
    expect(await outcomeOf(sent.id)).toBe('ignored');
    expect(await get(topUp.id)).toEqual(topUp);
  });

  it('an event sent again is a duplicate: answered, and its first outcome kept', async () => {
    const { pi } = await awaiting('duplicate');
    const first = await send('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    expect(first.body).toMatchObject({ duplicate: false, outcome: 'applied' });
    const again = await send('payment_intent.succeeded', { ...pi, status: 'succeeded' }, first.id);
    expect(again).toMatchObject({ status: 200, body: { received: true, duplicate: true, outcome: 'duplicate' } });
    expect(await outcomeOf(first.id)).toBe('applied');
  });
});

describe('what a refund event makes of a top-up', () => {
  const REFUND = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`;

  async function pendingLoads(): Promise<bigint> {
    const [row] = await db.orm.em.fork().execute<{ balance: string }[]>(`select balance::text as balance from ledger_account where code = ?`, [`card-company.${companyId}.pending-loads.CNY`]);
    return BigInt(row?.balance ?? 0);
  }

  /** A PAID 1,000-fen top-up of a card reported lost, so that its holder's app may refund it. */
  async function paidOfLostCard(key: string) {
    // Its own key space: 'canceled' is also a payment-intent test's key, and a key names one request.
    const { topUp, pi } = await awaiting(`paid-${key}`);
    await send('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    await db.orm.em.fork().execute(`update card set status = 'LOST' where id = (select card_id from top_up where id = ?)`, [uuidOf(topUp.id)]);
    return { topUp: await get(topUp.id), pi };
  }

  /** The same, REFUNDING: the refund was asked for and the gateway did not answer. */
  async function refunding(key: string) {
    const { topUp, pi } = await paidOfLostCard(key);
    nock(GATEWAY).post('/v1/refunds').times(3).reply(503, { error: { type: 'api_error', message: 'down' } });
    const asked = await app.request<{ refundTopUp: { topUp: TopUp; userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: `refund-${key}` } });
    expect(asked.refundTopUp.userErrors.map((e) => e.code)).toEqual(['GATEWAY_UNAVAILABLE']);
    const [row] = await db.orm.em.fork().execute<{ refund_attempt: string }[]>(`select refund_attempt from top_up where id = ?`, [uuidOf(topUp.id)]);
    return { topUp: asked.refundTopUp.topUp, pi, attempt: row!.refund_attempt };
  }

  const refundObject = (pi: PaymentIntent, topUp: TopUp, status: string, metadata: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    id: `re_events_${++events}`, object: 'refund', amount: 1_000, currency: 'cny', payment_intent: pi.id, status, metadata: { topUpId: uuidOf(topUp.id), ...metadata }, created: 0, ...extra,
  });

  it('a refund the gateway canceled, with no reason: PAID again with refund_failed, the value back in pending loads', async () => {
    const { topUp, pi, attempt } = await refunding('refund-canceled');
    const before = await pendingLoads();
    const sent = await send('refund.updated', refundObject(pi, topUp, 'canceled', { attempt }));
    expect(sent.body).toMatchObject({ outcome: 'applied' });
    expect(await get(topUp.id)).toMatchObject({ status: 'PAID', failureCode: 'refund_failed', failureMessage: 'the gateway did not complete the refund' });
    expect(await pendingLoads()).toBe(before + 1_000n);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund still pending at the gateway changes nothing', async () => {
    const { topUp, pi, attempt } = await refunding('pending');
    const sent = await send('refund.updated', refundObject(pi, topUp, 'pending', { attempt }));
    expect(sent.body).toMatchObject({ outcome: 'stale' });
    expect((await get(topUp.id)).status).toBe('REFUNDING');
  });

  it('a refund of another attempt that succeeded while this one is on its way: a conflict for a person, nothing changes', async () => {
    const { topUp, pi } = await refunding('other-attempt');
    const before = await pendingLoads();
    const sent = await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', { attempt: randomUUID() }));
    expect(sent).toMatchObject({ status: 200, body: { outcome: 'conflict' } });
    expect(await outcomeOf(sent.id)).toBe('conflict');
    expect((await get(topUp.id)).status).toBe('REFUNDING');
    expect(await pendingLoads()).toBe(before);
  });

  it('a refund the gateway made of a PAID top-up (one we took for refused): booked, REFUNDED, the value out of pending loads', async () => {
    const { topUp, pi } = await paidOfLostCard('made-anyway');
    const before = await pendingLoads();
    const sent = await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', {}));
    expect(sent.body).toMatchObject({ outcome: 'applied' });
    expect((await get(topUp.id)).status).toBe('REFUNDED');
    expect(await pendingLoads()).toBe(before - 1_000n);
    expect(await outboxTypes(topUp.id)).toEqual(['topup.paid', 'topup.refunded']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
    // Told again: nothing more.
    expect((await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', {}))).body).toMatchObject({ outcome: 'stale' });
    expect(await pendingLoads()).toBe(before - 1_000n);
  });

  /** REFUNDING with the refund the gateway answered pending (its id recorded on the top-up). */
  async function pendingAtGateway(key: string) {
    const { topUp, pi } = await paidOfLostCard(key);
    const refundId = `re_events_pending_${key}`;
    nock(GATEWAY)
      .post('/v1/refunds')
      .reply(async (req: Request) => {
        const form = new URLSearchParams(await req.text());
        return [200, { id: refundId, object: 'refund', amount: 1_000, currency: 'cny', payment_intent: pi.id, status: 'pending', metadata: { topUpId: form.get('metadata[topUpId]')!, attempt: form.get('metadata[attempt]')! }, created: 0 }];
      });
    const asked = await app.request<{ refundTopUp: { topUp: TopUp; userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: `refund-${key}` } });
    expect(asked.refundTopUp).toMatchObject({ userErrors: [], topUp: { status: 'REFUNDING' } });
    return { topUp: asked.refundTopUp.topUp, pi, refundId };
  }

  it('a refund the gateway answered pending, then reported done without our metadata: found by the refund id the top-up recorded, REFUNDED once', async () => {
    const { topUp, pi, refundId } = await pendingAtGateway('by-refund-id');
    const before = await pendingLoads();
    const sent = await send('refund.succeeded', { ...refundObject(pi, topUp, 'succeeded', {}), id: refundId, metadata: {} });
    expect(sent.body).toMatchObject({ outcome: 'applied' });
    expect((await get(topUp.id)).history.at(-1)).toEqual({ from: 'REFUNDING', to: 'REFUNDED', cause: `gateway event ${sent.id}` });
    // The value left the pending loads when the refund started, not a second time now.
    expect(await pendingLoads()).toBe(before);
    expect(await outboxTypes(topUp.id)).toEqual(['topup.paid', 'topup.refunded']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund without our metadata that no top-up recorded: unknown, nothing changes', async () => {
    const { topUp, pi } = await pendingAtGateway('refund-nobody-recorded');
    const sent = await send('refund.succeeded', { ...refundObject(pi, topUp, 'succeeded', {}), id: 're_events_nobody', metadata: {} });
    expect(sent.body).toMatchObject({ outcome: 'unknown' });
    expect((await get(topUp.id)).status).toBe('REFUNDING');
  });

  it('another refund than the one the top-up recorded, succeeded: a conflict for a person (money refunded twice), nothing changes', async () => {
    const { topUp, pi } = await pendingAtGateway('another-refund-id');
    const before = await pendingLoads();
    const sent = await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', {}));
    expect(sent.body).toMatchObject({ outcome: 'conflict' });
    expect((await get(topUp.id)).status).toBe('REFUNDING');
    expect(await pendingLoads()).toBe(before);
  });

  it('a succeeded refund of a top-up that was never paid: a conflict for a person, nothing booked', async () => {
    const { topUp, pi } = await awaiting('refund-never-paid');
    await send('payment_intent.canceled', { ...pi, status: 'canceled' });
    const before = await pendingLoads();
    const sent = await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', {}));
    expect(sent.body).toMatchObject({ outcome: 'conflict' });
    expect((await get(topUp.id)).status).toBe('CANCELED');
    expect(await pendingLoads()).toBe(before);
    expect(await entriesOf(uuidOf(topUp.id))).toBe(0);
  });

  it('a refund whose metadata names a top-up that does not exist: unknown, recorded as such', async () => {
    const { topUp, pi } = await paidOfLostCard('refund-names-nobody');
    const sent = await send('refund.succeeded', refundObject(pi, topUp, 'succeeded', { topUpId: randomUUID() }));
    expect(sent.body).toMatchObject({ duplicate: false, outcome: 'unknown' });
    expect(await outcomeOf(sent.id)).toBe('unknown');
    expect((await get(topUp.id)).status).toBe('PAID');
  });

  it('a refund made: the value leaves the pending loads for the gateway’s clearing under the attempt’s key, its clearing item carries the gateway’s refund id, REFUNDED with its time and topup.refunded', async () => {
    const { topUp, pi, refundId } = await pendingAtGateway('books-refund');
    const id = uuidOf(topUp.id);
    const started = await topUpRow(topUp.id);
    expect(started.gateway_refund_id).toBe(refundId);
    const key = `top-up:${id}:refund:${started.refund_attempt}`;
    expect(await booked(key)).toEqual({
      description: `refund of top-up ${id} through the gateway`,
      metadata: { kind: 'TOP_UP_REFUND', topUp: id },
      reverses: null,
      postings: [{ code: CLEARING, amount: -1000 }, { code: PENDING(), amount: 1000 }],
    });
    expect(await clearingItems(key)).toEqual([{ kind: 'TOP_UP_REFUND', ...companyItem(), reference: id, gateway_reference: refundId }]);
    expect(started.refunded_at).toBeNull();
    expect((await send('refund.succeeded', { ...refundObject(pi, topUp, 'succeeded', { attempt: started.refund_attempt! }), id: refundId })).body).toMatchObject({ outcome: 'applied' });
    expect((await topUpRow(topUp.id)).refunded_at).not.toBeNull();
    expect(await outbox(topUp.id)).toEqual([told('topup.paid', topUp.id, started.card_id, 'PAID'), told('topup.refunded', topUp.id, started.card_id, 'REFUNDED')]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund the gateway made of a PAID top-up is booked under the gateway’s refund id (the top-up and its clearing item record it)', async () => {
    const { topUp, pi } = await paidOfLostCard('made-anyway-booked');
    const refund = refundObject(pi, topUp, 'succeeded', {});
    expect((await send('refund.succeeded', refund)).body).toMatchObject({ outcome: 'applied' });
    const row = await topUpRow(topUp.id);
    expect(row.gateway_refund_id).toBe(refund.id);
    const key = `top-up:${uuidOf(topUp.id)}:refund:${row.refund_attempt}`;
    expect(await clearingItems(key)).toEqual([{ kind: 'TOP_UP_REFUND', ...companyItem(), reference: uuidOf(topUp.id), gateway_reference: refund.id }]);
    expect((await booked(key))!.postings).toEqual([{ code: CLEARING, amount: -1000 }, { code: PENDING(), amount: 1000 }]);
  });

  it('a refund the gateway canceled is reversed exactly: the reversal names the refund’s entry, a TOP_UP_REFUND_FAILED clearing item under the refund id, PAID again as first paid, told nothing new, the attempt cleared', async () => {
    const { topUp, pi, refundId } = await pendingAtGateway('reversed-exactly');
    const id = uuidOf(topUp.id);
    const started = await topUpRow(topUp.id);
    const key = `top-up:${id}:refund:${started.refund_attempt}`;
    expect((await send('refund.updated', { ...refundObject(pi, topUp, 'canceled', { attempt: started.refund_attempt! }), id: refundId })).body).toMatchObject({ outcome: 'applied' });
    expect(await booked(`${key}:failed`)).toEqual({
      description: `refund of top-up ${id} failed at the gateway`,
      metadata: { kind: 'TOP_UP_REFUND_FAILED', topUp: id },
      reverses: key,
      postings: [{ code: PENDING(), amount: -1000 }, { code: CLEARING, amount: 1000 }],
    });
    expect(await clearingItems(`${key}:failed`)).toEqual([{ kind: 'TOP_UP_REFUND_FAILED', ...companyItem(), reference: id, gateway_reference: refundId }]);
    const after = await topUpRow(topUp.id);
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(after).toMatchObject({ paid_at: started.paid_at, refund_attempt: null, gateway_refund_id: null });
    expect(await outbox(topUp.id)).toEqual([told('topup.paid', topUp.id, started.card_id, 'PAID')]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund of a PAID top-up that did not succeed changes nothing', async () => {
    const { topUp, pi } = await paidOfLostCard('failed-anyway');
    const sent = await send('refund.updated', refundObject(pi, topUp, 'failed', {}));
    expect(sent.body).toMatchObject({ outcome: 'stale' });
    expect((await get(topUp.id)).status).toBe('PAID');
  });
});

describe('what the webhook refuses', () => {
  it.each([
    ['no id', { type: 'payment_intent.succeeded', data: { object: {} } }],
    ['no type', { id: 'evt_x1', data: { object: {} } }],
    ['no data object', { id: 'evt_x2', type: 'payment_intent.succeeded', data: {} }],
    ['a number for its id', { id: 7, type: 'payment_intent.succeeded', data: { object: {} } }],
  ])('a signed body that is not an event (%s): 400, nothing recorded', async (_name, event) => {
    const sent = await post(JSON.stringify(event));
    expect(sent).toEqual({ status: 400, body: { error: 'the body is not a gateway event' } });
    const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from gateway_event where id in ('evt_x1', 'evt_x2', '7')`);
    expect(row!.n).toBe(0);
  });

  it('a bad signature is 400 with the reason', async () => {
    const body = JSON.stringify({ id: 'evt_bad_sig', type: 'payment_intent.succeeded', data: { object: {} } });
    const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader(['whsec_not_ours_000000'], body, Math.floor(Date.now() / 1000)) }, body });
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 400, body: { error: 'signature refused', reason: 'BAD_SIGNATURE' } });
  });

  it('a server with no payment gateway configured answers 503 to any event', async () => {
    const bare = await startTestServer(db.orm, {});
    try {
      const sent = await post(JSON.stringify({ id: 'evt_no_secret', type: 'payment_intent.succeeded', data: { object: {} } }), bare.url);
      expect(sent).toEqual({ status: 503, body: { error: 'no payment gateway is configured' } });
      expect(await outcomeOf('evt_no_secret')).toBeUndefined();
    } finally {
      await bare.close();
    }
  });
});
