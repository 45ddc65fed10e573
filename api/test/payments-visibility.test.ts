/**
 * Who sees which payment, and what a payment list's filters and cursor leave out. Table-driven over
 * real HTTP for every principal kind with and without the scope that opens payments; in the service
 * for principals no token can carry today (a tenant or holder id that is not a uuid, another kind
 * holding a payment scope), which must find and list nothing rather than fail in the database.
 * Written from the mutation run of payments.service.ts:102-158 (docs/testing.md, payments).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { findPaymentFor, listPaymentsFor } from '../src/payments/payments.service.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, cardholderApp, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();

type Caller = Pick<OneCardClient, 'request'>;
let teaId: string;
let tea: OneCardClient;
/** The payments of a merchant only this file's filter tests list, with created_at set to whole hours. */
let shopId: string;
let shop: OneCardClient;
let open: { id: string; uuid: string };
const shopPayments: { id: string; uuid: string; orderReference: string; createdAt: string }[] = [];

const CREATE = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`;
const GET = `query($id: ID!) { payment(id: $id) { id } }`;
const LIST = `query($first: Int, $after: String, $filter: PaymentFilterInput) { payments(first: $first, after: $after, filter: $filter) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`;
type Listed = { payments: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };

let orders = 0;
async function newPayment(by: OneCardClient, orderReference = `vis-order-${++orders}`): Promise<{ id: string; uuid: string }> {
  const made = await by.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(CREATE, {
    input: { amount: 700, currency: 'CNY', orderReference, idempotencyKey: `vis-${orderReference}` },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  const id = made.createPayment.payment.id;
  return { id, uuid: fromGlobalId(id, 'Payment').id };
}

const listIds = async (by: Caller, variables: Record<string, unknown> = {}) => (await by.request<Listed>(LIST, { first: 100, ...variables })).payments.edges.map((e) => e.node.id);

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  teaId = (await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' })).id;
  tea = await apiClient(world, 'MERCHANT', teaId, ['payments:write']);
  open = await newPayment(tea);

  shopId = (await createMerchant(em, { cityId: world.gz.cityId, name: 'Filter Shop' })).id;
  shop = await apiClient(world, 'MERCHANT', shopId, ['payments:write', 'payments:read']);
  for (const [i, hour] of ['10', '11', '12'].entries()) {
    const orderReference = `shop-order-${i + 1}`;
    const made = await newPayment(shop, orderReference);
    const createdAt = `2026-03-01T${hour}:00:00.000Z`;
    // Whole hours, so that a filter bound can equal a payment's creation time to the microsecond.
    await em.execute(`update payment set created_at = ? where id = ?`, [createdAt, made.uuid]);
    shopPayments.push({ ...made, orderReference, createdAt });
  }
});

describe('who finds and lists a payment waiting for a card, over HTTP', () => {
  const otherMerchant = async () => (await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: `Other ${++orders}` })).id;
  const table: { who: string; kind: PrincipalKind; tenant: () => Promise<string | null> | string | null; scopes: string[]; finds: boolean; lists: boolean }[] = [
    { who: 'its merchant with payments:read only', kind: 'MERCHANT', tenant: () => teaId, scopes: ['payments:read'], finds: true, lists: true },
    { who: 'its merchant with payments:write only', kind: 'MERCHANT', tenant: () => teaId, scopes: ['payments:write'], finds: true, lists: true },
    { who: 'its merchant without a payment scope', kind: 'MERCHANT', tenant: () => teaId, scopes: ['refunds:write', 'events:read'], finds: false, lists: false },
    { who: 'another merchant with both payment scopes', kind: 'MERCHANT', tenant: otherMerchant, scopes: ['payments:read', 'payments:write'], finds: false, lists: false },
    { who: 'the operator with payments:read', kind: 'OPERATOR', tenant: () => null, scopes: ['payments:read'], finds: true, lists: true },
    { who: 'the operator without payments:read', kind: 'OPERATOR', tenant: () => null, scopes: ['ledger:read', 'tenants:manage'], finds: false, lists: false },
    { who: 'an issuer', kind: 'ISSUER', tenant: () => world.gz.cardCompanyId, scopes: ['cards:read', 'topups:write'], finds: false, lists: false },
  ];

  it.each(table)('$who: finds it $finds, lists it $lists', async ({ kind, tenant, scopes, finds, lists }) => {
    const caller = await apiClient(world, kind, (await tenant()) as string, scopes);
    expect((await caller.request<{ payment: { id: string } | null }>(GET, { id: open.id })).payment).toEqual(finds ? { id: open.id } : null);
    const listed = await listIds(caller);
    if (lists) expect(listed).toContain(open.id);
    else expect(listed).toEqual([]);
  });

  it('a holder’s app with card:topup opens it by its id (to pay it) but lists nothing; without card:topup it does not find it either', async () => {
    const paying = await cardholderApp(world, 'vis-payer', ['card:read', 'card:topup']);
    expect((await paying.app.request<{ payment: { id: string } | null }>(GET, { id: open.id })).payment).toEqual({ id: open.id });
    expect(await listIds(paying.app)).toEqual([]);
    const reading = await cardholderApp(world, 'vis-reader', ['card:read']);
    expect((await reading.app.request<{ payment: unknown }>(GET, { id: open.id })).payment).toBeNull();
    expect(await listIds(reading.app)).toEqual([]);
  });

  it('a payment id that is not a uuid finds nothing, for its merchant and for the operator, and is no server error', async () => {
    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['payments:read']);
    for (const caller of [tea, operator]) {
      const answer = await caller.request<{ payment: unknown }>(GET, { id: toGlobalId('Payment', 'not-a-uuid') });
      expect(answer.payment).toBeNull();
    }
  });
});

describe('visibility of principals no token carries today, in the service', () => {
  const principal = (kind: PrincipalKind, fields: Partial<Principal>): Principal => ({ kind, clientId: 'test', tenantId: null, holderId: null, scopes: [], ...fields });
  const cases: { who: string; principal: () => Principal }[] = [
    { who: 'a merchant whose tenant id is not a uuid', principal: () => principal('MERCHANT', { tenantId: 'tea-house', scopes: ['payments:read', 'payments:write'] }) },
    { who: 'a merchant with no tenant id', principal: () => principal('MERCHANT', { scopes: ['payments:read'] }) },
    { who: 'a holder’s app whose holder id is not a uuid', principal: () => principal('CARDHOLDER_APP', { tenantId: world.gz.cardCompanyId, holderId: 'wang', scopes: ['card:topup'] }) },
    { who: 'a holder’s app with no holder id', principal: () => principal('CARDHOLDER_APP', { tenantId: world.gz.cardCompanyId, scopes: ['card:topup'] }) },
    { who: 'an issuer holding payments:read with the merchant’s id as its tenant', principal: () => principal('ISSUER', { tenantId: teaId, scopes: ['payments:read', 'payments:write'] }) },
    { who: 'a biller holding card:topup and a holder id', principal: () => principal('BILLER', { tenantId: teaId, holderId: teaId, scopes: ['card:topup'] }) },
  ];

  it.each(cases)('$who finds and lists nothing', async ({ principal: make }) => {
    const em = world.db.orm.em.fork();
    await expect(findPaymentFor(em, make(), open.uuid)).resolves.toBeNull();
    await expect(listPaymentsFor(em, make(), {}, { limit: 100 })).resolves.toEqual([]);
  });

  it('the operator finds a payment by a uuid, and an id that is not one finds nothing without asking the database', async () => {
    const em = world.db.orm.em.fork();
    const operator = principal('OPERATOR', { scopes: ['payments:read'] });
    expect((await findPaymentFor(em, operator, open.uuid))?.id).toBe(open.uuid);
    await expect(findPaymentFor(em, operator, 'not-a-uuid')).resolves.toBeNull();
  });
});

describe('a merchant’s payment list: each filter leaves payments out, the cursor pages on', () => {
  const ids = (...n: number[]) => n.map((i) => shopPayments[i - 1]!.id);

  it('unfiltered: all three, newest first', async () => {
    expect(await listIds(shop)).toEqual(ids(3, 2, 1));
  });

  it('by order reference: only that order’s payment', async () => {
    expect(await listIds(shop, { filter: { orderReference: 'shop-order-2' } })).toEqual(ids(2));
    expect(await listIds(shop, { filter: { orderReference: 'no-such-order' } })).toEqual([]);
  });

  it('created from a time: that instant included, earlier ones left out', async () => {
    expect(await listIds(shop, { filter: { createdFrom: shopPayments[1]!.createdAt } })).toEqual(ids(3, 2));
  });

  it('created to a time: that instant left out, earlier ones included', async () => {
    expect(await listIds(shop, { filter: { createdTo: shopPayments[1]!.createdAt } })).toEqual(ids(1));
  });

  it('both bounds together: the one hour between them', async () => {
    expect(await listIds(shop, { filter: { createdFrom: shopPayments[1]!.createdAt, createdTo: shopPayments[2]!.createdAt } })).toEqual(ids(2));
  });

  it('pages of one: each page the next payment, none twice, the last page says there is no more', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 3; page++) {
      const answer: Listed = await shop.request<Listed>(LIST, { first: 1, after });
      expect(answer.payments.edges).toHaveLength(1);
      seen.push(answer.payments.edges[0]!.node.id);
      expect(answer.payments.pageInfo.hasNextPage).toBe(page < 2);
      after = answer.payments.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids(3, 2, 1));
    expect(await listIds(shop, { first: 5, after })).toEqual([]);
  });
});
