import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { seedSteps } from '../src/demo/seed.js';
import { PortInUseError, startPlatform } from '../src/platform.js';

let dataDir: string;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-start-'));
  await fs.chmod(dataDir, 0o755);
});
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

/** The configuration `npm start` would read, with no DATABASE_URL: the embedded PostgreSQL path. */
const config = (port = 0) => loadConfig({ NODE_ENV: 'test', PORT: String(port), ONECARD_DATA_DIR: dataDir, HOST: '127.0.0.1' });

async function seededRows(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`select (select count(*) from seed_run)::int as steps, (select count(*) from ledger_account)::int as accounts`);
    return rows[0] as { steps: number; accounts: number };
  } finally {
    await client.end();
  }
}

it('starts from a fresh data folder, serves, stops, and starts again on the same data with the seed applied once', async () => {
  const first = await startPlatform(config(), log);
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
  } finally {
    await first.stop();
  }
  // Stopped means stopped: the embedded PostgreSQL is gone with the platform.
  await expect(fs.access(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();

  const second = await startPlatform(config(), log);
  try {
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    expect(second.demo.ledgerAccounts).toEqual(first.demo.ledgerAccounts);
    expect(await seededRows(second.demo.databaseUrl as string)).toEqual({ steps: seedSteps.length, accounts: 3 });
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
