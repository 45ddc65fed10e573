import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { AnalyticsError } from './analytics.errors.js';

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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The group key of a ride, over the `rides` rows below (local_at is the city's wall-clock time). */
const KEYS: Record<RidershipGrouping, string> = {
  LINE: `coalesce(l.line, '(no line)')`,
  STOP: `coalesce(l.line, '(no line)') || ' / ' || coalesce(l.stop, '(no stop)')`,
  HOUR: `to_char(rides.local_at, 'HH24')`,
  DAY: `to_char(rides.local_at, 'YYYY-MM-DD')`,
};

/**
 * A city's ridership between two business days (inclusive), grouped. The operator sees every city;
 * a card company its own city only (another city answers null, as a missing one does).
 */
export async function ridershipFor(em: EntityManager, principal: Principal, input: { cityId: string; from: string; to: string; groupBy: RidershipGrouping }): Promise<Ridership | null> {
  if (!UUID.test(input.cityId)) return null;
  const [city] = await em.execute<{ id: string; time_zone: string; currency: string }[]>(
    `select c.id, c.time_zone, btrim(c.currency) as currency from city c
      where c.id = ? and (? or c.id = (select city_id from card_company where id = ?))`,
    [input.cityId, principal.kind === 'OPERATOR', principal.kind === 'ISSUER' && principal.tenantId && UUID.test(principal.tenantId) ? principal.tenantId : null],
  );
  if (!city) return null;
  const rows = await em.execute<{ key: string; rides: string; riders: string; fares: string }[]>(
    `with rides as (
       select b.reader_id, (q.scanned_at at time zone ?) as local_at, q.amount, 'wallet:' || c.wallet_id as rider
         from qr_ride q join qr_ride_batch b on b.id = q.batch_row_id join qr_credential c on c.id = q.credential_id
        where q.outcome in ('ACCEPTED', 'DEBT')
       union all
       select b.reader_id, to_timestamp(t.date || t.time, 'YYYYMMDDHH24MISS')::timestamp as local_at, t.amount, 'card:' || t.asn as rider
         from offline_transaction t join offline_batch b on b.id = t.batch_row_id
        where t.outcome in ('ACCEPTED', 'GAP')
     )
     select ${KEYS[input.groupBy]} as key, count(*)::text as rides, count(distinct rides.rider)::text as riders, sum(rides.amount)::text as fares
       from rides join reader r on r.id = rides.reader_id left join terminal_location l on l.reader_id = r.id
      where r.city_id = ? and rides.local_at >= ?::date and rides.local_at < ?::date + 1
      group by 1 order by 1`,
    [city.time_zone, city.id, input.from, input.to],
  );
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
