/**
 * The monthly partitions of the ledger's `journal_entry` and `posting` (issue 23, item 3;
 * docs/scaling.md "Partitions and retention"): by month of `posted_at` in UTC,
 * `journal_entry_yYYYYmMM` and `posting_yYYYYmMM`, with a default partition each that takes a row
 * whose month has none (only if the job has stopped for months: `posted_at` is the database's clock).
 * The job keeps this month and the next MONTHS_AHEAD made, as for clearing_item.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { isMonth, monthBounds, monthsToMake } from '../db/months.js';
import { attachedMonths } from '../db/partitions.js';

/** The advisory lock of whoever makes, fills or drops the ledger's partitions (the job, the archive). */
export const LEDGER_PARTITIONS_LOCK = 'ledger partitions';

/** The two ledger tables, in the order their rows are written (an entry, then its postings). */
export const LEDGER_TABLES = ['journal_entry', 'posting'] as const;
export type LedgerTable = (typeof LEDGER_TABLES)[number];

/** A month's partition of a ledger table: `posting`, `2026-11` → `posting_y2026m11`. */
export const ledgerPartitionOf = (table: LedgerTable, month: string): string => `${table}_y${month.slice(0, 4)}m${month.slice(5, 7)}`;

/** The months whose partitions are attached, in order (journal_entry's; posting's are made and dropped with them). */
export const ledgerMonths = (em: EntityManager): Promise<string[]> => attachedMonths(em, 'journal_entry');

/**
 * Creates the month's two partitions unless they exist. Rows the default partitions took for that
 * month move into them in the same transaction (a partition cannot be made over rows the default one
 * holds): postings out first, then their entries, back in the other order. The move is the one
 * place a ledger row is deleted, so the append-only triggers of the default partitions are lifted
 * for it, inside the transaction. One advisory lock, so two processes never race on a month.
 */
export async function ensureLedgerMonthPartitions(em: EntityManager, month: string): Promise<boolean> {
  if (!isMonth(month)) throw new RangeError(`a month is YYYY-MM; got ${month}`);
  const { from, to } = monthBounds(month);
  const [start, end] = [`${from} 00:00:00+00`, `${to} 00:00:00+00`];
  return em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(hashtext(?))`, [LEDGER_PARTITIONS_LOCK]);
    const [exists] = await tx.execute<{ found: boolean }[]>(`select to_regclass(?) is not null as found`, [ledgerPartitionOf('journal_entry', month)]);
    if (exists!.found) return false;
    const [held] = await tx.execute<{ n: string }[]>(`select count(*) as n from journal_entry_default where posted_at >= ?::timestamptz and posted_at < ?::timestamptz`, [start, end]);
    const moving = Number(held!.n) > 0;
    if (moving) {
      for (const table of ['posting', 'journal_entry'] as const) {
        await tx.execute(`create temporary table ${table}_moving (like ${table}) on commit drop`);
        await tx.execute(`alter table ${table}_default disable trigger ${table}_append_only`);
        await tx.execute(`with moved as (delete from ${table}_default where posted_at >= ?::timestamptz and posted_at < ?::timestamptz returning *) insert into ${table}_moving select * from moved`, [start, end]);
        await tx.execute(`alter table ${table}_default enable trigger ${table}_append_only`);
      }
    }
    for (const table of LEDGER_TABLES) await tx.execute(`create table ${ledgerPartitionOf(table, month)} partition of ${table} for values from ('${start}') to ('${end}')`);
    if (moving) {
      await tx.execute(`insert into journal_entry select * from journal_entry_moving`);
      await tx.execute(`insert into posting overriding system value select * from posting_moving`);
    }
    return true;
  });
}

/**
 * The job's work for the ledger: this month and the next MONTHS_AHEAD have their partitions, and
 * every month the default partition holds entries of gets them (moving the rows). Returns the months created.
 */
export async function createLedgerPartitionsAhead(em: EntityManager, now = new Date()): Promise<string[]> {
  const held = await em.execute<{ month: string }[]>(`select distinct to_char(posted_at at time zone 'UTC', 'YYYY-MM') as month from journal_entry_default`);
  const created: string[] = [];
  for (const month of monthsToMake(now, held.map((h) => h.month))) if (await ensureLedgerMonthPartitions(em, month)) created.push(month);
  return created;
}
