/**
 * Who may refund a card's top-up and what each gateway answer to the refund leaves (issue 15,
 * `top-up-refunds.ts`), over HTTP against a scripted gateway (nock stands in for the outside
 * gateway only): the card company refunds a top-up its holder's app may not (the card still
 * usable), the operator may too; a gateway that says the refund exists already leaves it on its way
 * (never put back); a refusal without a code; a server with no gateway refuses before anything moves.
 */
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import type { PaymentIntent } from '../src/topups/gateway/gateway-client.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { testCardNumber } from './support/card-sessions.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { useMockedGateway } from './support/gateway-mock.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_refund_refusals';
const WEBHOOK_SECRET = 'whsec_refund_refusals_0123456789';

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
  holderId = (await createCardholder(em, { username: 'qian', password: 'qian password 1', displayName: 'Qian' })).id;
  const redirectUri = 'http://127.0.0.1:8795/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  app = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username: 'qian', password: 'qian password 1', scope: 'card:read card:topup' }));
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});
useMockedGateway();

/** A client of the card company or of the operator, with the given scopes, on `url` (`on`: the same client on another server). */
async function party(kind: 'ISSUER' | 'OPERATOR', scopes: string[], url = server.url): Promise<OneCardClient & { on: (other: string) => OneCardClient }> {
  const made = await createClient(db.orm.em.fork(), { kind, tenantId: kind === 'ISSUER' ? companyId : null, name: `${kind} ${Math.random()}`, scopes });
  const at = (baseUrl: string) => new OneCardClient({ baseUrl, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: scopes.join(' ') });
  return Object.assign(at(url), { on: at });
}

type TopUp = { id: string; status: string; failureCode: string | null; failureMessage: string | null; refundedAt: string | null };
type Refunded = { refundTopUp: { topUp: TopUp | null; userErrors: { code: string; message: string }[] } };
const TOP_UP = `id status failureCode failureMessage refundedAt`;
const REFUND = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code message } } }`;
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
const get = async (id: string) => (await app.request<{ topUp: TopUp }>(`query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`, { id })).topUp;

async function pendingLoads(): Promise<bigint> {
  const [row] = await db.orm.em.fork().execute<{ balance: string }[]>(`select balance::text as balance from ledger_account where code = ?`, [`card-company.${companyId}.pending-loads.CNY`]);
  return BigInt(row?.balance ?? 0);
}
/** The top-up's refund entries (its refund and any reversal of it). */
async function refundEntries(topUpUuid: string): Promise<string[]> {
  const rows = await db.orm.em.fork().execute<{ kind: string }[]>(`select metadata->>'kind' as kind from journal_entry where metadata->>'topUp' = ? and metadata->>'kind' like 'TOP_UP_REFUND%' order by posted_at, id`, [topUpUuid]);
  return rows.map((r) => r.kind);
}

let cards = 0;
/** A PAID 1,000-fen top-up of an ACTIVE card of the holder's (its app may not refund it: the card can take the load). */
async function paidTopUp(key: string): Promise<{ topUp: TopUp; pi: PaymentIntent }> {
  const card = await registerCard(db.orm.em.fork(), companyId, { cardNumber: testCardNumber('623177000000'), asn: `58177000000000${String(++cards).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  let pi!: PaymentIntent;
  nock(GATEWAY)
    .post('/v1/payment_intents')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      pi = { id: `pi_refusals_${key}`, object: 'payment_intent', amount: 1_000, currency: 'cny', status: 'requires_payment_method', client_secret: `pi_refusals_${key}_secret`, metadata: { topUpId: form.get('metadata[topUpId]')! }, payment_method: null, last_payment_error: null, latest_charge: null, created: Math.floor(Date.now() / 1000) };
      return [200, pi];
    });
  const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`, { input: { card: toGlobalId('Card', card.id), amount: 1_000, idempotencyKey: key } });
  expect(made.createTopUp.userErrors).toEqual([]);
  const body = JSON.stringify({ id: `evt_refusals_${key}`, object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000), data: { object: { ...pi, status: 'succeeded' } } });
  const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
  expect(res.status).toBe(200);
  const topUp = await get(made.createTopUp.topUp.id);
  expect(topUp.status).toBe('PAID');
  return { topUp, pi };
}

/** The gateway makes the refund at once. */
function refundSucceeds(pi: PaymentIntent, id: string) {
  nock(GATEWAY)
    .post('/v1/refunds')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      return [200, { id, object: 'refund', amount: 1_000, currency: 'cny', payment_intent: pi.id, status: 'succeeded', metadata: { topUpId: form.get('metadata[topUpId]')!, attempt: form.get('metadata[attempt]')! }, created: 0 }];
    });
}

describe('who may refund a card’s top-up', () => {
  it('the holder’s app may not while the card can take the load; the card company (topups:write) may, and the value leaves the pending loads once', async () => {
    const { topUp, pi } = await paidTopUp('by-card-company');
    const before = await pendingLoads();
    const refused = await app.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'app-1' } });
    expect(refused.refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    expect((await get(topUp.id)).status).toBe('PAID');
    refundSucceeds(pi, 're_refusals_company');
    // topups:write alone: refunding needs no read scope of its own.
    const company = await party('ISSUER', ['topups:write']);
    const done = await company.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'company-1' } });
    expect(done.refundTopUp.userErrors).toEqual([]);
    expect(done.refundTopUp.topUp).toMatchObject({ id: topUp.id, status: 'REFUNDED', failureCode: null });
    expect(done.refundTopUp.topUp!.refundedAt).not.toBeNull();
    expect(await pendingLoads()).toBe(before - 1_000n);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual(['TOP_UP_REFUND']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('the holder’s app with card:topup alone refunds a top-up of the holder’s lost card', async () => {
    const { topUp, pi } = await paidTopUp('by-app-topup-scope');
    await db.orm.em.fork().execute(`update card set status = 'LOST' where id = (select card_id from top_up where id = ?)`, [uuidOf(topUp.id)]);
    const redirectUri = 'http://127.0.0.1:8795/callback';
    const { client } = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Top-up only app', scopes: ['card:topup'], redirectUris: [redirectUri] });
    const topUpOnly = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username: 'qian', password: 'qian password 1', scope: 'card:topup' }));
    refundSucceeds(pi, 're_refusals_app');
    const done = await topUpOnly.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'app-topup-only-1' } });
    expect(done.refundTopUp).toMatchObject({ userErrors: [], topUp: { id: topUp.id, status: 'REFUNDED' } });
    expect((await get(topUp.id)).status).toBe('REFUNDED');
  });

  it('the operator (tenants:manage) may refund any card’s top-up', async () => {
    const { topUp, pi } = await paidTopUp('by-operator');
    refundSucceeds(pi, 're_refusals_operator');
    const operator = await party('OPERATOR', ['tenants:manage']);
    const done = await operator.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'operator-1' } });
    expect(done.refundTopUp).toMatchObject({ userErrors: [], topUp: { id: topUp.id, status: 'REFUNDED' } });
    expect((await get(topUp.id)).status).toBe('REFUNDED');
  });
});

describe('what is not refunded through the gateway', () => {
  it.each(['TRANSFER', 'REFUND'])('a %s pending load (a replaced card’s balance, a merchant’s refund) is loaded onto the card, never refunded: NOT_REFUNDABLE, still PAID, nothing booked', async (origin) => {
    const { topUp } = await paidTopUp(`origin-${origin}`);
    // The refusal reads only the origin: a paid pending load marked as the other kinds of pending load.
    await db.orm.em.fork().execute(`update top_up set origin = ? where id = ?`, [origin, uuidOf(topUp.id)]);
    const before = await pendingLoads();
    const company = await party('ISSUER', ['topups:write']);
    const asked = await company.request<{ refundTopUp: { topUp: TopUp | null; userErrors: { code: string; field: string[]; message: string }[] } }>(`mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { id } userErrors { code field message } } }`, { input: { topUp: topUp.id, idempotencyKey: `origin-${origin}-1` } });
    expect(asked.refundTopUp).toEqual({ topUp: null, userErrors: [{ code: 'NOT_REFUNDABLE', field: ['input', 'topUp'], message: expect.stringMatching(/^this pending load is not a gateway payment/) }] });
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(await pendingLoads()).toBe(before);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual([]);
  });
});

describe('what the gateway’s answer to a refund leaves', () => {
  it('“this charge is refunded already” (the refund of this attempt exists): on its way, not put back, the caller told the gateway did not answer', async () => {
    const { topUp } = await paidTopUp('already-refunded');
    const before = await pendingLoads();
    nock(GATEWAY).post('/v1/refunds').reply(400, { error: { type: 'invalid_request_error', code: 'charge_already_refunded', message: 'Charge has already been refunded.' } });
    const company = await party('ISSUER', ['topups:write', 'cards:read']);
    const asked = await company.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'already-1' } });
    expect(asked.refundTopUp.userErrors.map((e) => e.code)).toEqual(['GATEWAY_UNAVAILABLE']);
    expect(asked.refundTopUp.topUp).toMatchObject({ status: 'REFUNDING', failureCode: null });
    // The value stays out of the pending loads: no reversal, the job asks the gateway again.
    expect(await pendingLoads()).toBe(before - 1_000n);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual(['TOP_UP_REFUND']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refusal without a code: PAID again with refund_refused and the gateway’s message, the value back in the pending loads', async () => {
    const { topUp } = await paidTopUp('refused-no-code');
    const before = await pendingLoads();
    nock(GATEWAY).post('/v1/refunds').reply(400, { error: { type: 'invalid_request_error', message: 'Refunds are not possible for this payment.' } });
    const company = await party('ISSUER', ['topups:write', 'cards:read']);
    const asked = await company.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'no-code-1' } });
    expect(asked.refundTopUp.userErrors).toEqual([{ code: 'NOT_REFUNDABLE', message: expect.stringMatching(/^the gateway refused the refund: .*Refunds are not possible for this payment\.$/) }]);
    expect(asked.refundTopUp.topUp).toMatchObject({ status: 'PAID', failureCode: 'refund_refused', failureMessage: expect.stringMatching(/Refunds are not possible for this payment\.$/) });
    expect(await pendingLoads()).toBe(before);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual(['TOP_UP_REFUND', 'TOP_UP_REFUND_FAILED']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a server with no payment gateway refuses the refund before anything moves: still PAID, nothing booked', async () => {
    const { topUp } = await paidTopUp('no-gateway');
    const before = await pendingLoads();
    const bare = await startTestServer(db.orm, {});
    try {
      const company = await party('ISSUER', ['topups:write', 'cards:read'], bare.url);
      const asked = await company.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'bare-1' } });
      expect(asked.refundTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'GATEWAY_UNAVAILABLE', message: 'no payment gateway is configured' }] });
    } finally {
      await bare.close();
    }
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(await pendingLoads()).toBe(before);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual([]);
  });

  it('the same refund request again (its key) on a server with no gateway: still on its way, the caller told no gateway is configured, nothing more booked', async () => {
    const { topUp } = await paidTopUp('resumed-no-gateway');
    const company = await party('ISSUER', ['topups:write']);
    nock(GATEWAY).post('/v1/refunds').times(3).reply(503, { error: { type: 'api_error', message: 'down' } });
    const first = await company.request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'resumed-1' } });
    expect(first.refundTopUp).toMatchObject({ topUp: { status: 'REFUNDING' }, userErrors: [{ code: 'GATEWAY_UNAVAILABLE' }] });
    const before = await pendingLoads();
    const bare = await startTestServer(db.orm, {});
    try {
      const again = await company.on(bare.url).request<Refunded>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'resumed-1' } });
      expect(again.refundTopUp).toEqual({ topUp: expect.objectContaining({ id: topUp.id, status: 'REFUNDING' }), userErrors: [{ code: 'GATEWAY_UNAVAILABLE', message: 'no payment gateway is configured' }] });
    } finally {
      await bare.close();
    }
    expect((await get(topUp.id)).status).toBe('REFUNDING');
    expect(await pendingLoads()).toBe(before);
    expect(await refundEntries(uuidOf(topUp.id))).toEqual(['TOP_UP_REFUND']);
  });
});
