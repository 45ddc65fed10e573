/**
 * The origin–destination matrix (issue 25 item 3) over real HTTP,
 * over a constructed day: card fares made on virtual cards at metro gates and a bus validator at
 * set times, uploaded by the card company through uploadOfflineBatch, then asked for as the card
 * company, another city's card company, a merchant and the operator.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import type { PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { addCity, addMasterKeys, apiClient, issueCard, newReader, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { offlineRide, uploadRides } from './support/settlement.js';

const world = useCardSessionWorld();
const DAY = '2026-11-25';
const FARE = 200;

let xa: TestCity;
let tokens: Record<'company' | 'otherCompany' | 'merchant' | 'operator', string>;

async function tokenFor(kind: PrincipalKind, tenantId: string | null, scopes: string[]) {
  const made = await createClient(world.db.orm.em.fork(), { kind, tenantId, name: `${kind} analytics`, scopes });
  return (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, scopes.join(' '))).access_token;
}

async function graphql<T>(token: string, query: string, variables: Record<string, unknown>) {
  const res = await fetch(`${world.server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as { data?: T; errors?: { message: string; extensions: { code: string } }[] };
}

/** The card's value went through the ledger (as a load would have put it there). */
async function fundShadow(asn: string, amount: number) {
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.analytics.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-fund:${asn}`, description: 'test funding', lines: [debit(source.id, BigInt(amount)), credit(purse.id, BigInt(amount))] });
}

/**
 * The constructed day, tap by tap (HHMMSS, the terminal, the riders by number 1 to 6). Each moment is
 * one signed batch uploaded by the card company, in time order, so every card's fares book in order.
 */
function theDay(g: Record<'wulin' | 'longxiang1' | 'longxiang2' | 'bus9', TestReader>): [string, TestReader, number[]][] {
  return [
    // Everyone enters Line 1 at Wulin Square and leaves it at Longxiang: a ride along Line 1.
    ['080000', g.wulin, [1, 2, 3, 4, 5, 6]],
    ['082000', g.longxiang1, [1, 2, 3, 4, 5, 6]],
    // Five change to Line 2 at the same station: a transfer.
    ['082500', g.longxiang2, [1, 2, 3, 4, 5]],
    // Rider 6 boards bus 9 30 minutes and 1 second after leaving Line 1: past a 30-minute window.
    ['085001', g.bus9, [6]],
    // The five board bus 9 exactly 30 minutes after entering Line 2: within a 30-minute window.
    ['085500', g.bus9, [1, 2, 3, 4, 5]],
    // Evening: two ride Line 1 back (too few to show); rider 3 taps twice at the same gate (no trip).
    ['170000', g.longxiang1, [1, 2]],
    ['170000', g.wulin, [3]],
    ['170030', g.wulin, [3]],
    ['172000', g.wulin, [1, 2]],
  ];
}

beforeAll(async () => {
  xa = await addCity(world, { code: 'XA', name: 'Xiamen', cardCompanyName: 'Xiamen Tong', cardCode: '3610' });
  const keys = await addMasterKeys(world, xa, '3DES');
  const company = await apiClient(world, 'ISSUER', xa.cardCompanyId, ['readers:manage', 'topups:write']);
  const gates = {
    wulin: await newReader(world, 'XA-M1-WULIN', xa),
    longxiang1: await newReader(world, 'XA-M1-LONGXIANG', xa),
    longxiang2: await newReader(world, 'XA-M2-LONGXIANG', xa),
    bus9: await newReader(world, 'XA-BUS9-0001', xa),
  };
  const places: [TestReader, string, string][] = [
    [gates.wulin, 'Line 1', 'Wulin Square'],
    [gates.longxiang1, 'Line 1', 'Longxiang'],
    [gates.longxiang2, 'Line 2', 'Longxiang'],
    [gates.bus9, 'Bus 9', 'Hubin'],
  ];
  for (const [reader, line, stop] of places) {
    const set = await company.request<{ setTerminalLocation: { userErrors: unknown[] } }>(`mutation($input: SetTerminalLocationInput!) { setTerminalLocation(input: $input) { userErrors { code } } }`, { input: { reader: reader.id, line, stop } });
    expect(set.setTerminalLocation.userErrors).toEqual([]);
  }

  const cards: VirtualCpuCard[] = [];
  for (let i = 0; i < 6; i++) {
    const card = issueCard({ city: xa, keys, balance: 5000 });
    cards.push(card);
  }
  const funded = new Set<string>();
  let batch = 0;
  for (const [time, gate, riders] of theDay(gates)) {
    const rides = [];
    for (const n of riders) rides.push(await offlineRide(cards[n - 1]!, gate, FARE, keys.purchase, DAY, time));
    for (const ride of rides) if (!funded.has(ride.asn)) funded.add(ride.asn), await fundShadow(ride.asn, 5000);
    expect(await uploadRides(company, gate, `xa-${++batch}`, rides)).toEqual(rides.map(() => 'ACCEPTED'));
  }

  const merchant = await createMerchant(world.db.orm.em.fork(), { cityId: xa.cityId, name: 'Xiamen Bus Group' });
  tokens = {
    company: await tokenFor('ISSUER', xa.cardCompanyId, ['settlements:read']),
    otherCompany: await tokenFor('ISSUER', world.gz.cardCompanyId, ['settlements:read']),
    merchant: await tokenFor('MERCHANT', merchant.id, ['settlements:read', 'payments:write']),
    operator: await tokenFor('OPERATOR', null, ['settlements:read']),
  };
});

const OD = `query($city: ID!, $from: String!, $to: String!, $level: OriginDestinationLevel!, $window: Int) {
  originDestination(city: $city, from: $from, to: $to, level: $level, transferWindowMinutes: $window) {
    level transferWindowMinutes minimumGroupSize pairs { origin destination transfer trips riders } suppressedPairs } }`;
type Matrix = { level: string; transferWindowMinutes: number; minimumGroupSize: number; pairs: { origin: string; destination: string; transfer: boolean; trips: number; riders: number }[]; suppressedPairs: number };

const askOd = (token: string, level: string, window?: number) => graphql<{ originDestination: Matrix | null }>(token, OD, { city: toGlobalId('City', xa.cityId), from: DAY, to: DAY, level, window });

describe('origin–destination matrix', () => {
  it('pairs each rider’s consecutive taps by stop: a ride along a line, a transfer, the window honoured to the second, a same-stop tap no trip, small pairs left out', async () => {
    const { data, errors } = await askOd(tokens.company, 'STOP');
    expect(errors).toBeUndefined();
    expect(data!.originDestination).toEqual({
      level: 'STOP',
      transferWindowMinutes: 30,
      minimumGroupSize: 5,
      pairs: [
        { origin: 'Line 1 / Longxiang', destination: 'Line 2 / Longxiang', transfer: true, trips: 5, riders: 5 },
        { origin: 'Line 1 / Wulin Square', destination: 'Line 1 / Longxiang', transfer: false, trips: 6, riders: 6 },
        // Exactly 30 minutes: within the window.
        { origin: 'Line 2 / Longxiang', destination: 'Bus 9 / Hubin', transfer: true, trips: 5, riders: 5 },
      ],
      // Line 1 back from Longxiang to Wulin Square, two riders. Rider 6's bus, 30:01 later, is no pair at all.
      suppressedPairs: 1,
    });
  });

  it('by line: the rides along a line from morning and evening together, and nothing left to suppress', async () => {
    const { data } = await askOd(tokens.company, 'LINE');
    expect(data!.originDestination!.pairs).toEqual([
      { origin: 'Line 1', destination: 'Line 1', transfer: false, trips: 8, riders: 6 },
      { origin: 'Line 1', destination: 'Line 2', transfer: true, trips: 5, riders: 5 },
      { origin: 'Line 2', destination: 'Bus 9', transfer: true, trips: 5, riders: 5 },
    ]);
    expect(data!.originDestination!.suppressedPairs).toBe(0);
  });

  it('the transfer window decides at its boundary: 29 minutes loses the bus transfer, 31 takes rider 6’s (one rider: suppressed)', async () => {
    const narrow = (await askOd(tokens.company, 'STOP', 29)).data!.originDestination!;
    expect(narrow.pairs.map((p) => `${p.origin} → ${p.destination}`)).toEqual(['Line 1 / Longxiang → Line 2 / Longxiang', 'Line 1 / Wulin Square → Line 1 / Longxiang']);
    expect(narrow.suppressedPairs).toBe(1);
    const wide = (await askOd(tokens.company, 'STOP', 31)).data!.originDestination!;
    expect(wide.pairs).toHaveLength(3);
    expect(wide.suppressedPairs).toBe(2);
  });

  it('the operator sees it; another city’s card company gets null; a merchant is FORBIDDEN; a window out of range is BAD_USER_INPUT', async () => {
    expect((await askOd(tokens.operator, 'STOP')).data!.originDestination!.pairs).toHaveLength(3);
    const other = await askOd(tokens.otherCompany, 'STOP');
    expect(other.errors).toBeUndefined();
    expect(other.data!.originDestination).toBeNull();
    const refused = await askOd(tokens.merchant, 'STOP');
    expect(refused.errors?.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
    expect(refused.data?.originDestination ?? null).toBeNull();
    for (const window of [0, 241]) expect((await askOd(tokens.company, 'STOP', window)).errors?.map((e) => e.extensions.code)).toEqual(['BAD_USER_INPUT']);
  });
});
