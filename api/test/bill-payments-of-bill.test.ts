/**
 * `Bill.payments` (issue 26): a bill's payments, newest first and paged, for the biller's clerk who
 * opens one bill, and the operator. The failures it guards against: another biller reading them
 * (they name cards and receipts), a holder's app listing payments other holders made on the same
 * bill (it reads the ones it made by id), a payment listed twice or skipped across pages.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { expireBillPayments } from '../src/bills/bill-payments.service.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller } from '../src/tenancy/tenancy.service.js';
import { apiClient, cardholderApp, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();

let water: OneCardClient;
let gas: OneCardClient;
let operator: OneCardClient;
let holders: Awaited<ReturnType<typeof cardholderApp>>[];
let billId: string;
const paid: string[] = [];

const PAYMENTS = `query($id: ID!, $first: Int, $after: String) {
  bill(id: $id) { id payments(first: $first, after: $after) { edges { node { id bill status amount { amount currency } } } pageInfo { hasNextPage endCursor } } }
}`;
type Page = { edges: { node: { id: string; bill: string; status: string; amount: { amount: number; currency: string } } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
const paymentsOf = async (who: Pick<OneCardClient, 'request'>, variables: Record<string, unknown> = {}) => (await who.request<{ bill: { payments: Page } | null }>(PAYMENTS, { id: billId, ...variables })).bill;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const w = await createBiller(em, { cityId: world.gz.cityId, name: 'Bill Payments Water', kind: BillerKind.WATER });
  const g = await createBiller(em, { cityId: world.gz.cityId, name: 'Bill Payments Gas', kind: BillerKind.GAS });
  water = await apiClient(world, 'BILLER', w.id, ['bills:read', 'bills:write']);
  gas = await apiClient(world, 'BILLER', g.id, ['bills:read', 'bills:write']);
  operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['bills:read']);
  holders = [await cardholderApp(world, 'bill-payments-holder-1'), await cardholderApp(world, 'bill-payments-holder-2')];
  const published = await water.request<{ publishBill: { bill: { id: string } } }>(
    'mutation($input: BillInput!) { publishBill(input: $input) { bill { id } userErrors { code message } } }',
    { input: { accountNumber: 'BP-001', period: '2026-11', amountDue: 4_520, dueDate: '2099-12-31', billerReference: 'bp-2026-11-001', allowPartial: true } },
  );
  billId = published.publishBill.bill.id;
  // Three payments, each left waiting for the card until the expiry job cancels it (one bill has one live payment at a time).
  for (const [i, amount] of [1_000, 2_000, 1_520].entries()) {
    const made = await holders[i % 2]!.app.request<{ payBill: { billPayment: { id: string }; userErrors: unknown[] } }>(
      'mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }',
      { input: { bill: billId, amount, idempotencyKey: `bill-payments-of-bill-${i}` } },
    );
    expect(made.payBill.userErrors).toEqual([]);
    paid.push(made.payBill.billPayment.id);
    if (i < 2) await expireBillPayments(world.db.orm.em.fork(), new Date(Date.now() + 3_600_000));
  }
});

describe('Bill.payments', () => {
  it('the biller sees the bill’s payments newest first, whatever their status, a page at a time', async () => {
    const all = await paymentsOf(water);
    expect(all!.payments.edges.map((e) => [e.node.id, e.node.status, e.node.amount.amount, e.node.bill])).toEqual([
      [paid[2], 'REQUIRES_CARD', 1_520, billId],
      [paid[1], 'CANCELED', 2_000, billId],
      [paid[0], 'CANCELED', 1_000, billId],
    ]);
    const seen: string[] = [];
    let after: string | null = null;
    for (let round = 0; round < 3; round++) {
      const page: Page = (await paymentsOf(water, { first: 2, after }))!.payments;
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual([paid[2], paid[1], paid[0]]);
  });

  it('the operator sees them too', async () => {
    expect((await paymentsOf(operator))!.payments.edges.map((e) => e.node.id)).toEqual([paid[2], paid[1], paid[0]]);
  });

  it('another biller gets no bill at all, exactly as for a bill that does not exist', async () => {
    expect(await paymentsOf(gas)).toBeNull();
  });

  it('a holder’s app that may read the bill is refused the list (FORBIDDEN): it would show the other holder’s payments', async () => {
    await expect(paymentsOf(holders[0]!.app)).rejects.toThrow('Not allowed for a CARDHOLDER_APP client');
    // It still reads the bill itself, and its own payment by id.
    const own = await holders[0]!.app.request<{ bill: { id: string }; billPayment: { id: string } | null }>('query($b: ID!, $p: ID!) { bill(id: $b) { id } billPayment(id: $p) { id } }', { b: billId, p: paid[0] });
    expect(own).toEqual({ bill: { id: billId }, billPayment: { id: paid[0] } });
  });

  it('a page size out of range is BAD_USER_INPUT', async () => {
    await expect(paymentsOf(water, { first: 101 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});
