import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { AnalyticsError } from './analytics.errors.js';
import { analyticsCityFor, analyticsQuery, LINE_OF, STOP_OF, tapsParams, WITH_TAPS } from './ride-taps.js';

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

/**
 * A city's ridership between two business days (inclusive), grouped. The operator sees every city;
 * a card company its own city only (another city answers null, as a missing one does).
 */
export async function ridershipFor(em: EntityManager, principal: Principal, input: { cityId: string; from: string; to: string; groupBy: RidershipGrouping }): Promise<Ridership | null> {
  const city = await analyticsCityFor(em, principal, input.cityId);
  if (!city) return null;
  const rows = await analyticsQuery<{ key: string; rides: string; riders: string; fares: string }>(em, ridershipSql(input.groupBy), tapsParams(city, input.from, input.to));
  const shown = rows.filter((r) => Number(r.riders) >= MINIMUM_GROUP_SIZE);
  return {
    cityId: city.id,
    currency: city.currency,
    groups: shown.map((r) => ({ key: r.key, rides: Number(r.rides), riders: Number(r.riders), fares: BigInt(r.fares) })),
    suppressedGroups: rows.length - shown.length,
  };
}

/** Sets where a terminal stands (the caller checked it may manage it); null clears a field. */
export async function setTerminalLocation(em: EntityManager, readerId: string, location: { line: string | null; stop: string | null; vehicle: string | null }): Promise<void> {
  for (const [field, value] of Object.entries(location)) {
    if (value != null && (value.trim() !== value || value.length < 1 || value.length > 100)) throw new AnalyticsError(`a ${field} is 1 to 100 characters, without spaces around`, field);
  }
  await em.execute(
    `insert into terminal_location (reader_id, line, stop, vehicle) values (?, ?, ?, ?)
     on conflict (reader_id) do update set line = excluded.line, stop = excluded.stop, vehicle = excluded.vehicle, updated_at = now()`,
    [readerId, location.line, location.stop, location.vehicle],
  );
}
