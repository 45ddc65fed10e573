import { Migration } from '@mikro-orm/migrations';

/**
 * The ridership rollup (issue 25 item 3, docs/analytics.md "The rollup"): per city and business day,
 * each group of each grouping (LINE, STOP, HOUR, DAY) with its rides, distinct riders and fares,
 * computed set-based from the day's rides once the day is over, so an answer reads a few hundred
 * rows instead of a day's millions.
 *
 * Exact, never stale: `ridership_rollup_day.snapshot` is the snapshot the build read the rides
 * under, and every transaction that books rides of a day (or moves a terminal that rode that day)
 * writes a `ridership_day_mark` with its own transaction id. A day's rollup answers only while every
 * mark of that day is visible in its snapshot (pg_visible_in_snapshot): a booking the build could
 * not see — still running, or begun after — leaves a mark the snapshot does not cover, and the day
 * is answered from the rides until the job builds it again. Marks are appended, never updated, so
 * concurrent uploads of a city never wait on each other for them.
 *
 * The days that have booked rides already get a mark here, so the job builds them.
 */
export class Migration20261207002700_ridership_rollups extends Migration {
  override name = 'Migration20261207002700_ridership_rollups';

  override up(): void {
    this.addSql(`
      create table ridership_rollup_day (
        city_id uuid not null references city (id),
        -- the city's local day
        business_day date not null,
        -- the snapshot the build read the rides under: a mark not visible in it is a booking the build did not see
        snapshot pg_snapshot not null,
        built_at timestamptz not null,
        -- the day's booked rides, for the operator's eye (onecard ridership status)
        rides bigint not null,
        primary key (city_id, business_day)
      )`);
    this.addSql(`
      create table ridership_rollup (
        city_id uuid not null references city (id),
        business_day date not null,
        grouping text not null check (grouping in ('LINE', 'STOP', 'HOUR', 'DAY')),
        -- the group's key, as the live answer names it ('Line 1', 'Line 1 / Wulin Square', '08', '2026-11-25')
        key text not null,
        rides bigint not null,
        -- distinct riders of the group that day: never summed across days
        riders bigint not null,
        fares bigint not null,
        primary key (city_id, business_day, grouping, key)
      )`);
    this.addSql(`
      create table ridership_day_mark (
        id bigint generated always as identity primary key,
        city_id uuid not null references city (id),
        business_day date not null,
        -- the transaction that booked rides of the day (or moved a terminal that rode it)
        xid xid8 not null default pg_current_xact_id()
      )`);
    this.addSql(`create index ridership_day_mark_day_idx on ridership_day_mark (city_id, business_day)`);
    this.addSql(`
      insert into ridership_day_mark (city_id, business_day)
      select distinct r.city_id, to_date(t.date, 'YYYYMMDD')
        from offline_transaction t join offline_batch b on b.id = t.batch_row_id join reader r on r.id = b.reader_id
       where t.outcome in ('ACCEPTED', 'GAP')
      union
      select distinct r.city_id, (q.scanned_at at time zone c.time_zone)::date
        from qr_ride q join qr_ride_batch b on b.id = q.batch_row_id join reader r on r.id = b.reader_id join city c on c.id = r.city_id
       where q.outcome in ('ACCEPTED', 'DEBT')`);
  }
}
