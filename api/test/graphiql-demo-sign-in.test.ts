/**
 * GraphiQL in development: a starter query, and "sign in as a demo client", which gets a real access
 * token for a client of demo.json from a development-only endpoint. In production the endpoint does
 * not exist (it hands out tokens) and the page does not offer it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { type RunningPlatform, startPlatform } from '../src/platform.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let dataDir: string;
let platform: RunningPlatform;

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-graphiql-'));
  const port = await freePort();
  // As `npm start` runs in development: demo seed and demo.json.
  // GATEWAY_SANDBOX_PORT 0: development's fixed 4010 is taken while `npm start` runs beside `npm test`.
  platform = await startPlatform(
    loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url, ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK, GATEWAY_SANDBOX_PORT: '0' }),
    pino({ level: 'silent' }),
  );
});
afterAll(async () => {
  await platform?.stop();
  await db?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const graphiqlHtml = async (url: string) => (await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } })).text();

describe('in development', () => {
  it('the page offers the demo sign-in, and carries no inline script', async () => {
    const html = await graphiqlHtml(platform.url);
    expect(html).toContain('data-dev-sign-in="/graphql/dev"');
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="/graphql/assets/graphiql.js" defer>']);
  });

  it('the bundle has the starter query and the sign-in control', async () => {
    const js = await (await fetch(`${platform.url}/graphql/assets/graphiql.js`)).text();
    expect(js).toContain('serverInfo { version publicUrl time }');
    expect(js).toContain('Sign in as a demo client');
  });

  it('lists the demo clients without their secrets', async () => {
    const res = await fetch(`${platform.url}/graphql/dev/demo-clients`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
    expect(JSON.parse(text).clients.map((c: { name: string }) => c.name)).toEqual(['operator', 'issuer', 'merchant', 'biller']);
    for (const c of Object.values<{ client_secret?: string }>(demo.clients)) if (c.client_secret) expect(text).not.toContain(c.client_secret);
  });

  it('signs in as a demo client: the Authorization it returns opens protected fields', async () => {
    const signIn = await fetch(`${platform.url}/graphql/dev/demo-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: 'operator' }) });
    expect(signIn.status).toBe(200);
    const { authorization, client } = (await signIn.json()) as { authorization: string; client: string };
    expect(client).toBe('operator');
    expect(authorization).toMatch(/^Bearer \S+$/);
    const res = await fetch(`${platform.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ query: '{ viewer { kind } cities(first: 5) { edges { node { code } } } }' }) });
    const body = (await res.json()) as { data: { viewer: { kind: string }; cities: { edges: { node: { code: string } }[] } } };
    expect(body.data.viewer.kind).toBe('OPERATOR');
    expect(body.data.cities.edges.map((e) => e.node.code).sort()).toEqual(['GZ', 'SZ']);
  });

  it('an unknown demo client is a clear 400', async () => {
    const res = await fetch(`${platform.url}/graphql/dev/demo-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: 'nobody' }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'no demo client "nobody": GET demo-clients lists them' });
  });
});

describe('in production', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(db.orm, { NODE_ENV: 'production', ONECARD_DEMO: 'true', ONECARD_DATA_DIR: dataDir, GATEWAY_URL: 'http://127.0.0.1:9', GATEWAY_SECRET_KEY: 'sk_test_0123456789abcdef', GATEWAY_WEBHOOK_SECRET: 'whsec_0123456789abcdef' });
  });
  afterAll(() => server?.close());

  it('there is no demo sign-in endpoint, even with the demo data on, and the page does not offer it', async () => {
    expect((await fetch(`${server.url}/graphql/dev/demo-clients`)).status).not.toBe(200);
    const token = await fetch(`${server.url}/graphql/dev/demo-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: 'operator' }) });
    expect(token.status).not.toBe(200);
    expect(await token.text()).not.toMatch(/Bearer/);
    expect(await graphiqlHtml(server.url)).not.toContain('data-dev-sign-in');
  });
});
