/**
 * Exactly once under concurrency for a mutation whose claim lives in its own transaction (issue 20):
 * the same createPayment sent many times at once, over HTTP, makes one payment; every other answer
 * is that payment's stored answer or IDEMPOTENCY_CONFLICT (409), never a second payment nor
 * DUPLICATE_ORDER for the caller's own order. Then every retry gets the stored answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status amount { amount } } userErrors { code message } } }`;

let db: TestDatabase;
let server: TestServer;
let token: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code: 'CC', name: 'Concurrent City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Concurrent Card' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Concurrent Tea' });
  const made = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'concurrent merchant', scopes: ['payments:write', 'payments:read'] });
  token = (await clientCredentialsToken(await discover(server.url), made.client.client_id, made.clientSecret!, 'payments:write payments:read')).access_token;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

describe('the same transactional mutation sent many times at once', () => {
  it('makes one payment; the other answers are its stored answer or IDEMPOTENCY_CONFLICT, and a retry gets the stored answer', async () => {
    const input = { amount: 1_234, currency: 'CNY', orderReference: 'concurrent-order', idempotencyKey: 'concurrent-key' };
    const send = () => graphql(server.url, CREATE_PAYMENT, { input }, { authorization: `Bearer ${token}` });
    const answers = await Promise.all(Array.from({ length: 12 }, send));

    const done = answers.filter((a) => a.status === 200);
    const conflicts = answers.filter((a) => a.status === 409);
    expect(done.length + conflicts.length).toBe(12);
    expect(done.length).toBeGreaterThanOrEqual(1);
    for (const a of conflicts) expect(a.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['IDEMPOTENCY_CONFLICT']);
    for (const a of done) expect(a.body.data).toEqual(done[0]!.body.data);
    expect(done[0]!.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD', amount: { amount: 1_234 } }, userErrors: [] });

    const [row] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from payment where order_reference = 'concurrent-order'`);
    expect(Number(row!.n)).toBe(1);
    expect((await send()).body.data).toEqual(done[0]!.body.data);
  });
});
