/**
 * A transactional money mutation that is refused, with userErrors (its transaction rolled back,
 * the refusal stored by a second one) or with a GraphQL error thrown inside its transaction (the
 * key reused), is charged its cost as an accepted call is: a client cannot make free calls by
 * sending bad input. Over real HTTP. Written to decide the idempotency unit's cost-charge mutants
 * (docs/testing.md, idempotency): it holds the charge of both refusals; the mutant
 * `if (!chargedBefore) ctx.costCharge?.rolledBack()` → `if (false)` survives it, because neither
 * refusal has taken the charge in the transaction that fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`;
const codes = (body: { errors?: { extensions?: { code?: string } }[] }) => (body.errors ?? []).map((e) => e.extensions?.code);

let db: TestDatabase;
let server: TestServer;
let token: string;
let cost: number;

beforeAll(async () => {
  db = await freshDatabase();
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code: 'RFC', name: 'Refusal City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Refusal Card' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Refusal Tea' });
  const client = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'refusal merchant', scopes: ['payments:write'] });
  // The cost of one createPayment, measured on a server with the default bucket.
  const measuring = await startTestServer(db.orm);
  const measuringToken = (await clientCredentialsToken(await discover(measuring.url), client.client.client_id, client.clientSecret!, 'payments:write')).access_token;
  cost = (await graphql(measuring.url, CREATE_PAYMENT, { input: { amount: 100, currency: 'CNY', orderReference: 'rfc-0', idempotencyKey: 'rfc-key-0' } }, { authorization: `Bearer ${measuringToken}` })).body.extensions.cost.requested;
  await measuring.close();
  // The bucket holds 2.5 createPayments, refilled at 1 point a second (as cost-throttle-mutations.test.ts).
  server = await startTestServer(db.orm, { GRAPHQL_COST_BUCKET: String(Math.floor(2.5 * cost)), GRAPHQL_COST_RESTORE_RATE: '1' });
  token = (await clientCredentialsToken(await discover(server.url), client.client.client_id, client.clientSecret!, 'payments:write')).access_token;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

describe('a createPayment refused, with userErrors or with a GraphQL error inside its transaction', () => {
  it('is charged its cost as an accepted one is: after two refusals the bucket has no room for a third call', async () => {
    const refused = await graphql(server.url, CREATE_PAYMENT, { input: { amount: 0, currency: 'CNY', orderReference: 'rfc-1', idempotencyKey: 'rfc-key-1' } }, { authorization: `Bearer ${token}` });
    expect(refused.body.data.createPayment.userErrors.map((e: { code: string }) => e.code)).toEqual(['INVALID_INPUT']);
    // The bucket reports the charge: less than its maximum by more than half a call (what refilled meanwhile is less).
    expect(refused.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThan(refused.body.extensions.cost.throttleStatus.maximumAvailable - cost / 2);
    // The key again for another request: refused inside the mutation's transaction (thrown, not a userError), which rolls back; charged all the same.
    const reused = await graphql(server.url, CREATE_PAYMENT, { input: { amount: 200, currency: 'CNY', orderReference: 'rfc-2', idempotencyKey: 'rfc-key-1' } }, { authorization: `Bearer ${token}` });
    expect(codes(reused.body)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    const third = await graphql(server.url, CREATE_PAYMENT, { input: { amount: 100, currency: 'CNY', orderReference: 'rfc-3', idempotencyKey: 'rfc-key-3' } }, { authorization: `Bearer ${token}` });
    expect(codes(third.body)).toEqual(['THROTTLED']);
  });
});
