import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { createPartitionsAhead, MONTHS_AHEAD } from '../settlement/clearing-partitions.js';

/**
 * The cron task keeping clearing_item's monthly partitions ahead of the traffic (docs/scaling.md
 * "Partitions"): this month and the next MONTHS_AHEAD exist, and items the default partition took
 * (a month with no partition yet: a late offline upload, a clock far off) move into their own month.
 * Hourly, so a missing month is made within the hour; three months ahead, so a stopped job is
 * noticed long before the default partition has to take a day's traffic.
 */
export function partitionsAheadTask(orm: MikroORM, log: Logger) {
  return async () => {
    const created = await createPartitionsAhead(orm.em.fork());
    if (created.length > 0) log.info({ created, monthsAhead: MONTHS_AHEAD }, 'clearing_item partitions created');
  };
}
