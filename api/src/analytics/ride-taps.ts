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
 * date and time), `amount`, `line` and `stop` (null for a terminal without them). Its parameters
 * are tapsParams(), in the order they appear.
 *
 * The QR side bounds `scanned_at` by the instants the local days start and end, the card side its
 * `date` text (YYYYMMDD), each compared with a value the planner sees (not a column of another
 * CTE): so both use the indexes on the booked rides' time (Migration20261207002500) to read the
 * days asked for, not every day's rides.
 */
export const WITH_TAPS = `with taps as (
  select q.id as tap_id, 'wallet:' || c.wallet_id as rider, (q.scanned_at at time zone ?::text) as local_at, q.amount, l.line, l.stop
    from qr_ride q
    join qr_ride_batch b on b.id = q.batch_row_id
    join reader r on r.id = b.reader_id
    join qr_credential c on c.id = q.credential_id
    left join terminal_location l on l.reader_id = r.id
   where r.city_id = ?::uuid and q.outcome in ('ACCEPTED', 'DEBT')
     and q.scanned_at >= (?::date::timestamp at time zone ?::text) and q.scanned_at < ((?::date + 1)::timestamp at time zone ?::text)
  union all
  select t.id, 'card:' || t.asn, to_timestamp(t.date || t.time, 'YYYYMMDDHH24MISS')::timestamp, t.amount, l.line, l.stop
    from offline_transaction t
    join offline_batch b on b.id = t.batch_row_id
    join reader r on r.id = b.reader_id
    left join terminal_location l on l.reader_id = r.id
   where r.city_id = ?::uuid and t.outcome in ('ACCEPTED', 'GAP') and t.date between ? and ?
)`;

/** The parameters of WITH_TAPS, in order. */
export const tapsParams = (city: Pick<AnalyticsCity, 'id' | 'time_zone'>, from: string, to: string) => {
  const tz = city.time_zone;
  return [tz, city.id, from, tz, to, tz, city.id, from.replaceAll('-', ''), to.replaceAll('-', '')];
};

/** A tap's line, and its stop as `<line> / <stop>`: terminals without them are "(no line)" and "(no stop)". */
export const LINE_OF = (t: string) => `coalesce(${t}.line, '(no line)')`;
export const STOP_OF = (t: string) => `coalesce(${t}.line, '(no line)') || ' / ' || coalesce(${t}.stop, '(no stop)')`;

/**
 * Runs analytics statements read-only in one snapshot (repeatable read: an answer that reads the
 * rollup for some days and the rides for others reads both as of one moment), with room to sort a
 * city's day in memory: at the default work_mem (4 MB) a day of a million rides sorted on disk
 * (docs/performance.md, ridership).
 */
export async function analyticsTransaction<T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  return em.transactional(async (tx) => {
    await tx.execute(`set transaction isolation level repeatable read, read only`);
    await tx.execute(`set local work_mem = '${ANALYTICS_WORK_MEM}'`);
    return work(tx);
  });
}

/** One analytics statement, as analyticsTransaction runs it. */
export async function analyticsQuery<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  return analyticsTransaction(em, (tx) => tx.execute<T[]>(sql, params));
}

/** work_mem of one analytics statement: one sort or hash of a large city's day (a few at once). */
export const ANALYTICS_WORK_MEM = '256MB';
