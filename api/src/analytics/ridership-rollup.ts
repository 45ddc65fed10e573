import type { EntityManager } from '@mikro-orm/postgresql';
import { ANALYTICS_WORK_MEM, LINE_OF, STOP_OF, tapsParams, WITH_TAPS } from './ride-taps.js';

/**
 * The ridership rollup (docs/analytics.md "The rollup"): per city and business day, every group of
 * every grouping with its rides, distinct riders and fares, built set-based from the day's booked
 * rides in one statement once the day is over. Answers read it where it is exact — one day by any
 * grouping, any days by DAY — and only while it is fresh.
 *
 * Fresh means no booking since the build. Each transaction that books rides of a day, or moves a
 * terminal that rode on it, appends a mark with its transaction id (markRideDays…); the build keeps
 * the snapshot it read the rides under. A day is fresh while each of its marks is visible in that
 * snapshot: a booking still running when the build read, or begun after, leaves a mark it does not
 * cover, and the day is answered from the rides until the next build. No lock, no counter that
 * concurrent uploads would queue on.
 */

/** A booked card fare or QR ride counts; so the marks are written for those only. */
const BOOKED_CARD_FARE = `t.outcome in ('ACCEPTED', 'GAP')`;
const BOOKED_QR_RIDE = `q.outcome in ('ACCEPTED', 'DEBT')`;

/** The days (of its terminal's city) an offline card batch booked fares on: one statement per batch, in the batch's transaction. */
export async function markRideDaysOfOfflineBatch(tx: EntityManager, batchRowId: string): Promise<void> {
  await tx.execute(
    `insert into ridership_day_mark (city_id, business_day)
     select distinct r.city_id, to_date(t.date, 'YYYYMMDD')
       from offline_transaction t join offline_batch b on b.id = t.batch_row_id join reader r on r.id = b.reader_id
      where t.batch_row_id = ? and ${BOOKED_CARD_FARE}`,
    [batchRowId],
  );
}

/** The local days a QR ride batch booked rides on: one statement per batch, in the batch's transaction. */
export async function markRideDaysOfQrBatch(tx: EntityManager, batchRowId: string): Promise<void> {
  await tx.execute(
    `insert into ridership_day_mark (city_id, business_day)
     select distinct r.city_id, (q.scanned_at at time zone c.time_zone)::date
       from qr_ride q join qr_ride_batch b on b.id = q.batch_row_id join reader r on r.id = b.reader_id join city c on c.id = r.city_id
      where q.batch_row_id = ? and ${BOOKED_QR_RIDE}`,
    [batchRowId],
  );
}

/**
 * Every day a terminal has booked rides on: its line and stop are read when an answer runs, so
 * moving it moves those rides to other groups (docs/analytics.md, "Where a terminal stands").
 */
export async function markRideDaysOfTerminal(tx: EntityManager, readerId: string): Promise<void> {
  await tx.execute(
    `insert into ridership_day_mark (city_id, business_day)
     select distinct r.city_id, to_date(t.date, 'YYYYMMDD')
       from offline_batch b join offline_transaction t on t.batch_row_id = b.id join reader r on r.id = b.reader_id
      where b.reader_id = ? and ${BOOKED_CARD_FARE}
     union
     select distinct r.city_id, (q.scanned_at at time zone c.time_zone)::date
       from qr_ride_batch b join qr_ride q on q.batch_row_id = b.id join reader r on r.id = b.reader_id join city c on c.id = r.city_id
      where b.reader_id = ? and ${BOOKED_QR_RIDE}`,
    [readerId, readerId],
  );
}

/**
 * The build of one day, one statement: the day's taps (the same `taps` as every live answer), each
 * (group, rider) of the four groupings once (grouping sets: one pass over the day), then per group
 * its rides, riders and fares; and the day's row with the snapshot this very statement read under.
 * The keys are computed exactly as ridershipSql computes them.
 */
const BUILD_SQL = `${WITH_TAPS},
  keyed as (
    select taps.rider, taps.amount, ${LINE_OF('taps')} as line, ${STOP_OF('taps')} as stop, to_char(taps.local_at, 'HH24') as hour, to_char(taps.local_at, 'YYYY-MM-DD') as day
      from taps),
  per_rider as (
    select grouping(line) = 0 as by_line, grouping(stop) = 0 as by_stop, grouping(hour) = 0 as by_hour, line, stop, hour, day, rider, count(*) as rides, sum(amount) as fares
      from keyed group by grouping sets ((line, rider), (stop, rider), (hour, rider), (day, rider))),
  groups as (
    select case when by_line then 'LINE' when by_stop then 'STOP' when by_hour then 'HOUR' else 'DAY' end as grouping,
           case when by_line then line when by_stop then stop when by_hour then hour else day end as key,
           sum(rides) as rides, count(*) as riders, sum(fares) as fares
      from per_rider group by 1, 2),
  stored as (
    insert into ridership_rollup (city_id, business_day, grouping, key, rides, riders, fares)
    select ?::uuid, ?::date, grouping, key, rides, riders, fares from groups
    returning grouping, rides)
  insert into ridership_rollup_day (city_id, business_day, snapshot, built_at, rides)
  values (?::uuid, ?::date, pg_current_snapshot(), clock_timestamp(), (select coalesce(sum(rides), 0) from stored where grouping = 'DAY'))
  on conflict (city_id, business_day) do update set snapshot = excluded.snapshot, built_at = excluded.built_at, rides = excluded.rides
  returning rides::text`;

export type RollupBuild = { cityId: string; day: string; built: true; rides: number } | { cityId: string; day: string; built: false; reason: string };

/**
 * (Re)builds a city's rollup of one business day. Builds of the same day take turns (a transaction
 * advisory lock; a second one at once gives way, the first covers it), so each build's snapshot is
 * newer than the one before and the marks it deletes — those its snapshot covers — are covered by
 * what it wrote. Refuses a day not over yet in the city: its rides are still coming.
 */
export async function buildRidershipRollup(em: EntityManager, cityId: string, day: string): Promise<RollupBuild> {
  return em.transactional(async (tx) => {
    const [city] = await tx.execute<{ id: string; time_zone: string; over: boolean }[]>(
      `select id, time_zone, ?::date < (now() at time zone time_zone)::date as over from city where id = ?`,
      [day, cityId],
    );
    if (!city) return { cityId, day, built: false, reason: 'no such city' };
    if (!city.over) return { cityId, day, built: false, reason: `${day} is not over yet in ${city.time_zone}` };
    const [turn] = await tx.execute<{ taken: boolean }[]>(`select pg_try_advisory_xact_lock(hashtextextended('ridership_rollup:' || ? || ':' || ?, 0)) as taken`, [cityId, day]);
    if (!turn!.taken) return { cityId, day, built: false, reason: 'another build of this day is running' };
    await tx.execute(`set local work_mem = '${ANALYTICS_WORK_MEM}'`);
    await tx.execute(`delete from ridership_rollup where city_id = ? and business_day = ?`, [cityId, day]);
    const [row] = await tx.execute<{ rides: string }[]>(BUILD_SQL, [...tapsParams(city, day, day), cityId, day, cityId, day]);
    // The marks the snapshot covers are done with; those it does not (bookings it could not see) stay and keep the day stale.
    // A mark whose xid this cluster has not reached yet came from another one (a restored logical dump): the build covers it.
    await tx.execute(
      `delete from ridership_day_mark m using ridership_rollup_day d
        where m.city_id = ? and m.business_day = ? and d.city_id = m.city_id and d.business_day = m.business_day
          and (pg_visible_in_snapshot(m.xid, d.snapshot) or m.xid >= pg_snapshot_xmax(pg_current_snapshot()))`,
      [cityId, day],
    );
    return { cityId, day, built: true, rides: Number(row!.rides) };
  });
}

/** The days that need a build: marked (booked since their last build, or never built) and over in their city. Oldest first. */
export async function dueRollupDays(em: EntityManager, limit = 1000): Promise<{ cityId: string; day: string }[]> {
  const rows = await em.execute<{ city_id: string; day: string }[]>(
    `select distinct m.city_id, m.business_day::text as day from ridership_day_mark m join city c on c.id = m.city_id
      where m.business_day < (now() at time zone c.time_zone)::date
      order by 2, 1 limit ?`,
    [limit],
  );
  return rows.map((r) => ({ cityId: r.city_id, day: r.day }));
}

/**
 * Builds every due day, one after the other (what the job does). A day whose build fails is reported
 * and left marked (answered from the rides, tried again next run); the days after it are still built.
 */
export async function buildDueRollups(em: EntityManager): Promise<RollupBuild[]> {
  const builds: RollupBuild[] = [];
  for (const { cityId, day } of await dueRollupDays(em)) {
    builds.push(await buildRidershipRollup(em.fork(), cityId, day).catch((err: Error): RollupBuild => ({ cityId, day, built: false, reason: `the build failed: ${err.message}` })));
  }
  return builds;
}

/**
 * The days between from and to (inclusive) whose rollup is fresh: built, and every mark of the day
 * visible in the build's snapshot. Ask it in the transaction that then reads the rollup.
 *
 * A build's snapshot ahead of this cluster's xids was taken in another cluster (a logical dump
 * restored, docs/operations.md): there, a new booking's xid is below the snapshot's and would pass
 * for seen. Such a day is not fresh until built again here.
 */
export async function freshRollupDays(tx: EntityManager, cityId: string, from: string, to: string): Promise<Set<string>> {
  const rows = await tx.execute<{ day: string }[]>(
    `select d.business_day::text as day from ridership_rollup_day d
      where d.city_id = ? and d.business_day between ? and ?
        and pg_snapshot_xmax(d.snapshot) <= pg_snapshot_xmax(pg_current_snapshot())
        and not exists (select 1 from ridership_day_mark m where m.city_id = d.city_id and m.business_day = d.business_day and not pg_visible_in_snapshot(m.xid, d.snapshot))`,
    [cityId, from, to],
  );
  return new Set(rows.map((r) => r.day));
}

/** The rollup's groups of some days by a grouping, in key order (as the live statement orders them). */
export async function rollupGroups(tx: EntityManager, cityId: string, days: string[], grouping: string): Promise<{ key: string; rides: string; riders: string; fares: string }[]> {
  if (days.length === 0) return [];
  return tx.execute(
    `select key, rides::text, riders::text, fares::text from ridership_rollup
      where city_id = ? and business_day = any(?::date[]) and grouping = ? order by key`,
    [cityId, `{${days.join(',')}}`, grouping],
  );
}

/** What the rollup holds for a city (onecard ridership status). */
export async function rollupStatus(em: EntityManager, cityId: string, from: string, to: string): Promise<{ day: string; rides: number; builtAt: Date; fresh: boolean }[]> {
  const rows = await em.execute<{ day: string; rides: string; built_at: Date }[]>(
    `select business_day::text as day, rides::text, built_at from ridership_rollup_day where city_id = ? and business_day between ? and ? order by 1`,
    [cityId, from, to],
  );
  const fresh = await freshRollupDays(em, cityId, from, to);
  return rows.map((r) => ({ day: r.day, rides: Number(r.rides), builtAt: new Date(r.built_at), fresh: fresh.has(r.day) }));
}
