/**
 * Offline fares count like online ones for the card's holder (issue 23, item 5): a batch whose
 * rides take a registered card below its low-balance threshold sends `card.low_balance` and starts
 * the holder's auto top-up, once per card however many of its rides the batch holds; a card that
 * stays above, or was already below before the batch, is not told; a replayed batch tells nobody again.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { apiClient, cardholderApp, issueCard, newReader, purseBalance, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import { offlineRide, type OfflineRide, uploadRides } from './support/settlement.js';

const world = useCardSessionWorld();
let gate: TestReader;
let issuer: OneCardClient;
let holder: Awaited<ReturnType<typeof cardholderApp>>;

const SET = `mutation($input: SetAutoTopUpInput!) { setAutoTopUp(input: $input) { autoTopUp { enabled } userErrors { code } } }`;

beforeAll(async () => {
  gate = await newReader(world, 'GZ-METRO-GATE-LB', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  holder = await cardholderApp(world, 'offline-rider', ['card:read', 'card:topup']);
});

const sql = <T>(query: string, params: unknown[] = []) => world.db.orm.em.fork().execute<T[]>(query, params);

/** A card in the holder's hand, registered to them, whose value went through the ledger (as a load would have put it there). */
async function registeredCard(balance: number) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623100000001'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: holder.id });
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.offline.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${chip.asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: chip.asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-fund:${chip.asn}`, description: 'test funding', lines: [debit(source.id, BigInt(balance)), credit(purse.id, BigInt(balance))] });
  return { chip, asn: chip.asn, id: Buffer.from(`Card:${row.id}`).toString('base64url'), uuid: row.id };
}

/** The holder turns on the card's auto top-up in their app, over HTTP. */
async function autoTopUp(card: { id: string }, threshold: number, amount: number) {
  const reply = await holder.app.request<{ setAutoTopUp: { autoTopUp: { enabled: boolean } | null; userErrors: unknown[] } }>(SET, { input: { card: card.id, threshold, amount, paymentMethod: 'pm_card_visa', enabled: true } });
  expect(reply.setAutoTopUp).toEqual({ autoTopUp: { enabled: true }, userErrors: [] });
}

async function rides(chip: VirtualCpuCard, fares: number[]): Promise<OfflineRide[]> {
  const made: OfflineRide[] = [];
  for (const [i, fare] of fares.entries()) made.push(await offlineRide(chip, gate, fare, world.gzMasterKeys.purchase, '2026-11-25', `0${7 + i}0000`));
  return made;
}

const eventsOf = (card: { id: string }) => sql<{ type: string; payload: Record<string, unknown> }>(`select type, payload from event_outbox where subject_id = ? order by id`, [card.id]);
const autoTopUpsOf = (card: { uuid: string }) => sql<{ status: string; amount: string }>(`select status, amount::text from top_up where card_id = ? and origin = 'AUTO'`, [card.uuid]);

describe('offline fares and the card holder’s low balance', () => {
  it('a batch whose three rides take a card from 1,500 to 600 (threshold 1,000) sends one card.low_balance and records one auto top-up; uploading it again sends nothing more', async () => {
    const card = await registeredCard(1_500);
    await autoTopUp(card, 1_000, 2_000);
    const batch = await rides(card.chip, [300, 300, 300]);

    expect(await uploadRides(issuer, gate, 'low-balance-1', batch)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED']);
    expect(await purseBalance(world, card.asn)).toBe(600n);
    // The payload an online purchase sends: the card, the balance after the batch, the threshold.
    expect(await eventsOf(card)).toEqual([{ type: 'card.low_balance', payload: { card: card.id, balance: 600, threshold: 1000, currency: 'CNY' } }]);
    expect(await autoTopUpsOf(card)).toEqual([{ status: 'CREATED', amount: '2000' }]);

    // The terminal sends the same batch again (it never heard the answer): the stored answer, nothing new.
    expect(await uploadRides(issuer, gate, 'low-balance-1', batch)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED']);
    expect(await eventsOf(card)).toHaveLength(1);
    expect(await autoTopUpsOf(card)).toHaveLength(1);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card whose rides leave it above its threshold is not told, nor topped up', async () => {
    const card = await registeredCard(3_000);
    await autoTopUp(card, 1_000, 2_000);
    expect(await uploadRides(issuer, gate, 'stays-above', await rides(card.chip, [500, 500]))).toEqual(['ACCEPTED', 'ACCEPTED']);
    expect(await purseBalance(world, card.asn)).toBe(2_000n);
    expect(await eventsOf(card)).toEqual([]);
    expect(await autoTopUpsOf(card)).toEqual([]);
  });

  it('a card already below its threshold before the batch is not told again, as online', async () => {
    const card = await registeredCard(800);
    await autoTopUp(card, 1_000, 2_000);
    expect(await uploadRides(issuer, gate, 'already-below', await rides(card.chip, [200]))).toEqual(['ACCEPTED']);
    expect(await eventsOf(card)).toEqual([]);
    expect(await autoTopUpsOf(card)).toEqual([]);
  });

  it('one batch of two registered cards, one crossing (without auto top-up: the default threshold of 10.00) and one not: one event, for the one that crossed, and no top-up', async () => {
    const crossing = await registeredCard(1_100);
    const above = await registeredCard(5_000);
    const batch = [...(await rides(crossing.chip, [200, 200])), ...(await rides(above.chip, [200, 200]))];
    expect(await uploadRides(issuer, gate, 'two-cards', batch)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED', 'ACCEPTED']);
    expect(await eventsOf(crossing)).toEqual([{ type: 'card.low_balance', payload: { card: crossing.id, balance: 700, threshold: 1000, currency: 'CNY' } }]);
    expect(await autoTopUpsOf(crossing)).toEqual([]);
    expect(await eventsOf(above)).toEqual([]);
  });
});
