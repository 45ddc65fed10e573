/**
 * Function-level authorization (issue 18, problem 6): every mutation that moves money or changes
 * tenants checks a scope, and the ledger's fields need `ledger:read` / `ledger:write`.
 *
 * Over real HTTP with real OAuth tokens: an operator client holding only `payments:read`, or a token
 * with no scope at all, is refused the manual ledger mutations and moves nothing. In-process, a walk
 * over the schema calls every mutation as each kind of client holding no scope and expects FORBIDDEN.
 */
import type { ApolloServer } from '@apollo/server';
import {
  getNamedType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
} from 'graphql';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { scopesForKind } from '../src/auth/scopes.js';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiSchema } from '../src/schema.js';
import { Metrics } from '../src/http/metrics.js';
import { openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, testConfig, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let clearing: string;
let payable: string;
let entryToReverse: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const a = await openAccount(em, { code: 'authz.clearing', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const b = await openAccount(em, { code: 'authz.payable', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  clearing = toGlobalId('LedgerAccount', a.id);
  payable = toGlobalId('LedgerAccount', b.id);
  const entry = await post(em, { key: 'authz:seed', description: 'an entry to reverse', lines: [{ account: a.id, amount: 100n }, { account: b.id, amount: -100n }] });
  entryToReverse = toGlobalId('JournalEntry', entry.id);
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

/** A real operator client registered with `registered`, and a token for `asked` (none: no scope). */
async function operatorToken(registered: string[], asked?: string): Promise<string> {
  const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'OPERATOR', tenantId: null, name: `Operator ${randomUUID()}`, scopes: registered });
  const token = await clientCredentialsToken(await discover(server.url), client.client_id, clientSecret!, asked);
  return token.access_token;
}

const POST = `mutation($input: PostJournalEntryInput!) { postJournalEntry(input: $input) { entry { id key } userErrors { code message } } }`;
const REVERSE = `mutation($input: ReverseJournalEntryInput!) { reverseJournalEntry(input: $input) { entry { id } userErrors { code message } } }`;
const fiveThousand = (key: string) => ({ input: { idempotencyKey: key, description: 'move 5,000.00', lines: [{ account: clearing, debit: 500000 }, { account: payable, credit: 500000 }] } });

async function balances(): Promise<Record<string, string>> {
  const rows = await db.orm.em.fork().execute<{ code: string; balance: string }[]>(`select code, balance::text as balance from ledger_account where code like 'authz.%' order by code`);
  return Object.fromEntries(rows.map((r) => [r.code, r.balance]));
}
async function manualEntries(): Promise<number> {
  const [{ n }] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key like 'manual:%'`);
  return n;
}

describe('the ledger needs ledger:read and ledger:write (over HTTP, real OAuth tokens)', () => {
  it.each([
    ['an operator token holding only payments:read', ['payments:read'], 'payments:read'],
    ['an operator token with no scope', ['payments:read', 'ledger:read', 'ledger:write'], undefined],
    ['an operator token holding ledger:read but not ledger:write', ['ledger:read', 'ledger:write'], 'ledger:read'],
  ])('%s cannot post 5,000.00 or reverse an entry, and nothing moves', async (_name, registered, asked) => {
    const token = await operatorToken(registered, asked);
    const before = await balances();
    const entries = await manualEntries();
    const auth = { authorization: `Bearer ${token}` };
    const posted = await graphql(server.url, POST, fiveThousand(`scope-less-${randomUUID()}`), auth);
    expect(posted.status).toBe(403);
    expect(posted.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(posted.body.errors[0].message).toBe('Missing scope: ledger:write');
    expect(posted.body.data?.postJournalEntry ?? null).toBeNull();
    const reversed = await graphql(server.url, REVERSE, { input: { idempotencyKey: `rev-${randomUUID()}`, entry: entryToReverse, reason: 'no' } }, auth);
    expect(reversed.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(await balances()).toEqual(before);
    expect(await manualEntries()).toBe(entries);
  });

  it('reading the ledger needs ledger:read: payments:read alone is refused', async () => {
    const refused = await graphql(server.url, '{ ledgerAccounts { edges { node { code } } } ledgerProblems { rule } }', {}, { authorization: `Bearer ${await operatorToken(['payments:read'], 'payments:read')}` });
    expect(refused.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(refused.body.errors[0].message).toBe('Missing scope: ledger:read');
    // `node` hides ledger objects from an operator without ledger:read, as from anyone else.
    const node = await graphql(server.url, 'query($id: ID!) { node(id: $id) { id } }', { id: clearing }, { authorization: `Bearer ${await operatorToken(['payments:read'], 'payments:read')}` });
    expect(node.body.data.node).toBeNull();
    const allowed = await graphql(server.url, 'query($id: ID!) { ledgerAccounts(first: 100) { edges { node { code } } } node(id: $id) { id } }', { id: clearing }, { authorization: `Bearer ${await operatorToken(['ledger:read'], 'ledger:read')}` });
    expect(allowed.body.errors).toBeUndefined();
    expect(allowed.body.data.ledgerAccounts.edges.map((e: any) => e.node.code)).toContain('authz.clearing');
    expect(allowed.body.data.node).toEqual({ id: clearing });
  });

  it('the operator with ledger:write posts and reverses (the refusals above are the scope, not the input)', async () => {
    const auth = { authorization: `Bearer ${await operatorToken(['ledger:read', 'ledger:write'], 'ledger:write')}` };
    const before = await balances();
    const posted = await graphql(server.url, POST, fiveThousand(`allowed-${randomUUID()}`), auth);
    expect(posted.body.errors).toBeUndefined();
    expect(posted.body.data.postJournalEntry.userErrors).toEqual([]);
    expect(BigInt((await balances())['authz.clearing']!) - BigInt(before['authz.clearing']!)).toBe(500000n);
    const reversed = await graphql(server.url, REVERSE, { input: { idempotencyKey: `rev-${randomUUID()}`, entry: posted.body.data.postJournalEntry.entry.id, reason: 'undo' } }, auth);
    expect(reversed.body.data.reverseJournalEntry.userErrors).toEqual([]);
    expect(await balances()).toEqual(before);
  });

  it('ledger:read and ledger:write are the operator’s only: another kind cannot be registered with them', async () => {
    for (const kind of ['MERCHANT', 'BILLER', 'ISSUER'] as const) {
      expect(scopesForKind(kind)).not.toContain('ledger:write');
      await expect(createClient(db.orm.em.fork(), { kind, tenantId: randomUUID(), name: 'x', scopes: ['ledger:write'] })).rejects.toThrow(/may not hold ledger:write/);
    }
    expect(scopesForKind('OPERATOR')).toEqual(expect.arrayContaining(['ledger:read', 'ledger:write']));
  });
});

// ——— the schema walk ———

/**
 * Mutations a client of any kind may call with no scope, and why. Nothing else may be here: a new
 * mutation that checks no scope fails the walk below until it does.
 */
const NO_SCOPE_NEEDED: Record<string, string> = {
  // The operation decides: a BALANCE read needs none; a load or a purchase checks the scope of the
  // operation and the client's kind when the session is opened (card-session.resolver.ts).
  openCardSession: 'scope checked per operation when the session opens',
  // Continues a session only the client that opened it may continue (its scope was checked then).
  cardSessionMessage: 'continues a session opened under its scope',
};

const KINDS: PrincipalKind[] = ['OPERATOR', 'ISSUER', 'MERCHANT', 'BILLER', 'CARDHOLDER_APP'];

describe('every mutation checks a scope (walk over the schema)', () => {
  let schema: GraphQLSchema;
  let apollo: ApolloServer<GraphQLContext>;

  beforeAll(async () => {
    schema = await apiSchema();
    apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
  });
  afterAll(async () => {
    await apollo?.stop();
  });

  const principal = (kind: PrincipalKind, scopes: string[]): Principal => ({ kind, clientId: `walk-${kind}`, tenantId: randomUUID(), holderId: kind === 'CARDHOLDER_APP' ? randomUUID() : null, scopes });

  async function run(query: string, who: Principal) {
    const res = await apollo.executeOperation({ query }, { contextValue: { em: db.orm.em.fork(), principal: who, requestId: 'walk', log: pino({ level: 'silent' }), config: testConfig() } });
    if (res.body.kind !== 'single') throw new Error('single result expected');
    return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
  }

  const mutations = () => Object.values(schema.getMutationType()!.getFields());

  it('a client of any kind holding no scope is FORBIDDEN every mutation', async () => {
    const failures: string[] = [];
    for (const field of mutations()) {
      if (NO_SCOPE_NEEDED[field.name]) continue;
      for (const kind of KINDS) {
        const result = await run(operationFor(field), principal(kind, []));
        const code = result.errors?.[0]?.extensions?.code;
        if (code !== 'FORBIDDEN') failures.push(`${field.name} as ${kind} with no scope: ${code ?? JSON.stringify(result.data)}`);
      }
    }
    expect(failures, 'give these mutations a scope (@Authorized(..., scope) or scopeByKind)').toEqual([]);
  });

  it('the walk can fail: each mutation is open to some kind holding its kind’s scopes', async () => {
    // Guards the guard: a mutation FORBIDDEN to everyone would pass the walk above without checking anything.
    const closed: string[] = [];
    for (const field of mutations()) {
      const outcomes = await Promise.all(KINDS.map(async (kind) => (await run(operationFor(field), principal(kind, scopesForKind(kind)))).errors?.[0]?.extensions?.code));
      if (outcomes.every((code) => code === 'FORBIDDEN')) closed.push(field.name);
    }
    expect(closed).toEqual([]);
  });

  it('the exemptions name real mutations', () => {
    const names = mutations().map((f) => f.name);
    expect(Object.keys(NO_SCOPE_NEEDED).filter((n) => !names.includes(n))).toEqual([]);
  });
});

/** A syntactically valid value for an input type, so that a call reaches the auth check. */
function sample(type: GraphQLInputType): string {
  if (isNonNullType(type)) return sample(type.ofType);
  if (isListType(type)) return '[]';
  if (isEnumType(type)) return type.getValues()[0]!.name;
  if (isInputObjectType(type)) {
    const required = Object.values(type.getFields()).filter((f) => isNonNullType(f.type));
    return `{ ${required.map((f) => `${f.name}: ${sample(f.type)}`).join(', ')} }`;
  }
  if (isScalarType(type)) {
    const samples: Record<string, string> = { Int: '1', Float: '1', Boolean: 'false', MinorUnits: '1', DateTime: '"2026-01-01T00:00:00Z"', Currency: '"CNY"', JSONObject: '{}', LocalDate: '"2026-01-01"', ID: `"${toGlobalId('Nothing', randomUUID())}"` };
    return samples[type.name] ?? '"x"';
  }
  throw new Error(`no sample for ${String(type)}`);
}

function operationFor(field: GraphQLField<unknown, unknown>): string {
  const args = field.args.filter((a) => isNonNullType(a.type));
  const argText = args.length ? `(${args.map((a) => `${a.name}: ${sample(a.type)}`).join(', ')})` : '';
  const named = getNamedType(field.type);
  const selection = isObjectType(named) ? '{ __typename }' : '';
  return `mutation { ${field.name}${argText} ${selection} }`;
}
