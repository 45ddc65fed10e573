/**
 * Edges of the cost throttle and idempotency folded into one transaction (issue 20, online half),
 * found by review and each seen failing first.
 * Over real HTTP against a started server. The write-behind throttle under a burst is proved
 * in cost-buckets-burst.test.ts: over HTTP its outcome depends on how the requests' reads overlap.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const codes = (body: { errors?: { extensions?: { code?: string } }[] }) => (body.errors ?? []).map((e) => e.extensions?.code);

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(async () => {
  await db?.close();
});

async function merchantClient(code: string): Promise<{ id: string; secret: string }> {
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code, name: `Rev ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `Rev Card ${code}` });
  const shop = await createMerchant(em, { cityId: city.id, name: `Rev Tea ${code}` });
  const made = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: `rev merchant ${code}`, scopes: ['payments:write', 'payments:read'] });
  return { id: made.client.client_id, secret: made.clientSecret! };
}

describe('a transactional money mutation past its bucket is refused before it runs, whatever it would have answered', () => {
  let server: TestServer;
  let token: string;
  let cost: number;
  const pay = (n: number, key = `rev-b-key-${n}`) =>
    graphql(server.url, CREATE_PAYMENT, { input: { amount: 100 + n, currency: 'CNY', orderReference: `rev-b-${n}`, idempotencyKey: key } }, { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    const client = await merchantClient('RVB');
    const measuring = await startTestServer(db.orm);
    const measuringToken = (await clientCredentialsToken(await discover(measuring.url), client.id, client.secret, 'payments:write payments:read')).access_token;
    cost = (await graphql(measuring.url, CREATE_PAYMENT, { input: { amount: 100, currency: 'CNY', orderReference: 'rev-b-0', idempotencyKey: 'rev-b-key-0' } }, { authorization: `Bearer ${measuringToken}` })).body.extensions.cost.requested;
    await measuring.close();
    // The bucket holds 2.5 createPayments, refilled at 1 point a second (as cost-throttle-mutations.test.ts).
    server = await startTestServer(db.orm, { GRAPHQL_COST_BUCKET: String(Math.floor(2.5 * cost)), GRAPHQL_COST_RESTORE_RATE: '1' });
    token = (await clientCredentialsToken(await discover(server.url), client.id, client.secret, 'payments:write payments:read')).access_token;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('with its bucket spent, a createPayment that ends in a GraphQL error (key reused for another request, or a blank key) is THROTTLED (429), as every other operation is', async () => {
    expect((await pay(1)).body.data.createPayment.userErrors).toEqual([]);
    expect((await pay(2)).body.data.createPayment.userErrors).toEqual([]);
    expect(codes((await pay(3)).body)).toEqual(['THROTTLED']);
    // Past the bucket: every call is refused for want of points before it runs (main) — not served.
    for (let i = 0; i < 5; i++) {
      const reused = await pay(10 + i, 'rev-b-key-1'); // the key of payment 1, another request
      expect(reused.status).toBe(429);
      expect(codes(reused.body)).toEqual(['THROTTLED']);
      const blank = await pay(20 + i, '   ');
      expect(blank.status).toBe(429);
      expect(codes(blank.body)).toEqual(['THROTTLED']);
    }
  });
});

describe('a replay of a stored answer while another replay of it is in progress', () => {
  let server: TestServer;
  let token: string;
  let clientId: string;
  beforeAll(async () => {
    const client = await merchantClient('RVC');
    clientId = client.id;
    // A real bucket (throttling on), never emptied by this test.
    server = await startTestServer(db.orm, { GRAPHQL_COST_BUCKET: '1000000', GRAPHQL_COST_RESTORE_RATE: '1000' });
    token = (await clientCredentialsToken(await discover(server.url), client.id, client.secret, 'payments:write payments:read')).access_token;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('two retries of a finished createPayment at the same moment both get its stored answer', async () => {
    const input = { amount: 321, currency: 'CNY', orderReference: 'rev-c-1', idempotencyKey: 'rev-c-key-1' };
    const auth = { authorization: `Bearer ${token}` };
    const first = await graphql(server.url, CREATE_PAYMENT, { input }, auth);
    expect(first.body.data.createPayment.userErrors).toEqual([]);

    // Something else holds the client's bucket row for a moment (e.g. another of its mutations between its charge and its commit).
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`select 1 from graphql_cost_bucket where bucket_key = $1 for update`, [`client:${clientId}`]);
      const replay1 = graphql(server.url, CREATE_PAYMENT, { input }, auth);
      // Wait (at most 5 s) until the first replay waits on that row.
      for (let i = 0; i < 100; i++) {
        const [row] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%graphql_cost_bucket%' and datname = current_database()`);
        if (Number(row!.n) > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const replay2 = await graphql(server.url, CREATE_PAYMENT, { input }, auth);
      await other.query('commit');
      expect((await replay1).body.data?.createPayment).toEqual(first.body.data.createPayment);
      expect(codes(replay2.body)).toEqual([]);
      expect(replay2.body.data?.createPayment).toEqual(first.body.data.createPayment);
    } finally {
      await other.end();
    }
  });
});

describe('an operation of two money fields, the second failing', () => {
  let server: TestServer;
  let token: string;
  let clientId: string;
  const TWO = `mutation($a: CreatePaymentInput!, $b: CreatePaymentInput!) { a: createPayment(input: $a) { payment { id } userErrors { code } } b: createPayment(input: $b) { payment { id } userErrors { code } } }`;
  beforeAll(async () => {
    const client = await merchantClient('RVD');
    clientId = client.id;
    server = await startTestServer(db.orm, { GRAPHQL_COST_BUCKET: '100000', GRAPHQL_COST_RESTORE_RATE: '1' });
    token = (await clientCredentialsToken(await discover(server.url), client.id, client.secret, 'payments:write payments:read')).access_token;
  });
  afterAll(async () => {
    await server?.close();
  });
  const bucket = async () => Number((await db.orm.em.fork().execute<{ available: number }[]>(`select available from graphql_cost_bucket where bucket_key = ?`, [`client:${clientId}`]))[0]?.available ?? 100000);

  it('the operation is charged its cost once, and its answer reports the bucket (extensions.cost.throttleStatus)', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const one = await graphql(server.url, CREATE_PAYMENT, { input: { amount: 1, currency: 'CNY', orderReference: 'rev-d-0', idempotencyKey: 'rev-d-key-0' } }, auth);
    expect(one.body.data.createPayment.userErrors).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    const before = await bucket();
    // b reuses the key of the first payment for another request: IDEMPOTENCY_KEY_REUSED, after a has committed.
    const two = await graphql(server.url, TWO, { a: { amount: 2, currency: 'CNY', orderReference: 'rev-d-1', idempotencyKey: 'rev-d-key-1' }, b: { amount: 3, currency: 'CNY', orderReference: 'rev-d-2', idempotencyKey: 'rev-d-key-0' } }, auth);
    // a committed (its payment exists); the null of b bubbles up to data (non-null payloads).
    expect(Number((await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from payment where order_reference = 'rev-d-1'`))[0]!.n)).toBe(1);
    expect(codes(two.body)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    const cost = two.body.extensions.cost.requested as number;
    // Charges written behind land within moments.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await bucket()).toBeGreaterThanOrEqual(before - cost - 0.5);
    expect(two.body.extensions.cost.throttleStatus).toBeDefined();
  });
});
