import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response } from 'express';
import type { Principal } from '../auth/principal.js';
import { toCsv } from '../csv/csv-writer.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { AnalyticsInputError, checkedChoice, checkedPeriod, checkedTransferWindow } from './analytics-input.js';
import { OD_COLUMNS, RIDERSHIP_COLUMNS } from './analytics.csv.js';
import { originDestinationFor } from './origin-destination.service.js';
import { MINIMUM_GROUP_SIZE, ridershipFor } from './ridership.service.js';

type PrincipalFor = (req: { authorization?: string; dpop?: string; method: string }) => Promise<Principal | null>;

const SCOPE = 'settlements:read';

/**
 * Ridership analytics as CSV downloads, with an OAuth access token of scope settlements:read of the
 * operator or a card company (mounted at /analytics): the same rows as the GraphQL queries.
 *
 *   GET /analytics/ridership.csv?city=&from=&to=&groupBy=LINE|STOP|HOUR|DAY
 *   GET /analytics/origin-destination.csv?city=&from=&to=&level=LINE|STOP[&transferWindowMinutes=30]
 *
 * `city` is the City global id or its uuid; another city is 404, as a missing one. Groups and pairs
 * below the minimum group size are left out; the headers OneCard-Minimum-Group-Size and
 * OneCard-Suppressed count them. See docs/analytics.md (CSV) for the columns.
 */
export function analyticsRoutes(orm: MikroORM, principalFor: PrincipalFor): express.Router {
  const router = express.Router();

  const serve = (build: (principal: Principal, query: Request['query']) => Promise<{ filename: string; csv: string; suppressed: number } | null>) => async (req: Request, res: Response) => {
    let principal: Principal | null;
    try {
      principal = await principalFor({ authorization: req.headers.authorization, dpop: req.get('dpop'), method: req.method });
    } catch {
      principal = null;
    }
    if (!principal) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: `send an OAuth access token with scope ${SCOPE}` });
      return;
    }
    if ((principal.kind !== 'OPERATOR' && principal.kind !== 'ISSUER') || !principal.scopes.includes(SCOPE)) {
      res.status(403).json({ error: `ridership is the operator’s or a card company’s, with scope ${SCOPE}` });
      return;
    }
    try {
      const report = await build(principal, req.query);
      if (!report) {
        res.status(404).json({ error: `no city ${String(req.query.city)}` });
        return;
      }
      res
        .type('text/csv; charset=utf-8')
        .set('content-disposition', `attachment; filename="${report.filename}"`)
        .set('cache-control', 'private, no-store')
        .set('onecard-minimum-group-size', String(MINIMUM_GROUP_SIZE))
        .set('onecard-suppressed', String(report.suppressed))
        .send(report.csv);
    } catch (err) {
      if (!(err instanceof AnalyticsInputError)) throw err;
      res.status(400).json({ error: err.message });
    }
  };

  router.get(
    '/ridership.csv',
    serve(async (principal, q) => {
      const period = checkedPeriod(q.from, q.to);
      const groupBy = checkedChoice(q.groupBy, 'groupBy', ['LINE', 'STOP', 'HOUR', 'DAY'] as const);
      const found = await ridershipFor(orm.em.fork(), principal, { cityId: cityUuid(q.city), ...period, groupBy });
      if (!found) return null;
      const rows = found.groups.map((g) => ({ ...g, currency: found.currency }));
      return { filename: `ridership-${groupBy.toLowerCase()}-${period.from}-to-${period.to}.csv`, csv: toCsv(RIDERSHIP_COLUMNS, rows), suppressed: found.suppressedGroups };
    }),
  );
  router.get(
    '/origin-destination.csv',
    serve(async (principal, q) => {
      const period = checkedPeriod(q.from, q.to);
      const level = checkedChoice(q.level, 'level', ['LINE', 'STOP'] as const);
      const transferWindowMinutes = q.transferWindowMinutes === undefined ? 30 : checkedTransferWindow(q.transferWindowMinutes);
      const found = await originDestinationFor(orm.em.fork(), principal, { cityId: cityUuid(q.city), ...period, level, transferWindowMinutes });
      if (!found) return null;
      return { filename: `origin-destination-${level.toLowerCase()}-${period.from}-to-${period.to}.csv`, csv: toCsv(OD_COLUMNS, found.pairs), suppressed: found.suppressedPairs };
    }),
  );
  return router;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A City global id, or its uuid. */
function cityUuid(raw: unknown): string {
  const value = typeof raw === 'string' ? raw : '';
  if (UUID.test(value)) return value.toLowerCase();
  try {
    return fromGlobalId(value, 'City').id;
  } catch {
    throw new AnalyticsInputError(`\`city\` is a City id`);
  }
}
