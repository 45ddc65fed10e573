import fs from 'node:fs';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Router } from 'express';
import { consoleRedirectUri } from '../auth/auth.seed.js';
import { consoleSignInClients } from '../auth/clients.service.js';
import type { Config } from '../config/config.js';

/**
 * The web console (issue 26, docs/console.md), served like GraphiQL from our own origin with no CDN:
 * the files `npm run build` wrote to console/dist (the same path from api/src and api/dist), and the
 * sign-in clients it offers. The page talks to the public API only: /oauth to sign in, /graphql.
 */
export const CONSOLE_DIST = path.resolve(import.meta.dirname, '../../../console/dist');

export function consoleRoutes(config: Config, orm: MikroORM, dist = CONSOLE_DIST): Router {
  const router = express.Router({ strict: true });
  const notBuilt = (res: express.Response) => res.status(503).type('text').send('The console is not built: run `npm run build` (it writes console/dist).');

  router.get('/config.json', async (_req, res) => {
    const clients = await consoleSignInClients(orm.em.fork(), consoleRedirectUri(config.publicUrl));
    res.setHeader('cache-control', 'no-store').json({ clients });
  });
  router.use('/assets', express.static(path.join(dist, 'assets'), { fallthrough: false, maxAge: '1h', index: false }));
  // One page: the console routes with the URL's fragment, and the OAuth answer comes to /console/?code=….
  router.get('/', (req, res) => {
    // /console → /console/, so that the page's relative asset URLs and the redirect URI agree.
    const [pathname, query] = req.originalUrl.split('?');
    if (!pathname!.endsWith('/')) {
      res.redirect(301, `${pathname}/${query === undefined ? '' : `?${query}`}`);
      return;
    }
    const index = path.join(dist, 'index.html');
    if (!fs.existsSync(index)) {
      notBuilt(res);
      return;
    }
    res.setHeader('cache-control', 'no-cache').sendFile(index);
  });
  return router;
}
