/**
 * The ledger as the operator reads and adjusts it over HTTP (ledger.resolver.ts): every field of an
 * account and of an entry says what the ledger holds; the owner-kind filter and the pages list
 * exactly the accounts asked for; a manual entry's refusal names its code, its message and the
 * input line it is about; nobody but an operator with ledger:read sees any of it, not even through
 * `node`. graphql-conventions.test.ts holds the conventions (pages, cursors, userErrors) these
 * queries share. (Found by mutation testing, docs/testing.md.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
/** Operator tokens: reading and writing; reading only; writing only. */
let operator: string;
let reader: string;
let writer: string;
let merchant: string;
const ids: Record<string, string> = {};
const OWNER = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0042';

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const as = await discover(server.url);
  const token = async (kind: 'OPERATOR' | 'MERCHANT', scopes: string[]) => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind, tenantId: kind === 'OPERATOR' ? null : OWNER, name: `${kind} ${scopes.join(' ')}`, scopes });
    return (await clientCredentialsToken(as, client.client_id, clientSecret!, scopes.join(' '))).access_token;
  };
  operator = await token('OPERATOR', ['ledger:read', 'ledger:write']);
  reader = await token('OPERATOR', ['ledger:read']);
  writer = await token('OPERATOR', ['ledger:write']);
  merchant = await token('MERCHANT', ['payments:read']);

  const em = db.orm.em.fork();
  const open = async (code: string, type: AccountType, ownerKind: AccountOwnerKind, opts: { ownerId?: string; nonNegative?: boolean; currency?: string } = {}) =>
    (ids[code] = (await openAccount(em, { code, type, ownerKind, ownerId: opts.ownerId, currency: opts.currency ?? 'CNY', nonNegative: opts.nonNegative })).id);
  await open('gql.bank', AccountType.ASSET, AccountOwnerKind.OTHER);
  await open('gql.merchant.1', AccountType.LIABILITY, AccountOwnerKind.MERCHANT_PAYABLE, { ownerId: OWNER });
  await open('gql.merchant.2', AccountType.LIABILITY, AccountOwnerKind.MERCHANT_PAYABLE, { ownerId: OWNER });
  await open('gql.merchant.3', AccountType.LIABILITY, AccountOwnerKind.MERCHANT_PAYABLE, { ownerId: OWNER });
  await open('gql.purse', AccountType.LIABILITY, AccountOwnerKind.CARD_PURSE, { ownerId: OWNER, nonNegative: true });
  await open('gql.hkd', AccountType.LIABILITY, AccountOwnerKind.OTHER, { currency: 'HKD' });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const as = (token: string | null): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const ask = (query: string, variables: Record<string, unknown> = {}, token: string | null = operator) => graphql(server.url, query, variables, as(token));
const gid = (code: string) => toGlobalId('LedgerAccount', ids[code]!);

const ACCOUNT = `id code type ownerKind ownerId nonNegative balance { amount currency } createdAt`;
const ENTRY = `id key description postedAt reverses { id } postings { side amount { amount currency } balanceAfter { amount currency } account { code } }`;
const POST = `mutation($input: PostJournalEntryInput!) { postJournalEntry(input: $input) { entry { ${ENTRY} } userErrors { code field message } } }`;
const REVERSE = `mutation($input: ReverseJournalEntryInput!) { reverseJournalEntry(input: $input) { entry { ${ENTRY} } userErrors { code field message } } }`;
let keys = 0;
const postLines = (lines: Record<string, unknown>[], token = operator) => ask(POST, { input: { idempotencyKey: `gql-${++keys}`, description: `entry ${keys}`, lines } }, token);

describe('accounts', () => {
  it('an account shows what the ledger holds: code, type, owner, rule, balance with currency, creation time', async () => {
    const { body } = await ask(`query($id: ID!) { ledgerAccount(id: $id) { ${ACCOUNT} } }`, { id: gid('gql.purse') });
    expect(body.errors).toBeUndefined();
    expect(body.data.ledgerAccount).toEqual({
      id: gid('gql.purse'),
      code: 'gql.purse',
      type: 'LIABILITY',
      ownerKind: 'CARD_PURSE',
      ownerId: OWNER,
      nonNegative: true,
      balance: { amount: 0, currency: 'CNY' },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const platform = await ask(`query($id: ID!) { ledgerAccount(id: $id) { ownerId nonNegative balance { currency } } }`, { id: gid('gql.hkd') });
    expect(platform.body.data.ledgerAccount).toEqual({ ownerId: null, nonNegative: false, balance: { currency: 'HKD' } });
  });

  it('an unknown account is null', async () => {
    const { body } = await ask(`query($id: ID!) { ledgerAccount(id: $id) { code } }`, { id: toGlobalId('LedgerAccount', '0d9c1b0e-0000-4000-8000-00000000beef') });
    expect(body.errors).toBeUndefined();
    expect(body.data.ledgerAccount).toBeNull();
  });

  it('the owner-kind filter lists exactly that kind, in code order, page by page', async () => {
    const page = (after: string | null) =>
      ask(`query($after: String) { ledgerAccounts(first: 2, after: $after, ownerKind: MERCHANT_PAYABLE) { edges { node { code ownerKind } } pageInfo { hasNextPage endCursor } } }`, { after });
    const first = (await page(null)).body.data.ledgerAccounts;
    expect(first.edges.map((e: any) => e.node)).toEqual([
      { code: 'gql.merchant.1', ownerKind: 'MERCHANT_PAYABLE' },
      { code: 'gql.merchant.2', ownerKind: 'MERCHANT_PAYABLE' },
    ]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = (await page(first.pageInfo.endCursor)).body.data.ledgerAccounts;
    expect(second.edges.map((e: any) => e.node.code)).toEqual(['gql.merchant.3']);
    expect(second.pageInfo.hasNextPage).toBe(false);
  });

  it('without a filter every kind is listed', async () => {
    const { body } = await ask(`{ ledgerAccounts(first: 100) { edges { node { code } } } }`);
    const codes = body.data.ledgerAccounts.edges.map((e: any) => e.node.code);
    expect(codes).toEqual(expect.arrayContaining(['gql.bank', 'gql.hkd', 'gql.merchant.1', 'gql.purse']));
    expect(codes).toEqual([...codes].sort());
  });

  it('balanceAt gives the balance as it stood at each instant', async () => {
    const em = db.orm.em.fork();
    const [a, b] = [await openAccount(em, { code: 'gql.at.a', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' }), await openAccount(em, { code: 'gql.at.b', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' })];
    await post(em, { key: 'gql.at.1', description: 'x', lines: [debit(a.id, 300n), credit(b.id, 300n)] });
    const [{ between }] = await em.execute<{ between: Date }[]>(`select clock_timestamp() as between`);
    await post(em, { key: 'gql.at.2', description: 'x', lines: [debit(a.id, 200n), credit(b.id, 200n)] });
    const at = (instant: Date) => ask(`query($id: ID!, $at: DateTime!) { ledgerAccount(id: $id) { balance { amount } balanceAt(at: $at) { amount currency } } }`, { id: toGlobalId('LedgerAccount', b.id), at: instant.toISOString() });
    expect((await at(new Date(0))).body.data.ledgerAccount).toEqual({ balance: { amount: 500 }, balanceAt: { amount: 0, currency: 'CNY' } });
    expect((await at(new Date(between))).body.data.ledgerAccount.balanceAt).toEqual({ amount: 300, currency: 'CNY' });
    expect((await at(new Date(Date.now() + 60_000))).body.data.ledgerAccount.balanceAt).toEqual({ amount: 500, currency: 'CNY' });
  });

  it('balanceAt an instant inside an archived month is refused as bad input, naming the first instant kept', async () => {
    const em = db.orm.em.fork();
    const [a, b] = [await openAccount(em, { code: 'gql.archived.a', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' }), await openAccount(em, { code: 'gql.archived.b', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' })];
    await post(em, { key: 'gql.archived.1', description: 'x', lines: [debit(a.id, 70n), credit(b.id, 70n)] });
    // What archiving the months before 2000 would leave: openings from 2000-01 on (nothing moved before).
    await em.execute(`insert into ledger_opening (month, account_id, balance) values ('2000-01-01', ?, 0), ('2000-01-01', ?, 0)`, [a.id, b.id]);
    const at = (instant: string) => ask(`query($id: ID!, $at: DateTime!) { ledgerAccount(id: $id) { balanceAt(at: $at) { amount } } }`, { id: toGlobalId('LedgerAccount', b.id), at: instant });
    const refused = (await at('1999-12-31T23:59:59Z')).body;
    expect(refused.errors).toEqual([expect.objectContaining({ message: expect.stringMatching(/keeps postings from 2000-01-01T00:00:00.000Z on/), extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
    expect((await at('2000-01-01T00:00:00Z')).body.data.ledgerAccount.balanceAt).toEqual({ amount: 0 });
    expect((await at(new Date(Date.now() + 60_000).toISOString())).body.data.ledgerAccount.balanceAt).toEqual({ amount: 70 });
  });
});

describe('entries', () => {
  it('a manual entry shows its key, description, time, and each line: side, amount, balance after, account', async () => {
    const { body } = await ask(POST, { input: { idempotencyKey: 'gql-shown', description: 'float top-up', lines: [{ account: gid('gql.bank'), debit: 700 }, { account: gid('gql.merchant.1'), credit: 700 }] } });
    expect(body.data.postJournalEntry.userErrors).toEqual([]);
    const entry = body.data.postJournalEntry.entry;
    expect(entry).toEqual({
      id: expect.any(String),
      key: 'manual:gql-shown',
      description: 'float top-up',
      postedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      reverses: null,
      postings: [
        { side: 'DEBIT', amount: { amount: 700, currency: 'CNY' }, balanceAfter: { amount: 700, currency: 'CNY' }, account: { code: 'gql.bank' } },
        { side: 'CREDIT', amount: { amount: 700, currency: 'CNY' }, balanceAfter: { amount: 700, currency: 'CNY' }, account: { code: 'gql.merchant.1' } },
      ],
    });
    // The same entry, read back by id.
    const read = await ask(`query($id: ID!) { journalEntry(id: $id) { ${ENTRY} } }`, { id: entry.id });
    expect(read.body.data.journalEntry).toEqual(entry);
    // Posted by this operator client (the entry's metadata).
    const [row] = await db.orm.em.fork().execute<{ metadata: { by: string } }[]>(`select metadata from journal_entry where id = ?`, [fromGlobalId(entry.id, 'JournalEntry').id]);
    expect(row!.metadata.by).toEqual(expect.any(String));
  });

  it('a reversal shows the reason as its description, mirrored lines, and the entry it reverses', async () => {
    const original = (await postLines([{ account: gid('gql.bank'), debit: 40 }, { account: gid('gql.merchant.2'), credit: 40 }])).body.data.postJournalEntry.entry;
    const { body } = await ask(REVERSE, { input: { entry: original.id, idempotencyKey: 'gql-reversal', reason: 'posted by mistake' } });
    expect(body.data.reverseJournalEntry.userErrors).toEqual([]);
    expect(body.data.reverseJournalEntry.entry).toMatchObject({
      key: 'manual:gql-reversal',
      description: 'posted by mistake',
      reverses: { id: original.id },
      postings: [
        { side: 'CREDIT', amount: { amount: 40 }, account: { code: 'gql.bank' } },
        { side: 'DEBIT', amount: { amount: 40 }, account: { code: 'gql.merchant.2' } },
      ],
    });
  });

  it('the reversal records the operator client that asked for it, as the entry it reverses does', async () => {
    const original = (await postLines([{ account: gid('gql.bank'), debit: 3 }, { account: gid('gql.merchant.2'), credit: 3 }])).body.data.postJournalEntry.entry;
    const reversal = (await ask(REVERSE, { input: { entry: original.id, idempotencyKey: 'gql-reversal-by', reason: 'who reversed it' } })).body.data.reverseJournalEntry.entry;
    const by = async (entry: { id: string }) =>
      (await db.orm.em.fork().execute<{ metadata: { by?: string } }[]>(`select metadata from journal_entry where id = ?`, [fromGlobalId(entry.id, 'JournalEntry').id]))[0]!.metadata.by;
    expect(await by(reversal)).toEqual(expect.any(String));
    expect(await by(reversal)).toBe(await by(original));
  });

  it("another type's id is refused as bad input where an entry or an account is asked for", async () => {
    const entry = (await postLines([{ account: gid('gql.bank'), debit: 2 }, { account: gid('gql.merchant.2'), credit: 2 }])).body.data.postJournalEntry.entry;
    const refusedAs = (body: any, type: string, id: string) => {
      expect(body.errors).toEqual([expect.objectContaining({ message: `"${id.slice(0, 32)}…" is not a ${type} id`, extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
    };
    // An account's id is not an entry's (nor an entry's an account's), even where both are uuids.
    refusedAs((await ask(`query($id: ID!) { journalEntry(id: $id) { id } }`, { id: gid('gql.bank') })).body, 'JournalEntry', gid('gql.bank'));
    refusedAs((await ask(REVERSE, { input: { entry: gid('gql.bank'), idempotencyKey: 'gql-reverse-account', reason: 'x' } })).body, 'JournalEntry', gid('gql.bank'));
    refusedAs((await postLines([{ account: gid('gql.bank'), debit: 2 }, { account: entry.id, credit: 2 }])).body, 'LedgerAccount', entry.id);
  });

  it('an unknown entry is null to read and NOT_FOUND to reverse', async () => {
    const unknown = toGlobalId('JournalEntry', '0d9c1b0e-0000-4000-8000-00000000beef');
    expect((await ask(`query($id: ID!) { journalEntry(id: $id) { id } }`, { id: unknown })).body.data.journalEntry).toBeNull();
    const { body } = await ask(REVERSE, { input: { entry: unknown, idempotencyKey: 'gql-reverse-unknown', reason: 'x' } });
    expect(body.data.reverseJournalEntry).toEqual({ entry: null, userErrors: [{ code: 'NOT_FOUND', field: ['input'], message: 'no journal entry 0d9c1b0e-0000-4000-8000-00000000beef' }] });
  });
});

describe('a refused manual entry names the code, the message and the line', () => {
  it.each<[string, () => Record<string, unknown>[], string, string[], string | (() => string)]>([
    ['a line with neither side', () => [{ account: gid('gql.bank') }, { account: gid('gql.merchant.1'), credit: 5 }], 'INVALID_INPUT', ['input', 'lines', '0'], 'give exactly one of debit and credit'],
    ['a zero credit on the second line', () => [{ account: gid('gql.bank'), debit: 5 }, { account: gid('gql.merchant.1'), credit: 0 }], 'INVALID_INPUT', ['input', 'lines', '1'], 'a debit or credit is a positive amount'],
    ['a negative credit', () => [{ account: gid('gql.bank'), debit: 5 }, { account: gid('gql.merchant.1'), credit: -5 }], 'INVALID_INPUT', ['input', 'lines', '1'], 'a debit or credit is a positive amount'],
    ['one line only', () => [{ account: gid('gql.bank'), debit: 5 }], 'UNBALANCED_ENTRY', ['input'], 'an entry has at least two lines'],
    ['two currencies', () => [{ account: gid('gql.bank'), debit: 5 }, { account: gid('gql.hkd'), credit: 5 }], 'MIXED_CURRENCIES', ['input'], 'an entry is in one currency; got CNY, HKD'],
    [
      'an unknown account on the second line',
      () => [{ account: gid('gql.bank'), debit: 5 }, { account: toGlobalId('LedgerAccount', '0d9c1b0e-0000-4000-8000-00000000beef'), credit: 5 }],
      'NOT_FOUND',
      ['input', 'lines', '1'],
      'no ledger account 0d9c1b0e-0000-4000-8000-00000000beef',
    ],
    ['a purse taken below zero on the second line', () => [{ account: gid('gql.bank'), credit: 5 }, { account: gid('gql.purse'), debit: 5 }], 'INSUFFICIENT_FUNDS', ['input', 'lines', '1'], () => `account ${ids['gql.purse']} may not go below zero`],
    // The first line is line 0: the refusal still names it (not the whole input).
    [
      'an unknown account on the first line',
      () => [{ account: toGlobalId('LedgerAccount', '0d9c1b0e-0000-4000-8000-00000000beef'), debit: 5 }, { account: gid('gql.bank'), credit: 5 }],
      'NOT_FOUND',
      ['input', 'lines', '0'],
      'no ledger account 0d9c1b0e-0000-4000-8000-00000000beef',
    ],
    ['a purse taken below zero on the first line', () => [{ account: gid('gql.purse'), debit: 5 }, { account: gid('gql.bank'), credit: 5 }], 'INSUFFICIENT_FUNDS', ['input', 'lines', '0'], () => `account ${ids['gql.purse']} may not go below zero`],
  ])('%s', async (_name, lines, code, field, message) => {
    const { body } = await postLines(lines());
    expect(body.errors).toBeUndefined();
    expect(body.data.postJournalEntry).toEqual({ entry: null, userErrors: [{ code, field, message: typeof message === 'function' ? message() : message }] });
  });

  it('a reversal refused on an account names the whole input (a reversal has no lines of its own)', async () => {
    // 9 onto the purse, then spent: reversing the load would take the purse below zero.
    const load = (await postLines([{ account: gid('gql.bank'), debit: 9 }, { account: gid('gql.purse'), credit: 9 }])).body.data.postJournalEntry.entry;
    expect((await postLines([{ account: gid('gql.purse'), debit: 9 }, { account: gid('gql.bank'), credit: 9 }])).body.data.postJournalEntry.userErrors).toEqual([]);
    const { body } = await ask(REVERSE, { input: { entry: load.id, idempotencyKey: 'gql-reverse-spent', reason: 'load reversed after it was spent' } });
    expect(body.errors).toBeUndefined();
    expect(body.data.reverseJournalEntry).toEqual({ entry: null, userErrors: [{ code: 'INSUFFICIENT_FUNDS', field: ['input'], message: `account ${ids['gql.purse']} may not go below zero` }] });
  });

  it('every bad line is named at once', async () => {
    const { body } = await postLines([{ account: gid('gql.bank'), debit: 5, credit: 5 }, { account: gid('gql.merchant.1'), debit: -1 }]);
    expect(body.data.postJournalEntry.userErrors.map((e: any) => e.field)).toEqual([
      ['input', 'lines', '0'],
      ['input', 'lines', '1'],
    ]);
  });
});

describe('only an operator with ledger:read reads the ledger, and only with ledger:write posts', () => {
  it('ledger:read without ledger:write reads, and cannot post', async () => {
    expect((await ask(`query($id: ID!) { ledgerAccount(id: $id) { code } }`, { id: gid('gql.bank') }, reader)).body.data.ledgerAccount).toEqual({ code: 'gql.bank' });
    const refused = await postLines([{ account: gid('gql.bank'), debit: 5 }, { account: gid('gql.merchant.1'), credit: 5 }], reader);
    expect(refused.body.errors?.[0].extensions.code).toBe('FORBIDDEN');
  });

  it('node() finds an account and an entry for an operator with ledger:read, and nothing for anyone else', async () => {
    const entry = (await postLines([{ account: gid('gql.bank'), debit: 6 }, { account: gid('gql.merchant.3'), credit: 6 }])).body.data.postJournalEntry.entry;
    const NODE = `query($id: ID!) { node(id: $id) { id ... on LedgerAccount { code } ... on JournalEntry { key } } }`;
    expect((await ask(NODE, { id: gid('gql.bank') }, reader)).body.data.node).toEqual({ id: gid('gql.bank'), code: 'gql.bank' });
    expect((await ask(NODE, { id: entry.id }, reader)).body.data.node).toEqual({ id: entry.id, key: entry.key });
    for (const token of [writer, merchant]) {
      expect((await ask(NODE, { id: gid('gql.bank') }, token)).body.data?.node ?? null).toBeNull();
      expect((await ask(NODE, { id: entry.id }, token)).body.data?.node ?? null).toBeNull();
    }
    expect((await ask(NODE, { id: toGlobalId('JournalEntry', '0d9c1b0e-0000-4000-8000-00000000beef') }, reader)).body.data.node).toBeNull();
    // Nor for a request without a token: null, not an error.
    for (const id of [gid('gql.bank'), entry.id]) {
      const anonymous = (await ask(NODE, { id }, null)).body;
      expect(anonymous.errors).toBeUndefined();
      expect(anonymous.data.node).toBeNull();
    }
  });

  it.each([
    ['ledgerAccounts', `{ ledgerAccounts { edges { cursor } } }`],
    ['ledgerProblems', `{ ledgerProblems { rule } }`],
  ])('%s: FORBIDDEN for an operator without ledger:read and for a merchant', async (_name, query) => {
    for (const token of [writer, merchant]) expect((await ask(query, {}, token)).body.errors?.[0].extensions.code).toBe('FORBIDDEN');
  });
});
