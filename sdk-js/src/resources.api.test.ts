/**
 * The resource helpers against the real API (`onecard.payments.create(…)`, `onecard.cards.issue(…)`):
 * typed like the documents they run, `ok` narrowing the payload, a money mutation whose answer is
 * lost sent again with the same key (one payment), lists walking every page, and a generated
 * operation (IssueCard, no hand-written document) accepted by the server as generated.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../api/src/auth/clients.service.js';
import { createCity, createMerchant } from '../../api/src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../api/test/support/database.js';
import { startTestServer, type TestServer } from '../../api/test/support/server.js';
import { OneCardClient, type OneCardClientOptions } from './index.js';

let db: TestDatabase;
let server: TestServer;
let merchantId: string;
let cardCompanyId: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const { city, cardCompany } = await createCity(db.orm.em.fork(), { code: 'RES', name: 'Resourceville', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Resource Cards' });
  cardCompanyId = cardCompany.id;
  merchantId = (await createMerchant(db.orm.em.fork(), { cityId: city.id, name: 'Resource Rice' })).id;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function clientOf(kind: 'MERCHANT' | 'ISSUER', tenantId: string, scope: string, extra: Partial<OneCardClientOptions> = {}) {
  const made = await createClient(db.orm.em.fork(), { kind, tenantId, name: `resources ${kind}`, scopes: scope.split(' ') });
  return new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope, retry: { baseDelayMs: 5 }, ...extra });
}
const merchant = (extra?: Partial<OneCardClientOptions>) => clientOf('MERCHANT', merchantId, 'payments:read payments:write refunds:write', extra);

function luhnCardNumber(prefix: string): string {
  const body = (prefix + String(Math.floor(Math.random() * 1e15)).padStart(15, '0')).slice(0, 15);
  for (let d = 0; d <= 9; d++) {
    const digits = (body + d).split('').reverse().map(Number);
    if (digits.reduce((sum, n, i) => sum + (i % 2 ? (n * 2 > 9 ? n * 2 - 9 : n * 2) : n), 0) % 10 === 0) return body + d;
  }
  throw new Error('unreachable');
}

describe('payments as a resource', () => {
  it('create: typed and narrowed; an answer lost on the way back is sent again with the same key, one payment', async () => {
    const bodies: string[] = [];
    let lose = 1;
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith('/graphql') && String(init?.body).includes('createPayment')) {
        bodies.push(String(init?.body));
        if (lose-- > 0) {
          await res.body?.cancel();
          throw new TypeError('fetch failed');
        }
      }
      return res;
    };
    const onecard = await merchant({ fetch: lossy });
    const orderReference = `res-${randomUUID()}`;
    const r = await onecard.payments.create({ amount: 880, currency: 'CNY', orderReference, description: 'Congee' });
    if (!r.ok) return expect.unreachable(JSON.stringify(r.userErrors));
    const payment = r.data.createPayment.payment; // non-null inside `ok`: no `!`
    expect(payment).toMatchObject({ status: 'REQUIRES_CARD', orderReference, amount: { amount: 880, currency: 'CNY' } });
    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toBe(bodies[0]);
    expect(JSON.parse(bodies[0]!).variables.input.idempotencyKey).toBe(r.idempotencyKey);

    const listed = [];
    for await (const p of onecard.payments.list({ filter: { orderReference } })) listed.push(p.id);
    expect(listed).toEqual([payment.id]);
    expect((await onecard.payments.get(payment.id))?.description).toBe('Congee');
  });

  it('the same idempotency key again answers the stored result; a refusal is a typed user error', async () => {
    const onecard = await merchant();
    const orderReference = `res-${randomUUID()}`;
    const key = randomUUID();
    const first = await onecard.payments.create({ amount: 300, currency: 'CNY', orderReference }, { idempotencyKey: key });
    const again = await onecard.payments.create({ amount: 300, currency: 'CNY', orderReference, idempotencyKey: key });
    if (!first.ok || !again.ok) return expect.unreachable('both answered ok');
    expect(again.data.createPayment.payment.id).toBe(first.data.createPayment.payment.id);

    const refund = await onecard.payments.refund({ payment: first.data.createPayment.payment.id, amount: 100 });
    expect(refund.ok).toBe(false);
    if (refund.ok) return;
    expect(refund.userErrors[0]?.code).toBe('INVALID_PAYMENT_STATE'); // nothing was paid yet
    expect(refund.data.refundPayment.refund).toBeNull();

    const canceled = await onecard.payments.cancel({ payment: first.data.createPayment.payment.id });
    if (!canceled.ok) return expect.unreachable(JSON.stringify(canceled.userErrors));
    expect(canceled.data.cancelPayment.payment.status).toBe('CANCELED');
  });

  it('list walks every page', async () => {
    const onecard = await merchant();
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await onecard.payments.create({ amount: 10 + i, currency: 'CNY', orderReference: `res-page-${randomUUID()}` });
      if (r.ok) made.push(r.data.createPayment.payment.id);
    }
    const seen: string[] = [];
    for await (const p of onecard.payments.list({ first: 2 })) seen.push(p.id);
    expect(made).toHaveLength(3);
    expect(seen).toEqual(expect.arrayContaining(made));
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('cards as a resource: a generated operation', () => {
  it('a card company issues, reads, lists and blocks a card with the generated IssueCard and BlockCard', async () => {
    const issuer = await clientOf('ISSUER', cardCompanyId, 'cards:read cards:write');
    const cardNumber = luhnCardNumber('3109');
    const asn = randomUUID().replaceAll('-', '').slice(0, 20).toUpperCase();
    const issued = await issuer.cards.issue({ cardNumber, asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-11-01', expiresOn: '2031-10-31' });
    if (!issued.ok) return expect.unreachable(JSON.stringify(issued.userErrors));
    const card = issued.data.issueCard.card;
    expect(card).toMatchObject({ number: cardNumber, asn, status: 'ACTIVE', purseBalance: { amount: 0, currency: 'CNY' } });

    expect((await issuer.cards.get(card.id))?.number).toBe(cardNumber);
    const listed: string[] = [];
    for await (const c of issuer.cards.list({ first: 50 })) listed.push(c.id);
    expect(listed).toContain(card.id);

    const blocked = await issuer.cards.block({ card: card.id, reason: 'resources test' });
    if (!blocked.ok) return expect.unreachable(JSON.stringify(blocked.userErrors));
    expect(blocked.data.blockCard.card.status).toBe('BLOCKED');

    const duplicate = await issuer.cards.issue({ cardNumber, asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-11-01', expiresOn: '2031-10-31' });
    expect(duplicate.ok).toBe(false);
    expect(duplicate.userErrors.map((e) => e.code)).toContain('DUPLICATE_CARD_NUMBER');
  });
});
