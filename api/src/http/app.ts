import { randomUUID } from 'node:crypto';
import { expressMiddleware } from '@as-integrations/express5';
import type { MikroORM } from '@mikro-orm/postgresql';
import { NoticedCache } from '../db/noticed-cache.js';
import { SESSION_READS_CHANNEL } from '../readers/session/session-reads.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { setUpAuth } from '../auth/auth-server.js';
import { pkiRoutes } from '../pki/pki.routes.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import type { Config } from '../config/config.js';
import { createApolloServer } from '../apollo.js';
import type { GraphQLContext } from '../graphql/context.js';
import { RunningMutations } from '../graphql/idempotency.js';
import { graphiqlAssets, graphiqlPage } from '../graphql/graphiql.js';
import { demoSignInEnabled, demoSignInRoutes } from '../demo/demo-sign-in.routes.js';
import type { QueryLimits } from '../graphql/query-cost.js';
import { GatewayClient } from '../topups/gateway/gateway-client.js';
import { gatewayWebhookRoutes } from '../topups/gateway-webhook.js';
import { billsRoutes } from '../bills/bills.routes.js';
import { settlementRoutes } from '../settlement/settlement.routes.js';
import { analyticsRoutes } from '../analytics/analytics.routes.js';
import type { CardSessionEngine } from '../readers/session/card-session.service.js';
import { ClientSecretSeal } from '../topups/client-secret.js';
import { Metrics, metricsAccess } from './metrics.js';
import { securityHeaders } from './security-headers.js';
import { consoleRoutes } from './console.js';

export const REQUEST_ID_HEADER = 'x-request-id';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

export interface HttpApp {
  app: express.Express;
  /** The payment gateway client the API uses (null when none is configured); background jobs share it. */
  gateway: GatewayClient | null;
  /** Seals the gateway's client secrets with the key-encryption key; background jobs share it. */
  clientSecrets: ClientSecretSeal;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Probes the database for /readyz; a hung connection counts as down after `timeoutMs`. */
async function databaseReachable(orm: MikroORM, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      orm.em.fork().execute('select 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The whole HTTP surface: GraphQL (+ GraphiQL), health, readiness, metrics. `cardSessions` is the
 * card-session engine with its purposes, built at the composition root (api/src/card-sessions.ts).
 */
export async function createHttpApp(opts: {
  config: Config;
  orm: MikroORM;
  log: Logger;
  cardSessions: CardSessionEngine;
  limits?: QueryLimits;
  /** Where the idempotent mutations this process runs are kept, for a clean stop to wait on (platform.ts); a fresh one by default. */
  runningMutations?: RunningMutations;
}): Promise<HttpApp> {
  const { config, orm, log, cardSessions } = opts;
  const runningMutations = opts.runningMutations ?? new RunningMutations();
  const metrics = new Metrics();
  const apollo = await createApolloServer({ config, log, metrics, limits: opts.limits });
  const auth = await setUpAuth({ config, orm, log });
  // What card sessions read and seldom changes (host keys, card profiles, master key rows), kept per process until a change notice.
  const sessionReads = new NoticedCache({ databaseUrl: orm.config.get('clientUrl')!, channel: SESSION_READS_CHANNEL, log });
  await sessionReads.start();
  const gateway = config.gateway ? new GatewayClient({ url: config.gateway.url, secretKey: config.gateway.secretKey, timeoutMs: config.gateway.timeoutMs }) : null;
  const clientSecrets = new ClientSecretSeal(await loadKeyEncryptionKey(config));
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  // A request id on every request and response, and on every log line about it.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get(REQUEST_ID_HEADER);
    req.id = incoming && /^[A-Za-z0-9._:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    req.log = log.child({ reqId: req.id });
    res.setHeader(REQUEST_ID_HEADER, req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Route patterns, never raw paths, so that labels stay few.
      const route = req.route ? `${req.baseUrl}${req.route.path}` : req.baseUrl || 'unmatched';
      metrics.httpRequests.inc({ route, status: `${Math.floor(res.statusCode / 100)}xx` });
      req.log.info({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });

  // Security headers and the Content-Security-Policy on every response, errors and 404s included.
  const headers = securityHeaders({ https: config.publicUrl.startsWith('https:') });
  app.use((req: Request, res: Response, next: NextFunction) => (req.path.startsWith('/oauth/') ? headers.oauth : headers.everywhere)(req, res, next));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (req, res) => {
    const probe = await databaseReachable(orm, 2_000);
    if (probe.ok) {
      res.json({ status: 'ready' });
    } else {
      req.log.warn({ reason: probe.reason }, 'not ready: database unreachable');
      res.status(503).json({ status: 'unavailable', reason: 'database unreachable' });
    }
  });

  app.get('/metrics', metricsAccess(config), async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // The OAuth 2.0 authorization server: issuer $PUBLIC_URL/oauth.
  app.use('/oauth', auth.router);
  // CRLs and CA certificates.
  app.use('/pki', pkiRoutes(orm, await loadKeyEncryptionKey(config)));

  // Billers' reconciliation files (CSV downloads with the biller's token).
  app.use('/billers', billsRoutes(orm, (r) => auth.verifier.principalFor(r)));
  // Settlement reports (CSV downloads: window lines, interchange, statements; scope settlements:read).
  app.use('/settlement', settlementRoutes(orm, (r) => auth.verifier.principalFor(r)));
  // Ridership analytics (CSV downloads: ridership groups, origin–destination pairs; scope settlements:read).
  app.use('/analytics', analyticsRoutes(orm, (r) => auth.verifier.principalFor(r)));

  // The payment gateway's signed events (top-ups paid, refunds done).
  app.use('/webhooks', gatewayWebhookRoutes(orm, () => config.gateway?.webhookSecret, clientSecrets));

  // The web console for merchants, billers, card companies and the operator (docs/console.md).
  app.use('/console', consoleRoutes(config, orm));

  // Development only: GraphiQL's "sign in as a demo client" (absent in production).
  const devSignIn = demoSignInEnabled(config);
  if (devSignIn) app.use('/graphql/dev', demoSignInRoutes(config));
  // GraphiQL for a browser (GET asking for HTML, no query); everything else is the GraphQL API.
  app.get('/graphql/assets/:file', async (req, res) => {
    const asset = (await graphiqlAssets()).get(String(req.params.file));
    if (!asset) {
      res.status(404).json({ error: 'not found' });
      return;
    }
    res.type(asset.contentType).setHeader('cache-control', 'public, max-age=3600').send(asset.body);
  });
  app.get('/graphql', (req, res, next) => {
    if (req.query.query !== undefined || req.accepts(['application/json', 'text/html']) !== 'text/html') {
      next();
      return;
    }
    res.type('html').send(graphiqlPage({ endpoint: '/graphql', assetBase: '/graphql/assets', devSignIn: devSignIn ? '/graphql/dev' : undefined }));
  });
  app.use(
    '/graphql',
    // Large enough for a biller's CSV import (10 MB of text in a JSON string); query cost limits the rest.
    express.json({ limit: '12mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }): Promise<GraphQLContext> => ({
        em: orm.em.fork(),
        principal: await auth.verifier.principalFor({ authorization: req.headers.authorization, dpop: req.get('dpop'), method: req.method }),
        requestId: req.id,
        clientIp: req.ip,
        log: req.log,
        config,
        gateway,
        clientSecrets,
        cardSessions,
        sessionReads,
        runningMutations,
      }),
    }),
  );

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  // Malformed JSON and other errors before GraphQL: a clear status, never a stack trace.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) req.log.error({ err }, 'unhandled error');
    res.status(status).json({ errors: [{ message: status === 500 ? 'Internal server error' : err.message, extensions: { code: status === 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST' } }] });
  });

  return {
    app,
    gateway,
    clientSecrets,
    metrics,
    async close() {
      await auth.close();
      await apollo.stop();
      await sessionReads.close();
    },
  };
}
