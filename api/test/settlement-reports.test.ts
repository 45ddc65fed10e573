/**
 * Settlement CSV downloads over real HTTP: windows cleared by the services (as the cut-off job
 * would), then lines, interchange and statements fetched with each kind of OAuth token.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import type { PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { type ClearingKind, type ParticipantKind, recordClearingItem } from '../src/settlement/clearing-items.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { csvText, toCsv } from '../src/csv/csv-writer.js';
import { closeWindow } from '../src/settlement/windows.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { feeFor } from '../src/tenancy/fee.js';
import { createBiller, createCity, createFeePlan, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';
import { payableAccount } from '../src/ledger/accounts.js';
import { parseCsv } from './support/csv.js';

let db: TestDatabase;
let server: TestServer;
let em: EntityManager;
let n = 0;

const at = (local: string) => new Date(`${local}+08:00`);
const PLAN = { basisPoints: 60, fixedFee: 3n, minimumFee: 10n };
const SHOP_NAME = '=HYPERLINK("http://evil.test","Noodles, Inc")';
const TEA_NAME = 'Tea\nHouse';

const ids = {} as {
  a: { cityId: string; cardCompanyId: string };
  b: { cityId: string; cardCompanyId: string };
  c: { cityId: string; cardCompanyId: string };
  shop: string;
  tea: string;
  away: string;
  biller: string;
  day2: string;
  day3: string;
  day4: string;
  bDay2: string;
};
const tokens = {} as Record<'operator' | 'issuerA' | 'issuerB' | 'issuerC' | 'shop' | 'tea' | 'biller' | 'shopNoScope', string>;

/** A settleable movement as the payment flows book it: the ledger entry and its clearing item. */
async function book(kind: ClearingKind, participant: { kind: ParticipantKind; id: string }, amount: bigint, p: { cardCompanyId: string; occurredAt: Date }) {
  const key = `report-test:${++n}`;
  const funding = await openAccount(em, { code: 'test.card-purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, participant.kind, participant.id, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(funding.id, amount)] : [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant, cardCompanyId: p.cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: p.occurredAt });
  });
}

async function settleDay(cityId: string, day: string, clear = true) {
  const next = new Date(Date.parse(`${day}T09:00:00+08:00`) + 86_400_000);
  const window = await closeWindow(em, { cityId, businessDay: day, closedBy: 'test', cutoff: '02:00', now: next });
  if (clear) await clearWindow(em, window.id);
  return window.id;
}

async function tokenFor(kind: PrincipalKind, tenantId: string | null, scopes: string[]) {
  const made = await createClient(em, { kind, tenantId, name: `${kind} reports`, scopes });
  return (await clientCredentialsToken(await discover(server.url), made.client.client_id, made.clientSecret!, scopes.join(' '))).access_token;
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  em = db.orm.em.fork();
  const city = async (code: string, cardCompanyName: string) => {
    const made = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName });
    return { cityId: made.city.id, cardCompanyId: made.cardCompany.id };
  };
  ids.a = await city('RPA', '@A Card Co');
  ids.b = await city('RPB', 'B Card Co');
  ids.c = await city('RPC', 'C Card Co');
  const plan = await createFeePlan(em, { name: 'reports 0.6%', ...PLAN, currency: 'CNY' });
  ids.shop = (await createMerchant(em, { cityId: ids.a.cityId, name: SHOP_NAME, feePlanId: plan.id })).id;
  ids.tea = (await createMerchant(em, { cityId: ids.a.cityId, name: TEA_NAME })).id;
  ids.away = (await createMerchant(em, { cityId: ids.b.cityId, name: 'Away Shop' })).id;
  ids.biller = (await createBiller(em, { cityId: ids.a.cityId, name: 'Water, Gas & Power', kind: BillerKind.WATER })).id;

  const merchant = (id: string) => ({ kind: 'MERCHANT' as const, id });
  // 2 March in A: two sales of the shop (one with a B card: interchange), the tea house, a bill, transit.
  await book('PAYMENT', merchant(ids.shop), 1_250n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-02T10:00:00') });
  await book('PAYMENT', merchant(ids.shop), 4_000n, { cardCompanyId: ids.b.cardCompanyId, occurredAt: at('2026-03-02T11:00:00') });
  await book('PAYMENT', merchant(ids.tea), 700n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-02T12:00:00') });
  await book('BILL_PAYMENT', { kind: 'BILLER', id: ids.biller }, 3_000n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-02T13:00:00') });
  await book('TRANSIT', { kind: 'CARD_COMPANY', id: ids.a.cardCompanyId }, 200n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-02T08:00:00') });
  // 2 March in B: an A card at the away shop.
  await book('PAYMENT', merchant(ids.away), 999n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-02T15:00:00') });
  // 3 March in A: a big refund of the shop, carried forward.
  await book('REFUND', merchant(ids.shop), 6_000n, { cardCompanyId: ids.a.cardCompanyId, occurredAt: at('2026-03-03T10:00:00') });

  ids.day2 = await settleDay(ids.a.cityId, '2026-03-02');
  ids.bDay2 = await settleDay(ids.b.cityId, '2026-03-02');
  ids.day3 = await settleDay(ids.a.cityId, '2026-03-03');
  ids.day4 = await settleDay(ids.a.cityId, '2026-03-04', false);

  const read = ['settlements:read'];
  tokens.operator = await tokenFor('OPERATOR', null, read);
  tokens.issuerA = await tokenFor('ISSUER', ids.a.cardCompanyId, read);
  tokens.issuerB = await tokenFor('ISSUER', ids.b.cardCompanyId, read);
  tokens.issuerC = await tokenFor('ISSUER', ids.c.cardCompanyId, read);
  tokens.shop = await tokenFor('MERCHANT', ids.shop, read);
  tokens.tea = await tokenFor('MERCHANT', ids.tea, read);
  tokens.biller = await tokenFor('BILLER', ids.biller, read);
  tokens.shopNoScope = await tokenFor('MERCHANT', ids.shop, ['payments:read']);
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function download(path: string, token?: string) {
  const res = await fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, text, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), rows: res.status === 200 ? parseCsv(text) : [] };
}

const gid = (windowId: string) => toGlobalId('SettlementWindow', windowId);
const lines = (windowId: string) => `/settlement/windows/${gid(windowId)}/lines.csv`;
const interchange = (windowId: string) => `/settlement/windows/${gid(windowId)}/interchange.csv`;
const LINE_HEADER =
  'window,city,business_day,line,participant_kind,participant,participant_name,currency,sales_count,refund_count,gross,refunds,fees,net,carried_in,due,payout_amount,status,payout_status,top_up_count,top_ups,top_up_refunds';

describe('CSV cells', () => {
  it('quotes commas, quotes and line breaks, and makes formula-looking text inert; integers stay numbers', () => {
    expect(csvText('plain')).toBe('plain');
    expect(csvText('a, b')).toBe('"a, b"');
    expect(csvText('say "hi"')).toBe('"say ""hi"""');
    expect(csvText('two\nlines')).toBe('"two\nlines"');
    for (const lead of ['=', '+', '-', '@']) expect(csvText(`${lead}1+1`)).toBe(`'${lead}1+1`);
    expect(csvText('=SUM(A1,A2)')).toBe(`"'=SUM(A1,A2)"`);
    const columns = [['name', 'text', (r: { v: string }) => r.v] as const, ['amount', 'int', () => '-1300'] as const];
    expect(toCsv(columns, [{ v: '-x' }])).toBe(`name,amount\r\n'-x,-1300\r\n`);
    expect(() => toCsv([['amount', 'int', () => '=1'] as const], [{}])).toThrow(/not an integer cell/);
  });
});

describe('GET /settlement/windows/:windowId/lines.csv', () => {
  it('gives the operator a cleared window’s lines: one per participant, amounts in minor units, names escaped', async () => {
    const res = await download(lines(ids.day2), tokens.operator);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/csv/);
    expect(res.disposition).toBe('attachment; filename="settlement-lines-RPA-2026-03-02.csv"');
    expect(res.text.split('\r\n')[0]).toBe(LINE_HEADER);
    const fees = feeFor(PLAN, 1_250n) + feeFor(PLAN, 4_000n);
    const shop = res.rows.find((r) => r.participant === toGlobalId('Merchant', ids.shop))!;
    expect(shop).toMatchObject({
      window: gid(ids.day2),
      city: 'RPA',
      business_day: '2026-03-02',
      participant_kind: 'MERCHANT',
      participant_name: `'${SHOP_NAME}`,
      currency: 'CNY',
      sales_count: '2',
      refund_count: '0',
      gross: '5250',
      refunds: '0',
      fees: String(fees),
      net: String(5_250n - fees),
      carried_in: '0',
      due: String(5_250n - fees),
      payout_amount: String(5_250n - fees),
      status: 'PAYING',
      payout_status: 'PENDING',
    });
    // The raw text: the formula neutralised, quoted, its quotes doubled; the line break kept inside quotes.
    expect(res.text).toContain(`,"'=HYPERLINK(""http://evil.test"",""Noodles, Inc"")",CNY,`);
    expect(res.text).toContain(`,"Tea\nHouse",CNY,`);
    expect(res.rows.map((r) => [r.participant_kind, r.participant_name, r.gross])).toEqual(
      expect.arrayContaining([
        ['MERCHANT', TEA_NAME, '700'],
        ['BILLER', 'Water, Gas & Power', '3000'],
        ['CARD_COMPANY', "'@A Card Co", '200'],
      ]),
    );
    expect(res.rows).toHaveLength(4);
    // The uuid is accepted too, for the same file.
    expect((await download(`/settlement/windows/${ids.day2}/lines.csv`, tokens.operator)).text).toBe(res.text);
  });

  it('shows a negative due as a plain negative integer', async () => {
    const res = await download(lines(ids.day3), tokens.operator);
    expect(res.rows).toEqual([expect.objectContaining({ participant_name: `'${SHOP_NAME}`, refund_count: '1', refunds: '6000', net: '-6000', due: '-6000', payout_amount: '0', status: 'CARRIED_FORWARD', payout_status: '' })]);
    expect(res.text).toContain(',-6000,0,-6000,0,CARRIED_FORWARD,,');
  });

  it('lets a card company read its own city’s windows only, and nobody else', async () => {
    const operator = await download(lines(ids.day2), tokens.operator);
    expect(await download(lines(ids.day2), tokens.issuerA)).toMatchObject({ status: 200, text: operator.text });
    expect((await download(lines(ids.day2), tokens.issuerB)).status).toBe(404);
    expect((await download(lines(ids.bDay2), tokens.issuerA)).status).toBe(404);
    expect((await download(lines(ids.bDay2), tokens.issuerB)).rows.map((r) => r.participant_name)).toEqual(['Away Shop']);
    expect((await download(lines(ids.day2), tokens.shop)).status).toBe(404);
    expect((await download(lines(ids.day2), tokens.biller)).status).toBe(404);
  });

  it('answers 401 without a token, 403 without the scope, 400 for a bad id, 404 for an unknown window, 409 before clearing', async () => {
    expect((await download(lines(ids.day2))).status).toBe(401);
    expect((await download(lines(ids.day2), 'not-a-token')).status).toBe(401);
    expect((await download(lines(ids.day2), tokens.shopNoScope)).status).toBe(403);
    expect((await download(`/settlement/windows/${toGlobalId('Merchant', ids.shop)}/lines.csv`, tokens.operator)).status).toBe(400);
    expect((await download('/settlement/windows/nonsense!/lines.csv', tokens.operator)).status).toBe(400);
    expect((await download(lines('00000000-0000-4000-8000-000000000000'), tokens.operator)).status).toBe(404);
    const open = await download(lines(ids.day4), tokens.operator);
    expect(open.status).toBe(409);
    expect(open.text).toMatch(/CLOSED: it has no lines until it is cleared/);
  });
});

describe('GET /settlement/windows/:windowId/interchange.csv', () => {
  const header = 'window,city,business_day,issuer,issuer_name,acquirer,acquirer_name,currency,count,gross,refunds,net';

  it('gives the operator each issuer→acquirer position with the card companies’ names', async () => {
    const res = await download(interchange(ids.day2), tokens.operator);
    expect(res.status).toBe(200);
    expect(res.disposition).toBe('attachment; filename="settlement-interchange-RPA-2026-03-02.csv"');
    expect(res.text.split('\r\n')[0]).toBe(header);
    expect(res.rows).toEqual([
      {
        window: gid(ids.day2),
        city: 'RPA',
        business_day: '2026-03-02',
        issuer: toGlobalId('CardCompany', ids.b.cardCompanyId),
        issuer_name: 'B Card Co',
        acquirer: toGlobalId('CardCompany', ids.a.cardCompanyId),
        acquirer_name: "'@A Card Co",
        currency: 'CNY',
        count: '1',
        gross: '4000',
        refunds: '0',
        net: '4000',
      },
    ]);
  });

  it('shows a card company the rows it is issuer or acquirer of; other windows and other callers get 404', async () => {
    const operator = await download(interchange(ids.day2), tokens.operator);
    // A (the acquirer, its own city) and B (the issuer, another city's window) see the row.
    expect((await download(interchange(ids.day2), tokens.issuerA)).text).toBe(operator.text);
    expect((await download(interchange(ids.day2), tokens.issuerB)).text).toBe(operator.text);
    // C has no position there.
    expect((await download(interchange(ids.day2), tokens.issuerC)).status).toBe(404);
    // B's window: A issued the visiting card.
    expect((await download(interchange(ids.bDay2), tokens.issuerA)).rows.map((r) => [r.issuer_name, r.acquirer_name, r.net])).toEqual([["'@A Card Co", 'B Card Co', '999']]);
    // Its own city's window with no position of its own: an empty file.
    expect(await download(interchange(ids.day3), tokens.issuerA)).toMatchObject({ status: 200, text: `${header}\r\n`, rows: [] });
    expect((await download(interchange(ids.day2), tokens.shop)).status).toBe(404);
    expect((await download(interchange(ids.day2), tokens.biller)).status).toBe(404);
    expect((await download(interchange(ids.day4), tokens.issuerA)).status).toBe(409);
    expect((await download(interchange(ids.day4), tokens.issuerB)).status).toBe(404);
  });
});

describe('GET /settlement/statements.csv', () => {
  const period = '?from=2026-03-01&to=2026-03-31';

  it('gives a merchant its own lines over the period, with the window and payout status, and never another merchant’s', async () => {
    const res = await download(`/settlement/statements.csv${period}`, tokens.shop);
    expect(res.status).toBe(200);
    expect(res.disposition).toBe('attachment; filename="settlement-statements-2026-03-01-to-2026-03-31.csv"');
    expect(res.text.split('\r\n')[0]).toBe(LINE_HEADER);
    expect(res.rows.map((r) => [r.window, r.city, r.business_day, r.participant, r.status, r.payout_status])).toEqual([
      [gid(ids.day2), 'RPA', '2026-03-02', toGlobalId('Merchant', ids.shop), 'PAYING', 'PENDING'],
      [gid(ids.day3), 'RPA', '2026-03-03', toGlobalId('Merchant', ids.shop), 'CARRIED_FORWARD', ''],
    ]);
    const tea = await download(`/settlement/statements.csv${period}`, tokens.tea);
    expect(tea.rows.map((r) => [r.participant_name, r.gross, r.payout_amount])).toEqual([[TEA_NAME, '700', '700']]);
    // Tenancy: neither file names the other merchant.
    expect(tea.text).not.toContain(toGlobalId('Merchant', ids.shop));
    expect(tea.text).not.toContain('Noodles');
    expect(res.text).not.toContain(toGlobalId('Merchant', ids.tea));
    expect(res.text).not.toContain('Tea');
    // The period filters by business day.
    expect((await download('/settlement/statements.csv?from=2026-03-03&to=2026-03-03', tokens.shop)).rows.map((r) => r.business_day)).toEqual(['2026-03-03']);
  });

  it('gives a biller and a card company their own lines; the operator has none', async () => {
    expect((await download(`/settlement/statements.csv${period}`, tokens.biller)).rows.map((r) => [r.participant_kind, r.participant_name, r.gross])).toEqual([['BILLER', 'Water, Gas & Power', '3000']]);
    expect((await download(`/settlement/statements.csv${period}`, tokens.issuerA)).rows.map((r) => [r.participant_kind, r.gross])).toEqual([['CARD_COMPANY', '200']]);
    expect((await download(`/settlement/statements.csv${period}`, tokens.issuerC)).rows).toEqual([]);
    expect((await download(`/settlement/statements.csv${period}`, tokens.operator)).status).toBe(403);
  });

  it('refuses a missing, malformed, reversed or too long period', async () => {
    for (const q of ['', '?from=2026-03-01', '?from=2026-3-1&to=2026-03-31', '?from=2026-02-30&to=2026-03-31', '?from=2026-03-31&to=2026-03-01', '?from=2025-01-01&to=2026-03-01']) {
      expect((await download(`/settlement/statements.csv${q}`, tokens.shop)).status, q).toBe(400);
    }
    expect((await download(`/settlement/statements.csv${period}`)).status).toBe(401);
    expect((await download(`/settlement/statements.csv${period}`, tokens.shopNoScope)).status).toBe(403);
  });
});
