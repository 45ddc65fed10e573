/**
 * What a transit wallet's top-up moves book and announce (issue 15, the wallet branches of
 * top-up-moves.ts), over HTTP with signed events against a scripted gateway (nock stands in for
 * the outside gateway only): the card company is told `topup.paid` naming the wallet; a refund the
 * gateway refuses at once puts the value back into the wallet; a refund the gateway cancels after
 * rides ran the wallet into debt puts it back debt first, as a top-up does.
 */
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { merchantPayableAccount } from '../src/ledger/accounts.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import type { PaymentIntent } from '../src/topups/gateway/gateway-client.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { postRideFare } from '../src/wallets/wallet-ledger.js';
import { walletById } from '../src/wallets/wallet-rows.js';
import { signatureHeader } from '../src/webhooks/webhook-signature.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { useMockedGateway } from './support/gateway-mock.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_wallet_moves';
const WEBHOOK_SECRET = 'whsec_wallet_moves_0123456789';

let db: TestDatabase;
let server: TestServer;
type App = ReturnType<typeof bearerClient>;
let companyId: string;
let merchantId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm, { GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET });
  const em = db.orm.em.fork();
  const city = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Shenzhen Tong' });
  companyId = city.cardCompany.id;
  merchantId = (await createMerchant(em, { cityId: city.city.id, name: 'SZ Metro' })).id;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});
useMockedGateway();

type UserErrors = { code: string; message: string }[];
type WalletTopUp = { id: string; status: string; failureCode: string | null };
type Wallet = { id: string; balance: { amount: number }; debt: { amount: number }; history: { edges: { node: { kind: string; balanceChange: { amount: number }; debtChange: { amount: number } } }[] } };

const WALLET = `id balance { amount } debt { amount } history { edges { node { kind balanceChange { amount } debtChange { amount } } } }`;
const WALLET_TOP_UP = `id status failureCode`;
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
const walletNow = async (app: App, id: string) => (await app.request<{ node: Wallet }>(`query($id: ID!) { node(id: $id) { ... on TransitWallet { ${WALLET} } } }`, { id })).node;
const topUpNow = async (app: App, id: string) => (await app.request<{ node: WalletTopUp }>(`query($id: ID!) { node(id: $id) { ... on WalletTopUp { ${WALLET_TOP_UP} } } }`, { id })).node;
const summary = (w: Wallet) => ({ balance: w.balance.amount, debt: w.debt.amount, history: w.history.edges.map((e) => [e.node.kind, e.node.balanceChange.amount, e.node.debtChange.amount]) });

let wallets = 0;
/** A wallet of its own (one holder has one wallet per card company: a new holder each time). */
async function newWallet(): Promise<{ wallet: string; client: App }> {
  const em = db.orm.em.fork();
  const username = `wallet-holder-${++wallets}`;
  await createCardholder(em, { username, password: `${username} password 1`, displayName: username });
  const redirectUri = 'http://127.0.0.1:8796/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  const holderApp = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: client.client_id, redirectUri, username, password: `${username} password 1`, scope: 'card:read card:topup' }));
  const opened = await holderApp.request<{ openTransitWallet: { wallet: { id: string }; userErrors: UserErrors } }>(`mutation($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { id } userErrors { code message } } }`, {
    input: { cardCompany: toGlobalId('CardCompany', companyId) },
  });
  expect(opened.openTransitWallet.userErrors).toEqual([]);
  return { wallet: opened.openTransitWallet.wallet.id, client: holderApp };
}

/** A 1,000-fen wallet top-up paid at once with a saved payment method (the gateway answers succeeded). */
async function paidWalletTopUp(key: string) {
  const { wallet, client } = await newWallet();
  let pi!: PaymentIntent;
  nock(GATEWAY)
    .post('/v1/payment_intents')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      pi = { id: `pi_wallet_${key}`, object: 'payment_intent', amount: 1_000, currency: 'cny', status: 'succeeded', client_secret: `pi_wallet_${key}_secret`, metadata: { topUpId: form.get('metadata[topUpId]')! }, payment_method: 'pm_card_visa', last_payment_error: null, latest_charge: `ch_wallet_${key}`, created: Math.floor(Date.now() / 1000) };
      return [200, pi];
    });
  const made = await client.request<{ createWalletTopUp: { topUp: WalletTopUp; userErrors: UserErrors } }>(`mutation($input: CreateWalletTopUpInput!) { createWalletTopUp(input: $input) { topUp { ${WALLET_TOP_UP} } userErrors { code message } } }`, {
    input: { wallet, amount: 1_000, idempotencyKey: key, paymentMethod: 'pm_card_visa' },
  });
  expect(made.createWalletTopUp.userErrors).toEqual([]);
  expect(made.createWalletTopUp.topUp.status).toBe('PAID');
  return { wallet, client, topUp: made.createWalletTopUp.topUp, pi };
}

const refundWalletTopUp = (client: App, topUp: string, key: string) =>
  client.request<{ refundWalletTopUp: { topUp: WalletTopUp | null; userErrors: UserErrors } }>(`mutation($input: RefundWalletTopUpInput!) { refundWalletTopUp(input: $input) { topUp { ${WALLET_TOP_UP} } userErrors { code message } } }`, { input: { topUp, idempotencyKey: key } });

/** What the card company is told about a top-up (the outbox's subject is the top-up's TopUp id), in order. */
const outbox = (topUpUuid: string) => db.orm.em.fork().execute(`select type, owner_kind, owner_id::text, payload from event_outbox where subject_id = ? order by id`, [toGlobalId('TopUp', topUpUuid)]);
/** What a ledger entry says and moves: its metadata, the entry it reverses (by key), and its postings by account code. */
async function booked(entryKey: string) {
  const em = db.orm.em.fork();
  const [entry] = await em.execute<{ id: string; metadata: Record<string, unknown>; reverses: string | null }[]>(`select e.id, e.metadata, r.entry_key as reverses from journal_entry e left join journal_entry r on r.id = e.reverses_id where e.entry_key = ?`, [entryKey]);
  if (!entry) return null;
  const postings = await em.execute<{ code: string; amount: number }[]>(`select a.code, p.amount::int as amount from posting p join ledger_account a on a.id = p.account_id where p.entry_id = ? order by p.amount`, [entry.id]);
  return { metadata: entry.metadata, reverses: entry.reverses, postings };
}
const clearingItems = (entryKey: string) => db.orm.em.fork().execute(`select kind, participant_id::text, amount::int, reference, gateway_reference from clearing_item where entry_key = ?`, [entryKey]);
const topUpRow = async (topUpUuid: string) =>
  (await db.orm.em.fork().execute<{ refund_attempt: string | null; gateway_refund_id: string | null; paid_at: Date }[]>(`select refund_attempt, gateway_refund_id, paid_at from top_up where id = ?`, [topUpUuid]))[0]!;
const CLEARING = 'gateway.clearing.CNY';

async function send(type: string, object: unknown, id: string) {
  const body = JSON.stringify({ id, object: 'event', type, created: Math.floor(Date.now() / 1000), data: { object } });
  const res = await fetch(`${server.url}/webhooks/gateway`, { method: 'POST', headers: { 'content-type': 'application/json', 'gateway-signature': signatureHeader([WEBHOOK_SECRET], body, Math.floor(Date.now() / 1000)) }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('a transit wallet’s top-up', () => {
  it('paid: in the wallet at once, and the card company is told topup.paid naming the wallet (not a card), with the amount, currency and status', async () => {
    const { wallet, client, topUp } = await paidWalletTopUp('told-paid');
    const id = uuidOf(topUp.id);
    expect(summary(await walletNow(client, wallet))).toEqual({ balance: 1000, debt: 0, history: [['TOP_UP_PAID', 1000, 0]] });
    expect(await outbox(id)).toEqual([{ type: 'topup.paid', owner_kind: 'ISSUER', owner_id: companyId, payload: { topUp: toGlobalId('TopUp', id), wallet: toGlobalId('TransitWallet', uuidOf(wallet)), amount: 1000, currency: 'CNY', status: 'PAID' } }]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund the gateway refuses at once: the holder is told, the top-up is PAID again with the refusal, the value back in the wallet, not told paid twice', async () => {
    const { wallet, client, topUp } = await paidWalletTopUp('refused');
    const id = uuidOf(topUp.id);
    nock(GATEWAY).post('/v1/refunds').reply(400, { error: { type: 'invalid_request_error', code: 'charge_disputed', message: 'The charge is disputed.' } });
    const asked = await refundWalletTopUp(client, topUp.id, 'refused-1');
    expect(asked.refundWalletTopUp.userErrors).toEqual([{ code: 'NOT_REFUNDABLE', message: expect.stringMatching(/^the gateway refused the refund: .*The charge is disputed\.$/) }]);
    expect(asked.refundWalletTopUp.topUp).toEqual({ id: topUp.id, status: 'PAID', failureCode: 'refund_charge_disputed' });
    expect(await topUpNow(client, topUp.id)).toEqual({ id: topUp.id, status: 'PAID', failureCode: 'refund_charge_disputed' });
    // Out of the wallet when the refund started, back in when the gateway refused it.
    expect(summary(await walletNow(client, wallet))).toEqual({
      balance: 1000,
      debt: 0,
      history: [
        ['TOP_UP_REFUND_FAILED', 1000, 0],
        ['TOP_UP_REFUND', -1000, 0],
        ['TOP_UP_PAID', 1000, 0],
      ],
    });
    const [attemptKey] = await db.orm.em.fork().execute<{ entry_key: string }[]>(`select entry_key from journal_entry where metadata->>'kind' = 'TOP_UP_REFUND' and metadata->>'topUp' = ?`, [id]);
    const balanceCode = `wallet.${uuidOf(wallet)}.balance.CNY`;
    expect(await booked(`${attemptKey!.entry_key}:failed`)).toEqual({
      metadata: { kind: 'TOP_UP_REFUND_FAILED', topUp: id, debtCleared: '0' },
      reverses: null,
      postings: [{ code: balanceCode, amount: -1000 }, { code: CLEARING, amount: 1000 }],
    });
    expect(await clearingItems(`${attemptKey!.entry_key}:failed`)).toEqual([{ kind: 'TOP_UP_REFUND_FAILED', participant_id: companyId, amount: 1000, reference: id, gateway_reference: null }]);
    expect(await topUpRow(id)).toMatchObject({ refund_attempt: null, gateway_refund_id: null });
    expect((await outbox(id)).map((e) => (e as { type: string }).type)).toEqual(['topup.paid']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('a refund the gateway cancels after rides ran the wallet into debt: the value comes back debt first, then to the balance', async () => {
    const { wallet, client, topUp, pi } = await paidWalletTopUp('canceled-after-rides');
    const id = uuidOf(topUp.id);
    let attempt = '';
    nock(GATEWAY)
      .post('/v1/refunds')
      .reply(async (req: Request) => {
        const form = new URLSearchParams(await req.text());
        attempt = form.get('metadata[attempt]')!;
        return [200, { id: 're_wallet_canceled', object: 'refund', amount: 1_000, currency: 'cny', payment_intent: pi.id, status: 'pending', metadata: { topUpId: id, attempt }, created: 0 }];
      });
    const asked = await refundWalletTopUp(client, topUp.id, 'canceled-1');
    expect(asked.refundWalletTopUp).toEqual({ topUp: { id: topUp.id, status: 'REFUNDING', failureCode: null }, userErrors: [] });
    expect((await walletNow(client, wallet)).balance.amount).toBe(0);
    // Meanwhile a 3.00 ride the empty wallet does not cover runs it into debt (as a QR ride upload books it).
    const em = db.orm.em.fork();
    await em.transactional(async (tx) => {
      const ride = await postRideFare(tx, (await walletById(tx, uuidOf(wallet), true))!, { payableAccountId: (await merchantPayableAccount(tx, merchantId, 'CNY')).id, amount: 300n, key: `ride:${id}`, description: 'a ride', metadata: { kind: 'QR_RIDE' } });
      expect(ride).toMatchObject({ fromWallet: 0n, asDebt: 300n });
    });
    expect(summary(await walletNow(client, wallet))).toMatchObject({ balance: 0, debt: 300 });
    const sent = await send('refund.updated', { id: 're_wallet_canceled', object: 'refund', amount: 1_000, currency: 'cny', payment_intent: pi.id, status: 'canceled', metadata: { topUpId: id, attempt }, created: 0 }, 'evt_wallet_canceled');
    expect(sent).toMatchObject({ status: 200, body: { outcome: 'applied' } });
    expect(await topUpNow(client, topUp.id)).toEqual({ id: topUp.id, status: 'PAID', failureCode: 'refund_failed' });
    // 10.00 back: 3.00 of it clears the debt, 7.00 is in the wallet.
    const now = summary(await walletNow(client, wallet));
    expect([now.balance, now.debt]).toEqual([700, 0]);
    expect(now.history[0]).toEqual(['TOP_UP_REFUND_FAILED', 700, -300]);
    const key = `top-up:${id}:refund:${attempt}:failed`;
    expect(await booked(key)).toMatchObject({ metadata: { kind: 'TOP_UP_REFUND_FAILED', topUp: id, debtCleared: '300' }, reverses: null });
    expect(await clearingItems(key)).toEqual([{ kind: 'TOP_UP_REFUND_FAILED', participant_id: companyId, amount: 1000, reference: id, gateway_reference: 're_wallet_canceled' }]);
    expect((await outbox(id)).map((e) => (e as { type: string }).type)).toEqual(['topup.paid']);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });
});
