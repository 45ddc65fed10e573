/**
 * A transactional money mutation commits its effect, its stored answer and its request's cost
 * charge in one transaction (issue 20; graphql/idempotency.ts runInTransaction, apollo.ts): the
 * process may die right after that commit (the `answer` crash point) and nothing is half-written:
 * no payment without its charge, no charge without its payment. A charge written by a statement of
 * its own, before or behind the mutation, would be a second commit a death can split from the first.
 *
 * "One transaction" is read from PostgreSQL itself: every row version carries the id of the
 * transaction that wrote it (`xmin`). Over real HTTP against a started server; the death is played
 * in-process by the crash hook, as in crash-safety.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { SimulatedCrash, setCrashHook } from '../src/graphql/crash-point.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const BUCKET = 10_000;

let db: TestDatabase;
let server: TestServer;
let token: string;
let clientId: string;
let issuerToken: string;

beforeAll(async () => {
  db = await freshDatabase();
  const em = db.orm.em.fork();
  const { city, cardCompany } = await createCity(em, { code: 'CWE', name: 'Commit City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Commit Card' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'One Commit Tea' });
  const client = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'one-commit merchant', scopes: ['payments:write'] });
  clientId = client.client.client_id;
  server = await startTestServer(db.orm, { GRAPHQL_COST_BUCKET: String(BUCKET), GRAPHQL_COST_RESTORE_RATE: '1' });
  token = (await clientCredentialsToken(await discover(server.url), clientId, client.clientSecret!, 'payments:write')).access_token;
  const issuer = await createClient(em, { kind: 'ISSUER', tenantId: cardCompany.id, name: 'one-commit issuer', scopes: ['topups:write'] });
  issuerToken = (await clientCredentialsToken(await discover(server.url), issuer.client.client_id, issuer.clientSecret!, 'topups:write')).access_token;
});
afterEach(() => setCrashHook(null));
afterAll(async () => {
  setCrashHook(null);
  await server?.close();
  await db?.close();
});

/** The process "dies" the next time createPayment reaches its answer crash point (its transaction committed). */
function dieAfterCommit() {
  let armed = true;
  setCrashHook((point, operation) => {
    if (armed && point === 'answer' && operation === 'createPayment') {
      armed = false;
      throw new SimulatedCrash(point, operation);
    }
  });
}

const pay = (input: Record<string, unknown>) => graphql(server.url, CREATE_PAYMENT, { input }, { authorization: `Bearer ${token}` });

/** The writing transaction of each row, and the bucket's points: what a death right now would leave. */
async function committed(orderReference: string, key: string) {
  const em = db.orm.em.fork();
  const payments = await em.execute<{ tx: string }[]>(`select xmin::text as tx from payment where order_reference = ?`, [orderReference]);
  const answers = await em.execute<{ tx: string; state: string }[]>(`select xmin::text as tx, state from idempotency_record where client_id = ? and key = ?`, [clientId, key]);
  const buckets = await em.execute<{ tx: string; available: number }[]>(`select xmin::text as tx, available::float8 as available from graphql_cost_bucket where bucket_key = ?`, [`client:${clientId}`]);
  return { payments, answer: answers[0], bucket: buckets[0] };
}

describe('a createPayment whose process dies right after its commit', () => {
  it('committed its payment, its stored answer and its cost charge in one transaction; the retry answers that payment, charged, with no second one', async () => {
    dieAfterCommit();
    const died = await pay({ amount: 1_200, currency: 'CNY', orderReference: 'one-commit-1', idempotencyKey: 'one-commit-key-1' });
    // The client saw no answer: only an error.
    expect(died.body.data?.createPayment ?? null).toBeNull();
    expect(died.body.errors).toHaveLength(1);
    const cost: number = died.body.extensions.cost.requested;
    expect(cost).toBeGreaterThan(0);

    const after = await committed('one-commit-1', 'one-commit-key-1');
    expect(after.payments).toHaveLength(1);
    expect(after.answer?.state).toBe('DONE');
    // Charged: the bucket lacks the call's cost (less what refilled meanwhile, at 1 point a second).
    expect(after.bucket?.available).toBeLessThanOrEqual(BUCKET - cost + 60);
    // …by the very transaction that stored the answer naming the payment.
    expect(after.bucket?.tx).toBe(after.answer?.tx);

    // The retry with the key: the stored answer (the same payment), no second payment, charged like any request.
    const retried = await pay({ amount: 1_200, currency: 'CNY', orderReference: 'one-commit-1', idempotencyKey: 'one-commit-key-1' });
    expect(retried.body.errors).toBeUndefined();
    expect(retried.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD' }, userErrors: [] });
    const again = await committed('one-commit-1', 'one-commit-key-1');
    expect(again.payments).toHaveLength(1);
    expect(again.bucket!.available).toBeLessThanOrEqual(after.bucket!.available - cost + 60);
  });

  it('a refusal (userErrors) dies after its answer is stored: the stored refusal and its charge were committed together, and no payment', async () => {
    dieAfterCommit();
    const before = (await committed('one-commit-2', 'one-commit-key-2')).bucket!;
    const died = await pay({ amount: 0, currency: 'CNY', orderReference: 'one-commit-2', idempotencyKey: 'one-commit-key-2' });
    expect(died.body.data?.createPayment ?? null).toBeNull();
    const cost: number = died.body.extensions.cost.requested;

    const after = await committed('one-commit-2', 'one-commit-key-2');
    expect(after.payments).toEqual([]);
    expect(after.answer?.state).toBe('DONE');
    expect(after.bucket!.available).toBeLessThanOrEqual(before.available - cost + 60);
    expect(after.bucket?.tx).toBe(after.answer?.tx);

    // The retry is answered the stored refusal.
    const retried = await pay({ amount: 0, currency: 'CNY', orderReference: 'one-commit-2', idempotencyKey: 'one-commit-key-2' });
    expect(retried.body.data.createPayment.userErrors.map((e: { code: string }) => e.code)).toEqual(['INVALID_INPUT']);
  });
});

describe('a mutation with no transaction of its own to take its charge', () => {
  // Charged by the GraphQL layer before it runs: its answer reports the bucket after that charge.
  // Counted by mistake among the transactional ones, it would run uncharged and answer no bucket.
  const answersItsCharge = (body: { extensions?: { cost?: { requested: number; throttleStatus?: { currentlyAvailable: number; maximumAvailable: number } } } }) => {
    const { requested, throttleStatus } = body.extensions!.cost!;
    expect(requested).toBeGreaterThan(0);
    expect(throttleStatus).toMatchObject({ maximumAvailable: BUCKET });
    expect(throttleStatus!.currentlyAvailable).toBeLessThanOrEqual(BUCKET - requested);
  };

  it('a resumable @Idempotent mutation (createTopUp, which calls the gateway) is charged before it runs', async () => {
    const card = toGlobalId('Card', randomUUID());
    const refused = await graphql(server.url, `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id } userErrors { code } } }`, { input: { card, amount: 1_000, idempotencyKey: 'one-commit-top-up' } }, { authorization: `Bearer ${issuerToken}` });
    expect(refused.body.data.createTopUp.topUp).toBeNull();
    answersItsCharge(refused.body);
  });

  it('a mutation that is not @Idempotent (openCardSession) is charged before it runs', async () => {
    const reader = toGlobalId('Reader', randomUUID());
    const refused = await graphql(server.url, `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id } userErrors { code } } }`, { input: { reader, operation: 'BALANCE' } }, { authorization: `Bearer ${token}` });
    expect(refused.body.data.openCardSession.session).toBeNull();
    answersItsCharge(refused.body);
  });
});

describe('two transactional mutations in one request', () => {
  it('each runs in a transaction of its own: both payments made, each answer stored by its own transaction', async () => {
    const both = await graphql(
      server.url,
      `mutation($a: CreatePaymentInput!, $b: CreatePaymentInput!) { a: createPayment(input: $a) { payment { id orderReference } userErrors { code } } b: createPayment(input: $b) { payment { id orderReference } userErrors { code } } }`,
      { a: { amount: 300, currency: 'CNY', orderReference: 'two-in-one-a', idempotencyKey: 'two-in-one-a' }, b: { amount: 400, currency: 'CNY', orderReference: 'two-in-one-b', idempotencyKey: 'two-in-one-b' } },
      { authorization: `Bearer ${token}` },
    );
    expect(both.body.errors).toBeUndefined();
    expect(both.body.data).toMatchObject({ a: { payment: { orderReference: 'two-in-one-a' }, userErrors: [] }, b: { payment: { orderReference: 'two-in-one-b' }, userErrors: [] } });
    const a = await committed('two-in-one-a', 'two-in-one-a');
    const b = await committed('two-in-one-b', 'two-in-one-b');
    expect([a.payments.length, b.payments.length, a.answer?.state, b.answer?.state]).toEqual([1, 1, 'DONE', 'DONE']);
    expect(a.answer!.tx).not.toBe(b.answer!.tx);
  });
});
