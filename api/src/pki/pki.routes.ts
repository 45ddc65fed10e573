import type { MikroORM } from '@mikro-orm/postgresql';
import { Router } from 'express';
import { PkiError } from './pki.errors.js';
import { crlFor, findCa } from './pki.service.js';

/** CRLs (DER) and CA certificates (PEM), public by nature: relying parties fetch them without a token. */
export function pkiRoutes(orm: MikroORM, kek: Buffer): Router {
  const router = Router();
  router.get('/:caId.crl', async (req, res) => {
    try {
      const der = await crlFor(orm.em.fork(), kek, req.params.caId);
      res.type('application/pkix-crl').setHeader('cache-control', 'public, max-age=300').send(der);
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      res.status(404).json({ error: 'not found' });
    }
  });
  router.get('/:caId.pem', async (req, res) => {
    const ca = await findCa(orm.em.fork(), req.params.caId);
    if (!ca) {
      res.status(404).json({ error: 'not found' });
      return;
    }
    res.type('application/x-pem-file').send(ca.certificate_pem);
  });
  return router;
}
