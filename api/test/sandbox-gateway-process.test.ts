/**
 * The sandbox gateway on its own (issue 19): `onecard sandbox-gateway` runs it as a process of its
 * own on a fixed port (GATEWAY_SANDBOX_PORT) with its keys and state in the data folder. An API
 * started beside it uses it rather than starting its own; stopping (or killing) the API leaves it
 * running; and a checkout link it handed out still works after the gateway itself restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../src/db/embedded-postgres.js';
import { startPlatform } from '../src/platform.js';
import { sandboxKeys } from '../src/topups/gateway/sandbox-process.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testConfig } from './support/server.js';

const repo = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase | undefined;
let dir: string | undefined;
let gateway: ChildProcess | undefined;

afterAll(async () => {
  gateway?.kill('SIGKILL');
  await db?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** `onecard sandbox-gateway`, run from the sources; resolves once it listens. */
async function startGatewayProcess(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', path.join(repo, 'api/test/support/ts-loader.mjs'), path.join(repo, 'api/src/cli/main.ts'), 'sandbox-gateway'], { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  for (let waited = 0; !output.includes('sandbox gateway at'); waited += 100) {
    if (child.exitCode !== null) throw new Error(`onecard sandbox-gateway exited:\n${output}`);
    if (waited > 120_000) throw new Error(`onecard sandbox-gateway did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

async function stopGracefully(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

it('runs on its own fixed port: the API uses it, stopping the API leaves it running, its checkout links survive its restart', async () => {
  db = await freshDatabase();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-sandbox-'));
  const port = await freePort();
  const apiPort = await freePort();
  const env = { NODE_ENV: 'test', ONECARD_DATA_DIR: dir, GATEWAY_SANDBOX_PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${apiPort}`, LOG_LEVEL: 'warn' };
  gateway = await startGatewayProcess(env);
  const sandboxUrl = `http://127.0.0.1:${port}`;

  const platform = await startPlatform(testConfig({ ...env, DATABASE_URL: db.url, PORT: String(apiPort), HOST: '127.0.0.1', ONECARD_DEMO: 'false' }), pino({ level: 'silent' }));
  try {
    expect(platform.sandboxGatewayUrl).toBe(sandboxUrl);
  } finally {
    await platform.stop();
  }

  // The API is gone; the gateway is not. A payment waiting at its checkout page:
  const keys = await sandboxKeys(dir);
  const made = await fetch(`${sandboxUrl}/v1/payment_intents`, { method: 'POST', headers: { authorization: `Bearer ${keys.secretKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'amount=1500&currency=cny' });
  expect(made.status).toBe(200);
  const intent = (await made.json()) as { id: string };
  const checkout = `${sandboxUrl}/checkout/${intent.id}`;
  expect((await fetch(checkout)).status).toBe(200);

  // The gateway restarts (same port, same keys, its state read back): the link still works.
  expect(await stopGracefully(gateway)).toBe(0);
  gateway = await startGatewayProcess(env);
  const page = await fetch(checkout);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(intent.id);
  expect(await stopGracefully(gateway)).toBe(0);
  gateway = undefined;
}, 300_000);
