/**
 * The GraphQL layer under attack (issue 18): resource limits no looser than graphql-armor's
 * defaults, cost measured in time linear in the document, errors that do not amplify bad input,
 * bad input refused as BAD_USER_INPUT before anything runs, and cost-based rate limits per caller
 * shared by every API process. All over real HTTP against the started server.
 */
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let merchantToken: string;

async function merchantClientToken(orm: Orm, serverUrl: string): Promise<string> {
  const em = orm.em.fork();
  const code = `L${String.fromCharCode(65 + Math.floor(Math.random() * 26))}${String.fromCharCode(65 + Math.floor(Math.random() * 26))}`;
  const { city } = await createCity(em, { code, name: `Limits ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `Limits Card ${code}` });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Limits Tea' });
  const made = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'limits test merchant', scopes: ['payments:write', 'payments:read'] });
  return (await clientCredentialsToken(await discover(serverUrl), made.client.client_id, made.clientSecret!, 'payments:write payments:read')).access_token;
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  merchantToken = await merchantClientToken(db.orm, server.url);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

const asMerchant = () => ({ authorization: `Bearer ${merchantToken}` });
const codes = (body: { errors?: { extensions?: { code?: string } }[] }) => (body.errors ?? []).map((e) => e.extensions?.code);

/** `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } … fragment Fn on Query { serverInfo { version } }`: 2^levels spreads if expanded. */
function fragmentBomb(levels: number): string {
  const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Bomb { ...F0 } ${fragments.join(' ')} fragment F${levels} on Query { serverInfo { version } }`;
}

describe('the fragment bomb', () => {
  it('30 levels of fragments, each spread twice, are refused at once and the server stays responsive', async () => {
    const started = performance.now();
    const { status, body } = await graphql(server.url, fragmentBomb(30));
    const health = await fetch(`${server.url}/healthz`);
    const elapsed = performance.now() - started;

    expect(status).toBe(400);
    expect(codes(body)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(health.status).toBe(200);
    // Generous for a loaded machine; the old expansion took 5.8 s at 22 levels and doubles per level.
    expect(elapsed).toBeLessThan(2_000);
  });

  it('a fragment used many times is charged at each use, as the fields it brings', async () => {
    const { body } = await graphql(server.url, 'query { ...Info a: serverInfo { ...V } b: serverInfo { ...V } } fragment Info on Query { serverInfo { ...V } } fragment V on ServerInfo { version publicUrl }');
    expect(body.errors).toBeUndefined();
    expect(body.extensions.cost.requested).toBe(9);
  });
});

const deep = (levels: number) => `{ node(id: "x") { ... on JournalEntry { ${'reverses { '.repeat(levels - 2)} id ${'} '.repeat(levels - 2)} } } }`;
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }`;
const directives = (n: number) => `{ ${Array.from({ length: n }, () => '__typename @include(if: true)').join(' ')} }`;
// `{` + n - 2 × `__typename` + `}`: n tokens.
const tokens = (n: number) => `{ ${'__typename '.repeat(n - 2)}}`;
const accountPages = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `p${i}: ledgerAccounts(first: 100) { edges { node { id code balance { amount currency } } } }`).join(' ')} }`;
const deepIntrospection = (levels: number) => `{ __schema { types { ${'ofType { '.repeat(levels - 3)} name ${'} '.repeat(levels - 3)} } } }`;

describe('limits no looser than graphql-armor’s defaults', () => {
  it.each([
    ['depth 8', deep(8), /depth 8 exceeds 7/],
    ['16 aliases', aliases(16), /16 aliases exceed 15/],
    ['51 directives', directives(51), /51 directives exceed 50/],
    ['cost over 5,000 (8 full pages of accounts)', accountPages(8), /cost exceeds 5000/],
    ['60 aliases of __schema', `{ ${Array.from({ length: 60 }, (_, i) => `s${i}: __schema { queryType { name } }`).join(' ')} }`, /aliases exceed 15/],
    ['introspection 30 deep', deepIntrospection(30), /introspection depth 30 exceeds 15/],
  ])('%s: refused with QUERY_TOO_COMPLEX before it runs', async (_name, query, reason) => {
    const { status, body } = await graphql(server.url, query, undefined, asMerchant());
    expect(status).toBe(400);
    expect(codes(body)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(body.errors[0].message).toMatch(reason);
    expect(body.data).toBeUndefined();
  });

  it.each([
    ['depth 7', deep(7)],
    ['a settlement window’s batch lines’ amounts (depth 7)', '{ settlementWindows(first: 1) { edges { node { batch { lines(first: 10) { edges { node { gross { amount } } } } } } } } }'],
    ['15 aliases', aliases(15)],
    ['50 directives', directives(50)],
    ['1,000 tokens', tokens(1_000)],
    ['7 full pages of accounts (cost 4,907)', accountPages(7)],
  ])('%s: within the limits', async (_name, query) => {
    const { body } = await graphql(server.url, query, undefined, asMerchant());
    expect(codes(body)).not.toContain('QUERY_TOO_COMPLEX');
    expect(codes(body)).not.toContain('GRAPHQL_PARSE_FAILED');
  });

  it('Relay’s edges { node } counts as one level', async () => {
    // cards(1) edges+node(2) history(3) edges+node(4) balanceAfter(5) amount(6): depth 6; each level counted, it would be 8, over the limit.
    const { body } = await graphql(server.url, '{ cards(first: 1) { edges { node { history(first: 1) { edges { node { balanceAfter { amount } } } } } } } }', undefined, asMerchant());
    expect(codes(body)).not.toContain('QUERY_TOO_COMPLEX');
  });

  it.each([
    ['1,001 tokens', tokens(1_001)],
    ['a 3.7 MB document of 200,000 aliases', aliases(200_000)],
    ['500 @include', directives(500)],
  ])('%s: refused while parsing (GRAPHQL_PARSE_FAILED)', async (_name, query) => {
    const { status, body } = await graphql(server.url, query);
    expect(status).toBe(400);
    expect(codes(body)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(body.errors[0].message).toMatch(/more tha[nt] 1000 tokens/); // graphql 16 writes “more that”
  });

  it.each([
    ['graphql’s', getIntrospectionQuery()],
    ['GraphiQL’s, with every option', getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true })],
  ])('%s introspection query still works where introspection is on', async (_name, query) => {
    const { status, body } = await graphql(server.url, query);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data.__schema.types.map((t: { name: string }) => t.name)).toContain('Payment');
  });

  it('introspection fields are charged like any field', async () => {
    const { body } = await graphql(server.url, '{ __schema { queryType { name } } }');
    expect(body.extensions.cost.requested).toBe(3);
  });
});

describe('errors quote at most a short prefix of bad input', () => {
  const huge = 'A'.repeat(300_000);

  it('15 aliases of node($id) with a 300 KB id answer a few KB, not megabytes', async () => {
    const query = `query($id: ID!) { ${Array.from({ length: 15 }, (_, i) => `n${i}: node(id: $id) { id }`).join(' ')} }`;
    const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables: { id: huge } }) });
    const text = await res.text();
    expect(text.length).toBeLessThan(20_000);
    const body = JSON.parse(text);
    expect(codes(body)).toEqual(Array(15).fill('BAD_USER_INPUT'));
    expect(body.errors[0].message).toMatch(/^"A{32}…" is not a valid id$/);
  });

  it.each([
    ['an enum value', 'query($kind: AccountOwnerKind) { ledgerAccounts(ownerKind: $kind) { edges { node { code } } } }', { kind: huge }],
    ['a DateTime', 'query($from: DateTime) { node(id: "x") { ... on Card { history(from: $from) { edges { cursor } } } } }', { from: huge }],
    ['a MinorUnits', 'query($a: MinorUnits!) { node(id: "x") { ... on FeePlan { fee(amount: $a) { amount } } } }', { a: huge }],
  ])('%s of 300 KB is quoted by its prefix only', async (_name, query, variables) => {
    const { body } = await graphql(server.url, query, variables, asMerchant());
    expect(codes(body)).toContain('BAD_USER_INPUT');
    expect(JSON.stringify(body).length).toBeLessThan(5_000);
  });

  it('a 300 KB literal id is quoted by its prefix only', async () => {
    const { body } = await graphql(server.url, `{ node(id: "${huge}") { id } }`);
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(JSON.stringify(body).length).toBeLessThan(5_000);
  });
});

describe('bad input is BAD_USER_INPUT, and nothing is written', () => {
  const CREATE = 'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }';
  let orders = 0;
  const input = (extra: Record<string, unknown>) => ({ amount: 100, currency: 'CNY', orderReference: `limits-${++orders}`, idempotencyKey: `limits-${orders}`, ...extra });
  const nested = (levels: number): unknown => JSON.parse(`${'{"a":'.repeat(levels)}"x"${'}'.repeat(levels)}`);
  const payments = async () => Number((await db.orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from payment'))[0]!.n);

  /** POSTs createPayment with the input's JSON written by hand: JSON.stringify cannot write 5,000 levels. */
  async function createWithRawInput(inputJson: string) {
    const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...asMerchant() }, body: `{"query":${JSON.stringify(CREATE)},"variables":{"input":${inputJson}}}` });
    return { status: res.status, body: (await res.json()) as { errors: { message: string; extensions?: { code?: string } }[] } };
  }

  it('metadata nested 5,000 deep', async () => {
    const before = await payments();
    const { status, body } = await createWithRawInput(`{"amount":100,"currency":"CNY","orderReference":"deep-1","idempotencyKey":"deep-1","metadata":${'{"a":'.repeat(5_000)}"x"${'}'.repeat(5_000)}}`);
    expect(status).toBe(400);
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(body.errors[0].message).toMatch(/nested deeper than 32/);
    expect(await payments()).toBe(before);
  });

  it.each([
    ['a NUL in a text variable', { description: 'two\u0000teas' }, /NUL/],
    ['a NUL in a metadata value', { metadata: { cart: 'c\u0000-1' } }, /NUL/],
    ['a NUL in a metadata key', { metadata: { 'c\u0000art': 'c-1' } }, /NUL/],
    ['an input 33 levels deep (metadata 32)', { metadata: nested(32) }, /nested deeper than 32/],
  ])('%s', async (_name, extra, reason) => {
    const before = await payments();
    const { status, body } = await graphql(server.url, CREATE, { input: input(extra) }, asMerchant());
    expect(status).toBe(400);
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(body.errors[0].message).toMatch(reason);
    expect(await payments()).toBe(before);
  });

  it('a NUL in a string literal', async () => {
    const before = await payments();
    const { body } = await graphql(server.url, `mutation { createPayment(input: { amount: 100, currency: "CNY", orderReference: "lit-1", idempotencyKey: "lit-1", description: "two\\u0000teas" }) { payment { id } } }`, undefined, asMerchant());
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(body.errors[0].message).toMatch(/NUL/);
    expect(await payments()).toBe(before);
  });

  it('an input 32 levels deep (metadata 31) gets past the input checks, and the service says what it accepts', async () => {
    const { body } = await graphql(server.url, CREATE, { input: input({ metadata: nested(31) }) }, asMerchant());
    expect(body.errors).toBeUndefined();
    expect(body.data.createPayment.userErrors[0].code).toBe('INVALID_INPUT');
  });

  it.each([
    ['an argument', 'query($id: ID = "UGF5bWVudDp4") { node(id: $id) { id } }', { id: null }],
    ['an input field', 'mutation($ref: String = "ref-d") { createPayment(input: { amount: 100, currency: "CNY", orderReference: $ref, idempotencyKey: "null-d" }) { payment { id } } }', { ref: null }],
  ])('null sent for a variable with a default, used where a value is required: %s', async (_name, query, variables) => {
    const before = await payments();
    const { status, body } = await graphql(server.url, query, variables, asMerchant());
    expect(status).toBe(400);
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(body.errors[0].message).toMatch(/omit it to use its default/);
    expect(await payments()).toBe(before);
  });
});

describe('cost-based rate limits', () => {
  it('every answer to an operation reports the cost and the caller’s bucket', async () => {
    const { body } = await graphql(server.url, '{ serverInfo { version } }');
    expect(body.extensions.cost).toEqual({
      requested: 2,
      limit: 5_000,
      throttleStatus: { maximumAvailable: server.config.costThrottle.maximumAvailable, currentlyAvailable: expect.any(Number), restoreRate: server.config.costThrottle.restoreRate },
    });
  });

  describe('with a small bucket, shared by two API processes', () => {
    // 15 × serverInfo { version publicUrl time }: cost 60; the bucket holds two of them, refilled at 1 point a second.
    const COSTLY = `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: serverInfo { version publicUrl time }`).join(' ')} }`;
    const env = { GRAPHQL_COST_BUCKET: '120', GRAPHQL_COST_RESTORE_RATE: '1' };
    let shared: TestDatabase;
    let a: TestServer;
    let b: TestServer;
    let bOrm: Orm;

    beforeAll(async () => {
      shared = await freshDatabase();
      a = await startTestServer(shared.orm, env);
      // Another process in all but name: its own connection pool on the same database.
      bOrm = await openOrm(shared.url);
      b = await startTestServer(bOrm, env);
    });
    afterAll(async () => {
      await a.close();
      await b.close();
      await bOrm.close(true);
      await shared.close();
    });

    it('an anonymous caller spends its IP’s bucket; past it, THROTTLED with the bucket’s status and Retry-After, on either process', async () => {
      const first = await graphql(a.url, COSTLY);
      expect(first.body.errors).toBeUndefined();
      expect(first.body.extensions.cost).toMatchObject({ requested: 60, throttleStatus: { maximumAvailable: 120, restoreRate: 1 } });
      expect(first.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThanOrEqual(60);

      // The second process draws on the same bucket.
      const second = await graphql(b.url, COSTLY);
      expect(second.body.errors).toBeUndefined();
      expect(second.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThan(60);

      for (const server of [a, b]) {
        const refused = await graphql(server.url, COSTLY);
        expect(refused.status).toBe(429);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(refused.body.data).toBeUndefined();
        expect(codes(refused.body)).toEqual(['THROTTLED']);
        expect(refused.body.errors[0].extensions.cost).toMatchObject({ requested: 60, throttleStatus: { maximumAvailable: 120, restoreRate: 1 } });
        expect(refused.body.errors[0].extensions.cost.throttleStatus.currentlyAvailable).toBeLessThan(60);
        expect(refused.body.extensions.cost.throttleStatus).toEqual(refused.body.errors[0].extensions.cost.throttleStatus);
      }
    });

    it('an OAuth client has a bucket of its own, whatever its IP address’s holds', async () => {
      const token = await merchantClientToken(shared.orm, b.url);
      const mine = await graphql(b.url, COSTLY, undefined, { authorization: `Bearer ${token}` });
      expect(mine.body.errors).toBeUndefined();
      expect(mine.body.extensions.cost.throttleStatus.currentlyAvailable).toBeGreaterThanOrEqual(60);
    });
  });
});
