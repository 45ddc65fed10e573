import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';

/**
 * What every analytics statement starts from: the city the caller may read, and the booked taps of
 * its terminals (QR rides ACCEPTED or DEBT, offline card fares ACCEPTED or GAP) with the rider
 * (a transit wallet or a card, never shown), the local wall-clock time and where the terminal stands.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AnalyticsCity {
  id: string;
  time_zone: string;
  currency: string;
}

/** The city if the principal may read its analytics: the operator every city, a card company its own; otherwise null, as a missing city. */
export async function analyticsCityFor(em: EntityManager, principal: Principal, cityId: string): Promise<AnalyticsCity | null> {
  if (!UUID.test(cityId)) return null;
  const [city] = await em.execute<AnalyticsCity[]>(
    `select c.id, c.time_zone, btrim(c.currency) as currency from city c
      where c.id = ? and (? or c.id = (select city_id from card_company where id = ?))`,
    [cityId, principal.kind === 'OPERATOR', principal.kind === 'ISSUER' && principal.tenantId && UUID.test(principal.tenantId) ? principal.tenantId : null],
  );
  return city ?? null;
}

/**
 * The CTE `taps` of a city's booked taps between two local days (inclusive): `tap_id`, `rider`,
 * `local_at` (the city's wall clock: a QR scan's instant in its time zone, a card fare's terminal
 * date and time), `amount`, `line` and `stop` (null for a terminal without them). Its parameters,
 * in order: the time zone, the city, the first day, the last day (tapsParams()).
 *
 * The QR side bounds `scanned_at` by the instants the local days start and end, and the card side
 * its `date` text (YYYYMMDD): both can use the indexes on the batch's reader and the time
 * (Migration…ride_analytics_indexes) instead of scanning every city's rides.
 */
export const TAPS_CTE = `taps as (
  select q.id as tap_id, 'wallet:' || c.wallet_id as rider, (q.scanned_at at time zone z.tz) as local_at, q.amount, l.line, l.stop
    from z join reader r on r.city_id = z.city_id
    join qr_ride_batch b on b.reader_id = r.id
    join qr_ride q on q.batch_row_id = b.id
    join qr_credential c on c.id = q.credential_id
    left join terminal_location l on l.reader_id = r.id
   where q.outcome in ('ACCEPTED', 'DEBT')
     and q.scanned_at >= (z.first_day::timestamp at time zone z.tz) and q.scanned_at < ((z.last_day + 1)::timestamp at time zone z.tz)
  union all
  select t.id, 'card:' || t.asn, to_timestamp(t.date || t.time, 'YYYYMMDDHH24MISS')::timestamp, t.amount, l.line, l.stop
    from z join reader r on r.city_id = z.city_id
    join offline_batch b on b.reader_id = r.id
    join offline_transaction t on t.batch_row_id = b.id
    left join terminal_location l on l.reader_id = r.id
   where t.outcome in ('ACCEPTED', 'GAP')
     and t.date between to_char(z.first_day, 'YYYYMMDD') and to_char(z.last_day, 'YYYYMMDD')
)`;

/** The `z` CTE (the parameters, typed once) and `taps`, to open a statement with. */
export const WITH_TAPS = `with z as (select ?::text as tz, ?::uuid as city_id, ?::date as first_day, ?::date as last_day), ${TAPS_CTE}`;

export const tapsParams = (city: AnalyticsCity, from: string, to: string) => [city.time_zone, city.id, from, to];

/** A tap's line, and its stop as `<line> / <stop>`: terminals without them are "(no line)" and "(no stop)". */
export const LINE_OF = (t: string) => `coalesce(${t}.line, '(no line)')`;
export const STOP_OF = (t: string) => `coalesce(${t}.line, '(no line)') || ' / ' || coalesce(${t}.stop, '(no stop)')`;
