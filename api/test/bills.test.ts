/**
 * Billers publish bills and apps find them, over real HTTP: a water utility's OAuth client publishes
 * one bill, many (all or nothing), and CSV files (each refused row reported, nothing half-imported);
 * amends and withdraws them; answers look-ups live from its own HTTP server (signed requests, and
 * its failures); a cardholder app signed in with PKCE finds an account's bills with what they owe
 * today. Another biller never sees any of it.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient, type OneCardError } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { importBillsCsv } from '../src/bills/bills.import.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { TenantStatus } from '../src/tenancy/merchant.entity.js';
import { createBiller, createCity, createMerchant, updateBiller } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let cityId: string;
let cardCompanyId: string;
let waterId: string;
let gasId: string;
let water: OneCardClient;
let waterReader: OneCardClient;
let gas: OneCardClient;
let merchant: OneCardClient;
let app: ReturnType<typeof bearerClient>;

const WATER = () => toGlobalId('Biller', waterId);

async function client(kind: PrincipalKind, tenantId: string, scopes: string[]): Promise<OneCardClient> {
  const made = await createClient(db.orm.em.fork(), { kind, tenantId, name: `${kind} bills test`, scopes });
  return new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: scopes.join(' '), allowInsecureHttp: true });
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  cityId = gz.city.id;
  cardCompanyId = gz.cardCompany.id;
  waterId = (await createBiller(em, { cityId, name: 'GZ Water', kind: BillerKind.WATER })).id;
  gasId = (await createBiller(em, { cityId, name: 'GZ Gas', kind: BillerKind.GAS })).id;
  water = await client('BILLER', waterId, ['bills:read', 'bills:write']);
  waterReader = await client('BILLER', waterId, ['bills:read']);
  gas = await client('BILLER', gasId, ['bills:read', 'bills:write']);
  merchant = await client('MERCHANT', (await createMerchant(em, { cityId, name: 'Tea House' })).id, ['payments:read']);
  await createCardholder(em, { username: 'li', password: 'li password 1', displayName: 'Li' });
  const redirectUri = 'http://127.0.0.1:8798/callback';
  const { client: appClient } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: cardCompanyId, name: 'Card App', scopes: ['card:read'], redirectUris: [redirectUri] });
  app = bearerClient(server.url, await cardholderAccessToken(server.url, { clientId: appClient.client_id, redirectUri, username: 'li', password: 'li password 1', scope: 'card:read' }));
});

afterAll(async () => {
  await server?.close();
  await db?.close();
});

// ——— the API, as a biller and an app use it ———

const BILL = `id biller billerName accountNumber period amountDue { amount currency } dueDate lateFee { kind amount basisPoints cap }
  lateFeeAmount { amount } amountOwed { amount } amountPaid { amount } remaining { amount } allowPartial billerReference status version source`;
const PUBLISH = `mutation($input: BillInput!) { publishBill(input: $input) { bill { ${BILL} } userErrors { code field message } } }`;
const PUBLISH_MANY = `mutation($input: PublishBillsInput!) { publishBills(input: $input) { bills { ${BILL} } refusals { index field code message } userErrors { code field message } } }`;
const IMPORT = `mutation($input: ImportBillsCsvInput!) { importBillsCsv(input: $input) {
  import { id fileName status rowCount accepted refused refusals { row field code message } refusalsNotListed } userErrors { code field message } } }`;
const AMEND = `mutation($input: AmendBillInput!) { amendBill(input: $input) { bill { ${BILL} } userErrors { code field message } } }`;
const WITHDRAW = `mutation($input: WithdrawBillInput!) { withdrawBill(input: $input) { bill { ${BILL} } userErrors { code field message } } }`;
const SET_FETCH = `mutation($input: SetBillerFetchUrlInput!) { setBillerFetchUrl(input: $input) { liveLookUp { url enabled } secret userErrors { code field message } } }`;
const GET = `query($id: ID!) { bill(id: $id) { ${BILL} } }`;
const LIST = `query($filter: BillFilterInput, $first: Int, $after: String) { bills(filter: $filter, first: $first, after: $after) { edges { cursor node { id billerReference } } pageInfo { hasNextPage endCursor } } }`;
const FOR_ACCOUNT = `query($biller: ID!, $account: String!) { billsForAccount(biller: $biller, accountNumber: $account) { biller billerName accountNumber lookUp bills { ${BILL} } userErrors { code field message } } }`;
// An app whose holder has not bound the account sees a payer's view: no billerReference, no amountPaid
// (authorization-bill-lookups.test.ts); the biller reads those.
const PAYER_BILL = BILL.replace(' amountPaid { amount }', '').replace(' billerReference', '');
const FOR_ACCOUNT_PAYER = FOR_ACCOUNT.replace(BILL, PAYER_BILL);
const GET_PAYER = `query($id: ID!) { bill(id: $id) { ${PAYER_BILL} } }`;

type Money = { amount: number; currency?: string };
type Bill = {
  id: string;
  accountNumber: string;
  period: string;
  amountDue: Money;
  dueDate: string;
  lateFee: { kind: string; amount: number | null; basisPoints: number | null; cap: number | null };
  lateFeeAmount: Money;
  amountOwed: Money;
  amountPaid: Money;
  remaining: Money;
  allowPartial: boolean;
  billerReference: string;
  status: string;
  version: number;
  source: string;
};
type Errors = { code: string; field: string[] | null; message: string }[];
type Requester = { request: OneCardClient['request'] };
type AccountBills = { biller: string; billerName: string; accountNumber: string; lookUp: string; bills: Bill[]; userErrors: Errors } | null;

let refs = 0;
const ref = (prefix = 'W') => `${prefix}-${++refs}`;
const aBill = (extra: Record<string, unknown> = {}) => ({ accountNumber: 'A-1001', period: '2026-10', amountDue: 4_520, dueDate: '2099-11-30', billerReference: ref(), ...extra });

async function publish(input: Record<string, unknown>, by: Requester = water) {
  return (await by.request<{ publishBill: { bill: Bill | null; userErrors: Errors } }>(PUBLISH, { input })).publishBill;
}

async function published(extra: Record<string, unknown> = {}, by: Requester = water): Promise<Bill> {
  const made = await publish(aBill(extra), by);
  expect(made.userErrors).toEqual([]);
  return made.bill!;
}

const forAccount = async (account: string, by: Requester = app, biller = WATER()) => (await by.request<{ billsForAccount: AccountBills }>(by === app ? FOR_ACCOUNT_PAYER : FOR_ACCOUNT, { biller, account })).billsForAccount;
const getBill = async (id: string, by: Requester = water) => (await by.request<{ bill: Bill | null }>(by === app ? GET_PAYER : GET, { id })).bill;
/** The biller's references of bills an app found (the app itself may not read them). */
const referenceOf = async (bill: Bill) => (await getBill(bill.id))!.billerReference;
const amend = async (input: Record<string, unknown>, by: Requester = water) => (await by.request<{ amendBill: { bill: Bill | null; userErrors: Errors } }>(AMEND, { input })).amendBill;
const withdraw = async (input: Record<string, unknown>, by: Requester = water) => (await by.request<{ withdrawBill: { bill: Bill | null; userErrors: Errors } }>(WITHDRAW, { input })).withdrawBill;
const importCsv = async (csv: string, fileName = 'bills.csv', by: Requester = water) =>
  (await by.request<{ importBillsCsv: { import: { id: string; status: string; rowCount: number; accepted: number; refused: number; refusals: { row: number; field: string | null; code: string; message: string }[]; refusalsNotListed: number } | null; userErrors: Errors } }>(IMPORT, { input: { fileName, csv } })).importBillsCsv;

async function billCount(billerId = waterId): Promise<number> {
  const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from bill where biller_id = ?`, [billerId]);
  return row!.n;
}

const uuidOf = (globalId: string) => fromGlobalId(globalId).id;

/** A payment of the bill waiting for a card, as the paying side will make them. */
async function paymentWaiting(billId: string, amount = 100): Promise<string> {
  const id = randomUUID();
  await db.orm.em.fork().execute(`insert into bill_payment (id, bill_id, biller_id, amount, currency, status, created_by_client, expires_at) values (?, ?, ?, ?, 'CNY', 'REQUIRES_CARD', 'test', now() + interval '15 minutes')`, [
    id,
    uuidOf(billId),
    waterId,
    amount,
  ]);
  return id;
}

/** What paying does to a bill, until the paying side exists: some of it paid. */
const markPaid = (billId: string, amount: number) => db.orm.em.fork().execute(`update bill set amount_paid = ? where id = ?`, [amount, uuidOf(billId)]);

// ——— publishing ———

describe('publishing one bill', () => {
  it('the biller publishes a bill; it is OPEN at version 1 in the city’s currency, owing its amount before the due date', async () => {
    const bill = await published({ allowPartial: true, lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 300 } });
    expect(bill).toMatchObject({
      accountNumber: 'A-1001',
      period: '2026-10',
      amountDue: { amount: 4520, currency: 'CNY' },
      dueDate: '2099-11-30',
      lateFee: { kind: 'DAILY_BASIS_POINTS', amount: null, basisPoints: 5, cap: 300 },
      lateFeeAmount: { amount: 0 },
      amountOwed: { amount: 4520 },
      amountPaid: { amount: 0 },
      remaining: { amount: 4520 },
      allowPartial: true,
      status: 'OPEN',
      version: 1,
      source: 'PUBLISHED',
    });
    expect(await getBill(bill.id)).toEqual(bill);
  });

  it('refuses a reference the biller already used, and every bad field at once', async () => {
    const first = await published();
    const again = await publish(aBill({ billerReference: first.billerReference }));
    expect(again).toEqual({ bill: null, userErrors: [{ code: 'DUPLICATE_BILLER_REFERENCE', field: ['input', 'billerReference'], message: `you already have a bill with billerReference ${first.billerReference}` }] });
    const bad = await publish(aBill({ accountNumber: ' A-1 ', amountDue: 0, dueDate: '1999-12-31', lateFee: { kind: 'FIXED' } }));
    expect(bad.bill).toBeNull();
    expect(bad.userErrors.map((e) => [e.code, e.field?.join('.')])).toEqual([
      ['INVALID_INPUT', 'input.accountNumber'],
      ['INVALID_INPUT', 'input.amountDue'],
      ['INVALID_INPUT', 'input.dueDate'],
      ['INVALID_INPUT', 'input.lateFee.amount'],
    ]);
  });

  it('a client without bills:write, a merchant, or a suspended biller cannot publish', async () => {
    await expect(publish(aBill(), waterReader)).rejects.toMatchObject({ code: 'FORBIDDEN' } satisfies Partial<OneCardError>);
    await expect(publish(aBill(), merchant)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const em = db.orm.em.fork();
    const sleepy = await createBiller(em, { cityId, name: 'GZ Heating', kind: BillerKind.HEATING });
    const heating = await client('BILLER', sleepy.id, ['bills:write']);
    await updateBiller(em, sleepy.id, { status: TenantStatus.SUSPENDED });
    expect((await publish(aBill(), heating)).userErrors).toEqual([{ code: 'FORBIDDEN_OPERATION', field: ['input'], message: 'the biller is suspended: it publishes and changes no bills' }]);
  });
});

describe('publishing many bills: all or nothing', () => {
  it('publishes them all, in order', async () => {
    const bills = [aBill({ accountNumber: 'M-1' }), aBill({ accountNumber: 'M-2', lateFee: { kind: 'FIXED', amount: 200 } }), aBill({ accountNumber: 'M-3' })];
    const { publishBills } = await water.request<{ publishBills: { bills: Bill[]; refusals: unknown[]; userErrors: Errors } }>(PUBLISH_MANY, { input: { bills } });
    expect(publishBills.userErrors).toEqual([]);
    expect(publishBills.refusals).toEqual([]);
    expect(publishBills.bills.map((b) => [b.accountNumber, b.billerReference, b.lateFee.kind])).toEqual(bills.map((b) => [b.accountNumber, b.billerReference, b.accountNumber === 'M-2' ? 'FIXED' : 'NONE']));
  });

  it('one bad item: nothing is written, and each bad item is reported by index and field', async () => {
    const existing = await published();
    const before = await billCount();
    const bills = [
      aBill(), // fine
      aBill({ amountDue: 0 }), // 1: amount
      aBill({ billerReference: existing.billerReference }), // 2: taken
      aBill({ billerReference: 'SAME' }), // 3: fine alone
      aBill({ billerReference: 'SAME', lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5 } }), // 4: twice in the list, and no cap
      aBill({ period: '' }), // 5: period
    ];
    const { publishBills } = await water.request<{ publishBills: { bills: Bill[] | null; refusals: { index: number; field: string; code: string; message: string }[]; userErrors: Errors } }>(PUBLISH_MANY, { input: { bills } });
    expect(publishBills.bills).toBeNull();
    expect(publishBills.refusals.map((r) => [r.index, r.field, r.code])).toEqual([
      [1, 'amountDue', 'INVALID_INPUT'],
      [2, 'billerReference', 'DUPLICATE_BILLER_REFERENCE'],
      [4, 'lateFee.cap', 'INVALID_INPUT'],
      [4, 'billerReference', 'DUPLICATE_BILLER_REFERENCE'],
      [5, 'period', 'INVALID_INPUT'],
    ]);
    expect(publishBills.refusals[3]!.message).toBe('billerReference SAME is also bills[3]');
    expect(publishBills.userErrors.map((e) => e.field!.join('.'))).toEqual(['input.bills.1.amountDue', 'input.bills.2.billerReference', 'input.bills.4.lateFee.cap', 'input.bills.4.billerReference', 'input.bills.5.period']);
    expect(await billCount()).toBe(before);
  });

  it('refuses an empty list and more than 1000 bills', async () => {
    const none = await water.request<{ publishBills: { userErrors: Errors } }>(PUBLISH_MANY, { input: { bills: [] } });
    expect(none.publishBills.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'bills'], message: 'give at least one bill' }]);
    const many = await water.request<{ publishBills: { userErrors: Errors } }>(PUBLISH_MANY, { input: { bills: Array.from({ length: 1001 }, () => aBill()) } });
    expect(many.publishBills.userErrors[0]!.message).toMatch(/at most 1000 bills at once/);
  });
});

// ——— CSV ———

const HEADER = 'account_number,period,amount_due,due_date,biller_reference,allow_partial,late_fee_kind,late_fee_amount,late_fee_basis_points,late_fee_cap';

describe('importing a CSV file', () => {
  const good = (n: number) => `C-${n},2026-10,${1000 + n},2099-11-30,CSV-${n},,,,,`;

  it('bad rows are each reported by row and column, nothing is imported, and the import is recorded; the fixed file then imports every row', async () => {
    const before = await billCount();
    const rows = [
      good(1),
      'C-2,2026-10,12.50,2099-11-30,CSV-2,,,,,', // line 3: amount in yuan
      good(3),
      'C-4,2026-10,100,2099-11-31,CSV-4,,FIXED,,,', // line 5: date and fixed fee without amount
      good(5),
      'C-6,2026-10,100,2099-11-30,CSV-1,,,,,', // line 7: the reference of line 2
    ];
    const refused = await importCsv([HEADER, ...rows].join('\r\n'), 'october.csv');
    expect(refused.userErrors).toEqual([{ code: 'BILL_IMPORT_REFUSED', field: ['input', 'csv'], message: "3 of 6 rows refused; nothing was imported (the import's refusals list why)" }]);
    expect(refused.import).toMatchObject({ status: 'REFUSED', rowCount: 6, accepted: 0, refused: 3, refusalsNotListed: 0 });
    expect(refused.import!.refusals.map((r) => [r.row, r.field, r.code])).toEqual([
      [3, 'amount_due', 'INVALID_INPUT'],
      [5, 'due_date', 'INVALID_INPUT'],
      [5, 'late_fee_amount', 'INVALID_INPUT'],
      [7, 'biller_reference', 'DUPLICATE_BILLER_REFERENCE'],
    ]);
    expect(refused.import!.refusals[0]!.message).toMatch(/^amount_due is a whole number of minor units/);
    expect(await billCount()).toBe(before);

    const fixed = [HEADER, good(1), good(2), good(3), 'C-4,2026-10,100,2099-11-30,CSV-4,,FIXED,300,,', good(5), good(6)].join('\r\n');
    const imported = await importCsv(fixed, 'october-fixed.csv');
    expect(imported.userErrors).toEqual([]);
    expect(imported.import).toMatchObject({ fileName: 'october-fixed.csv', status: 'IMPORTED', rowCount: 6, accepted: 6, refused: 0, refusals: [] });
    expect(await billCount()).toBe(before + 6);
    const c4 = await water.request<{ bills: { edges: { node: { id: string } }[] } }>(LIST, { filter: { billerReference: 'CSV-4' } });
    expect(await getBill(c4.bills.edges[0]!.node.id)).toMatchObject({ accountNumber: 'C-4', amountDue: { amount: 100 }, lateFee: { kind: 'FIXED', amount: 300 } });

    // Both imports are recorded and readable by id; the same file again is refused row by row.
    const [{ n }] = (await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from bill_import where biller_id = ? and file_name like 'october%'`, [waterId])) as [{ n: number }];
    expect(n).toBe(2);
    const node = await water.request<{ node: { status: string; refusals: unknown[] } | null }>(`query($id: ID!) { node(id: $id) { ... on BillImport { status refusals { row } } } }`, { id: refused.import!.id });
    expect(node.node).toMatchObject({ status: 'REFUSED', refusals: [{ row: 3 }, { row: 5 }, { row: 5 }, { row: 7 }] });
    expect((await gas.request<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: refused.import!.id })).node).toBeNull();
    const twice = await importCsv(fixed, 'october-fixed.csv');
    expect(twice.import).toMatchObject({ status: 'REFUSED', refused: 6 });
    expect(new Set(twice.import!.refusals.map((r) => r.code))).toEqual(new Set(['DUPLICATE_BILLER_REFERENCE']));
  });

  it('reads what spreadsheets write: a byte order mark, quoted values with commas and quotes, blank lines, columns in any order', async () => {
    const csv = '\uFEFFbiller_reference,account_number,period,amount_due,due_date,allow_partial\n"Q-1","12,34","Oct ""2026""",880,2099-12-01,yes\n\nQ-2,5678,2026-10,990,2099-12-01,\n';
    const imported = await importCsv(csv, '水费.csv');
    expect(imported.userErrors).toEqual([]);
    expect(imported.import).toMatchObject({ fileName: '水费.csv', status: 'IMPORTED', accepted: 2 });
    const q1 = (await forAccount('12,34', water))!.bills;
    expect(q1).toEqual([expect.objectContaining({ billerReference: 'Q-1', period: 'Oct "2026"', allowPartial: true, amountDue: { amount: 880, currency: 'CNY' } })]);
  });

  it('a file that is not CSV, or has a wrong header, is refused as a whole and recorded', async () => {
    const broken = await importCsv(`${HEADER}\nX-1,2026-10,"100,2099-11-30,X-1,,,,,\n`, 'broken.csv');
    expect(broken.userErrors[0]).toMatchObject({ code: 'INVALID_CSV', message: expect.stringMatching(/^line 2: a quoted field is never closed/) });
    expect(broken.import).toMatchObject({ status: 'REFUSED', rowCount: 0, refusals: [{ row: 2, field: null, code: 'INVALID_CSV' }] });
    const header = await importCsv('account,period,amount\n1,2,3\n', 'header.csv');
    expect(header.userErrors[0]).toMatchObject({ code: 'INVALID_CSV', message: expect.stringMatching(/^the header: unknown columns: "account", "amount"/) });
    expect(header.import).toMatchObject({ status: 'REFUSED', rowCount: 1, refused: 1 });
  });

  it('imports 20,000 rows in one go', async () => {
    // Through the service: /graphql takes JSON bodies of at most 1 MB (http/app.ts), and 20,000
    // realistic rows are about 1.3 MB. The work measured is the import's own (parse, check, insert).
    const rows = Array.from({ length: 20_000 }, (_, i) => `GZW-${String(i).padStart(8, '0')},2026-10,${1000 + (i % 9000)},2099-11-${String(1 + (i % 28)).padStart(2, '0')},BULK-2026-10-${i},${i % 2 ? 'true' : ''},${i % 3 ? 'DAILY_BASIS_POINTS' : ''},,${i % 3 ? 5 : ''},${i % 3 ? 500 : ''}`);
    const csv = [HEADER, ...rows].join('\r\n');
    const principal: Principal = { kind: 'BILLER', clientId: 'bulk-test', tenantId: waterId, holderId: null, scopes: ['bills:write'] };
    const before = await billCount();
    const started = performance.now();
    const outcome = await importBillsCsv(db.orm.em.fork(), principal, { fileName: 'bulk.csv', csv });
    const ms = Math.round(performance.now() - started);
    console.info(`bills: imported 20,000 CSV rows (${(Buffer.byteLength(csv) / 1024 / 1024).toFixed(2)} MB) in ${ms} ms`);
    expect(outcome.problem).toBeNull();
    expect(outcome.import).toMatchObject({ status: 'IMPORTED', row_count: 20_000, accepted: 20_000, refused: 0 });
    expect(await billCount()).toBe(before + 20_000);

    // They share one creation time: the pages still go through them without a gap or a repeat.
    const seen = new Set<string>();
    const references = new Set<string>();
    let after: string | null = null;
    for (let page = 0; page < 3; page++) {
      const page: { bills: { edges: { node: { id: string; billerReference: string } }[]; pageInfo: { endCursor: string } } } = await water.request(LIST, { first: 100, after });
      for (const e of page.bills.edges) {
        seen.add(e.node.id);
        if (e.node.billerReference.startsWith('BULK-')) references.add(e.node.billerReference);
      }
      after = page.bills.pageInfo.endCursor;
    }
    expect(seen.size).toBe(300);
    expect(references.size).toBe(300);
    const one = (await forAccount('GZW-00000004', water))!.bills[0]!;
    expect(one).toMatchObject({ billerReference: 'BULK-2026-10-4', amountDue: { amount: 1004 }, dueDate: '2099-11-05', lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 500 } });
  });
});

// ——— amending and withdrawing ———

describe('amending and withdrawing', () => {
  it('amends an OPEN bill; its version goes up; a stale expectedVersion is refused', async () => {
    const bill = await published();
    const amended = await amend({ bill: bill.id, amountDue: 5000, dueDate: '2099-12-31', lateFee: { kind: 'FIXED', amount: 100 }, allowPartial: true, expectedVersion: 1 });
    expect(amended.userErrors).toEqual([]);
    expect(amended.bill).toMatchObject({ amountDue: { amount: 5000 }, dueDate: '2099-12-31', lateFee: { kind: 'FIXED', amount: 100 }, allowPartial: true, version: 2 });
    const stale = await amend({ bill: bill.id, amountDue: 6000, expectedVersion: 1 });
    expect(stale).toEqual({ bill: null, userErrors: [{ code: 'BILL_VERSION_CONFLICT', field: ['input', 'expectedVersion'], message: 'the bill is at version 2, not 1: read it again' }] });
    expect((await amend({ bill: bill.id })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', message: 'give at least one of amountDue, dueDate, lateFee, allowPartial' });
    expect((await amend({ bill: bill.id, lateFee: { kind: 'NONE', cap: 5 } })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'lateFee', 'cap'] });
    expect((await getBill(bill.id))!.version).toBe(2);
  });

  it('withdraws an OPEN bill nothing is paid on; a withdrawn bill cannot be amended or withdrawn again', async () => {
    const bill = await published();
    expect((await withdraw({ bill: bill.id, expectedVersion: 2 })).userErrors[0]!.code).toBe('BILL_VERSION_CONFLICT');
    const gone = await withdraw({ bill: bill.id, expectedVersion: 1 });
    expect(gone.bill).toMatchObject({ status: 'WITHDRAWN', version: 2, amountOwed: { amount: 0 }, remaining: { amount: 0 } });
    expect((await withdraw({ bill: bill.id })).userErrors).toEqual([{ code: 'INVALID_BILL_STATE', field: ['input', 'bill'], message: 'the bill is WITHDRAWN' }]);
    expect((await amend({ bill: bill.id, amountDue: 1 })).userErrors[0]!.code).toBe('INVALID_BILL_STATE');
    // Gone from the account's bills.
    expect((await forAccount(bill.accountNumber, water))!.bills.map((b) => b.id)).not.toContain(bill.id);
  });

  it('a partly paid bill: no withdrawal, and its amount due stays above what was paid', async () => {
    const bill = await published({ allowPartial: true });
    await markPaid(bill.id, 1500);
    expect((await getBill(bill.id))!).toMatchObject({ amountPaid: { amount: 1500 }, remaining: { amount: 3020 } });
    expect((await withdraw({ bill: bill.id })).userErrors[0]).toMatchObject({ code: 'INVALID_BILL_STATE', message: '1500 has been paid on the bill: it can no longer be withdrawn (amend it instead)' });
    expect((await amend({ bill: bill.id, amountDue: 1500 })).userErrors[0]).toMatchObject({ code: 'AMOUNT_DUE_BELOW_PAID', field: ['input', 'amountDue'] });
    expect((await amend({ bill: bill.id, amountDue: 1501 })).bill).toMatchObject({ remaining: { amount: 1 }, version: 2 });
  });

  it('a bill a card is paying is neither amended nor withdrawn until the payment is over; one merely waiting for a card does not hold it', async () => {
    const bill = await published();
    const payment = await paymentWaiting(bill.id);
    expect((await amend({ bill: bill.id, amountDue: 2 })).userErrors).toEqual([]);
    await db.orm.em.fork().execute(`update bill_payment set status = 'PROCESSING' where id = ?`, [payment]);
    expect((await amend({ bill: bill.id, amountDue: 1 })).userErrors[0]!.code).toBe('PAYMENT_IN_PROGRESS');
    expect((await withdraw({ bill: bill.id })).userErrors[0]!.code).toBe('PAYMENT_IN_PROGRESS');
    await db.orm.em.fork().execute(`update bill_payment set status = 'CANCELED' where id = ?`, [payment]);
    expect((await withdraw({ bill: bill.id })).bill!.status).toBe('WITHDRAWN');
  });

  it('the database keeps one live payment per bill', async () => {
    const bill = await published();
    await paymentWaiting(bill.id);
    await expect(paymentWaiting(bill.id)).rejects.toThrow(/bill_payment_live_idx/);
  });
});

// ——— what an app sees ———

describe('an account’s bills, for the cardholder’s app', () => {
  it('lists the OPEN bills with what each owes today: late fees from the day after the due date', async () => {
    const account = 'LATE-1';
    const onTime = await published({ accountNumber: account, dueDate: '2099-01-31', lateFee: { kind: 'FIXED', amount: 500 } });
    const fixed = await published({ accountNumber: account, amountDue: 10_000, dueDate: '2020-01-31', lateFee: { kind: 'FIXED', amount: 500 } });
    // Years late at 0.05 % a day: the cap.
    const daily = await published({ accountNumber: account, amountDue: 10_000, dueDate: '2020-02-29', lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 800 }, allowPartial: true });
    await markPaid(daily.id, 2_000);
    const paid = await published({ accountNumber: account, dueDate: '2020-01-01' });
    await db.orm.em.fork().execute(`update bill set status = 'PAID', paid_at = now(), amount_paid = amount_due where id = ?`, [uuidOf(paid.id)]);

    const found = await forAccount(account);
    expect(found).toMatchObject({ biller: WATER(), billerName: 'GZ Water', accountNumber: account, lookUp: 'NOT_USED', userErrors: [] });
    expect(found!.bills.map((b) => [b.id, b.lateFeeAmount.amount, b.amountOwed.amount, b.remaining.amount])).toEqual([
      [fixed.id, 500, 10_500, 10_500],
      [daily.id, 800, 10_800, 8_800],
      [onTime.id, 0, 4_520, 4_520],
    ]);
    expect((await forAccount(account, water))!.bills.map((b) => [b.id, b.amountPaid.amount])).toEqual([
      [fixed.id, 0],
      [daily.id, 2_000],
      [onTime.id, 0],
    ]);
    // The app reads a bill by its id too; it lists none.
    expect(await getBill(fixed.id, app)).toMatchObject({ amountOwed: { amount: 10_500 } });
    await expect(app.request(LIST, {})).rejects.toThrow(/Not allowed for a CARDHOLDER_APP client/);
  });

  it('an unknown account has no bills; a malformed one is a userError; a suspended biller is not found', async () => {
    expect(await forAccount('NOBODY')).toMatchObject({ bills: [], userErrors: [] });
    expect((await forAccount(' padded'))!.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['accountNumber'], message: 'accountNumber starts or ends with white space' }]);
    const em = db.orm.em.fork();
    const off = await createBiller(em, { cityId, name: 'GZ Telecom', kind: BillerKind.TELECOM });
    await updateBiller(em, off.id, { status: TenantStatus.SUSPENDED });
    expect(await forAccount('A-1', app, toGlobalId('Biller', off.id))).toBeNull();
    expect(await forAccount('A-1', app, toGlobalId('Biller', randomUUID()))).toBeNull();
    await expect(forAccount('A-1', merchant)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

// ——— live look-up ———

/** The biller's side of a live look-up, as docs/billers.md shows it: checks the signature, then answers. */
function verifySignature(secret: string, header: string, body: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > 300 || !parts.v1) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

type Mode = 'answer' | 'slow' | 'garbage' | 'error';

function fakeBillerServer() {
  const state = { secret: '', mode: 'answer' as Mode, bills: new Map<string, unknown[]>(), requests: [] as { body: string; verified: boolean }[] };
  const http: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const verified = req.method === 'POST' && verifySignature(state.secret, String(req.headers['onecard-signature'] ?? ''), body);
      state.requests.push({ body, verified });
      if (!verified) return void res.writeHead(401).end();
      if (state.mode === 'slow') return; // never answers
      if (state.mode === 'garbage') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Down for maintenance</body></html>');
      if (state.mode === 'error') return void res.writeHead(503).end();
      const { accountNumber } = JSON.parse(body) as { accountNumber: string };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bills: state.bills.get(accountNumber) ?? [] }));
    });
  });
  return { state, http };
}

describe('live look-up from the biller’s own server', () => {
  const biller = fakeBillerServer();
  let url: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => biller.http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(biller.http.address() as AddressInfo).port}/onecard/bills`;
  });
  afterAll(async () => {
    biller.http.closeAllConnections();
    await new Promise((resolve) => biller.http.close(resolve));
  });

  const setFetch = async (input: Record<string, unknown>, by: Requester = water) =>
    (await by.request<{ setBillerFetchUrl: { liveLookUp: { url: string; enabled: boolean } | null; secret: string | null; userErrors: Errors } }>(SET_FETCH, { input })).setBillerFetchUrl;

  it('the biller registers its URL and gets a signing secret once; it is kept sealed', async () => {
    expect((await setFetch({ url: 'http://billing.example.com/lookup', enabled: true })).userErrors[0]).toMatchObject({ code: 'INVALID_FETCH_URL', field: ['input', 'url'] });
    expect((await setFetch({ url: 'not a url', enabled: true })).userErrors[0]!.code).toBe('INVALID_FETCH_URL');
    const first = await setFetch({ url, enabled: true });
    expect(first.userErrors).toEqual([]);
    expect(first.liveLookUp).toEqual({ url, enabled: true });
    expect(first.secret).toMatch(/^bls_[A-Za-z0-9_-]{43}$/);
    biller.state.secret = first.secret!;
    const again = await setFetch({ enabled: true });
    expect(again).toMatchObject({ liveLookUp: { url, enabled: true }, secret: null });
    const [row] = await db.orm.em.fork().execute<{ fetch_secret_sealed: string }[]>(`select fetch_secret_sealed from biller where id = ?`, [waterId]);
    expect(row!.fetch_secret_sealed).not.toContain(first.secret!.slice(4));
  });

  it('an app’s look-up asks the biller (signed), stores its bills as FETCHED and returns them with what they owe', async () => {
    biller.state.bills.set('LIVE-1', [
      { billerReference: 'LIVE-1-2026-10', period: '2026-10', amountDue: 8_800, dueDate: '2020-11-20', lateFee: { kind: 'FIXED', amount: 300 } },
      { billerReference: 'LIVE-1-2026-11', period: '2026-11', amountDue: 9_100, dueDate: '2099-12-20', allowPartial: true },
    ]);
    const requests = biller.state.requests.length;
    const found = await forAccount('LIVE-1');
    expect(biller.state.requests.slice(requests)).toEqual([{ body: '{"accountNumber":"LIVE-1"}', verified: true }]);
    expect(found).toMatchObject({ lookUp: 'ANSWERED', userErrors: [] });
    expect(await Promise.all(found!.bills.map(async (b) => [await referenceOf(b), b.source, b.status, b.version, b.amountOwed.amount, b.allowPartial]))).toEqual([
      ['LIVE-1-2026-10', 'FETCHED', 'OPEN', 1, 9_100, false],
      ['LIVE-1-2026-11', 'FETCHED', 'OPEN', 1, 9_100, true],
    ]);
    // The biller's own look-up reads what is stored, without asking its server.
    const own = await forAccount('LIVE-1', water);
    expect(own).toMatchObject({ lookUp: 'NOT_USED', bills: [{ billerReference: 'LIVE-1-2026-10' }, { billerReference: 'LIVE-1-2026-11' }] });
    expect(biller.state.requests.length).toBe(requests + 1);
  });

  it('a new answer updates untouched bills, withdraws those it no longer lists, and never changes a bill with payments', async () => {
    biller.state.bills.set('LIVE-2', [
      { billerReference: 'LIVE-2-A', period: '2026-10', amountDue: 1_000, dueDate: '2099-11-20' },
      { billerReference: 'LIVE-2-B', period: '2026-10', amountDue: 2_000, dueDate: '2099-11-20', allowPartial: true },
      { billerReference: 'LIVE-2-C', period: '2026-10', amountDue: 3_000, dueDate: '2099-11-20' },
    ]);
    const first = (await forAccount('LIVE-2'))!.bills;
    await markPaid(first[1]!.id, 500); // B: partly paid
    const again = (await forAccount('LIVE-2'))!.bills;
    expect(again.map((b) => b.version)).toEqual([1, 1, 1]); // the same answer changes nothing
    biller.state.bills.set('LIVE-2', [
      { billerReference: 'LIVE-2-A', period: '2026-10', amountDue: 1_200, dueDate: '2099-11-25' },
      { billerReference: 'LIVE-2-B', period: '2026-10', amountDue: 9_999, dueDate: '2099-11-20' },
    ]);
    const after = await forAccount('LIVE-2');
    expect(await Promise.all(after!.bills.map(async (b) => [await referenceOf(b), b.amountDue.amount, b.dueDate, b.version]))).toEqual([
      ['LIVE-2-B', 2_000, '2099-11-20', 1], // paid on: kept as it was
      ['LIVE-2-A', 1_200, '2099-11-25', 2],
    ]);
    expect(await getBill(first[2]!.id)).toMatchObject({ billerReference: 'LIVE-2-C', status: 'WITHDRAWN' });
  });

  it('an answer naming another account’s bill is not used', async () => {
    biller.state.bills.set('LIVE-3', [{ billerReference: 'LIVE-2-A', period: '2026-10', amountDue: 1, dueDate: '2099-11-25' }]);
    const found = await forAccount('LIVE-3');
    expect(found).toMatchObject({ lookUp: 'FAILED', bills: [], userErrors: [{ code: 'BILLER_UNAVAILABLE' }] });
    expect((await forAccount('LIVE-2', water))!.bills.find((b) => b.billerReference === 'LIVE-2-A')).toMatchObject({ amountDue: { amount: 1_200 } });
  });

  describe('when the biller cannot answer, the payer is told BILLER_UNAVAILABLE and the stored bills stay', () => {
    const stored = async () => (await forAccount('LIVE-1', water))!.bills.map((b) => [b.billerReference, b.status, b.version]);
    let before: unknown;
    beforeAll(async () => {
      before = await stored();
    });

    async function expectUnavailable() {
      const found = await forAccount('LIVE-1');
      expect(found).toMatchObject({ lookUp: 'FAILED', userErrors: [{ code: 'BILLER_UNAVAILABLE', field: ['accountNumber'] }] });
      expect(await Promise.all(found!.bills.map(referenceOf))).toEqual(['LIVE-1-2026-10', 'LIVE-1-2026-11']);
      expect(await stored()).toEqual(before);
    }

    it('it answers garbage', async () => {
      biller.state.mode = 'garbage';
      await expectUnavailable();
    });

    it('it answers an error status', async () => {
      biller.state.mode = 'error';
      await expectUnavailable();
    });

    it('it is slow: no answer within 5 seconds', async () => {
      biller.state.mode = 'slow';
      const started = Date.now();
      await expectUnavailable();
      expect(Date.now() - started).toBeGreaterThanOrEqual(4_900);
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('it refuses our signature (a rotated secret it does not know yet)', async () => {
      biller.state.mode = 'answer';
      const rotated = await setFetch({ enabled: true, rotateSecret: true });
      expect(rotated.secret).toMatch(/^bls_/);
      expect(rotated.secret).not.toBe(biller.state.secret);
      await expectUnavailable();
      biller.state.secret = rotated.secret!;
      expect((await forAccount('LIVE-1'))!.lookUp).toBe('ANSWERED');
    });

    it('it is down: connection refused', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      expect((await setFetch({ url: `http://127.0.0.1:${port}/bills`, enabled: true })).userErrors).toEqual([]);
      await expectUnavailable();
    });

    it('turned off, it is not asked at all', async () => {
      expect((await setFetch({ url, enabled: false })).liveLookUp).toEqual({ url, enabled: false });
      const requests = biller.state.requests.length;
      expect((await forAccount('LIVE-1'))!.lookUp).toBe('NOT_USED');
      expect(biller.state.requests.length).toBe(requests);
    });
  });
});

// ——— isolation ———

describe('another biller', () => {
  it('sees none of the water company’s bills: by id, in lists, by account, and cannot change them', async () => {
    const bill = await published({ accountNumber: 'ISO-1' });
    const missing = toGlobalId('Bill', randomUUID());
    expect(await getBill(bill.id, gas)).toBeNull();
    expect(await getBill(missing, gas)).toBeNull();
    expect((await gas.request<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: bill.id })).node).toBeNull();
    const theirs = await gas.request<{ bills: { edges: unknown[] } }>(LIST, { filter: { accountNumber: 'ISO-1' } });
    expect(theirs.bills.edges).toEqual([]);
    expect(await forAccount('ISO-1', gas, WATER())).toBeNull();
    expect(await forAccount('ISO-1', gas, toGlobalId('Biller', randomUUID()))).toBeNull();
    for (const change of [(id: string) => amend({ bill: id, amountDue: 1 }, gas), (id: string) => withdraw({ bill: id }, gas)]) {
      const other = await change(bill.id);
      expect(other).toEqual(await change(missing));
      expect(other.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'bill'], message: 'no such bill' }]);
    }
    expect((await getBill(bill.id))!.version).toBe(1);
  });

  it('may use the same references as the water company', async () => {
    const bill = await published({ billerReference: 'SHARED-REF-1' });
    const gasBill = await published({ billerReference: 'SHARED-REF-1' }, gas);
    expect(gasBill.billerReference).toBe(bill.billerReference);
    expect((await gas.request<{ bills: { edges: { node: { id: string } }[] } }>(LIST, { filter: { billerReference: 'SHARED-REF-1' } })).bills.edges.map((e) => e.node.id)).toEqual([gasBill.id]);
    expect(await billCount(gasId)).toBeGreaterThan(0);
  });
});
