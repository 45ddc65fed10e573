import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { Orm } from '../../src/db/orm.js';
import { cardSessionEngine } from '../../src/card-sessions.js';
import { createHttpApp, type HttpApp } from '../../src/http/app.js';
import { createHttpServer } from '../../src/http/server.js';

export interface TestServer {
  url: string;
  http: HttpApp;
  config: Config;
  close(): Promise<void>;
}

/** One key-encryption key per test process, so no test writes a key file. */
export const TEST_KEK = randomBytes(32).toString('base64url');

export function testConfig(env: Record<string, string> = {}): Config {
  // A GraphQL cost bucket no test empties unless it asks for a small one (graphql-limits.test.ts does).
  return loadConfig({ NODE_ENV: 'test', ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK, GRAPHQL_COST_BUCKET: '100000000', GRAPHQL_COST_RESTORE_RATE: '100000000', ...env });
}

/** The real HTTP app on 127.0.0.1 and a free port, over a test file's own database. */
export async function startTestServer(orm: Orm, env: Record<string, string> = {}, opts: { log?: pino.Logger } = {}): Promise<TestServer> {
  // Listen first: the OAuth issuer and the token audience are built on the real URL.
  // The server's limits are those a started platform has (from the same settings).
  const server = createHttpServer(testConfig(env).http);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = testConfig({ PUBLIC_URL: url, ...env });
  // The purposes card sessions serve, assembled as platform.ts assembles them.
  const http = await createHttpApp({ config, orm, log: opts.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), cardSessions: cardSessionEngine(config) });
  server.on('request', http.app);
  return {
    url,
    http,
    config,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await http.close();
    },
  };
}

/** POSTs a GraphQL operation and returns status, headers and the parsed body. */
export async function graphql(url: string, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { data?: any; errors: any[]; extensions?: any } };
}
