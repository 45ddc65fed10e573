/**
 * `examples/reader-simulator --pcsc`, run as a person runs it against `npm start`'s platform: the
 * demo card sits in vpcd's virtual reader (vpcd-card.mjs, a child process, answering as a T=0
 * card), the simulator finds it through pcscd and loads it. Needs pcscd and vsmartcard-vpcd
 * (.ci/run installs them) and the SDK built (`npm run build`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPcscd, type TestPcscd } from '../../sdk-js/src/reader/pcscd.test-support.js';
import { loadConfig } from '../src/config/config.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { type RunningPlatform, startPlatform } from '../src/platform.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

const repo = path.resolve(import.meta.dirname, '../..');
const SIMULATE = path.join(repo, 'examples/reader-simulator/simulate.mjs');
const VPCD_CARD = path.join(repo, 'examples/reader-simulator/vpcd-card.mjs');

let dataDir: string;
let db: TestDatabase;
let platform: RunningPlatform;
let pcscd: TestPcscd;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  await fs.access(path.join(repo, 'sdk-js/dist/esm/index.js')).catch(() => {
    throw new Error('the examples import @onecard/sdk from sdk-js/dist: run `npm run build` first');
  });
  pcscd = await startPcscd();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-pcsc-example-'));
  db = await freshDatabase();
  const port = await freePort();
  platform = await startPlatform(
    loadConfig({ NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url }),
    pino({ level: 'silent' }),
  );
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await platform?.stop();
  await db?.close();
  await pcscd?.stop();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

function start(script: string, args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, ONECARD_DATA_DIR: dataDir };
  const child = spawn(process.execPath, [script, ...args], { cwd: path.dirname(script), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out };
}

async function simulate(...args: string[]) {
  const run = start(SIMULATE, args);
  const code = await run.exited;
  expect(code, `simulate ${args.join(' ')}\nstdout:\n${run.out.stdout}\nstderr:\n${run.out.stderr}\npcscd:\n${pcscd.log()}`).toBe(0);
  const operation = args.find((a) => ['balance', 'load'].includes(a))!;
  const result = run.out.stdout.match(new RegExp(`^${operation}: (\\{.*\\})$`, 'm'));
  expect(result, run.out.stdout).not.toBeNull();
  const answer = JSON.parse(result![1]!) as { balance?: number; newBalance?: number };
  return { balance: (answer.balance ?? answer.newBalance)!, stdout: run.out.stdout };
}

describe('examples/reader-simulator --pcsc', () => {
  it('finds the demo card in the named PC/SC reader and loads it; the card (not the simulator) keeps the new balance', async () => {
    const card = start(VPCD_CARD, ['--port', String(pcscd.port), '--t0']);
    const before = await simulate('--pcsc', pcscd.readerName, 'balance');
    expect(before.stdout).toContain(`card in ${pcscd.readerName}`);
    const loaded = await simulate('--pcsc', pcscd.readerName, 'load', '500');
    expect(loaded.balance).toBe(before.balance + 500);
    // The T=0 card's pieces came through pcscd and were put together by the SDK's transport.
    expect(card.out.stdout).toMatch(/^ {2}< 61[0-9a-f]{2}$/m);
    card.child.kill('SIGTERM');
    await card.exited;
    // The card in the reader saved what it holds: the simulator without --pcsc reads the same card.
    expect((await simulate('balance')).balance).toBe(before.balance + 500);
  });
});
