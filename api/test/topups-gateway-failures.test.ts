/**
 * The gateway misbehaving, with nock standing in for it (the only mock: the outside gateway):
 * declines, 5xx, time-outs, slow webhooks, a webhook before the create call returns, duplicated
 * and out-of-order events, bad signatures, refunds that fail. The API itself runs over real HTTP.
 */
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { GatewayClient, type PaymentIntent } from '../src/topups/gateway/gateway-client.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { runTopUpJobs } from '../src/topups/topups.jobs.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';
import { useMockedGateway } from './support/gateway-mock.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_nock';
const WEBHOOK_SECRET = 'whsec_nock_0123456789';

let db: TestDatabase;
let server: TestServer;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let companyId: string;
let cards = 0;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm, { GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET, GATEWAY_TIMEOUT_MS: '2000' });
  const em = db.orm.em.fork();
  const [company] = await em.execute<{ id: string }[]>(`select cc.id from card_company cc limit 1`);
  companyId = company?.id ?? (await (await import('../src/tenancy/tenancy.service.js')).createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' })).cardCompany.id;
  holderId = (await createCardholder(em, { username: 'mei', password: 'mei password 1', displayName: 'Mei' })).id;
  const redirectUri = 'http://127.0.0.1:8798/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  app = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username: 'mei', password: 'mei password 1', scope: 'card:read card:topup' }));
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});
useMockedGateway();

async function newCard(): Promise<{ id: string; uuid: string }> {
  const number = `62310000000${String(++cards).padStart(4, '0')}`;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = Number(number[number.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  const row = await registerCard(db.orm.em.fork(), companyId, { cardNumber: number + String((10 - (sum % 10)) % 10), asn: `58100000000000${String(cards).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  return { id: toGlobalId('Card', row.id), uuid: row.id };
}

let intents = 0;
function intent(topUpId: string, status: PaymentIntent['status'], extra: Partial<PaymentIntent> = {}, amount = 1_000): PaymentIntent {
  const id = extra.id ?? `pi_nock_${++intents}`;
  return { id, object: 'payment_intent', amount, currency: 'cny', status, client_secret: `${id}_secret_x`, metadata: { topUpId }, payment_method: null, last_payment_error: null, latest_charge: null, created: Math.floor(Date.now() / 1000), ...extra };
}

const TOP_UP = `id status failureCode history { to cause }`;
const CREATE = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code message } } }`;
type TopUp = { id: string; status: string; failureCode: string | null; history: { to: string; cause: string }[] };
const create = (input: Record<string, unknown>) => app.request<{ createTopUp: { topUp: TopUp | null; userErrors: { code: string; message: string }[] } }>(CREATE, { input });
const get = async (id: string) => (await app.request<{ topUp: TopUp }>(`query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`, { id })).topUp;
const topUpUuid = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/**
 * A nock reply built from the request the API sent (nock 15 hands native fetch's Request to a reply
 * function): its form body and headers in, [status, body] out.
 */
const answer = (fn: (form: URLSearchParams, headers: Headers) => [number, unknown] | Promise<[number, unknown]>) => async (req: Request) => fn(new URLSearchParams(await req.text()), req.headers);
/** The topUpId the API put in its create call's metadata (form-encoded as metadata[topUpId]). */
const topUpIdOf = (form: URLSearchParams) => form.get('metadata[topUpId]')!;

let events = 0;
async function sendEvent(type: string, object: unknown, opts: { id?: string; timestamp?: number; secret?: string } = {}) {
  const body = JSON.stringify({ id: opts.id ?? `evt_nock_${++events}`, object: 'event', type, created: Math.floor(Date.now() / 1000), data: { object } });
  const signature = signatureHeader([opts.secret ?? WEBHOOK_SECRET], body, opts.timestamp ?? Math.floor(Date.now() / 1000));
  const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signature }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function ledgerOk() {
  expect(await checkLedger(db.orm.em.fork())).toEqual([]);
}

async function paidEntries(topUpId: string): Promise<number> {
  const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key = ?`, [`top-up:${topUpId}:paid`]);
  return row!.n;
}

describe('declines and outages at create', () => {
  it('a declined saved card makes the top-up FAILED with the decline code', async () => {
    const card = await newCard();
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(answer((form) => [402, { error: { type: 'card_error', code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.', payment_intent: intent(topUpIdOf(form), 'requires_payment_method', { last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' } }) } }]));
    const made = await create({ card: card.id, amount: 1_000, idempotencyKey: 'decline', paymentMethod: 'pm_card_x' });
    expect(made.createTopUp.userErrors.map((e) => e.code)).toEqual(['PAYMENT_DECLINED']);
    expect(made.createTopUp.topUp).toMatchObject({ status: 'FAILED', failureCode: 'insufficient_funds' });
    await ledgerOk();
  });

  it('a 5xx is retried with the same idempotency key, and the retry’s answer counts', async () => {
    const card = await newCard();
    const keys: string[] = [];
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(
        answer((_form, headers) => {
          keys.push(String(headers.get('idempotency-key')));
          return [503, { error: { type: 'api_error', message: 'down' } }];
        }),
      )
      .post('/v1/payment_intents')
      .reply(
        answer((form, headers) => {
          keys.push(String(headers.get('idempotency-key')));
          return [200, intent(topUpIdOf(form), 'requires_payment_method')];
        }),
      );
    const made = await create({ card: card.id, amount: 1_000, idempotencyKey: 'flaky' });
    expect(made.createTopUp.userErrors).toEqual([]);
    expect(made.createTopUp.topUp!.status).toBe('AWAITING_PAYMENT');
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
  });

  it('a gateway that stays down or times out: the top-up is kept CREATED, the caller told, and the job submits it later', async () => {
    const card = await newCard();
    nock(GATEWAY).post('/v1/payment_intents').times(2).reply(500, { error: { type: 'api_error', message: 'boom' } });
    // The last try gets no answer within GATEWAY_TIMEOUT_MS (2 s: on a loaded machine a webhook the
    // gateway sends before answering, as in the early-webhook test below, can take longer than 200 ms).
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(answer(async (form) => {
        await new Promise((r) => setTimeout(r, 4_000));
        return [200, intent(topUpIdOf(form), 'requires_payment_method')];
      }));
    const made = await create({ card: card.id, amount: 1_000, idempotencyKey: 'down' });
    expect(made.createTopUp.userErrors.map((e) => e.code)).toEqual(['GATEWAY_UNAVAILABLE']);
    expect(made.createTopUp.topUp!.status).toBe('CREATED');
    // The same request again returns the same top-up (and tries the gateway again: an answer
    // GATEWAY_UNAVAILABLE with the top-up still CREATED is not stored as the key's answer).
    nock(GATEWAY).post('/v1/payment_intents').times(3).reply(502, { error: { type: 'api_error', message: 'still down' } });
    const again = await create({ card: card.id, amount: 1_000, idempotencyKey: 'down' });
    expect(again.createTopUp.topUp!.id).toBe(made.createTopUp.topUp!.id);
    // The gateway is back: the job's next round submits it.
    nock(GATEWAY).post('/v1/payment_intents').reply(answer((form) => [200, intent(topUpIdOf(form), 'requires_payment_method')]));
    const gateway = new GatewayClient({ url: GATEWAY, secretKey: SECRET });
    const round = await runTopUpJobs(db.orm.em.fork(), gateway, { now: new Date(Date.now() + 60_000) });
    expect(round.submitted).toBe(1);
    expect((await get(made.createTopUp.topUp!.id)).status).toBe('AWAITING_PAYMENT');
  });
});

describe('webhooks', () => {
  async function awaiting(key: string, amount = 1_000) {
    const card = await newCard();
    let pi!: PaymentIntent;
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(answer((form) => [200, (pi = intent(topUpIdOf(form), 'requires_payment_method', {}, amount))]));
    const made = await create({ card: card.id, amount, idempotencyKey: key });
    expect(made.createTopUp.topUp!.status).toBe('AWAITING_PAYMENT');
    return { topUp: made.createTopUp.topUp!, pi };
  }

  it('a slow webhook: the top-up waits AWAITING_PAYMENT, then the signed event makes it PAID', async () => {
    const { topUp, pi } = await awaiting('slow');
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(topUp.id)).status).toBe('AWAITING_PAYMENT');
    expect(await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' })).toMatchObject({ status: 200, body: { duplicate: false, outcome: 'applied' } });
    expect((await get(topUp.id)).status).toBe('PAID');
  });

  it('the same event three times is handled once: one PAID, one ledger entry', async () => {
    const { topUp, pi } = await awaiting('thrice');
    const event = { id: 'evt_same_three_times' };
    const answers = await Promise.all([1, 2, 3].map(() => sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' }, event)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.filter((a) => a.body.duplicate === true)).toHaveLength(2);
    const after = await get(topUp.id);
    expect(after.history.filter((h) => h.to === 'PAID')).toHaveLength(1);
    expect(await paidEntries(topUpUuid(topUp.id))).toBe(1);
    await ledgerOk();
  });

  it('three different events saying the same payment succeeded, at once: one move to PAID, one ledger entry, one topup.paid for the card company', async () => {
    const { topUp, pi } = await awaiting('three-events');
    const answers = await Promise.all([1, 2, 3].map(() => sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => a.body.outcome).sort()).toEqual(['applied', 'stale', 'stale']);
    const after = await get(topUp.id);
    expect(after.history.filter((h) => h.to === 'PAID')).toHaveLength(1);
    expect(await paidEntries(topUpUuid(topUp.id))).toBe(1);
    const [events] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from event_outbox where type = 'topup.paid' and subject_id = ?`, [topUp.id]);
    expect(events!.n).toBe(1);
    await ledgerOk();
  });

  it('events out of order: a late failure or cancel after success changes nothing', async () => {
    const { topUp, pi } = await awaiting('out-of-order');
    await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    expect((await sendEvent('payment_intent.payment_failed', { ...pi, status: 'requires_payment_method', last_payment_error: { code: 'card_declined', message: 'no' } })).body.outcome).toBe('stale');
    expect((await sendEvent('payment_intent.canceled', { ...pi, status: 'canceled' })).body.outcome).toBe('stale');
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(await paidEntries(topUpUuid(topUp.id))).toBe(1);
  });

  it('a failure first and a success later (the holder tried another card): PAID, the money is not left behind', async () => {
    const { topUp, pi } = await awaiting('fail-then-pay');
    await sendEvent('payment_intent.payment_failed', { ...pi, status: 'requires_payment_method', last_payment_error: { code: 'card_declined', decline_code: 'do_not_honor', message: 'no' } });
    expect((await get(topUp.id)).status).toBe('FAILED');
    await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    expect((await get(topUp.id)).status).toBe('PAID');
  });

  it('the webhook arrives before the create call returns: PAID, and the late answer does not move it back', async () => {
    const card = await newCard();
    nock(GATEWAY)
      .post('/v1/payment_intents')
      .reply(
        answer(async (form) => {
          const pi = intent(topUpIdOf(form), 'requires_payment_method');
          // The gateway's event overtakes its own answer.
          const sent = await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
          expect(sent.body.outcome).toBe('applied');
          return [200, pi];
        }),
      );
    const made = await create({ card: card.id, amount: 1_000, idempotencyKey: 'early-webhook' });
    expect(made.createTopUp.userErrors).toEqual([]);
    expect(made.createTopUp.topUp!.status).toBe('PAID');
    expect(made.createTopUp.topUp!.history.map((h) => h.to)).toEqual(['CREATED', 'PAID']);
  });

  it('refuses a bad signature, a stale timestamp and a body that is not an event, and changes nothing', async () => {
    const { topUp, pi } = await awaiting('bad-signatures');
    const succeeded = { ...pi, status: 'succeeded' };
    expect(await sendEvent('payment_intent.succeeded', succeeded, { secret: 'whsec_someone_else_000' })).toMatchObject({ status: 400, body: { reason: 'BAD_SIGNATURE' } });
    expect(await sendEvent('payment_intent.succeeded', succeeded, { timestamp: Math.floor(Date.now() / 1000) - 301 })).toMatchObject({ status: 400, body: { reason: 'TIMESTAMP_OUT_OF_TOLERANCE' } });
    const unsigned = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(400);
    const notEvent = '{"hello":"world"}';
    const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], notEvent, Math.floor(Date.now() / 1000)) }, body: notEvent });
    expect(res.status).toBe(400);
    expect((await get(topUp.id)).status).toBe('AWAITING_PAYMENT');
  });

  it('a refund the gateway cannot reach is finished by the job; one that fails puts the money back', async () => {
    const { topUp, pi } = await awaiting('refunds', 2_000);
    await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    await db.orm.em.fork().execute(`update card set status = 'LOST' where id = (select card_id from top_up where id = ?)`, [topUpUuid(topUp.id)]);
    const REFUND = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`;
    nock(GATEWAY).post('/v1/refunds').times(3).reply(503, { error: { type: 'api_error', message: 'down' } });
    const asked = await app.request<{ refundTopUp: { topUp: TopUp; userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-while-down' } });
    expect(asked.refundTopUp.userErrors.map((e) => e.code)).toEqual(['GATEWAY_UNAVAILABLE']);
    expect(asked.refundTopUp.topUp.status).toBe('REFUNDING');
    await ledgerOk();
    // The job asks again; the gateway accepts it as pending, then tells us it failed.
    nock(GATEWAY)
      .post('/v1/refunds')
      .reply(answer((form) => [200, { id: 're_nock_1', object: 'refund', amount: 2_000, currency: 'cny', payment_intent: pi.id, status: 'pending', metadata: { topUpId: topUpUuid(topUp.id), attempt: form.get('metadata[attempt]') }, created: 0 }]));
    await runTopUpJobs(db.orm.em.fork(), new GatewayClient({ url: GATEWAY, secretKey: SECRET }), { now: new Date(Date.now() + 120_000) });
    expect((await get(topUp.id)).status).toBe('REFUNDING');
    const [{ refund_attempt: attempt }] = await db.orm.em.fork().execute<{ refund_attempt: string }[]>(`select refund_attempt from top_up where id = ?`, [topUpUuid(topUp.id)]);
    await sendEvent('refund.updated', { id: 're_nock_1', object: 'refund', amount: 2_000, currency: 'cny', payment_intent: pi.id, status: 'failed', failure_reason: 'expired_or_canceled_card', metadata: { topUpId: topUpUuid(topUp.id), attempt }, created: 0 });
    const back = await get(topUp.id);
    expect(back.status).toBe('PAID');
    expect(back.failureCode).toBe('expired_or_canceled_card');
    const [pending] = await db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`card-company.${companyId}.pending-loads.CNY`]);
    expect(BigInt(pending!.balance)).toBeGreaterThanOrEqual(2_000n);
    await ledgerOk();
    // The first answer (GATEWAY_UNAVAILABLE) was not the outcome: a retry with its key answers the refusal.
    const retried = await app.request<{ refundTopUp: { topUp: TopUp; userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-while-down' } });
    expect(retried.refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    expect(retried.refundTopUp.topUp.status).toBe('PAID');
  });

  it('a refund answered GATEWAY_UNAVAILABLE that the job then finishes: a retry with its key answers REFUNDED, not the old GATEWAY_UNAVAILABLE', async () => {
    const { topUp, pi } = await awaiting('refund-finished', 1_800);
    await sendEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    await db.orm.em.fork().execute(`update card set status = 'LOST' where id = (select card_id from top_up where id = ?)`, [topUpUuid(topUp.id)]);
    const REFUND = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`;
    const refund = () => app.request<{ refundTopUp: { topUp: TopUp; userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-finished-by-job' } });
    nock(GATEWAY).post('/v1/refunds').times(3).reply(503, { error: { type: 'api_error', message: 'down' } });
    expect((await refund()).refundTopUp.userErrors.map((e) => e.code)).toEqual(['GATEWAY_UNAVAILABLE']);
    nock(GATEWAY)
      .post('/v1/refunds')
      .reply(answer((form) => [200, { id: 're_nock_2', object: 'refund', amount: 1_800, currency: 'cny', payment_intent: pi.id, status: 'succeeded', metadata: { topUpId: topUpUuid(topUp.id), attempt: form.get('metadata[attempt]') }, created: 0 }]));
    await runTopUpJobs(db.orm.em.fork(), new GatewayClient({ url: GATEWAY, secretKey: SECRET }), { now: new Date(Date.now() + 120_000) });
    expect((await get(topUp.id)).status).toBe('REFUNDED');
    const retried = await refund();
    expect(retried.refundTopUp.userErrors).toEqual([]);
    expect(retried.refundTopUp.topUp.status).toBe('REFUNDED');
    await ledgerOk();
  });
});
