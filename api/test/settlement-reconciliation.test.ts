/**
 * Reconciliation of a settlement window with the gateway's balance transactions (issue 8, part 4):
 * the gateway is nock (its balance-transaction list and payouts, kept in this file as the
 * gateway's books); money is seeded at the service level as the top-up and payment flows book it;
 * the operator reconciles and resolves over real HTTP with an OAuth token.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { balance, credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { recordClearingItem, setGatewayReference } from '../src/settlement/clearing-items.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { applyPayout, sendDuePayouts } from '../src/settlement/payouts.js';
import { reconcileWindow } from '../src/settlement/reconciliation.js';
import { SettlementError } from '../src/settlement/settlement.errors.js';
import { closeWindow, ensureWindow, type WindowRow } from '../src/settlement/windows.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { type BalanceTransaction, GatewayClient, type Payout } from '../src/topups/gateway/gateway-client.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';
import { gatewayClearingAccount, gatewayFeesAccount, payableAccount, pendingLoadAccount } from '../src/ledger/accounts.js';

const GATEWAY = 'https://gateway.test';
const SECRET = 'sk_test_reconciliation';
const CUTOFF = '02:00';

let db: TestDatabase;
let em: EntityManager;
let server: TestServer;
let gateway: GatewayClient;
let operatorToken: string;
let merchantToken: string;
let readOnlyToken: string;
let cityId: string;
let cardCompanyId: string;

// ——— the business days: ten days ago and the two after, in the city (Asia/Shanghai) ———

const localDay = (offsetDays: number) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.now() + offsetDays * 86_400_000));
const DAY1 = localDay(-10);
const DAY2 = localDay(-9);
const DAY3 = localDay(-8);
const at = (day: string, time: string) => new Date(`${day}T${time}+08:00`);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

// ——— the gateway's books, as nock answers them ———

const books: BalanceTransaction[] = [];
const payouts: Payout[] = [];
let txnSeq = 0;
let listCalls = 0;
/** Set to a number of list calls: every later one answers 503 (the gateway going down half-way). */
let failAfterCalls: number | null = null;
/** When the gateway makes the payouts it is asked for. */
let payoutClock = new Date();

/** A balance transaction; charges pay the gateway a 1% fee. */
function gatewayTxn(type: BalanceTransaction['type'], source: string, amount: number, created: Date, fee = type === 'charge' ? Math.round(amount / 100) : 0): BalanceTransaction {
  const t: BalanceTransaction = { id: `txn_${String(++txnSeq).padStart(4, '0')}`, object: 'balance_transaction', type, source, amount, fee, net: amount - fee, currency: 'cny', created: seconds(created), available_on: seconds(created) };
  books.push(t);
  return t;
}

/** The gateway's list: oldest first by (created, id), created[gte]/[lt], starting_after; at most 3 a page, so paging is exercised. */
function listAnswer(url: URL): [number, unknown] {
  listCalls++;
  if (failAfterCalls !== null && listCalls > failAfterCalls) return [503, { error: { type: 'api_error', message: 'down for maintenance' } }];
  const q = url.searchParams;
  const gte = Number(q.get('created[gte]') ?? -Infinity);
  const lt = Number(q.get('created[lt]') ?? Infinity);
  const rows = books.filter((t) => t.created >= gte && t.created < lt).sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  const after = q.get('starting_after');
  const from = after ? rows.findIndex((t) => t.id === after) + 1 : 0;
  const limit = Math.min(Number(q.get('limit') ?? 10), 3);
  const data = rows.slice(from, from + limit);
  return [200, { object: 'list', url: '/v1/balance_transactions', data, has_more: from + limit < rows.length }];
}

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  server = await startTestServer(db.orm, { GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: 'whsec_reconciliation_0123', GATEWAY_TIMEOUT_MS: '500' });
  gateway = new GatewayClient({ url: GATEWAY, secretKey: SECRET, retries: 0 });
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  nock(GATEWAY)
    .persist()
    .get('/v1/balance_transactions')
    .query(true)
    .reply(async (req: Request) => listAnswer(new URL(req.url)))
    .post('/v1/payouts')
    .reply(async (req: Request) => {
      const form = new URLSearchParams(await req.text());
      const amount = Number(form.get('amount'));
      const payout: Payout = { id: `po_${payouts.length + 1}`, object: 'payout', amount, currency: 'cny', status: 'pending', metadata: { settlementPayout: form.get('metadata[settlementPayout]')! }, created: seconds(payoutClock), arrival_date: seconds(payoutClock) };
      payouts.push(payout);
      gatewayTxn('payout', payout.id, -amount, payoutClock);
      return [200, payout];
    });

  const made = await createCity(em, { code: 'RCN', name: 'Reconcile City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'RCN Card Co' });
  cityId = made.city.id;
  cardCompanyId = made.cardCompany.id;
  const as = await discover(server.url);
  const operator = await createClient(em, { kind: 'OPERATOR', tenantId: null, name: 'Settlement desk', scopes: ['settlements:read', 'settlements:manage'] });
  operatorToken = (await clientCredentialsToken(as, operator.client.client_id, operator.clientSecret!, 'settlements:read settlements:manage')).access_token;
  const reader = await createClient(em, { kind: 'OPERATOR', tenantId: null, name: 'Auditor', scopes: ['settlements:read'] });
  readOnlyToken = (await clientCredentialsToken(as, reader.client.client_id, reader.clientSecret!, 'settlements:read')).access_token;
  const shop = await createMerchant(em, { cityId, name: 'Curious Shop' });
  const merchant = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'Curious Shop back office', scopes: ['settlements:read'] });
  merchantToken = (await clientCredentialsToken(as, merchant.client.client_id, merchant.clientSecret!, 'settlements:read')).access_token;
});
afterAll(async () => {
  nock.cleanAll();
  nock.enableNetConnect();
  await server?.close();
  await db?.close();
});

// ——— our books, as the top-up and payment flows write them ———

/** A paid top-up: gateway clearing → the card company's pending loads, and its TOP_UP item naming the charge. */
async function paidTopUp(amount: number, charge: string, occurredAt: Date): Promise<string> {
  const id = randomUUID();
  await em.transactional(async (tx) => {
    const clearing = await gatewayClearingAccount(tx, 'CNY');
    const pending = await pendingLoadAccount(tx, cardCompanyId, 'CNY');
    await post(tx, { key: `top-up:${id}:paid`, description: 'test top-up paid', lines: [debit(clearing.id, BigInt(amount)), credit(pending.id, BigInt(amount))] });
    await recordClearingItem(tx, { kind: 'TOP_UP', participant: { kind: 'CARD_COMPANY', id: cardCompanyId }, cardCompanyId, amount: BigInt(amount), currency: 'CNY', entryKey: `top-up:${id}:paid`, reference: id, gatewayReference: charge, occurredAt });
  });
  return id;
}

/** A top-up refunded through the gateway; `refund` null while the gateway has not named it. Returns the item's entry key. */
async function refundedTopUp(topUpId: string, amount: number, refund: string | null, occurredAt: Date): Promise<string> {
  const key = `top-up:${topUpId}:refund:1`;
  await em.transactional(async (tx) => {
    const clearing = await gatewayClearingAccount(tx, 'CNY');
    const pending = await pendingLoadAccount(tx, cardCompanyId, 'CNY');
    await post(tx, { key, description: 'test top-up refund', lines: [debit(pending.id, BigInt(amount)), credit(clearing.id, BigInt(amount))] });
    await recordClearingItem(tx, { kind: 'TOP_UP_REFUND', participant: { kind: 'CARD_COMPANY', id: cardCompanyId }, cardCompanyId, amount: BigInt(amount), currency: 'CNY', entryKey: key, reference: topUpId, gatewayReference: refund, occurredAt });
  });
  return key;
}

/** The gateway failed a refund (the card was closed): the refund's entry is reversed, and a TOP_UP_REFUND_FAILED item names it. */
async function refundFailed(topUpId: string, amount: number, refund: string, occurredAt: Date): Promise<void> {
  const key = `top-up:${topUpId}:refund:1:failed`;
  await em.transactional(async (tx) => {
    const clearing = await gatewayClearingAccount(tx, 'CNY');
    const pending = await pendingLoadAccount(tx, cardCompanyId, 'CNY');
    await post(tx, { key, description: 'test top-up refund failed', lines: [debit(clearing.id, BigInt(amount)), credit(pending.id, BigInt(amount))] });
    await recordClearingItem(tx, { kind: 'TOP_UP_REFUND_FAILED', participant: { kind: 'CARD_COMPANY', id: cardCompanyId }, cardCompanyId, amount: BigInt(amount), currency: 'CNY', entryKey: key, reference: topUpId, gatewayReference: refund, occurredAt });
  });
}

/** A card payment to a merchant (card purse → payable): clearing pays it out through the gateway. */
async function sale(merchantId: string, amount: number, occurredAt: Date): Promise<void> {
  const key = `test-sale:${randomUUID()}`;
  const purses = await openAccount(em, { code: 'test.card-purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', merchantId, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: 'sale', lines: [debit(purses.id, BigInt(amount)), credit(payable.id, BigInt(amount))] });
    await recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId, amount: BigInt(amount), currency: 'CNY', entryKey: key, reference: key, occurredAt });
  });
}

// ——— reading ———

type Diff = { kind: string; gateway_reference: string; our_reference: string | null; our_amount: string | null; gateway_amount: string | null; status: string; note: string | null; resolved_by: string | null; updated_at: Date; id: string };
const differences = (windowId: string) =>
  em.fork().execute<Diff[]>(`select id, kind, gateway_reference, our_reference, our_amount::text, gateway_amount::text, status, note, resolved_by, updated_at from reconciliation_difference where window_id = ? order by gateway_reference`, [windowId]);
const byRef = async (windowId: string) => Object.fromEntries((await differences(windowId)).map((d) => [d.gateway_reference, d]));
const count = async (sql: string, params: unknown[] = []) => (await em.fork().execute<{ n: number }[]>(`select count(*)::int as n from ${sql}`, params))[0]!.n;
const feeEntries = () => count(`journal_entry where entry_key like 'gateway-fee:%'`);

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const RECONCILE = `mutation($input: ReconcileSettlementWindowInput!) { reconcileSettlementWindow(input: $input) {
  run { id window imported gatewayTransactions ourRecords matched differences openDifferences gatewayFees { amount currency } }
  userErrors { code field message } } }`;
const RESOLVE = `mutation($input: ResolveReconciliationDifferenceInput!) { resolveReconciliationDifference(input: $input) {
  difference { id kind status note resolvedBy resolvedAt gatewayReference } userErrors { code field message } } }`;
const LIST = `query($window: ID!, $status: ReconciliationDifferenceStatus, $first: Int, $after: String) {
  reconciliationDifferences(window: $window, status: $status, first: $first, after: $after) {
    edges { cursor node { id window kind status gatewayReference gatewayType ourReference ourAmount { amount currency } gatewayAmount { amount currency } note } }
    pageInfo { hasNextPage endCursor } } }`;

let w1: WindowRow;
let w2: WindowRow;
const topUps: Record<string, string> = {};
let unnamedRefundKey: string;

describe('reconciling a window with the gateway', () => {
  it('lists every kind of difference next to the matches, books the gateway fees, and leaves the ledger balanced', async () => {
    // Our day: top-ups the gateway agrees with, one it charged more for, one it never saw, one it
    // records only after midnight, a refund and its charge, a refund whose id we have not learnt.
    topUps.match = await paidTopUp(1_000, 'ch_match', at(DAY1, '09:00:00'));
    topUps.amount = await paidTopUp(2_000, 'ch_amount', at(DAY1, '10:00:00'));
    topUps.ours = await paidTopUp(3_000, 'ch_ours', at(DAY1, '11:00:00'));
    topUps.late = await paidTopUp(500, 'ch_late', at(DAY1, '23:59:00'));
    topUps.refunded = await paidTopUp(800, 'ch_refunded', at(DAY1, '12:00:00'));
    await refundedTopUp(topUps.refunded, 800, 're_refunded', at(DAY1, '13:00:00'));
    topUps.unnamed = await paidTopUp(400, 'ch_unnamed', at(DAY1, '14:00:00'));
    unnamedRefundKey = await refundedTopUp(topUps.unnamed, 400, null, at(DAY1, '15:00:00'));
    topUps.fails = await paidTopUp(600, 'ch_fails', at(DAY1, '15:30:00'));
    await refundedTopUp(topUps.fails, 600, 're_fails', at(DAY1, '16:30:00'));
    const paidShop = await createMerchant(em, { cityId, name: 'Paid Shop' });
    const closedShop = await createMerchant(em, { cityId, name: 'Closed Account Shop' });
    await sale(paidShop.id, 5_000, at(DAY1, '16:00:00'));
    await sale(closedShop.id, 3_000, at(DAY1, '17:00:00'));

    // The gateway's day: the same charges (one for 2,500), one we know nothing of, and the refund.
    gatewayTxn('charge', 'ch_match', 1_000, at(DAY1, '09:00:00'));
    gatewayTxn('charge', 'ch_amount', 2_500, at(DAY1, '10:00:00'));
    gatewayTxn('charge', 'ch_refunded', 800, at(DAY1, '12:00:00'));
    gatewayTxn('refund', 're_refunded', -800, at(DAY1, '13:00:00'));
    gatewayTxn('charge', 'ch_unnamed', 400, at(DAY1, '14:00:00'));
    gatewayTxn('charge', 'ch_unknown', 700, at(DAY1, '18:00:00'));
    gatewayTxn('charge', 'ch_fails', 600, at(DAY1, '15:30:00'));
    gatewayTxn('refund', 're_fails', -600, at(DAY1, '16:30:00'));
    // The next morning the refund fails at the gateway; we have not heard yet.
    gatewayTxn('refund', 're_fails', 600, at(DAY2, '10:00:00'));
    // Not this window's: the next day, naming nothing of ours.
    gatewayTxn('charge', 'ch_next_day', 900, at(DAY2, '10:00:00'));

    // Close, clear, and pay out on day 3: one payout arrives, the other fails back.
    w1 = await closeWindow(em, { cityId, businessDay: DAY1, closedBy: 'test', cutoff: CUTOFF, now: at(DAY2, '09:00:00') });
    await clearWindow(em, w1.id);
    payoutClock = at(DAY3, '10:00:00');
    expect(await sendDuePayouts(em, gateway)).toBe(2);
    const paid = payouts.find((p) => p.amount === 5_000)!;
    const failed = payouts.find((p) => p.amount === 3_000)!;
    expect(await applyPayout(em, { ...paid, status: 'paid' })).toBe('applied');
    gatewayTxn('payout', failed.id, 3_000, at(DAY3, '12:00:00'));
    expect(await applyPayout(em, { ...failed, status: 'failed', failure_code: 'account_closed' })).toBe('applied');

    const res = await graphql(server.url, RECONCILE, { input: { window: toGlobalId('SettlementWindow', w1.id) } }, as(operatorToken));
    expect(res.body.errors).toBeUndefined();
    const payload = res.body.data.reconcileSettlementWindow;
    expect(payload.userErrors).toEqual([]);
    // Matched: ch_match, ch_refunded, re_refunded, ch_unnamed, ch_fails, the paid payout, the failed one (−3,000 + 3,000 = 0 on both sides).
    expect(payload.run).toMatchObject({
      window: toGlobalId('SettlementWindow', w1.id),
      imported: 12,
      gatewayTransactions: 12,
      ourRecords: 12,
      matched: 7,
      differences: 6,
      openDifferences: 6,
      gatewayFees: { amount: 10 + 25 + 8 + 4 + 7 + 6, currency: 'CNY' },
    });

    const found = await byRef(w1.id);
    expect(Object.keys(found).sort()).toEqual(['ch_amount', 'ch_late', 'ch_ours', 'ch_unknown', 're_fails', `ours:top-up:${topUps.unnamed}`].sort());
    expect(found.ch_amount).toMatchObject({ kind: 'AMOUNT_DIFFERS', our_amount: '2000', gateway_amount: '2500', status: 'OPEN', our_reference: `top-up:${topUps.amount}` });
    expect(found.ch_ours).toMatchObject({ kind: 'OURS_ONLY', our_amount: '3000', gateway_amount: null, status: 'OPEN' });
    expect(found.ch_late).toMatchObject({ kind: 'OURS_ONLY', our_amount: '500', status: 'OPEN' });
    expect(found.ch_unknown).toMatchObject({ kind: 'THEIRS_ONLY', our_amount: null, gateway_amount: '700', our_reference: null, status: 'OPEN' });
    // The gateway took the refund back (−600 + 600); we still book it refunded.
    expect(found.re_fails).toMatchObject({ kind: 'AMOUNT_DIFFERS', our_amount: '-600', gateway_amount: '0', status: 'OPEN' });
    // Our refund the gateway has not named yet is listed with our reference.
    expect(found[`ours:top-up:${topUps.unnamed}`]).toMatchObject({ kind: 'OURS_ONLY', our_amount: '-400', our_reference: `top-up:${topUps.unnamed}` });

    // Only the window's transactions were imported: the next day's charge waits for its own window.
    expect(await count(`gateway_balance_transaction where source = 'ch_next_day'`)).toBe(0);

    // The fee of every imported transaction is an expense once; gateway clearing now equals the
    // gateway's balance on the objects both sides know.
    expect(await feeEntries()).toBe(6);
    expect(await balance(em, (await gatewayFeesAccount(em, 'CNY')).id)).toBe(60n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('reads the differences over GraphQL a page at a time: the operator only', async () => {
    const window = toGlobalId('SettlementWindow', w1.id);
    const seen: any[] = [];
    let after: string | null = null;
    do {
      const { body } = await graphql(server.url, LIST, { window, status: 'OPEN', first: 2, after }, as(readOnlyToken));
      expect(body.errors).toBeUndefined();
      seen.push(...body.data.reconciliationDifferences.edges.map((e: any) => e.node));
      after = body.data.reconciliationDifferences.pageInfo.hasNextPage ? body.data.reconciliationDifferences.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toHaveLength(6);
    expect(new Set(seen.map((d) => d.id)).size).toBe(6);
    expect(seen.find((d) => d.gatewayReference === 'ch_amount')).toMatchObject({ window, kind: 'AMOUNT_DIFFERS', gatewayType: 'charge', ourAmount: { amount: 2000, currency: 'CNY' }, gatewayAmount: { amount: 2500, currency: 'CNY' } });
    expect(seen.find((d) => d.kind === 'OURS_ONLY' && d.gatewayReference === null)).toMatchObject({ ourReference: `top-up:${topUps.unnamed}`, ourAmount: { amount: -400 }, gatewayAmount: null });

    expect((await graphql(server.url, LIST, { window }, as(merchantToken))).body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await graphql(server.url, LIST, { window })).body.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
    expect((await graphql(server.url, LIST, { window, after: 'bm9wZQ' }, as(operatorToken))).body.errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('an operator resolves a difference with a note over GraphQL; a merchant and a read-only operator may not; resolved is final', async () => {
    const amount = (await byRef(w1.id)).ch_amount!;
    const id = toGlobalId('ReconciliationDifference', amount.id);
    const resolve = (token: string, note: string) => graphql(server.url, RESOLVE, { input: { difference: id, note } }, as(token));

    expect((await resolve(merchantToken, 'not mine to say')).body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await resolve(readOnlyToken, 'reading only')).body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    for (const note of ['', '   ', 'x'.repeat(1001)]) {
      expect((await resolve(operatorToken, note)).body.data.resolveReconciliationDifference).toEqual({ difference: null, userErrors: [expect.objectContaining({ code: 'INVALID_INPUT', field: ['input', 'note'] })] });
    }
    const unknown = toGlobalId('ReconciliationDifference', randomUUID());
    expect((await graphql(server.url, RESOLVE, { input: { difference: unknown, note: 'x' } }, as(operatorToken))).body.data.resolveReconciliationDifference.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);

    const done = (await resolve(operatorToken, 'The gateway charged 25.00 for a 20.00 top-up: 5.00 reclaimed from the gateway, case GW-1187.')).body.data.resolveReconciliationDifference;
    expect(done.userErrors).toEqual([]);
    expect(done.difference).toMatchObject({ id, kind: 'AMOUNT_DIFFERS', status: 'RESOLVED', note: expect.stringContaining('GW-1187'), resolvedBy: expect.any(String), resolvedAt: expect.stringMatching(/T.*(Z|[+-]\d\d:\d\d)$/), gatewayReference: 'ch_amount' });
    expect((await resolve(operatorToken, 'again')).body.data.resolveReconciliationDifference.userErrors).toEqual([expect.objectContaining({ code: 'DIFFERENCE_NOT_OPEN' })]);
  });

  it('running it again imports nothing, books no fee twice, duplicates no difference and keeps the resolved one', async () => {
    const before = await differences(w1.id);
    const entries = await count('journal_entry');
    const runs = await count('reconciliation_run');
    const again = await reconcileWindow(em, gateway, w1.id, at(DAY3, '20:00:00'));
    expect(again).toMatchObject({ imported: 0, matched: 7, differences: 6, openDifferences: 5, gatewayFees: 60n });
    expect(await differences(w1.id)).toEqual(before);
    expect(await count('journal_entry')).toBe(entries);
    expect(await count('reconciliation_run')).toBe(runs + 1);
    expect((await byRef(w1.id)).ch_amount).toMatchObject({ status: 'RESOLVED', resolved_by: expect.any(String) });
  });

  it('a difference that later matches becomes MATCHED_LATER; a resolved one stays resolved', async () => {
    // The gateway lists the late charge (created after midnight), and names our refund.
    gatewayTxn('charge', 'ch_late', 500, at(DAY2, '00:00:30'));
    await setGatewayReference(em, unnamedRefundKey, 're_unnamed');
    gatewayTxn('refund', 're_unnamed', -400, at(DAY2, '09:00:00'));
    const run = await reconcileWindow(em, gateway, w1.id, at(DAY3, '21:00:00'));
    // ch_late and re_unnamed now match; ch_amount (resolved), ch_ours, ch_unknown and re_fails still differ.
    expect(run).toMatchObject({ imported: 2, matched: 9, differences: 4, openDifferences: 3, gatewayFees: 65n });
    const found = await byRef(w1.id);
    expect(found.ch_late).toMatchObject({ status: 'MATCHED_LATER', kind: 'OURS_ONLY' });
    expect(found[`ours:top-up:${topUps.unnamed}`]).toMatchObject({ status: 'MATCHED_LATER' });
    expect(found.ch_amount).toMatchObject({ status: 'RESOLVED' });
    expect(found.re_unnamed).toBeUndefined();
    expect(await feeEntries()).toBe(7);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('what the gateway did before our record of it arrived matches in the later window, and leaves the earlier one MATCHED_LATER', async () => {
    // The top-up behind ch_unknown was booked late (its webhook came after the window closed):
    // its item has the first day's date but lands in the next window.
    topUps.unknown = await paidTopUp(700, 'ch_unknown', at(DAY1, '18:00:05'));
    // We hear of the failed refund on the second day.
    await refundFailed(topUps.fails, 600, 're_fails', at(DAY2, '10:05:00'));
    w2 = await closeWindow(em, { cityId, businessDay: DAY2, closedBy: 'test', cutoff: CUTOFF, now: at(DAY3, '09:00:00') });
    const [item] = await em.execute<{ window_id: string }[]>(`select window_id from clearing_item where reference = ?`, [topUps.unknown]);
    expect(item!.window_id).toBe(w2.id);

    const run = await reconcileWindow(em, gateway, w2.id, at(DAY3, '22:00:00'));
    // The late top-up and the refund's failure (the gateway's +600, by its sign) match here; the
    // next day's charge nobody knows is this window's THEIRS_ONLY.
    expect(run).toMatchObject({ matched: 2, differences: 1, openDifferences: 1 });
    expect(await byRef(w2.id)).toEqual({ ch_next_day: expect.objectContaining({ kind: 'THEIRS_ONLY', gateway_amount: '900', status: 'OPEN' }) });
    // The first window, compared again: the charge is the second window's, the refund's −600 matches.
    const first = await byRef(w1.id);
    expect(first.ch_unknown).toMatchObject({ status: 'MATCHED_LATER' });
    expect(first.re_fails).toMatchObject({ status: 'MATCHED_LATER' });
    expect(first.ch_ours).toMatchObject({ status: 'OPEN' });
    // Each transaction's fee was booked once, whichever window imported it.
    expect(await feeEntries()).toBe(8);
    expect(await balance(em, (await gatewayFeesAccount(em, 'CNY')).id)).toBe(74n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('refuses an open window, an unknown one, and writes nothing when the gateway does not answer', async () => {
    const open = await ensureWindow(em, cityId, DAY3, CUTOFF);
    const reconcile = (window: string) => graphql(server.url, RECONCILE, { input: { window } }, as(operatorToken));
    expect((await reconcile(toGlobalId('SettlementWindow', open.id))).body.data.reconcileSettlementWindow).toEqual({ run: null, userErrors: [expect.objectContaining({ code: 'WINDOW_OPEN', field: ['input', 'window'] })] });
    expect((await reconcile(toGlobalId('SettlementWindow', randomUUID()))).body.data.reconcileSettlementWindow.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
    expect((await reconcile(toGlobalId('Payment', w1.id))).body.errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await graphql(server.url, RECONCILE, { input: { window: toGlobalId('SettlementWindow', w1.id) } }, as(readOnlyToken))).body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await graphql(server.url, RECONCILE, { input: { window: toGlobalId('SettlementWindow', w1.id) } }, as(merchantToken))).body.errors?.[0].extensions.code).toBe('FORBIDDEN');

    const snapshot = async () => ({ runs: await count('reconciliation_run'), txns: await count('gateway_balance_transaction'), entries: await count('journal_entry'), diffs: await differences(w1.id) });
    const before = await snapshot();
    // A new transaction is waiting, but the gateway fails half-way through the pages.
    gatewayTxn('charge', 'ch_during_outage', 100, at(DAY1, '20:00:00'));
    expect(books.length).toBeGreaterThan(3);
    // The first page answers, then the gateway goes down (the server's client retries, and gives up).
    failAfterCalls = listCalls + 1;
    try {
      const res = await reconcile(toGlobalId('SettlementWindow', w1.id));
      expect(res.body.data.reconcileSettlementWindow).toEqual({ run: null, userErrors: [expect.objectContaining({ code: 'GATEWAY_UNAVAILABLE' })] });
      expect(listCalls - failAfterCalls).toBe(3);
    } finally {
      failAfterCalls = null;
    }
    expect(await snapshot()).toEqual(before);
    await expect(reconcileWindow(em, null, w1.id)).rejects.toThrow(SettlementError);
  });
});
