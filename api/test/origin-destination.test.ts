/**
 * The origin–destination matrix and the analytics CSV downloads (issue 25 item 3) over real HTTP,
 * over a constructed day: card fares made on virtual cards at metro gates and a bus validator at
 * set times, uploaded by the card company through uploadOfflineBatch, then asked for as the card
 * company, another city's card company, a merchant and the operator.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import type { PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { addCity, addMasterKeys, apiClient, issueCard, newReader, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { parseCsv } from './support/csv.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { offlineRide, uploadRides } from './support/settlement.js';

const world = useCardSessionWorld();
const repo = path.resolve(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);
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

describe('CSV downloads', () => {
  const RIDERSHIP = `query($city: ID!, $from: String!, $to: String!, $groupBy: RidershipGrouping!) { ridership(city: $city, from: $from, to: $to, groupBy: $groupBy) { groups { key rides riders fares { amount currency } } suppressedGroups } }`;
  type Ridership = { groups: { key: string; rides: number; riders: number; fares: { amount: number; currency: string } }[]; suppressedGroups: number };

  async function download(path: string, token?: string) {
    const res = await fetch(`${world.server.url}/analytics/${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), suppressed: res.headers.get('onecard-suppressed'), rows: res.status === 200 ? parseCsv(text) : [], text };
  }
  const period = () => `city=${toGlobalId('City', xa.cityId)}&from=${DAY}&to=${DAY}`;

  it('ridership.csv holds the groups the GraphQL query answers, by each grouping', async () => {
    for (const groupBy of ['LINE', 'STOP', 'HOUR', 'DAY']) {
      const { data } = await graphql<{ ridership: Ridership }>(tokens.company, RIDERSHIP, { city: toGlobalId('City', xa.cityId), from: DAY, to: DAY, groupBy });
      const csv = await download(`ridership.csv?${period()}&groupBy=${groupBy}`, tokens.company);
      expect(csv.status).toBe(200);
      expect(csv.type).toBe('text/csv; charset=utf-8');
      expect(csv.rows.length, groupBy).toBeGreaterThan(0);
      expect(csv.rows, groupBy).toEqual(data!.ridership.groups.map((g) => ({ group: g.key, rides: String(g.rides), riders: String(g.riders), fares: String(g.fares.amount), currency: g.fares.currency })));
      expect(csv.suppressed, groupBy).toBe(String(data!.ridership.suppressedGroups));
    }
    // The day's 29 fares, all of them, by day.
    const byDay = await download(`ridership.csv?${period()}&groupBy=DAY`, tokens.company);
    expect(byDay.rows).toEqual([{ group: DAY, rides: '29', riders: '6', fares: String(29 * FARE), currency: 'CNY' }]);
  });

  it('origin-destination.csv holds the pairs the GraphQL query answers, at the window asked for', async () => {
    for (const [level, window] of [['STOP', 30], ['LINE', 30], ['STOP', 31]] as const) {
      const matrix = (await askOd(tokens.company, level, window)).data!.originDestination!;
      const csv = await download(`origin-destination.csv?${period()}&level=${level}&transferWindowMinutes=${window}`, tokens.company);
      expect(csv.status).toBe(200);
      expect(csv.rows).toEqual(matrix.pairs.map((p) => ({ origin: p.origin, destination: p.destination, transfer: String(p.transfer), trips: String(p.trips), riders: String(p.riders) })));
      expect(csv.suppressed).toBe(String(matrix.suppressedPairs));
    }
  });

  it('is the operator’s and the city’s card company’s: no token 401, a merchant 403, another city 404, bad arguments 400', async () => {
    expect((await download(`origin-destination.csv?${period()}&level=STOP`, tokens.operator)).rows).toHaveLength(3);
    expect((await download(`ridership.csv?${period()}&groupBy=LINE`)).status).toBe(401);
    expect((await download(`ridership.csv?${period()}&groupBy=LINE`, tokens.merchant)).status).toBe(403);
    expect((await download(`origin-destination.csv?${period()}&level=STOP`, tokens.otherCompany)).status).toBe(404);
    for (const query of [`${period()}&groupBy=WEEK`, `city=nope&from=${DAY}&to=${DAY}&groupBy=LINE`, `city=${toGlobalId('City', xa.cityId)}&from=2026-11-31&to=${DAY}&groupBy=LINE`]) {
      const bad = await download(`ridership.csv?${query}`, tokens.company);
      expect({ query, status: bad.status }).toEqual({ query, status: 400 });
    }
    expect((await download(`origin-destination.csv?${period()}&level=STOP&transferWindowMinutes=0`, tokens.company)).status).toBe(400);
  });
});

describe('examples/settlement-report/ridership.mjs', () => {
  it('charts the rides by hour and the top pairs from the API’s answers, and saves the CSV downloads beside the page', async () => {
    const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: xa.cardCompanyId, name: 'planning', scopes: ['settlements:read'] });
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-ridership-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, ONECARD_URL: world.server.url, ONECARD_CLIENT_ID: made.client.client_id, ONECARD_CLIENT_SECRET: made.clientSecret! };
      delete env.INIT_CWD;
      const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(repo, 'examples/settlement-report/ridership.mjs'), '--city', 'XA', '--date', DAY, '--out', out], { env });
      expect(stderr).toBe('');
      expect(stdout).toContain(`ridership XA ${DAY}: 23 rides shown by hour, 3 pairs; left out for too few riders: 1 hour, 1 pair`);
      const html = await fs.readFile(path.join(out, 'ridership.html'), 'utf8');
      // One bar: 08:00–08:59, 23 rides by the six riders; the evening's three riders are too few for a bar.
      expect([...html.matchAll(/<rect [^>]*data-hour="(\d\d)" data-rides="(\d+)" data-riders="(\d+)"/g)].map((m) => m.slice(1))).toEqual([['08', '23', '6']]);
      const pairs = [...html.matchAll(/<tr data-origin="([^"]+)" data-destination="([^"]+)" data-trips="(\d+)" data-riders="(\d+)"/g)].map((m) => m.slice(1));
      const matrix = (await askOd(tokens.company, 'STOP')).data!.originDestination!;
      // Most trips first: the six riders along Line 1, then the two transfers of five.
      expect(pairs).toEqual([
        ['Line 1 / Wulin Square', 'Line 1 / Longxiang', '6', '6'],
        ['Line 1 / Longxiang', 'Line 2 / Longxiang', '5', '5'],
        ['Line 2 / Longxiang', 'Bus 9 / Hubin', '5', '5'],
      ]);
      expect(pairs.map(([origin, destination, trips, riders]) => ({ origin, destination, trips: Number(trips), riders: Number(riders) }))).toEqual(
        expect.arrayContaining(matrix.pairs.map(({ origin, destination, trips, riders }) => ({ origin, destination, trips, riders }))),
      );
      expect((await fs.readdir(out)).sort()).toEqual([`origin-destination-stop-${DAY}-to-${DAY}.csv`, `ridership-hour-${DAY}-to-${DAY}.csv`, `ridership-stop-${DAY}-to-${DAY}.csv`, 'ridership.html']);
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  });
});
