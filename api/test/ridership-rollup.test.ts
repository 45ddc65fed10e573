/**
 * The ridership rollup (issue 25 item 3, docs/analytics.md "The rollup") over real HTTP: two days of
 * card fares uploaded by the card company, every ridership answer (GraphQL and CSV, each grouping,
 * each day and both days) taken from the rides, then the days rolled up (`onecard ridership
 * rollup`) and every answer asked again: the same, small groups suppressed the same. Then what
 * must never give a stale answer: a late batch for a rolled-up day, a terminal moved to another
 * line, and a build that ran while a booking was still open.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { createProgram } from '../src/cli/program.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { ridershipRollupsTask } from '../src/jobs/ridership-rollups.js';
import { setTerminalLocation } from '../src/analytics/ridership.service.js';
import { markRideDaysOfOfflineBatch } from '../src/analytics/ridership-rollup.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { addCity, addMasterKeys, apiClient, issueCard, type MasterKeys, newReader, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { parseCsv } from './support/csv.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { TEST_KEK } from './support/server.js';
import { localDay, offlineRide, uploadRides } from './support/settlement.js';
import type { OneCardClient } from '../../sdk-js/src/index.js';

const world = useCardSessionWorld();
const D1 = '2026-11-24';
const D2 = '2026-11-25';
const FARE = 200;
const GROUPINGS = ['LINE', 'STOP', 'HOUR', 'DAY'] as const;
/** Each single day, both days, and a span with a day that has no rides. */
const PERIODS: [string, string][] = [
  [D1, D1],
  [D2, D2],
  [D1, D2],
  ['2026-11-23', D2],
];

let rr: TestCity;
let keys: MasterKeys;
let company: OneCardClient;
let token: string;
let gates: Record<'alpha' | 'beta' | 'gamma' | 'delta', TestReader>;
const cards: VirtualCpuCard[] = [];
let batches = 0;
/** The cards whose ledger purse holds their value (funded at their first ride). */
const funded = new Set<string>();

type Group = { key: string; rides: number; riders: number; fares: { amount: number; currency: string } };
type Answer = { groups: Group[]; suppressedGroups: number };
const RIDERSHIP = `query($city: ID!, $from: String!, $to: String!, $groupBy: RidershipGrouping!) { ridership(city: $city, from: $from, to: $to, groupBy: $groupBy) { groups { key rides riders fares { amount currency } } suppressedGroups } }`;

async function ridership(from: string, to: string, groupBy: string): Promise<Answer> {
  const res = await fetch(`${world.server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: RIDERSHIP, variables: { city: toGlobalId('City', rr.cityId), from, to, groupBy } }),
  });
  const body = (await res.json()) as { data?: { ridership: Answer }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data!.ridership;
}

async function ridershipCsv(from: string, to: string, groupBy: string) {
  const res = await fetch(`${world.server.url}/analytics/ridership.csv?city=${toGlobalId('City', rr.cityId)}&from=${from}&to=${to}&groupBy=${groupBy}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return { suppressed: res.headers.get('onecard-suppressed'), rows: parseCsv(await res.text()) };
}

/** Every answer a planner can ask of these days: each period by each grouping, GraphQL and CSV. */
async function everyAnswer() {
  const answers: Record<string, unknown> = {};
  for (const [from, to] of PERIODS) {
    for (const groupBy of GROUPINGS) {
      answers[`${from}..${to} ${groupBy}`] = await ridership(from, to, groupBy);
      answers[`${from}..${to} ${groupBy} csv`] = await ridershipCsv(from, to, groupBy);
    }
  }
  return answers;
}

/** The card's value went through the ledger (as a load would have put it there). */
async function fundShadow(asn: string) {
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.rollup.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-fund:${asn}`, description: 'test funding', lines: [debit(source.id, 50_000n), credit(purse.id, 50_000n)] });
}

/** Riders (1 to 8) tap a gate on a day at a time: one signed batch, uploaded by the card company. */
async function tap(day: string, time: string, gate: TestReader, riders: number[]) {
  const rides = [];
  for (const n of riders) rides.push(await offlineRide(cards[n - 1]!, gate, FARE, keys.purchase, day, time));
  for (const ride of rides) if (!funded.has(ride.asn)) funded.add(ride.asn), await fundShadow(ride.asn);
  expect(await uploadRides(company, gate, `rr-${++batches}`, rides)).toEqual(rides.map(() => 'ACCEPTED'));
}

/** `onecard …` in this process, against the test database: what it printed and its exit code. */
async function onecard(...args: string[]): Promise<{ out: string; exitCode: number }> {
  const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY };
  process.env.DATABASE_URL = world.db.url;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = TEST_KEK;
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...parts) => void lines.push(parts.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...parts) => void lines.push(parts.join(' ')));
  try {
    await createProgram().exitOverride().parseAsync(['node', 'onecard', ...args]);
    return { out: lines.join('\n'), exitCode: Number(process.exitCode ?? 0) };
  } finally {
    log.mockRestore();
    error.mockRestore();
    process.exitCode = undefined;
    for (const [name, value] of [['DATABASE_URL', saved.url], ['ONECARD_KEY_ENCRYPTION_KEY', saved.kek]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

const status = async () => (await onecard('ridership', 'status', '--city', 'RR', '--from', D1, '--to', D2)).out.split('\n').map((l) => l.replace(/\tbuilt \S+/, ''));
const runJob = () => ridershipRollupsTask(world.db.orm, pino({ level: 'silent' }))();

beforeAll(async () => {
  rr = await addCity(world, { code: 'RR', name: 'Rollup City', cardCompanyName: 'Rollup Tong', cardCode: '3620' });
  keys = await addMasterKeys(world, rr, '3DES');
  company = await apiClient(world, 'ISSUER', rr.cardCompanyId, ['readers:manage', 'topups:write']);
  gates = {
    alpha: await newReader(world, 'RR-L1-ALPHA', rr),
    beta: await newReader(world, 'RR-L1-BETA', rr),
    gamma: await newReader(world, 'RR-L2-GAMMA', rr),
    delta: await newReader(world, 'RR-L2-DELTA', rr),
  };
  for (const [reader, line, stop] of [
    [gates.alpha, 'Line 1', 'Alpha'],
    [gates.beta, 'Line 1', 'Beta'],
    [gates.gamma, 'Line 2', 'Gamma'],
    [gates.delta, 'Line 2', 'Delta'],
  ] as const) {
    const set = await company.request<{ setTerminalLocation: { userErrors: unknown[] } }>(`mutation($input: SetTerminalLocationInput!) { setTerminalLocation(input: $input) { userErrors { code } } }`, { input: { reader: reader.id, line, stop } });
    expect(set.setTerminalLocation.userErrors).toEqual([]);
  }
  for (let i = 0; i < 8; i++) {
    const card = issueCard({ city: rr, keys, balance: 50_000 });
    cards.push(card);
  }
  // Day 1: six ride Line 1 in the morning; three go on to Line 2 in the evening (too few to show by stop, hour or line).
  await tap(D1, '080000', gates.alpha, [1, 2, 3, 4, 5, 6]);
  await tap(D1, '082000', gates.beta, [1, 2, 3, 4, 5, 6]);
  await tap(D1, '170000', gates.gamma, [1, 2, 3]);
  // Day 2: five of them ride Line 1 again, five (two new) ride Line 2; one taps Delta twice.
  await tap(D2, '080000', gates.alpha, [1, 2, 3, 4, 5]);
  await tap(D2, '090000', gates.gamma, [4, 5, 6, 7, 8]);
  await tap(D2, '091500', gates.delta, [8]);
  await tap(D2, '093000', gates.delta, [8]);

  const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: rr.cardCompanyId, name: 'rollup planning', scopes: ['settlements:read'] });
  token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, 'settlements:read')).access_token;
});

afterAll(() => {
  process.exitCode = undefined;
});

describe('the ridership rollup', () => {
  let live: Record<string, unknown>;

  it('answers from the rides before any build: riders distinct over the days asked, small groups suppressed', async () => {
    live = await everyAnswer();
    // Over both days a rider counts once per line: Line 1 had riders 1–6, not 6 + 5; Line 2 riders 1–8, not 3 + 5.
    expect(live[`${D1}..${D2} LINE`]).toEqual({
      groups: [
        { key: 'Line 1', rides: 17, riders: 6, fares: { amount: 17 * FARE, currency: 'CNY' } },
        { key: 'Line 2', rides: 10, riders: 8, fares: { amount: 10 * FARE, currency: 'CNY' } },
      ],
      suppressedGroups: 0,
    });
    // Day 1 by line: Line 2's three evening riders are left out.
    expect(live[`${D1}..${D1} LINE`]).toEqual({ groups: [{ key: 'Line 1', rides: 12, riders: 6, fares: { amount: 12 * FARE, currency: 'CNY' } }], suppressedGroups: 1 });
    expect(live[`2026-11-23..${D2} DAY`]).toEqual({
      groups: [
        { key: D1, rides: 15, riders: 6, fares: { amount: 15 * FARE, currency: 'CNY' } },
        { key: D2, rides: 12, riders: 8, fares: { amount: 12 * FARE, currency: 'CNY' } },
      ],
      suppressedGroups: 0,
    });
  });

  it('`onecard ridership rollup` builds finished days, refuses today; every answer is the same from the rollup', async () => {
    const built = await onecard('ridership', 'rollup', '--city', 'RR', '--from', D1, '--to', D2);
    expect(built).toEqual({ out: `RR ${D1}: built, 15 ride(s)\nRR ${D2}: built, 12 ride(s)`, exitCode: 0 });
    expect(await status()).toEqual([`RR ${D1}\t15 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tfresh`]);
    expect(await everyAnswer()).toEqual(live);
    const today = await localDay(world.db.orm.em.fork(), rr.cityId);
    expect(await onecard('ridership', 'rollup', '--city', 'RR', '--from', today)).toEqual({ out: expect.stringMatching(new RegExp(`^RR ${today}: not built: ${today} is not over yet`)), exitCode: 2 });
    expect((await onecard('ridership', 'rollup', '--city', 'XX', '--from', D1)).exitCode).toBe(2);
  });

  it('a fresh day is answered from its rollup (one day by any grouping, any days by DAY), several days by line from the rides', async () => {
    // Proof of where each answer comes from: the rollup's Line 1 of day 1 doctored for a moment.
    const em = world.db.orm.em.fork();
    await em.execute(`update ridership_rollup set rides = rides + 1000 where city_id = ? and business_day = ? and key in ('Line 1', ?)`, [rr.cityId, D1, D1]);
    try {
      expect((await ridership(D1, D1, 'LINE')).groups[0]!.rides).toBe(1012);
      expect((await ridership(D1, D2, 'DAY')).groups[0]!.rides).toBe(1015);
      expect((await ridership(D1, D2, 'LINE')).groups[0]!.rides).toBe(17);
    } finally {
      await em.execute(`update ridership_rollup set rides = rides - 1000 where city_id = ? and business_day = ? and key in ('Line 1', ?)`, [rr.cityId, D1, D1]);
    }
  });

  it('a late batch for a rolled-up day makes it stale: the next answer includes it, and the job builds it again', async () => {
    await tap(D1, '210000', gates.gamma, [4, 5, 6, 7, 8]);
    expect(await status()).toEqual([`RR ${D1}\t15 ride(s)\tstale: rides booked since`, `RR ${D2}\t12 ride(s)\tfresh`]);
    // Line 2 on day 1 now has riders 1–8: shown, with the late rides.
    expect(await ridership(D1, D1, 'LINE')).toEqual({
      groups: [
        { key: 'Line 1', rides: 12, riders: 6, fares: { amount: 12 * FARE, currency: 'CNY' } },
        { key: 'Line 2', rides: 8, riders: 8, fares: { amount: 8 * FARE, currency: 'CNY' } },
      ],
      suppressedGroups: 0,
    });
    expect((await ridership(D1, D2, 'DAY')).groups.map((g) => [g.key, g.rides])).toEqual([
      [D1, 20],
      [D2, 12],
    ]);
    const stale = await everyAnswer();
    await runJob();
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tfresh`]);
    expect(await everyAnswer()).toEqual(stale);
  });

  it('a terminal moved to another line moves its rides in the next answer, rolled-up days too', async () => {
    const before = await everyAnswer();
    const move = (line: string) => company.request<{ setTerminalLocation: { userErrors: unknown[] } }>(`mutation($input: SetTerminalLocationInput!) { setTerminalLocation(input: $input) { userErrors { code } } }`, { input: { reader: gates.gamma.id, line, stop: 'Gamma' } });
    await move('Line 3');
    expect((await ridership(D2, D2, 'LINE')).groups.map((g) => g.key)).toEqual(['Line 1', 'Line 3']);
    expect((await ridership(D1, D1, 'STOP')).groups.map((g) => g.key)).toEqual(['Line 1 / Alpha', 'Line 1 / Beta', 'Line 3 / Gamma']);
    await runJob();
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tfresh`]);
    expect((await ridership(D2, D2, 'LINE')).groups.map((g) => g.key)).toEqual(['Line 1', 'Line 3']);
    await move('Line 2');
    expect(await everyAnswer()).toEqual(before);
    await runJob();
  });

  it('a build that runs while a booking of that day is still open leaves the day stale once the booking commits', async () => {
    // A booking's transaction writes its day's mark first and commits later: the build in between
    // cannot see its rides, and must not then pass for fresh.
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let marked!: () => void;
    const markWritten = new Promise<void>((resolve) => (marked = resolve));
    const booking = world.db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(`insert into ridership_day_mark (city_id, business_day) values (?, ?)`, [rr.cityId, D2]);
      marked();
      await committed;
    });
    await markWritten;
    expect((await onecard('ridership', 'rollup', '--city', 'RR', '--from', D2)).out).toBe(`RR ${D2}: built, 12 ride(s)`);
    commit();
    await booking;
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tstale: rides booked since`]);
    await runJob();
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tfresh`]);
  });

  it('a rollup restored from a logical dump (its snapshot from an older cluster’s xid space) is not fresh once rides are booked after the restore', async () => {
    // pg_dump -Fc restored into a new cluster (docs/operations.md, backups): the stored snapshot's xids
    // are ahead of the new cluster's counter, so every new booking's mark looks older than the build.
    const em = world.db.orm.em.fork();
    await em.execute(`update ridership_rollup_day set snapshot = '9000000000:9000000000:'::pg_snapshot where city_id = ? and business_day = ?`, [rr.cityId, D2]);
    await tap(D2, '220000', gates.alpha, [1, 2, 3, 4, 5]);
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t12 ride(s)\tstale: rides booked since`]);
    expect((await ridership(D2, D2, 'DAY')).groups.map((g) => [g.key, g.rides])).toEqual([[D2, 17]]);
    // A mark restored from the old cluster too: its xid is ahead of this cluster's.
    await em.execute(`insert into ridership_day_mark (city_id, business_day, xid) values (?, ?, '9000000001'::xid8)`, [rr.cityId, D2]);
    await runJob();
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t17 ride(s)\tfresh`]);
    // The restored mark is gone with the build: the day is not due again and again.
    expect(await em.execute(`select 1 from ridership_day_mark where city_id = ? and business_day = ?`, [rr.cityId, D2])).toEqual([]);
  });

  it('a terminal placed for the first time by two at once: the one that moves it off the other’s line marks its days', async () => {
    const eps = await newReader(world, 'RR-L9-EPS', rr);
    const epsId = fromGlobalId(eps.id, 'Reader').id;
    await tap(D2, '230000', eps, [1, 2, 3, 4, 5]);
    await runJob();
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t22 ride(s)\tfresh`]);
    // The first placement (its own mark since covered by a build) is still open when the second one starts.
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let placed!: () => void;
    const inserted = new Promise<void>((resolve) => (placed = resolve));
    const first = world.db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(`insert into terminal_location (reader_id, line, stop) values (?, 'Line 9', 'Eps')`, [epsId]);
      placed();
      await committed;
    });
    await inserted;
    const second = setTerminalLocation(world.db.orm.em.fork(), epsId, { line: null, stop: null, vehicle: null });
    await new Promise((resolve) => setTimeout(resolve, 500));
    commit();
    await first;
    await second;
    // Line 9 → no line: a build that read between the two commits holds Line 9, so the day must be stale.
    expect(await status()).toEqual([`RR ${D1}\t20 ride(s)\tfresh`, `RR ${D2}\t22 ride(s)\tstale: rides booked since`]);
    await runJob();
  });

  it('a day PostgreSQL has no date for (year 0) is bad input: BAD_USER_INPUT, 400 and exit code 2, never an internal error', async () => {
    for (const groupBy of ['LINE', 'DAY']) {
      const res = await fetch(`${world.server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: RIDERSHIP, variables: { city: toGlobalId('City', rr.cityId), from: '0000-12-31', to: '0001-01-01', groupBy } }),
      });
      const body = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    const csv = await fetch(`${world.server.url}/analytics/ridership.csv?city=${toGlobalId('City', rr.cityId)}&from=0000-12-31&to=0000-12-31&groupBy=DAY`, { headers: { authorization: `Bearer ${token}` } });
    expect(csv.status).toBe(400);
    expect((await onecard('ridership', 'rollup', '--city', 'RR', '--from', '0000-12-31')).exitCode).toBe(2);
    expect((await onecard('ridership', 'status', '--city', 'RR', '--from', '0000-12-31')).exitCode).toBe(2);
  });

  it('a terminal moved while an upload of its first rides of a day is still open: the move waits for it and marks that day', async () => {
    const zeta = await newReader(world, 'RR-L8-ZETA', rr);
    const zetaId = fromGlobalId(zeta.id, 'Reader').id;
    await setTerminalLocation(world.db.orm.em.fork(), zetaId, { line: 'Line 8', stop: 'Zeta', vehicle: null });
    const em = world.db.orm.em.fork();
    const [entry] = await em.execute<{ id: string }[]>(`select journal_entry_id as id from offline_transaction where journal_entry_id is not null limit 1`);
    // An upload of Zeta's first ride on day 1, booked and marked, not committed yet.
    let commitUpload!: () => void;
    const uploadCommits = new Promise<void>((resolve) => (commitUpload = resolve));
    let booked!: () => void;
    const bookedNow = new Promise<void>((resolve) => (booked = resolve));
    const upload = world.db.orm.em.fork().transactional(async (tx) => {
      const [batch] = await tx.execute<{ id: string }[]>(`insert into offline_batch (id, reader_id, batch_id, body_sha256) values (gen_random_uuid(), ?, 'zeta-1', 'x') returning id`, [zetaId]);
      await tx.execute(
        `insert into offline_transaction (id, batch_row_id, record_no, asn, card_city, offline_counter, amount, terminal_serial, date, time, tac, outcome, reason, journal_entry_id)
         values (gen_random_uuid(), ?, 0, 'ZETA-RIDER', '3620', 1, ?, 1, ?, '120000', '00000000', 'ACCEPTED', 'accepted', ?)`,
        [batch!.id, FARE, D1.replaceAll('-', ''), entry!.id],
      );
      await markRideDaysOfOfflineBatch(tx, batch!.id);
      booked();
      await uploadCommits;
    });
    await bookedNow;
    // The move, its transaction committing a moment after its marks.
    let commitMove!: () => void;
    const moveCommits = new Promise<void>((resolve) => (commitMove = resolve));
    let movedNow!: () => void;
    const moved = new Promise<void>((resolve) => (movedNow = resolve));
    const move = world.db.orm.em.fork().transactional(async (tx) => {
      await setTerminalLocation(tx, zetaId, { line: 'Line 7', stop: 'Zeta', vehicle: null });
      movedNow();
      await moveCommits;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    commitUpload();
    await upload;
    await moved;
    // A build between: it sees the ride, at Line 8.
    expect((await onecard('ridership', 'rollup', '--city', 'RR', '--from', D1)).out).toBe(`RR ${D1}: built, 21 ride(s)`);
    commitMove();
    await move;
    expect(await status()).toEqual([`RR ${D1}\t21 ride(s)\tstale: rides booked since`, `RR ${D2}\t22 ride(s)\tfresh`]);
    await runJob();
  });
});
