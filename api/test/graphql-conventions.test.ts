import type { ApolloServer } from '@apollo/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { Metrics } from '../src/http/metrics.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testConfig } from './support/server.js';

// Until the OAuth issue lands no HTTP caller can be the operator, so these run the same Apollo
// server in-process with the principal the token verifier will build.
const operator: Principal = { kind: 'OPERATOR', clientId: 'op-test', tenantId: null, holderId: null, scopes: ['ledger:read', 'ledger:write'] };
const merchant: Principal = { kind: 'MERCHANT', clientId: 'm-test', tenantId: 'm1', holderId: null, scopes: [] };

let db: TestDatabase;
let apollo: ApolloServer<GraphQLContext>;
let clearing: string;
let purse: string;
let payable: string;

beforeAll(async () => {
  db = await freshDatabase();
  apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
  const em = db.orm.em.fork();
  const open = (code: string, type: AccountType, nonNegative = false) =>
    openAccount(em, { code, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative }).then((a) => toGlobalId('LedgerAccount', a.id));
  clearing = await open('a.clearing', AccountType.ASSET);
  purse = await open('b.purse', AccountType.LIABILITY, true);
  payable = await open('c.payable', AccountType.LIABILITY);
  for (let i = 0; i < 22; i++) await open(`z.${String(i).padStart(2, '0')}`, AccountType.LIABILITY);
});
afterAll(async () => {
  await apollo.stop();
  await db.close();
});

async function run(query: string, variables: Record<string, unknown> = {}, principal: Principal | null = operator) {
  const res = await apollo.executeOperation(
    { query, variables },
    { contextValue: { em: db.orm.em.fork(), principal, requestId: 'test', log: pino({ level: 'silent' }), config: testConfig() } },
  );
  if (res.body.kind !== 'single') throw new Error('expected a single result');
  // What a client would see on the wire.
  return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[]; extensions?: any };
}

const POST = `mutation Post($input: PostJournalEntryInput!) {
  postJournalEntry(input: $input) {
    entry { id key postedAt postings { side amount { amount currency } balanceAfter { amount } account { code } } }
    userErrors { code field message }
  }
}`;

describe('Relay connections', () => {
  it('pages through every account exactly once with opaque cursors', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const { data } = await run(`query($after: String) { ledgerAccounts(first: 10, after: $after) { edges { cursor node { id code } } pageInfo { hasNextPage endCursor } } }`, { after });
      seen.push(...data.ledgerAccounts.edges.map((e: any) => e.node.code));
      after = data.ledgerAccounts.pageInfo.hasNextPage ? data.ledgerAccounts.pageInfo.endCursor : null;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen).toEqual([...seen].sort());
  });

  it.each([
    ['first above the maximum', { first: 101 }],
    ['first below one', { first: 0 }],
    ['a cursor it never gave out', { after: 'bm9wZQ' }],
  ])('refuses %s with BAD_USER_INPUT', async (_name, args) => {
    const { errors } = await run(`query($first: Int, $after: String) { ledgerAccounts(first: $first, after: $after) { edges { cursor } } }`, args);
    expect(errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('global ids and node()', () => {
  it('node(id) finds an account by its global id', async () => {
    const { data } = await run(`query($id: ID!) { node(id: $id) { id ... on LedgerAccount { code balance { amount currency } } } }`, { id: purse });
    expect(data.node).toEqual({ id: purse, code: 'b.purse', balance: { amount: 0, currency: 'CNY' } });
  });

  it('an id of another type is refused, a garbled one too', async () => {
    const wrongType = toGlobalId('JournalEntry', '00000000-0000-4000-8000-000000000000');
    expect((await run(`query($id: ID!) { ledgerAccount(id: $id) { code } }`, { id: wrongType })).errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await run(`{ node(id: "!!!") { id } }`)).errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('another tenant’s principal sees no ledger object through node()', async () => {
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: purse }, merchant)).data.node).toBeNull();
  });
});

describe('authorization', () => {
  it('refuses ledger data to a merchant with FORBIDDEN and to nobody with UNAUTHENTICATED', async () => {
    expect((await run(`{ ledgerAccounts { edges { cursor } } }`, {}, merchant)).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(`{ ledgerAccounts { edges { cursor } } }`, {}, null)).errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });
});

describe('MinorUnits, Money and mutation payloads', () => {
  it('posts an entry and returns integer Money and ISO timestamps with an offset', async () => {
    const { data, errors } = await run(POST, {
      input: { idempotencyKey: 'k1', description: 'opening', lines: [{ account: clearing, debit: 12_345 }, { account: purse, credit: 12_345 }] },
    });
    expect(errors).toBeUndefined();
    const entry = data.postJournalEntry.entry;
    expect(data.postJournalEntry.userErrors).toEqual([]);
    expect(entry.postedAt).toMatch(/T\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    expect(entry.postings).toEqual([
      { side: 'DEBIT', amount: { amount: 12_345, currency: 'CNY' }, balanceAfter: { amount: 12_345 }, account: { code: 'a.clearing' } },
      { side: 'CREDIT', amount: { amount: 12_345, currency: 'CNY' }, balanceAfter: { amount: 12_345 }, account: { code: 'b.purse' } },
    ]);
    // The same key again: the same entry, no second movement.
    const again = await run(POST, { input: { idempotencyKey: 'k1', description: 'opening', lines: [{ account: clearing, debit: 12_345 }, { account: purse, credit: 12_345 }] } });
    expect(again.data.postJournalEntry.entry.id).toBe(entry.id);
    const { data: after } = await run(`query($id: ID!) { ledgerAccount(id: $id) { balance { amount } } }`, { id: purse });
    expect(after.ledgerAccount.balance.amount).toBe(12_345);
  });

  it.each([
    ['a float', 1.5],
    ['a string', '100'],
    ['an amount beyond 2^53', 2 ** 53],
  ])('MinorUnits refuses %s', async (_name, amount) => {
    const { errors, data } = await run(POST, { input: { idempotencyKey: `bad-${String(amount)}`, description: 'x', lines: [{ account: clearing, debit: amount }, { account: purse, credit: 1 }] } });
    expect(errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(data).toBeUndefined();
  });

  it('MinorUnits refuses a float literal in the query text', async () => {
    const { errors } = await run(`mutation { postJournalEntry(input: { idempotencyKey: "lit", description: "x", lines: [{ account: "${clearing}", debit: 1.5 }] }) { userErrors { code } } }`);
    expect(errors?.[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it.each([
    ['unbalanced', () => [{ account: clearing, debit: 10 }, { account: payable, credit: 9 }], 'UNBALANCED_ENTRY', ['input']],
    ['overdrawing a non-negative account', () => [{ account: purse, debit: 999_999 }, { account: payable, credit: 999_999 }], 'INSUFFICIENT_FUNDS', ['input', 'lines', '0']],
    ['a negative debit', () => [{ account: clearing, debit: -10 }, { account: payable, debit: 10 }], 'INVALID_INPUT', ['input', 'lines', '0']],
    ['a line with both sides', () => [{ account: clearing, debit: 1, credit: 1 }, { account: payable, credit: 1 }], 'INVALID_INPUT', ['input', 'lines', '0']],
  ])('a business refusal (%s) is a userError with a code and a field', async (name, lines, code, field) => {
    // A key per request: one key with other lines is IDEMPOTENCY_KEY_REUSED (docs/api-conventions.md#idempotency).
    const { data, errors } = await run(POST, { input: { idempotencyKey: `refused-${name}`, description: 'x', lines: lines() } });
    expect(errors).toBeUndefined();
    expect(data.postJournalEntry.entry).toBeNull();
    expect(data.postJournalEntry.userErrors).toEqual([expect.objectContaining({ code, field })]);
  });

  it('reverses an entry once; the reversal points at the original', async () => {
    const { data } = await run(POST, { input: { idempotencyKey: 'to-reverse', description: 'x', lines: [{ account: clearing, debit: 5 }, { account: payable, credit: 5 }] } });
    const id = data.postJournalEntry.entry.id;
    const REVERSE = `mutation($input: ReverseJournalEntryInput!) { reverseJournalEntry(input: $input) { entry { id reverses { id } postings { side } } userErrors { code } } }`;
    const first = await run(REVERSE, { input: { entry: id, idempotencyKey: 'rev-1', reason: 'posted twice' } });
    expect(first.data.reverseJournalEntry.entry.reverses.id).toBe(id);
    expect(first.data.reverseJournalEntry.entry.postings.map((p: any) => p.side)).toEqual(['CREDIT', 'DEBIT']);
    const second = await run(REVERSE, { input: { entry: id, idempotencyKey: 'rev-2', reason: 'again' } });
    expect(second.data.reverseJournalEntry.userErrors).toEqual([{ code: 'ALREADY_REVERSED' }]);
    expect((await run(`{ ledgerProblems { rule } }`)).data.ledgerProblems).toEqual([]);
  });
});
