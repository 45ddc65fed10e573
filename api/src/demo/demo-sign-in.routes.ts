/**
 * GraphiQL's "sign in as a demo client", in development only: the demo clients of demo.json (names
 * and scopes, no secrets), and an access token for one of them by the client credentials grant. It
 * hands out tokens to whoever asks, so it exists only when the demo data does and NODE_ENV is not
 * production, and answers loopback callers only.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import express, { type Request, type Router } from 'express';
import type { Config } from '../config/config.js';

interface DemoClient {
  client_id: string;
  client_secret?: string | null;
  scope?: string;
}

/** Whether the sign-in exists at all: never in production, never without the demo data. */
export const demoSignInEnabled = (config: Pick<Config, 'env' | 'demoData'>) => config.env !== 'production' && config.demoData;

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

async function demoClients(config: Config): Promise<Record<string, DemoClient>> {
  const demo = JSON.parse(await fs.readFile(path.join(config.dataDir, 'demo.json'), 'utf8').catch(() => '{}')) as { clients?: Record<string, DemoClient> };
  // Clients with a secret only: the cardholder app signs in a person (authorization code + PKCE).
  return Object.fromEntries(Object.entries(demo.clients ?? {}).filter(([, c]) => typeof c.client_secret === 'string' && c.client_secret));
}

export function demoSignInRoutes(config: Config): Router {
  const router = express.Router();
  router.use((req, res, next) => {
    if (LOOPBACK.has(req.socket.remoteAddress ?? '')) next();
    else res.status(403).json({ error: 'the demo sign-in answers on this machine only' });
  });

  router.get('/demo-clients', async (_req, res) => {
    const clients = await demoClients(config);
    res.json({ clients: Object.entries(clients).map(([name, c]) => ({ name, clientId: c.client_id, scope: c.scope ?? '' })) });
  });

  router.post('/demo-token', express.json(), async (req: Request, res) => {
    const name = String((req.body as { client?: unknown } | undefined)?.client ?? '');
    const client = (await demoClients(config))[name];
    if (!client) {
      res.status(400).json({ error: `no demo client "${name}": GET demo-clients lists them` });
      return;
    }
    // The token endpoint of this very server, as any client would call it.
    const token = await fetch(`http://127.0.0.1:${req.socket.localPort}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: client.scope ?? '' }),
    });
    const body = (await token.json()) as { access_token?: string; scope?: string; error_description?: string };
    if (!token.ok || !body.access_token) {
      res.status(502).json({ error: `the token endpoint refused ${name}: ${body.error_description ?? token.status}` });
      return;
    }
    res.json({ client: name, scope: body.scope ?? '', authorization: `Bearer ${body.access_token}` });
  });
  return router;
}
