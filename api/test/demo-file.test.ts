/**
 * `onecard seed` and `npm start` write the same demo.json: the examples and the quickstart build an
 * SDK client from its `publicUrl`, and a demo.json rewritten by `seed` without it made every one of
 * them crash with "TypeError: Invalid URL … input: 'undefined'".
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { createProgram } from '../src/cli/program.js';
import { loadConfig } from '../src/config/config.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { startPlatform } from '../src/platform.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
let dataDir: string;
const saved = { ...process.env };

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-demo-file-'));
});
afterAll(async () => {
  process.env = saved;
  await fs.rm(dataDir, { recursive: true, force: true });
  await db?.close();
});

const readDemo = async () => JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));

it('`onecard seed` writes the demo.json `npm start` writes, publicUrl included, and an SDK client built from it works', async () => {
  const port = await freePort();
  const env = { NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url, ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK };

  // `onecard seed` first, as the user did after a start.
  Object.assign(process.env, env);
  vi.spyOn(console, 'log').mockImplementation(() => {});
  await createProgram().exitOverride().parseAsync(['node', 'onecard', 'seed']);
  vi.restoreAllMocks();
  const afterSeed = await readDemo();
  expect(afterSeed.publicUrl).toBe(`http://127.0.0.1:${port}`);
  expect(afterSeed.graphqlUrl).toBe(`http://127.0.0.1:${port}/graphql`);

  const platform = await startPlatform(loadConfig(env), pino({ level: 'silent' }));
  try {
    const afterStart = await readDemo();
    expect(afterStart).toEqual(afterSeed);

    // What every example does with it.
    const merchant = new OneCardClient({ baseUrl: afterSeed.publicUrl, clientId: afterSeed.clients.merchant.client_id, clientSecret: afterSeed.clients.merchant.client_secret, scope: 'payments:read' });
    const { serverInfo } = await merchant.request<{ serverInfo: { publicUrl: string } }>('{ serverInfo { publicUrl } }');
    expect(serverInfo.publicUrl).toBe(afterSeed.publicUrl);
  } finally {
    await platform.stop();
  }
});

it('`onecard seed` from a shell without PORT or PUBLIC_URL keeps the publicUrl of the `npm start` that wrote demo.json (PORT=4700 npm start, then npx onecard seed)', async () => {
  const port = await freePort();
  const started = { NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url, ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK };
  const platform = await startPlatform(loadConfig(started), pino({ level: 'silent' }));
  try {
    expect((await readDemo()).publicUrl).toBe(`http://localhost:${port}`);
    // The second terminal: the data folder and database, not the port.
    process.env = { ...saved, NODE_ENV: 'test', ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url, ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK };
    delete process.env.PORT;
    delete process.env.PUBLIC_URL;
    vi.spyOn(console, 'log').mockImplementation(() => {});
    await createProgram().exitOverride().parseAsync(['node', 'onecard', 'seed']);
    vi.restoreAllMocks();
    const demo = await readDemo();
    expect(demo.publicUrl).toBe(`http://localhost:${port}`);
    expect(demo.graphqlUrl).toBe(`http://localhost:${port}/graphql`);
  } finally {
    process.env = { ...saved };
    await platform.stop();
  }
});
