import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { AnalyticsError } from './analytics.errors.js';
import { analyticsCityFor, type AnalyticsCity, analyticsTransaction, LINE_OF, STOP_OF, tapsParams, WITH_TAPS } from './ride-taps.js';
import { freshRollupDays, markRideDaysOfTerminal, rollupGroups } from './ridership-rollup.js';

/**
 * Ridership analytics (支付数据分析, issue 25 item 3): how many rides, riders and fares by line, stop,
 * hour or day in a city, from what its terminals uploaded and the ledger booked: QR rides (ACCEPTED,
 * DEBT) and offline card fares (ACCEPTED, GAP). One set-based statement; no personal data in the
 * answer, and a group with fewer distinct riders than MINIMUM_GROUP_SIZE is left out (counted in
 * `suppressedGroups` only), so a group can never point at one person's trips.
 */

export type RidershipGrouping = 'LINE' | 'STOP' | 'HOUR' | 'DAY';

/** The fewest distinct riders (wallets, cards) a group shows: below it, a trip pattern could be one person's. */
export const MINIMUM_GROUP_SIZE = 5;

export interface RidershipGroupRow {
  key: string;
  rides: number;
  riders: number;
  fares: bigint;
}

export interface Ridership {
  cityId: string;
  currency: string;
  groups: RidershipGroupRow[];
  suppressedGroups: number;
}

/** The group key of a tap (local_at is the city's wall-clock time). */
const KEYS: Record<RidershipGrouping, string> = {
  LINE: LINE_OF('taps'),
  STOP: STOP_OF('taps'),
  HOUR: `to_char(taps.local_at, 'HH24')`,
  DAY: `to_char(taps.local_at, 'YYYY-MM-DD')`,
};

/**
 * The statement of ridershipFor, and of the benchmark that times it. Riders are counted in two
 * steps — each (group, rider) once, then the riders of a group — so PostgreSQL can hash the day's
 * rides instead of sorting them all for `count(distinct rider)` (docs/performance.md, ridership).
 */
export const ridershipSql = (groupBy: RidershipGrouping) => `${WITH_TAPS},
  per_rider as (select ${KEYS[groupBy]} as key, taps.rider, count(*) as rides, sum(taps.amount) as fares from taps group by 1, 2)
  select key, sum(rides)::text as rides, count(*)::text as riders, sum(fares)::text as fares
    from per_rider group by key order by key`;

type GroupRow = { key: string; rides: string; riders: string; fares: string };

/**
 * A city's ridership between two business days (inclusive), grouped. The operator sees every city;
 * a card company its own city only (another city answers null, as a missing one does).
 *
 * Read from the rollup where it is exact and fresh (ridership-rollup.ts): one day by any grouping,
 * and by DAY each day whose rollup is fresh (each group is one day), the other days from the rides.
 * Otherwise — several days by LINE, STOP or HOUR (a rider counts once over them all), a day not
 * built or booked since — from the rides. Either way the same groups, in one snapshot.
 */
export async function ridershipFor(em: EntityManager, principal: Principal, input: { cityId: string; from: string; to: string; groupBy: RidershipGrouping }): Promise<Ridership | null> {
  const city = await analyticsCityFor(em, principal, input.cityId);
  if (!city) return null;
  const rows = await analyticsTransaction(em, (tx) => ridershipRows(tx, city, input));
  const shown = rows.filter((r) => Number(r.riders) >= MINIMUM_GROUP_SIZE);
  return {
    cityId: city.id,
    currency: city.currency,
    groups: shown.map((r) => ({ key: r.key, rides: Number(r.rides), riders: Number(r.riders), fares: BigInt(r.fares) })),
    suppressedGroups: rows.length - shown.length,
  };
}

/** Every group, the small ones too: from the rollup, the rides, or (by DAY) both. */
async function ridershipRows(tx: EntityManager, city: AnalyticsCity, input: { from: string; to: string; groupBy: RidershipGrouping }): Promise<GroupRow[]> {
  const live = (from: string, to: string) => tx.execute<GroupRow[]>(ridershipSql(input.groupBy), tapsParams(city, from, to));
  const oneDay = input.from === input.to;
  if (!oneDay && input.groupBy !== 'DAY') return live(input.from, input.to);
  const fresh = await freshRollupDays(tx, city.id, input.from, input.to);
  if (oneDay) return fresh.size ? rollupGroups(tx, city.id, [input.from], input.groupBy) : live(input.from, input.to);
  // By DAY a group is a day: the fresh days from the rollup, the span of the others from the rides.
  const stale = daysBetween(input.from, input.to).filter((d) => !fresh.has(d));
  const fromRollup = await rollupGroups(tx, city.id, [...fresh], 'DAY');
  const fromRides = stale.length ? (await live(stale[0]!, stale.at(-1)!)).filter((r) => !fresh.has(r.key)) : [];
  return [...fromRollup, ...fromRides].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Each day from first to last (YYYY-MM-DD, inclusive). */
function daysBetween(first: string, last: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${first}T00:00:00Z`); t <= Date.parse(`${last}T00:00:00Z`); t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/**
 * Sets where a terminal stands (the caller checked it may manage it); null clears a field. A new line
 * or stop moves the terminal's past rides to other groups: the days it rode on are marked, so their
 * rollups answer no more until rebuilt (ridership-rollup.ts).
 */
export async function setTerminalLocation(em: EntityManager, readerId: string, location: { line: string | null; stop: string | null; vehicle: string | null }): Promise<void> {
  for (const [field, value] of Object.entries(location)) {
    if (value != null && (value.trim() !== value || value.length < 1 || value.length > 100)) throw new AnalyticsError(`a ${field} is 1 to 100 characters, without spaces around`, field);
  }
  await em.transactional(async (tx) => {
    // The terminal's row, as an upload's batch row holds it (key share, by its reference): an upload
    // still open is waited for, so the marks below see its rides; a rollup built before the move
    // commits could otherwise hold them at the old line with no mark of the move on their day.
    await tx.execute(`select 1 from reader where id = ? for update`, [readerId]);
    // The row first, so the lock below holds one: a placement not yet committed is waited for and read, not missed.
    await tx.execute(`insert into terminal_location (reader_id) values (?) on conflict (reader_id) do nothing`, [readerId]);
    const [before] = await tx.execute<{ line: string | null; stop: string | null }[]>(`select line, stop from terminal_location where reader_id = ? for update`, [readerId]);
    await tx.execute(
      `insert into terminal_location (reader_id, line, stop, vehicle) values (?, ?, ?, ?)
       on conflict (reader_id) do update set line = excluded.line, stop = excluded.stop, vehicle = excluded.vehicle, updated_at = now()`,
      [readerId, location.line, location.stop, location.vehicle],
    );
    if ((before?.line ?? null) !== location.line || (before?.stop ?? null) !== location.stop) await markRideDaysOfTerminal(tx, readerId);
  });
}
