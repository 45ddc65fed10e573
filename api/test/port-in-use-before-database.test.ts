/**
 * `npm start` on a taken port says so before any work: no PostgreSQL cluster created, no database
 * seeded, no demo.json (it used to find out only after creating and seeding a whole cluster).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { PortInUseError, startPlatform } from '../src/platform.js';

let dataDir: string;
let blocker: net.Server;
let port: number;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-port-taken-'));
  blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  port = (blocker.address() as net.AddressInfo).port;
});
afterAll(async () => {
  blocker?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

it('a taken port is refused before the embedded PostgreSQL is created: the data folder stays empty', async () => {
  const started = startPlatform(loadConfig({ NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', ONECARD_DATA_DIR: dataDir }), pino({ level: 'silent' }));
  await expect(started).rejects.toBeInstanceOf(PortInUseError);
  await expect(started).rejects.toThrow(`port ${port} is already in use: stop what uses it, or set PORT to another port`);
  expect(await fs.readdir(dataDir)).toEqual([]);
});

it('`node api/dist/main.js` on a taken port prints one clear line and exits 1 (needs `npm run build`)', async () => {
  const main = path.resolve(import.meta.dirname, '../dist/main.js');
  const run = promisify(execFile)(process.execPath, [main], { env: { ...process.env, NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', ONECARD_DATA_DIR: dataDir, LOG_LEVEL: 'silent', DATABASE_URL: '' } });
  await expect(run).rejects.toMatchObject({ code: 1, stderr: `onecard: port ${port} is already in use: stop what uses it, or set PORT to another port\n` });
  expect(await fs.readdir(dataDir)).toEqual([]);
});
