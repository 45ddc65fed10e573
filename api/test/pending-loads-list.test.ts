/**
 * A card company's pending loads, listed for its back office (issue 26): `pendingLoads` shows the
 * UNRESOLVED ones (a write onto the card started, MAC2 issued, and no reader writing it now: the
 * ones resolvePendingLoad is for) apart from those WAITING for the card's next tap. The failures it
 * guards against: another card company's loads in the list (they name cards and amounts), a load a
 * reader is writing at this moment offered for settling, a settled load still listed as unresolved.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { recordPendingLoad } from '../src/topups/topups.service.js';
import { apiClient, brokenRelay, cardholderApp, expireSession, issueCard, newReader, OPEN, sessionsOf, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();

const LIST = `query($status: PendingLoadStatus, $first: Int, $after: String) {
  pendingLoads(status: $status, first: $first, after: $after) {
    edges { node { topUp { id status } cardNumber amount { amount currency } status writeStartedAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
type Listed = { topUp: { id: string; status: string }; cardNumber: string; amount: { amount: number; currency: string }; status: string; writeStartedAt: string | null };
type ListResult = { pendingLoads: { edges: { node: Listed }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };

let gz: OneCardClient;
let sz: OneCardClient;
let operator: OneCardClient;
let cardNumber: string;
let holder: Awaited<ReturnType<typeof cardholderApp>>;
let reader: Awaited<ReturnType<typeof newReader>>;
let chip: ReturnType<typeof issueCard>;
let cardUuid: string;
const loads = {} as Record<'started' | 'waiting' | 'waiting2', string>;

const list = async (who: OneCardClient, variables: Record<string, unknown> = {}) => (await who.request<ListResult>(LIST, variables)).pendingLoads;
const topUpIds = (page: ListResult['pendingLoads']) => page.edges.map((e) => e.node.topUp.id);

/** Value owed to the card, recorded PAID for its next tap (as a merchant's refund is). */
async function owe(amount: bigint): Promise<string> {
  const em = world.db.orm.em.fork();
  const funding = await openAccount(em, { code: `test.pending-list.${randomUUID()}.CNY`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const { topUpId } = await em.transactional((tx) => recordPendingLoad(tx, { origin: 'REFUND', cardId: cardUuid, key: `pending-list-${randomUUID()}`, amount, currency: 'CNY', fromAccountId: funding.id, description: 'pending list test', metadata: {}, cause: 'test' }));
  return toGlobalId('TopUp', topUpId);
}

beforeAll(async () => {
  gz = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
  sz = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['cards:read', 'topups:write']);
  operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['cards:read']);
  holder = await cardholderApp(world, 'pending-list-holder', ['card:read', 'card:topup']);
  reader = await newReader(world, 'PENDING-LIST-HOME', world.gz, { kind: 'CARDHOLDER', id: holder.id });
  chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  cardNumber = testCardNumber('623188000000');
  cardUuid = (await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber, asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: holder.id })).id;
  loads.started = await owe(1_200n);
});

describe('pendingLoads', () => {
  it('a load a reader is writing right now is not offered for settling; once its session is over it is UNRESOLVED, with its card and when the write started', async () => {
    // The card is pulled away after the host issued MAC2: the write was started, the card never took it.
    const opened = await holder.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: reader.id, operation: 'LOAD', topUp: loads.started } });
    const dropped = sessionsOf(brokenRelay(holder.app, 1, 'answer', 'card removed'), () => reader);
    await expect(dropped.agent(chip).run(opened.openCardSession.session)).rejects.toThrow('card removed');
    expect(topUpIds(await list(gz)), 'the session is still live').toEqual([]);

    await expireSession(world, opened.openCardSession.session.id);
    const unresolved = await list(gz);
    expect(unresolved.edges.map((e) => e.node)).toEqual([
      { topUp: { id: loads.started, status: 'PAID' }, cardNumber, amount: { amount: 1_200, currency: 'CNY' }, status: 'UNRESOLVED', writeStartedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    expect(unresolved.pageInfo.hasNextPage).toBe(false);
  });

  it('WAITING lists the paid loads never started, oldest first, a page at a time', async () => {
    loads.waiting = await owe(300n);
    loads.waiting2 = await owe(450n);
    const first = await list(gz, { status: 'WAITING', first: 1 });
    expect(first.edges.map((e) => [e.node.topUp.id, e.node.status, e.node.writeStartedAt, e.node.amount.amount])).toEqual([[loads.waiting, 'WAITING', null, 300]]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = await list(gz, { status: 'WAITING', first: 1, after: first.pageInfo.endCursor });
    expect(topUpIds(second)).toEqual([loads.waiting2]);
    expect(second.pageInfo.hasNextPage).toBe(false);
    // UNRESOLVED (the default) still holds the started one only.
    expect(topUpIds(await list(gz))).toEqual([loads.started]);
  });

  it('another card company sees none of them; the operator sees them all', async () => {
    expect(topUpIds(await list(sz))).toEqual([]);
    expect(topUpIds(await list(sz, { status: 'WAITING' }))).toEqual([]);
    expect(topUpIds(await list(operator))).toEqual([loads.started]);
    expect(topUpIds(await list(operator, { status: 'WAITING' }))).toEqual([loads.waiting, loads.waiting2]);
  });

  it('refused to a merchant, and to a card company without cards:read, as FORBIDDEN', async () => {
    const merchant = await apiClient(world, 'MERCHANT', world.gz.cardCompanyId, ['payments:read']);
    const blind = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
    for (const who of [merchant, blind]) await expect(list(who)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(list(gz, { first: 0 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('once the card company settles it (not loaded: released), it is no longer unresolved, but waits for the next tap', async () => {
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { id status } userErrors { code } } }`;
    const resolved = await gz.request<{ resolvePendingLoad: { userErrors: unknown[] } }>(RESOLVE, { input: { topUp: loads.started, loaded: false, note: 'the chip shows it never arrived', idempotencyKey: randomUUID() } });
    expect(resolved.resolvePendingLoad.userErrors).toEqual([]);
    expect(topUpIds(await list(gz))).toEqual([]);
    expect(topUpIds(await list(gz, { status: 'WAITING' }))).toEqual([loads.started, loads.waiting, loads.waiting2]);
  });
});
