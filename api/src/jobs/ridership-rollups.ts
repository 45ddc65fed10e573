import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { buildDueRollups } from '../analytics/ridership-rollup.js';

/**
 * The cron task building the ridership rollup (docs/analytics.md "The rollup"): every day over in
 * its city with rides booked since its last build (or never built), oldest first. Every 10 minutes,
 * so yesterday is built soon after midnight and a late upload's day soon after it; meanwhile those
 * days are answered from the rides, exactly.
 */
export function ridershipRollupsTask(orm: MikroORM, log: Logger) {
  return async () => {
    const builds = await buildDueRollups(orm.em.fork());
    const built = builds.filter((b) => b.built);
    if (built.length > 0) log.info({ days: built.map((b) => `${b.cityId}:${b.day}`), rides: built.reduce((n, b) => n + (b.built ? b.rides : 0), 0) }, 'ridership rollups built');
    for (const b of builds) if (!b.built) log.warn({ cityId: b.cityId, day: b.day, reason: b.reason }, 'ridership rollup not built; the day is answered from the rides');
  };
}
