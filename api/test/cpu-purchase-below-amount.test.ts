/**
 * Issue 21, item 3: a CPU card that paid a payment whose answer was lost now holds less than the
 * payment's amount, so INITIALIZE FOR PURCHASE answers 94 01 at its next tap. The lost purchase is
 * still settled there (GET TRANSACTION PROVE), not canceled a day later with a discrepancy.
 * Real HTTP, the SDK's reader agent, a virtual CPU card.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, auditOf, balanceOnCard, expireSession, issueCard, lastMessageLost, newReader, OPEN, purseBalance, sessionsOf, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let merchant: OneCardClient;
let issuer: OneCardClient;
let till: TestReader;
let counter: TestReader;

beforeAll(async () => {
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Below Amount Tea' });
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  till = await newReader(world, 'BELOW-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  counter = await newReader(world, 'BELOW-COUNTER', world.gz);
});

let orders = 0;
async function newPayment(amount: number): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
    input: { amount, currency: 'CNY', orderReference: `below-${++orders}`, idempotencyKey: `below-create-${orders}` },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}
const statusOf = async (id: string) => (await merchant.request<{ payment: { status: string } }>(`query($id: ID!) { payment(id: $id) { status } }`, { id })).payment.status;

async function openFor(payment: string): Promise<{ id: string; challenge: string }> {
  const opened = await merchant.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: unknown[] } }>(OPEN, { input: { reader: till.id, operation: 'PURCHASE', payment } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session;
}

const LOST = lastMessageLost(world, 16);

describe('a lost purchase answer on a card now below the amount is settled at the next tap', () => {
  for (const [how, relay] of Object.entries(LOST)) {
    it(`${how}: the retry of the payment finds 94 01, asks the card to prove the lost purchase, and the payment SUCCEEDS once`, async () => {
      const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
      const counterSessions = sessionsOf(issuer, () => counter);
      expect((await counterSessions.agent(card).run(await counterSessions.open('LOAD', 1_000))).state).toBe('COMPLETED');
      const payment = await newPayment(800);
      const first = await openFor(payment);
      await sessionsOf(relay(merchant), () => till).agent(card, till).run(first).catch(() => undefined);
      await expireSession(world, first.id);
      // The card paid: it now holds 2.00, less than the payment's 8.00.
      expect(await balanceOnCard(card)).toBe(200);
      expect(await statusOf(payment)).toBe('PROCESSING');

      const retried = await sessionsOf(merchant, () => till).agent(card, till).run(await openFor(payment));
      // The card cannot pay 8.00 again (and must not): the session ends, but the lost purchase is booked.
      expect(retried).toMatchObject({ state: 'FAILED', refusal: 'INSUFFICIENT_BALANCE' });
      expect(await statusOf(payment)).toBe('SUCCEEDED');
      expect((await auditOf(world, first.id)).at(-1)).toMatchObject({ step: 'proved', outcome: 'ACCEPTED' });
      expect(await balanceOnCard(card)).toBe(200);
      expect(await purseBalance(world, card.asn)).toBe(200n);
      expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
    });
  }

  it('another payment at the next tap settles it too, and is itself refused for want of balance, charging nothing', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const counterSessions = sessionsOf(issuer, () => counter);
    expect((await counterSessions.agent(card).run(await counterSessions.open('LOAD', 1_000))).state).toBe('COMPLETED');
    const lost = await newPayment(900);
    const first = await openFor(lost);
    await sessionsOf(LOST['the app dies after the card answered']!(merchant), () => till).agent(card, till).run(first).catch(() => undefined);
    await expireSession(world, first.id);
    const next = await newPayment(500);
    const refused = await sessionsOf(merchant, () => till).agent(card, till).run(await openFor(next));
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'INSUFFICIENT_BALANCE' });
    expect(await statusOf(lost)).toBe('SUCCEEDED');
    expect(await statusOf(next)).toBe('REQUIRES_CARD');
    expect(await purseBalance(world, card.asn)).toBe(100n);
    expect(await balanceOnCard(card)).toBe(100);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
