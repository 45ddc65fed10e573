/**
 * The card's balance after a purchase is held against the purse shadow right after the purchase's
 * own entry, which the purpose now hands to the engine from the entry it posted (no read of its
 * own; issue 20): a card carrying value our ledger never issued is recorded as a discrepancy with
 * the shadow after the purchase, not before it, and a card that agrees records nothing. Real HTTP
 * on the world's API process, the SDK's reader agent and virtual card.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, createPaymentAs, issueCard, newReader, purseBalance, sessionsOf, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
type Requester = Pick<OneCardClient, 'request'>;

let till: TestReader;
let counterReader: TestReader;
let merchant: Requester;
let issuer: Requester;

beforeAll(async () => {
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Shadow Shop' });
  till = await newReader(world, 'SHADOW-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  counterReader = await newReader(world, 'SHADOW-COUNTER', world.gz);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
});

const discrepancies = (asn: string) =>
  world.db.orm.em
    .fork()
    .execute<{ card_balance: string; shadow_balance: string }[]>(`select card_balance, shadow_balance from card_balance_discrepancy where card_asn = ? order by id`, [asn]);

async function pay(c: ReturnType<typeof issueCard>, amount: number) {
  const payment = await createPaymentAs(merchant, amount, randomUUID());
  const opened = await merchant.request<{ openCardSession: { session: { id: string; challenge: string } } }>(
    `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`,
    { input: { reader: till.id, operation: 'PURCHASE', payment } },
  );
  return sessionsOf(merchant, () => till).agent(c).run(opened.openCardSession.session);
}

it('a card holding 200 the ledger never issued: after a purchase of 300 it reports 700 against a shadow of 500', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 200 });
  const counter = sessionsOf(issuer, () => counterReader);
  expect((await counter.agent(c).run(await counter.open('LOAD', 800))).state).toBe('COMPLETED');
  expect(await discrepancies(c.asn)).toEqual([{ card_balance: '1000', shadow_balance: '800' }]);
  expect((await pay(c, 300)).state).toBe('COMPLETED');
  expect(await purseBalance(world, c.asn)).toBe(500n);
  expect(await discrepancies(c.asn)).toEqual([
    { card_balance: '1000', shadow_balance: '800' },
    { card_balance: '700', shadow_balance: '500' },
  ]);
});

it('a card whose every fen went through the ledger: two purchases record nothing', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const counter = sessionsOf(issuer, () => counterReader);
  expect((await counter.agent(c).run(await counter.open('LOAD', 900))).state).toBe('COMPLETED');
  expect((await pay(c, 250)).state).toBe('COMPLETED');
  expect((await pay(c, 650)).state).toBe('COMPLETED');
  expect(await purseBalance(world, c.asn)).toBe(0n);
  expect(await discrepancies(c.asn)).toEqual([]);
});
