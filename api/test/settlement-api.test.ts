import { describe, expect, it } from 'vitest';
import { toGlobalId } from '../src/graphql/global-id.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { type ClearingKind, recordClearingItem } from '../src/settlement/clearing-items.js';
import { createFeePlan, createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, useCardSessionWorld } from './support/card-sessions.js';
import { payableAccount } from '../src/ledger/accounts.js';

/*
 * The settlement read API and the operator's close/clear over HTTP with OAuth clients: who sees
 * what. The money itself is checked in api/src/settlement/clearing.test.ts and settlement.test.ts.
 */

const world = useCardSessionWorld();
let n = 0;
const DAY = '2026-02-10';

async function book(kind: ClearingKind, merchantId: string, amount: bigint, cardCompanyId: string) {
  const em = world.db.orm.em.fork();
  const key = `api-test:${++n}`;
  const funding = await openAccount(em, { code: 'test.funding.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', merchantId, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(funding.id, amount)] : [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: new Date(`${DAY}T12:00:00+08:00`) });
  });
}

const WINDOW_FIELDS = `id cityCode businessDay status closedBy batch { id status itemCount gross { amount currency } fees { amount } net { amount } payoutTotal { amount }
  lines(first: 10) { edges { node { participantName participantKind salesCount gross { amount } fees { amount } net { amount } due { amount } payout { amount } status } } }
  interchange { issuer { cityCode } acquirer { cityCode } count net { amount } } }`;

describe('settlement over the API', () => {
  it('the operator closes and clears a window; card companies, merchants and others see only what is theirs', async () => {
    const em = world.db.orm.em.fork();
    const plan = await createFeePlan(em, { name: 'api test 1%', basisPoints: 100, currency: 'CNY' });
    const shopA = await createMerchant(em, { cityId: world.gz.cityId, name: 'Settle Shop A', feePlanId: plan.id });
    const shopB = await createMerchant(em, { cityId: world.gz.cityId, name: 'Settle Shop B' });
    const szShop = await createMerchant(em, { cityId: world.sz.cityId, name: 'Settle SZ Shop' });
    await book('PAYMENT', shopA.id, 10_000n, world.gz.cardCompanyId);
    await book('PAYMENT', shopA.id, 5_000n, world.sz.cardCompanyId);
    await book('REFUND', shopA.id, 1_000n, world.gz.cardCompanyId);
    await book('PAYMENT', shopB.id, 300n, world.gz.cardCompanyId);
    await book('PAYMENT', szShop.id, 700n, world.gz.cardCompanyId);

    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['settlements:read', 'settlements:manage']);
    const gzIssuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['settlements:read']);
    const szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['settlements:read']);
    const merchantA = await apiClient(world, 'MERCHANT', shopA.id, ['settlements:read']);
    const merchantB = await apiClient(world, 'MERCHANT', shopB.id, ['settlements:read']);

    const future = await operator.request<{ closeSettlementWindow: { userErrors: { code: string }[] } }>(
      `mutation($input: CloseSettlementWindowInput!) { closeSettlementWindow(input: $input) { window { id } userErrors { code } } }`,
      { input: { city: toGlobalId('City', world.gz.cityId), businessDay: '2999-01-01' } },
    );
    expect(future.closeSettlementWindow.userErrors).toEqual([{ code: 'WINDOW_NOT_STARTED' }]);

    const closed = await operator.request<{ closeSettlementWindow: { window: { id: string; status: string; closedBy: string } } }>(
      `mutation($input: CloseSettlementWindowInput!) { closeSettlementWindow(input: $input) { window { id status closedBy } userErrors { code } } }`,
      { input: { city: toGlobalId('City', world.gz.cityId), businessDay: DAY } },
    );
    expect(closed.closeSettlementWindow.window.status).toBe('CLOSED');
    const windowId = closed.closeSettlementWindow.window.id;
    const clear = () =>
      operator.request<{ clearSettlementWindow: { batch: { id: string; status: string; itemCount: number; gross: { amount: number }; fees: { amount: number }; net: { amount: number }; payoutTotal: { amount: number } } } }>(
        `mutation($input: ClearSettlementWindowInput!) { clearSettlementWindow(input: $input) { batch { id status itemCount gross { amount } fees { amount } net { amount } payoutTotal { amount } } userErrors { code } } }`,
        { input: { window: windowId } },
      );
    const { batch } = (await clear()).clearSettlementWindow;
    // Shop A: 15,000 gross, 1,000 refunded, 1 % of each sale (100 + 50); shop B: 300, no plan.
    expect(batch).toMatchObject({ status: 'PAYING', itemCount: 4, gross: { amount: 15_300 }, fees: { amount: 150 }, net: { amount: 14_150 }, payoutTotal: { amount: 14_150 } });
    expect((await clear()).clearSettlementWindow.batch).toEqual(batch);
    // An operator client that may manage but not read settlement clears too (the same batch).
    const manager = await apiClient(world, 'OPERATOR', null as unknown as string, ['settlements:manage']);
    const managed = await manager.request<{ clearSettlementWindow: { batch: { id: string } } }>(`mutation($input: ClearSettlementWindowInput!) { clearSettlementWindow(input: $input) { batch { id } userErrors { code } } }`, { input: { window: windowId } });
    expect(managed.clearSettlementWindow.batch.id).toBe(batch.id);
    // Volume by local hour and channel, for charts: everything here happened at noon.
    const volume = await operator.request<{ settlementBatch: { volumeByHour: unknown[] } }>(`query($id: ID!) { settlementBatch(id: $id) { volumeByHour { hour kind count amount { amount currency } } } }`, { id: batch.id });
    expect(volume.settlementBatch.volumeByHour).toEqual([
      { hour: 12, kind: 'PAYMENT', count: 3, amount: { amount: 15_300, currency: 'CNY' } },
      { hour: 12, kind: 'REFUND', count: 1, amount: { amount: 1_000, currency: 'CNY' } },
    ]);

    // The operator and GZ's card company see the whole batch, with the SZ card's use as interchange.
    const windowsQuery = `query { settlementWindows(city: "GZ", first: 5) { edges { node { ${WINDOW_FIELDS} } } } }`;
    type Windows = { settlementWindows: { edges: { node: { id: string; batch: { lines: { edges: { node: { participantName: string; net: { amount: number } } }[] }; interchange: unknown[] } } }[] } };
    const seenByOperator = await operator.request<Windows>(windowsQuery);
    const seenByGz = await gzIssuer.request<Windows>(windowsQuery);
    expect(seenByGz).toEqual(seenByOperator);
    const node = seenByOperator.settlementWindows.edges[0]!.node;
    expect(node.id).toBe(windowId);
    expect(node.batch.lines.edges.map((e) => [e.node.participantName, e.node.net.amount])).toEqual([
      ['Settle Shop A', 13_850],
      ['Settle Shop B', 300],
    ]);
    expect(node.batch.interchange).toEqual([{ issuer: { cityCode: 'SZ' }, acquirer: { cityCode: 'GZ' }, count: 1, net: { amount: 5_000 } }]);

    // SZ's card company does not see GZ's windows or batch, but sees the interchange it owes.
    expect((await szIssuer.request<Windows>(windowsQuery)).settlementWindows.edges).toEqual([]);
    expect((await szIssuer.request<{ settlementBatch: unknown }>(`query($id: ID!) { settlementBatch(id: $id) { id } }`, { id: batch.id })).settlementBatch).toBeNull();
    expect((await gzIssuer.request<{ settlementBatch: { id: string } }>(`query($id: ID!) { settlementBatch(id: $id) { id } }`, { id: batch.id })).settlementBatch.id).toBe(batch.id);
    const matrix = await szIssuer.request<{ interchangeMatrix: { positions: unknown[]; bilateral: unknown[]; multilateral: unknown[] } }>(
      `query { interchangeMatrix(businessDay: "${DAY}") { positions { issuer { cityCode } acquirer { cityCode } net { amount } } bilateral { debtor { cityCode } creditor { cityCode } amount { amount } } multilateral { cardCompany { cityCode } receivable { amount } payable { amount } net { amount } } } }`,
    );
    expect(matrix.interchangeMatrix).toEqual({
      positions: [{ issuer: { cityCode: 'SZ' }, acquirer: { cityCode: 'GZ' }, net: { amount: 5_000 } }],
      bilateral: [{ debtor: { cityCode: 'SZ' }, creditor: { cityCode: 'GZ' }, amount: { amount: 5_000 } }],
      multilateral: [{ cardCompany: { cityCode: 'SZ' }, receivable: { amount: 0 }, payable: { amount: 5_000 }, net: { amount: -5_000 } }],
    });

    // Each merchant reads its own statement only, and may not list windows.
    const statements = `query { settlementStatements(first: 5) { edges { node { participantName businessDay cityCode gross { amount } fees { amount } payout { amount } status } } } }`;
    type Statements = { settlementStatements: { edges: { node: Record<string, unknown> }[] } };
    expect((await merchantA.request<Statements>(statements)).settlementStatements.edges.map((e) => e.node)).toEqual([
      { participantName: 'Settle Shop A', businessDay: DAY, cityCode: 'GZ', gross: { amount: 15_000 }, fees: { amount: 150 }, payout: { amount: 13_850 }, status: 'PAYING' },
    ]);
    expect((await merchantB.request<Statements>(statements)).settlementStatements.edges.map((e) => e.node.participantName)).toEqual(['Settle Shop B']);
    await expect(merchantA.request(windowsQuery)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(gzIssuer.request(`mutation { clearSettlementWindow(input: { window: "${windowId}" }) { userErrors { code } } }`)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // The SZ shop's sale waits in SZ's own window, still open.
    const sz = await operator.request<{ settlementWindows: { edges: { node: { businessDay: string; status: string; batch: null } }[] } }>(`query { settlementWindows(city: "SZ") { edges { node { businessDay status batch { id } } } } }`);
    expect(sz.settlementWindows.edges.map((e) => e.node)).toEqual([{ businessDay: DAY, status: 'OPEN', batch: null }]);
  });
});
