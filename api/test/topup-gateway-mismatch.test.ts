/**
 * A signed gateway event whose amount or currency is not the top-up's is never booked: the top-up
 * keeps its status, no money moves into pending loads, and the event is recorded as a mismatch for
 * a person to settle. The API runs over real HTTP; nock stands in for the outside gateway only.
 */
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import type { PaymentIntent } from '../src/topups/gateway/gateway-client.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';
import { testCardNumber } from './support/card-sessions.js';
import { useMockedGateway } from './support/gateway-mock.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_mismatch';
const WEBHOOK_SECRET = 'whsec_mismatch_0123456789';

let db: TestDatabase;
let server: TestServer;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let companyId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm, { GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET });
  const em = db.orm.em.fork();
  companyId = (await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' })).cardCompany.id;
  holderId = (await createCardholder(em, { username: 'lin', password: 'lin password 1', displayName: 'Lin' })).id;
  const redirectUri = 'http://127.0.0.1:8799/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  app = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username: 'lin', password: 'lin password 1', scope: 'card:read card:topup' }));
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});
useMockedGateway();

let cards = 0;
async function newCard(): Promise<string> {
  const row = await registerCard(db.orm.em.fork(), companyId, { cardNumber: testCardNumber('623177000000'), asn: `58177000000000${String(++cards).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  return toGlobalId('Card', row.id);
}

const TOP_UP = `id status paidAt history { to cause }`;
type TopUp = { id: string; status: string; paidAt: string | null; history: { to: string; cause: string }[] };
const get = async (id: string) => (await app.request<{ topUp: TopUp }>(`query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`, { id })).topUp;
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/** A 1,000-fen top-up awaiting payment at the (nock) gateway, and the intent the gateway made for it. */
async function awaitingTopUp(key: string): Promise<{ topUp: TopUp; pi: PaymentIntent }> {
  let pi!: PaymentIntent;
  nock(GATEWAY)
    .post('/v1/payment_intents')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      pi = { id: `pi_mismatch_${key}`, object: 'payment_intent', amount: Number(form.get('amount')), currency: String(form.get('currency')), status: 'requires_payment_method', client_secret: `pi_mismatch_${key}_secret`, metadata: { topUpId: form.get('metadata[topUpId]')! }, payment_method: null, last_payment_error: null, latest_charge: null, created: Math.floor(Date.now() / 1000) };
      return [200, pi];
    });
  const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code } } }`, { input: { card: await newCard(), amount: 1_000, idempotencyKey: key } });
  expect(made.createTopUp.userErrors).toEqual([]);
  expect(made.createTopUp.topUp.status).toBe('AWAITING_PAYMENT');
  expect(pi.amount).toBe(1_000);
  return { topUp: made.createTopUp.topUp, pi };
}

let events = 0;
/**
 * Posts a `payment_intent.succeeded` signed as the gateway signs it. `amountJson` is the amount's
 * JSON text as the gateway would write it, so a number JavaScript cannot hold exactly is sent as is.
 */
async function sendSucceeded(pi: PaymentIntent, amountJson: string, currency = pi.currency) {
  const id = `evt_mismatch_${++events}`;
  const object = JSON.stringify({ ...pi, amount: '__AMOUNT__', currency, status: 'succeeded' }).replace('"__AMOUNT__"', amountJson);
  const body = `{"id":"${id}","object":"event","type":"payment_intent.succeeded","created":${Math.floor(Date.now() / 1000)},"data":{"object":${object}}}`;
  const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
  return { id, status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function pendingLoads(): Promise<bigint> {
  const [row] = await db.orm.em.fork().execute<{ balance: string }[]>(`select balance::text as balance from ledger_account where code = ?`, [`card-company.${companyId}.pending-loads.CNY`]);
  return BigInt(row?.balance ?? 0);
}

/** Everything that would show the top-up was booked as paid: its journal entry and its clearing item. */
async function bookings(topUpUuid: string) {
  const [row] = await db.orm.em.fork().execute<{ entries: number; items: number }[]>(
    `select (select count(*)::int from journal_entry where entry_key = ? or metadata->>'topUp' = ?) as entries,
            (select count(*)::int from clearing_item where entry_key = ?) as items`,
    [`top-up:${topUpUuid}:paid`, topUpUuid, `top-up:${topUpUuid}:paid`],
  );
  return row!;
}

async function outcomeOf(eventId: string): Promise<string | undefined> {
  const [row] = await db.orm.em.fork().execute<{ outcome: string }[]>(`select outcome from gateway_event where id = ?`, [eventId]);
  return row?.outcome;
}

describe('a signed gateway event that does not match the top-up', () => {
  const cases: { name: string; amountJson: string; currency?: string }[] = [
    { name: '1 fen for a 1,000-fen top-up', amountJson: '1' },
    { name: '999 fen (one short)', amountJson: '999' },
    { name: 'more than the top-up (100,000 fen)', amountJson: '100000' },
    { name: 'one fen more (1,001)', amountJson: '1001' },
    { name: 'an amount past the safe integers (2^53 + 1)', amountJson: '9007199254740993' },
    { name: 'the top-up amount plus 2^53 (equal modulo 2^53)', amountJson: String(2n ** 53n + 1_000n) },
    { name: 'a fraction (1,000.5)', amountJson: '1000.5' },
    { name: 'the amount as a string ("1000")', amountJson: '"1000"' },
    { name: 'a negative amount (-1,000)', amountJson: '-1000' },
    { name: 'no amount at all (null)', amountJson: 'null' },
    { name: 'the right amount in another currency (usd)', amountJson: '1000', currency: 'usd' },
  ];

  it.each(cases)('$name: the top-up stays AWAITING_PAYMENT, nothing is booked, and the mismatch is recorded', async ({ name, amountJson, currency }) => {
    const { topUp, pi } = await awaitingTopUp(`mismatch-${cases.findIndex((c) => c.name === name)}`);
    const pendingBefore = await pendingLoads();

    const sent = await sendSucceeded(pi, amountJson, currency);
    expect(sent).toMatchObject({ status: 200, body: { received: true, duplicate: false, outcome: 'mismatch' } });
    expect(await outcomeOf(sent.id)).toBe('mismatch');

    const after = await get(topUp.id);
    expect(after).toMatchObject({ status: 'AWAITING_PAYMENT', paidAt: null });
    expect(after.history).toEqual(topUp.history);
    expect(await pendingLoads()).toBe(pendingBefore);
    expect(await bookings(uuidOf(topUp.id))).toEqual({ entries: 0, items: 0 });
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);

    // The top-up is not spoiled: the gateway's true event still makes it PAID, booked once.
    const good = await sendSucceeded(pi, '1000');
    expect(good.body).toMatchObject({ outcome: 'applied' });
    expect((await get(topUp.id)).status).toBe('PAID');
    expect(await pendingLoads()).toBe(pendingBefore + 1_000n);
    expect(await bookings(uuidOf(topUp.id))).toEqual({ entries: 1, items: 1 });
  });

  it('a mismatched event after the top-up is PAID changes nothing either', async () => {
    const { topUp, pi } = await awaitingTopUp('mismatch-after-paid');
    expect((await sendSucceeded(pi, '1000')).body).toMatchObject({ outcome: 'applied' });
    const pendingBefore = await pendingLoads();
    const paid = await get(topUp.id);
    const sent = await sendSucceeded(pi, '1');
    expect(sent.body).toMatchObject({ outcome: 'mismatch' });
    expect(await outcomeOf(sent.id)).toBe('mismatch');
    expect(await get(topUp.id)).toEqual(paid);
    expect(await pendingLoads()).toBe(pendingBefore);
    expect(await bookings(uuidOf(topUp.id))).toEqual({ entries: 1, items: 1 });
  });
});
