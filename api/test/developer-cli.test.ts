/**
 * The developer commands (docs/cli.md) against a started server with the demo data: `onecard token`,
 * `listen --forward-to`, `trigger`, `events tail`. The server runs the webhook delivery worker, so
 * events are published as in production; a receiver on 127.0.0.1 checks what `listen` forwards with
 * the SDK's verifyWebhook, beside a real endpoint that gets OneCard's own deliveries.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createProgram } from '../src/cli/program.js';
import { seedDemoFile } from '../src/demo/seed.js';
import { type RunningWebhookDelivery, startWebhookDelivery } from '../src/webhooks/delivery-worker.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let delivery: RunningWebhookDelivery;
let dataDir: string;
let demo: { clients: Record<string, { client_id: string; client_secret: string }> };
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// ------------------------------------------------------------ running `onecard` in this process

/** Everything the commands printed (console.log), in order; concurrent commands share it. Status lines go to console.error. */
const printed: string[] = [];
const status: string[] = [];

/** Runs `onecard <args>` to its end. */
async function onecard(...args: string[]): Promise<void> {
  await createProgram().exitOverride().parseAsync(['node', 'onecard', ...args]);
}


beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-devcli-'));
  server = await startTestServer(db.orm, { ONECARD_DATA_DIR: dataDir });
  // demo.json as `npm start` writes it, for this server (publicUrl is its URL).
  await seedDemoFile(db.orm.em.fork(), log, { config: server.config, kek: Buffer.from(TEST_KEK, 'base64url'), database: { url: db.url, embedded: false } });
  demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
  process.env.ONECARD_DATA_DIR = dataDir;
  delivery = await startWebhookDelivery({ orm: db.orm, config: server.config, log, dispatchIntervalMs: 50, jobPollIntervalMs: 50, stopGraceMs: 300 });

  vi.spyOn(console, 'log').mockImplementation((...parts) => void printed.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void status.push(parts.join(' ')));
});
afterAll(async () => {
  vi.restoreAllMocks();
  delete process.env.ONECARD_DATA_DIR;
  await delivery?.stop();
  await server?.close();
  await db?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** An access token of a demo client, by `onecard token`. */
async function tokenOf(client: string): Promise<string> {
  const before = printed.length;
  await onecard('token', '--client', client);
  return printed.slice(before).at(-1)!;
}

describe('onecard token', () => {
  it('prints an access token of the demo client that the API accepts', async () => {
    const { status, body } = await graphql(server.url, '{ viewer { kind clientId } }', undefined, { authorization: `Bearer ${await tokenOf('merchant')}` });
    expect(status).toBe(200);
    expect(body.data.viewer).toEqual({ kind: 'MERCHANT', clientId: demo.clients.merchant!.client_id });
  });

  it('names the demo clients there are when asked for one that is not', async () => {
    await expect(onecard('token', '--client', 'shop')).rejects.toThrow(/no demo client "shop" in .*demo\.json \(there: operator, issuer, merchant, biller\)/);
  });
});
