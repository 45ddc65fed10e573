/**
 * Cost-based rate limits on money mutations (issue 20): a transactional idempotent mutation is
 * charged in its own transaction, just before its one commit, not by a statement of its own before
 * it runs. The limit must hold as before: across two API processes on one database, a client past
 * its bucket is refused THROTTLED (HTTP 429, Retry-After), and the refused request leaves nothing:
 * no effect, no stored answer, its idempotency key free. Over real HTTP against started servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;

let db: TestDatabase;
let a: TestServer;
let b: TestServer;
let bOrm: Orm;
let cost: number;

// The bucket holds 2.5 createPayments, refilled at 1 point a second: the third one in a row is refused.
const env = (bucket: number) => ({ GRAPHQL_COST_BUCKET: String(bucket), GRAPHQL_COST_RESTORE_RATE: '1' });

/** One merchant client; each server issues its own tokens (its own issuer URL), for that same client. */
let client: { id: string; secret: string };
const tokens = new Map<string, string>();
async function tokenAt(server: TestServer): Promise<string> {
  if (!tokens.has(server.url)) tokens.set(server.url, (await clientCredentialsToken(await discover(server.url), client.id, client.secret, 'payments:write payments:read')).access_token);
  return tokens.get(server.url)!;
}

const pay = async (server: TestServer, n: number) =>
  graphql(server.url, CREATE_PAYMENT, { input: { amount: 100 + n, currency: 'CNY', orderReference: `throttled-${n}`, idempotencyKey: `throttled-key-${n}` } }, { authorization: `Bearer ${await tokenAt(server)}` });
const count = async (sql: string, params: unknown[]) => Number((await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from ${sql}`, params))[0]!.n);

beforeAll(async () => {
  db = await freshDatabase();
  // What one createPayment costs, asked of a server with a bucket that never runs dry.
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code: 'TM', name: 'Throttle City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Throttle Card' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Throttled Tea' });
  const made = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'throttled merchant', scopes: ['payments:write', 'payments:read'] });
  client = { id: made.client.client_id, secret: made.clientSecret! };
  const measuring = await startTestServer(db.orm);
  cost = (await pay(measuring, 0)).body.extensions.cost.requested;
  await measuring.close();

  a = await startTestServer(db.orm, env(Math.floor(2.5 * cost)));
  // Another process in all but name: its own connection pool on the same database.
  bOrm = await openOrm(db.url);
  b = await startTestServer(bOrm, env(Math.floor(2.5 * cost)));
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await bOrm?.close(true);
  await db?.close();
});

describe('a money mutation charged in its own transaction', () => {
  it('two on two processes spend one bucket; the third is THROTTLED (429, Retry-After) and leaves no payment, no stored answer, its key free', async () => {
    const first = await pay(a, 1);
    expect(first.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD' }, userErrors: [] });
    expect(first.body.extensions.cost).toMatchObject({ requested: cost, throttleStatus: { maximumAvailable: Math.floor(2.5 * cost), restoreRate: 1 } });
    expect(first.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThanOrEqual(Math.floor(1.5 * cost) + 1);

    // The other process draws on the same bucket.
    const second = await pay(b, 2);
    expect(second.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD' }, userErrors: [] });
    expect(second.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThan(cost);

    for (const [server, n] of [[a, 3], [b, 4]] as const) {
      const refused = await pay(server, n);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['THROTTLED']);
      expect(refused.body.errors[0].extensions.cost).toMatchObject({ requested: cost, throttleStatus: { maximumAvailable: Math.floor(2.5 * cost), restoreRate: 1 } });
      expect(await count(`payment where order_reference = ?`, [`throttled-${n}`])).toBe(0);
      expect(await count(`idempotency_record where key = ?`, [`throttled-key-${n}`])).toBe(0);
    }
    expect(await count(`payment where order_reference in (?, ?)`, ['throttled-1', 'throttled-2'])).toBe(2);
  });

  it('a replay of a stored answer is charged like any request, and refused when the bucket is empty, its answer kept for later', async () => {
    const replay = await pay(a, 1);
    expect(replay.status).toBe(429);
    expect(replay.body.errors[0].extensions.code).toBe('THROTTLED');
    expect(await count(`payment where order_reference = ?`, ['throttled-1'])).toBe(1);
    expect(await count(`idempotency_record where key = ? and state = 'DONE'`, ['throttled-key-1'])).toBe(1);
  });
});
