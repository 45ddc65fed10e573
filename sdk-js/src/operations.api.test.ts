/**
 * The typed client against the real API: a money mutation whose answer is lost is retried with the
 * same idempotency key and makes one payment, refusals come back as typed user errors, and
 * pagination walks the merchant's payments page by page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../api/src/auth/clients.service.js';
import { createCity, createMerchant } from '../../api/src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../api/test/support/database.js';
import { startTestServer, type TestServer } from '../../api/test/support/server.js';
import { CancelPaymentDocument, CreatePaymentDocument, OneCardClient, PaymentDocument, PaymentsDocument, ViewerDocument, type OneCardClientOptions } from './index.js';

let db: TestDatabase;
let server: TestServer;
let merchantId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  const { city } = await createCity(em, { code: 'SDK', name: 'Sdkville', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Sdk Card' });
  merchantId = (await createMerchant(db.orm.em.fork(), { cityId: city.id, name: 'Typed Tea' })).id;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function merchant(extra: Partial<OneCardClientOptions> = {}): Promise<OneCardClient> {
  const made = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: merchantId, name: 'SDK shop', scopes: ['payments:read', 'payments:write'] });
  return new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: 'payments:read payments:write', retry: { baseDelayMs: 5 }, ...extra });
}

let orders = 0;
const order = () => `sdk-order-${++orders}`;

describe('typed operations against the API', () => {
  it('the viewer, typed', async () => {
    const onecard = await merchant();
    const { viewer } = await onecard.execute(ViewerDocument);
    expect(viewer).toMatchObject({ kind: 'MERCHANT', scopes: ['payments:read', 'payments:write'] });
  });

  it('a createPayment whose answer is lost is sent again with the same key: one payment', async () => {
    const bodies: string[] = [];
    let lose = 1;
    // The request reaches the API and the payment is made, but the answer never comes back.
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith('/graphql')) {
        bodies.push(String(init?.body));
        if (lose-- > 0) {
          await res.body?.cancel();
          throw new TypeError('fetch failed');
        }
      }
      return res;
    };
    const onecard = await merchant({ fetch: lossy });
    const orderReference = order();
    const r = await onecard.mutate(CreatePaymentDocument, { input: { amount: 1_200, currency: 'CNY', orderReference, description: 'Oolong' } });
    if (!r.ok) expect.unreachable(JSON.stringify(r.userErrors));
    const made = r.data.createPayment.payment!;
    expect(made).toMatchObject({ status: 'REQUIRES_CARD', amount: { amount: 1_200, currency: 'CNY' }, orderReference, description: 'Oolong' });
    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toBe(bodies[0]); // the very same request, key included
    expect(JSON.parse(bodies[0]!).variables.input.idempotencyKey).toBe(r.idempotencyKey);

    const listed = [];
    for await (const p of onecard.paginate(PaymentsDocument, { filter: { orderReference } }, (d) => d.payments)) listed.push(p.id);
    expect(listed).toEqual([made.id]);
  });

  it('a refusal is a typed user error; the same key again gets the stored answer', async () => {
    const onecard = await merchant();
    const orderReference = order();
    const first = await onecard.mutate(CreatePaymentDocument, { input: { amount: 500, currency: 'CNY', orderReference } });
    expect(first.ok).toBe(true);
    const again = await onecard.mutate(CreatePaymentDocument, { input: { amount: 500, currency: 'CNY', orderReference } });
    expect(again.ok).toBe(false);
    if (again.ok) return;
    expect(again.userErrors[0]).toMatchObject({ code: 'DUPLICATE_ORDER' });
    expect(again.data.createPayment.payment).toBeNull();

    // Replaying the first call's key: its stored answer, not a second payment nor a refusal.
    const replay = await onecard.mutate(CreatePaymentDocument, { input: { amount: 500, currency: 'CNY', orderReference } }, { idempotencyKey: first.idempotencyKey! });
    expect(replay).toMatchObject({ ok: true, idempotencyKey: first.idempotencyKey });
    expect(replay.data.createPayment.payment!.id).toBe(first.data.createPayment.payment!.id);

    // Another money mutation with its own key.
    const canceled = await onecard.mutate(CancelPaymentDocument, { input: { payment: first.data.createPayment.payment!.id } });
    expect(canceled).toMatchObject({ ok: true, data: { cancelPayment: { payment: { status: 'CANCELED' } } } });
    expect(canceled.idempotencyKey).not.toBe(first.idempotencyKey);
    const { payment } = await onecard.execute(PaymentDocument, { id: first.data.createPayment.payment!.id });
    expect(payment?.status).toBe('CANCELED');
  });

  it('paginate walks every payment, page by page', async () => {
    const onecard = await merchant();
    const made = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await onecard.mutate(CreatePaymentDocument, { input: { amount: 100 + i, currency: 'CNY', orderReference: order() } });
      if (r.ok) made.add(r.data.createPayment.payment!.id);
    }
    expect(made.size).toBe(5);
    let pages = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input).endsWith('/graphql')) pages++;
      return fetch(input, init);
    };
    const seen: string[] = [];
    for await (const p of (await merchant({ fetch: counting })).paginate(PaymentsDocument, { first: 2 }, (d) => d.payments)) seen.push(p.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining([...made]));
    expect(pages).toBe(Math.ceil(seen.length / 2));
  });
});
