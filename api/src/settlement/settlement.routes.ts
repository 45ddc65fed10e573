import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response } from 'express';
import type { Principal } from '../auth/principal.js';
import { type CsvReport, interchangeReport, ReportError, statementsReport, windowLinesReport } from './reports.js';

type PrincipalFor = (req: { authorization?: string; dpop?: string; method: string }) => Promise<Principal | null>;

/**
 * Settlement CSV downloads, with an OAuth access token of scope settlements:read (mounted at /settlement):
 *
 *   GET /settlement/windows/:windowId/lines.csv        a cleared window's lines (operator; a card company: its city's windows)
 *   GET /settlement/windows/:windowId/interchange.csv  its interchange positions (operator; a card company: rows it is party to)
 *   GET /settlement/statements.csv?from=&to=           the caller's own lines (merchant, biller, card company)
 *
 * `:windowId` is the SettlementWindow global id or its uuid. Amounts are integer minor units of the
 * row's currency. See reports.ts and docs/settlement.md (reports) for the columns.
 */
export function settlementRoutes(orm: MikroORM, principalFor: PrincipalFor): express.Router {
  const router = express.Router();

  const serve = (build: (principal: Principal, req: Request) => Promise<CsvReport>) => async (req: Request, res: Response) => {
    let principal: Principal | null;
    try {
      principal = await principalFor({ authorization: req.headers.authorization, dpop: req.get('dpop'), method: req.method });
    } catch {
      principal = null;
    }
    if (!principal) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'send an OAuth access token with scope settlements:read' });
      return;
    }
    try {
      const report = await build(principal, req);
      res
        .type('text/csv; charset=utf-8')
        .set('content-disposition', `attachment; filename="${report.filename}"`)
        .set('cache-control', 'private, no-store')
        .send(report.csv);
    } catch (err) {
      if (!(err instanceof ReportError)) throw err;
      res.status(err.status).json({ error: err.message });
    }
  };

  router.get(
    '/windows/:windowId/lines.csv',
    serve((principal, req) => windowLinesReport(orm.em.fork(), principal, String(req.params.windowId))),
  );
  router.get(
    '/windows/:windowId/interchange.csv',
    serve((principal, req) => interchangeReport(orm.em.fork(), principal, String(req.params.windowId))),
  );
  router.get(
    '/statements.csv',
    serve((principal, req) => statementsReport(orm.em.fork(), principal, { from: req.query.from, to: req.query.to })),
  );
  return router;
}
