/**
 * A key another transaction is using right now (issue 20; graphql/idempotency.ts claim() and
 * heldElsewhere()): a transactional mutation's claim is invisible to others until it commits, so a
 * concurrent duplicate is told apart by the key's advisory lock, which it cannot take. These tests
 * hold that lock from a connection of their own — a duplicate caught mid-transaction, made
 * deterministic — and check what each kind of request with the key is answered: never a second
 * execution, never another request's answer. Over real HTTP.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status amount { amount } orderReference } userErrors { code message } } }`;

let db: TestDatabase;
let server: TestServer;
let token: string;
let clientId: string;
let holder: pg.Client;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code: 'HKEY', name: 'Held Key City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Held Key Card' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Held Key Tea' });
  const made = await createClient(em, { kind: 'MERCHANT', tenantId: shop.id, name: 'held-key merchant', scopes: ['payments:write'] });
  clientId = made.client.client_id;
  token = (await clientCredentialsToken(await discover(server.url), clientId, made.clientSecret!, 'payments:write')).access_token;
  holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
});
afterEach(async () => {
  await holder.query('select pg_advisory_unlock_all()');
});
afterAll(async () => {
  await holder?.end();
  await server?.close();
  await db?.close();
});

/** The key's advisory lock as a transactional claim takes it (idempotency.ts claimLock: 64 bits of the key's hash; a merchant has no holder id). */
function lockOf(key: string): string {
  return createHash('sha256').update(`idempotency\0${clientId}\0\0${key}`).digest().readBigInt64BE(0).toString();
}

/** Another transaction holds the key: its claim is running (or answering a replay) right now. */
async function holdKey(key: string) {
  const [row] = (await holder.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [lockOf(key)])).rows;
  expect(row!.locked).toBe(true);
}

const pay = (input: Record<string, unknown>) => graphql(server.url, CREATE_PAYMENT, { input }, { authorization: `Bearer ${token}` });
const codes = (body: { errors?: { extensions?: { code?: string } }[] }) => (body.errors ?? []).map((e) => e.extensions?.code);
const payments = async (orderReference: string) => Number((await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from payment where order_reference = ?`, [orderReference]))[0]!.n);

describe('a key whose claim another transaction is running', () => {
  it('a new request with it is IDEMPOTENCY_CONFLICT and runs nothing; once the other ends, it runs', async () => {
    await holdKey('held-new');
    const refused = await pay({ amount: 500, currency: 'CNY', orderReference: 'held-new', idempotencyKey: 'held-new' });
    expect(codes(refused.body)).toEqual(['IDEMPOTENCY_CONFLICT']);
    expect(await payments('held-new')).toBe(0);

    await holder.query('select pg_advisory_unlock_all()');
    const ran = await pay({ amount: 500, currency: 'CNY', orderReference: 'held-new', idempotencyKey: 'held-new' });
    expect(ran.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD', orderReference: 'held-new' }, userErrors: [] });
    expect(await payments('held-new')).toBe(1);
  });

  it('the retry of a finished request is answered its stored answer, even while another retry holds the key', async () => {
    const first = await pay({ amount: 600, currency: 'CNY', orderReference: 'held-done', idempotencyKey: 'held-done' });
    expect(first.body.data.createPayment.userErrors).toEqual([]);

    await holdKey('held-done');
    const retried = await pay({ amount: 600, currency: 'CNY', orderReference: 'held-done', idempotencyKey: 'held-done' });
    expect(retried.body.errors).toBeUndefined();
    expect(retried.body.data.createPayment).toEqual(first.body.data.createPayment);
    expect(await payments('held-done')).toBe(1);
  });

  it('another request with a finished key, while the key is held, is a conflict: never the finished request’s answer, never run', async () => {
    const first = await pay({ amount: 700, currency: 'CNY', orderReference: 'held-other', idempotencyKey: 'held-other' });
    expect(first.body.data.createPayment.userErrors).toEqual([]);

    await holdKey('held-other');
    const other = await pay({ amount: 701, currency: 'CNY', orderReference: 'held-other-2', idempotencyKey: 'held-other' });
    expect(codes(other.body)).toEqual(['IDEMPOTENCY_CONFLICT']);
    expect(other.body.data?.createPayment ?? null).toBeNull();
    expect(await payments('held-other-2')).toBe(0);
  });

  it('holding one key holds no other: a request with another key runs at once', async () => {
    await holdKey('held-one');
    const ran = await pay({ amount: 800, currency: 'CNY', orderReference: 'held-two', idempotencyKey: 'held-two' });
    expect(ran.body.data.createPayment).toMatchObject({ payment: { status: 'REQUIRES_CARD' }, userErrors: [] });
    expect(await payments('held-two')).toBe(1);
  });
});
