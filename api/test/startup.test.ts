import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { seedSteps } from '../src/demo/seed.js';
import { CARD_SESSION_MESSAGE, OneCardClient, ReaderAgent, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { PortInUseError, startPlatform } from '../src/platform.js';
import { freshDatabase } from './support/database.js';

let dataDir: string;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-start-'));
  await fs.chmod(dataDir, 0o755);
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

/** The configuration `npm start` would read, with no DATABASE_URL: the embedded PostgreSQL path. */
const config = (port: number) =>
  loadConfig({ NODE_ENV: 'test', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, HOST: '127.0.0.1' });

/** What a person does with demo.json: a client-credentials token for a demo client, then GraphQL. */
async function asDemoClient(url: string, client: { client_id: string; client_secret: string }, query: string, scope?: string) {
  const token = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  expect(token.status).toBe(200);
  const { access_token } = (await token.json()) as { access_token: string };
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` }, body: JSON.stringify({ query }) });
  return ((await res.json()) as { data: any }).data;
}

async function seededRows(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`select (select count(*) from seed_run)::int as steps, (select count(*) from ledger_account)::int as accounts`);
    // Client secrets are printed to demo.json, never kept in the database.
    const { rows: secrets } = await client.query(`select step from seed_run where output::text like '%"client_secret"%'`);
    expect(secrets).toEqual([]);
    return rows[0] as { steps: number; accounts: number };
  } finally {
    await client.end();
  }
}

it('starts from a fresh data folder, serves, stops, and starts again on the same data with the seed applied once', async () => {
  const port = await freePort();
  const first = await startPlatform(config(port), log);
  let demoUrl: string;
  try {
    expect(await (await fetch(`${first.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const res = await fetch(`${first.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ serverInfo { version } }' }),
    });
    expect(((await res.json()) as any).data.serverInfo.version).toBeTruthy();
    const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
    expect(demo).toEqual(first.demo);
    expect(demo.ledgerAccounts.operatorFeeRevenue.code).toBe('operator.fee-revenue.CNY');
    demoUrl = demo.databaseUrl;
    expect(await seededRows(demoUrl)).toEqual({ steps: seedSteps.length, accounts: 3 });
    expect(Object.keys(demo.clients)).toEqual(['operator', 'issuer', 'merchant', 'biller', 'cardholderApp']);
    const viewer = await asDemoClient(first.url, demo.clients.merchant, '{ viewer { kind tenantId } }');
    expect(viewer.viewer).toEqual({ kind: 'MERCHANT', tenantId: demo.tenants.merchant });

    // The demo counter reader loads the demo card, as docs/readers.md shows.
    const issuer = new OneCardClient({ baseUrl: first.url, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'topups:write' });
    const reader = JSON.parse(await fs.readFile(demo.readers.counter.file, 'utf8'));
    const card = VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));
    const opened = await issuer.request<any>('mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { message } } }', {
      input: { reader: reader.readerId, operation: 'LOAD', amount: 1000 },
    });
    const agent = new ReaderAgent({
      deviceKey: reader.deviceKeyPem,
      nationalCertificatePem: reader.nationalCertificatePem,
      cityCertificatePem: reader.cityCertificatePem,
      trustedCertificatesPem: reader.trustedCertificatesPem,
      nationalKey: reader.nationalKeyPem,
      encryptionKey: reader.encryptionKeyPem,
      encryptionCertificatePem: reader.encryptionCertificatePem,
      transport: new VirtualCardTransport(card),
      send: async (input) => (await issuer.request<any>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
    });
    expect(await agent.run(opened.openCardSession.session)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 1000 } });
  } finally {
    await first.stop();
  }
  // Stopped means stopped: the embedded PostgreSQL is gone with the platform.
  await expect(fs.access(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();

  const second = await startPlatform(config(port), log);
  try {
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    expect(second.demo!.ledgerAccounts).toEqual(first.demo!.ledgerAccounts);
    // The secrets printed at the first start are still in demo.json, and still work.
    expect(second.demo!.clients).toEqual(first.demo!.clients);
    const ledger = await asDemoClient(second.url, (second.demo!.clients as any).operator, '{ ledgerAccounts { edges { node { code } } } }', 'ledger:read');
    expect(ledger.ledgerAccounts.edges.map((e: any) => e.node.code)).toEqual([
      'card.00000000000000000001.purse.CNY',
      'gateway.clearing.CNY',
      expect.stringMatching(/^issuer\.[0-9a-f-]{36}\.counter-cash\.CNY$/),
      'operator.fee-revenue.CNY',
      'settlement.in-transit.CNY',
    ]);
    // Seeded once: the three platform accounts, plus the two the demo load opened.
    expect(await seededRows(second.demo!.databaseUrl as string)).toEqual({ steps: seedSteps.length, accounts: 5 });
  } finally {
    await second.stop();
  }
});

it('a port in use is refused with a clear error, and nothing is left running', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const { port } = blocker.address() as net.AddressInfo;
  try {
    const started = startPlatform(config(port), log);
    await expect(started).rejects.toBeInstanceOf(PortInUseError);
    await expect(started).rejects.toThrow(`port ${port} is already in use`);
    await expect(fs.access(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();
  } finally {
    blocker.close();
  }
});

it('with ONECARD_DEMO off (the production default) it seeds nothing: no demo clients, cardholders, root CA or demo.json', async () => {
  const db = await freshDatabase();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-nodemo-'));
  const port = await freePort();
  try {
    const running = await startPlatform(loadConfig({ NODE_ENV: 'test', ONECARD_DEMO: 'false', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dir, HOST: '127.0.0.1', DATABASE_URL: db.url }), log);
    try {
      expect(running.demo).toBeNull();
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
      await expect(fs.access(path.join(dir, 'demo.json'))).rejects.toThrow();
      const [counts] = await db.orm.em.fork().execute<{ steps: number; clients: number; holders: number; cas: number }[]>(
        `select (select count(*) from seed_run)::int as steps, (select count(*) from oauth_client)::int as clients, (select count(*) from cardholder)::int as holders, (select count(*) from certificate_authority)::int as cas`,
      );
      expect(counts).toEqual({ steps: 0, clients: 0, holders: 0, cas: 0 });
    } finally {
      await running.stop();
    }
  } finally {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
