import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { createLedgerPartitionsAhead } from '../ledger/ledger-partitions.js';
import { MONTHS_AHEAD } from '../db/months.js';
import { createPartitionsAhead } from '../settlement/clearing-partitions.js';

/**
 * The cron task keeping the monthly partitions of clearing_item and of the ledger (journal_entry,
 * posting) ahead of the traffic (docs/scaling.md "Partitions"): this month and the next
 * MONTHS_AHEAD exist, and rows a default partition took (a month with no partition yet: a late
 * offline upload, a clock far off, a job stopped for months) move into their own month.
 * Hourly, so a missing month is made within the hour; three months ahead, so a stopped job is
 * noticed long before the default partition has to take a day's traffic.
 */
export function partitionsAheadTask(orm: MikroORM, log: Logger) {
  return async () => {
    const created = await createPartitionsAhead(orm.em.fork());
    if (created.length > 0) log.info({ created, monthsAhead: MONTHS_AHEAD }, 'clearing_item partitions created');
    const ledger = await createLedgerPartitionsAhead(orm.em.fork());
    if (ledger.length > 0) log.info({ created: ledger, monthsAhead: MONTHS_AHEAD }, 'journal_entry and posting partitions created');
  };
}
