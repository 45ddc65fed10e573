import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response } from 'express';
import type { Principal } from '../auth/principal.js';
import { BillPaymentError } from './bill-payments.errors.js';
import { billerReconciliation, reconciliationCsv } from './bill-payments.service.js';

type PrincipalFor = (req: { authorization?: string; dpop?: string; method: string }) => Promise<Principal | null>;

/**
 * GET /billers/reconciliation.csv?day=YYYY-MM-DD: a biller's day of bill payments as a CSV download,
 * with the biller's own OAuth token (scope bills:read), the same rows as the GraphQL query.
 */
export function billsRoutes(orm: MikroORM, principalFor: PrincipalFor): express.Router {
  const router = express.Router();
  router.get('/reconciliation.csv', async (req: Request, res: Response) => {
    let principal: Principal | null;
    try {
      principal = await principalFor({ authorization: req.headers.authorization, dpop: req.get('dpop'), method: req.method });
    } catch {
      principal = null;
    }
    if (!principal) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'send the biller’s OAuth access token' });
      return;
    }
    try {
      const day = await billerReconciliation(orm.em.fork(), principal, String(req.query.day ?? ''));
      if (!day) {
        res.status(403).json({ error: 'a biller’s token with scope bills:read' });
        return;
      }
      res.type('text/csv; charset=utf-8').set('content-disposition', `attachment; filename="reconciliation-${day.businessDay}.csv"`).send(reconciliationCsv(day.lines));
    } catch (err) {
      if (!(err instanceof BillPaymentError)) throw err;
      res.status(400).json({ error: err.message });
    }
  });
  return router;
}
