/**
 * The monthly partitions of `clearing_item` (issue 23, item 3; docs/scaling.md "Partitions"): one
 * per month of business days, `clearing_item_yYYYYmMM`, and a default partition that takes an item
 * whose month has none yet, so a booking never fails on a missing partition. The job keeps this
 * month and the next MONTHS_AHEAD ones created, and moves what the default partition took into
 * its month.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { isMonth, monthBounds, monthsToMake } from '../db/months.js';
import { attachedMonths } from '../db/partitions.js';

/** The partition of a month: `2026-11` → `clearing_item_y2026m11`. */
export const partitionOf = (month: string): string => `clearing_item_y${month.slice(0, 4)}m${month.slice(5, 7)}`;

/** The partition that holds a business day's items: its month's, or the default one while that has none. */
export async function partitionHolding(em: EntityManager, day: string): Promise<string> {
  const table = partitionOf(day.slice(0, 7));
  const [row] = await em.execute<{ found: boolean }[]>(`select exists (select 1 from pg_inherits where inhrelid = to_regclass(?) and inhparent = 'clearing_item'::regclass) as found`, [table]);
  return row!.found ? table : 'clearing_item_default';
}

/** The months that have a partition, in order. */
export const partitionedMonths = (em: EntityManager): Promise<string[]> => attachedMonths(em, 'clearing_item');

/**
 * Creates the month's partition unless it exists; the items the default partition took for that
 * month move into it in the same transaction (a partition cannot be created over rows the default
 * one holds). Returns whether it created it. Creators take one advisory lock, so two processes
 * never race on the same month.
 */
export async function ensureMonthPartition(em: EntityManager, month: string): Promise<boolean> {
  if (!isMonth(month)) throw new RangeError(`a month is YYYY-MM; got ${month}`);
  const { from, to } = monthBounds(month);
  const table = partitionOf(month);
  return em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(hashtext('clearing_item partitions'))`);
    const [exists] = await tx.execute<{ found: boolean }[]>(`select to_regclass(?) is not null as found`, [table]);
    if (exists!.found) return false;
    await tx.execute(`create temporary table clearing_item_moving (like clearing_item) on commit drop`);
    await tx.execute(`with moved as (delete from clearing_item_default where business_day >= ?::date and business_day < ?::date returning *) insert into clearing_item_moving select * from moved`, [from, to]);
    await tx.execute(`create table ${table} partition of clearing_item for values from ('${from}') to ('${to}')`);
    await tx.execute(`insert into clearing_item overriding system value select * from clearing_item_moving`);
    await tx.execute(`drop table clearing_item_moving`);
    return true;
  });
}

/**
 * The job's work: this month and the next MONTHS_AHEAD have their partition, and every month the
 * default partition holds items of gets one (moving them). Returns the months it created.
 */
export async function createPartitionsAhead(em: EntityManager, now = new Date()): Promise<string[]> {
  const held = await em.execute<{ month: string }[]>(`select distinct to_char(business_day, 'YYYY-MM') as month from clearing_item_default`);
  const created: string[] = [];
  for (const month of monthsToMake(now, held.map((h) => h.month))) if (await ensureMonthPartition(em, month)) created.push(month);
  return created;
}
