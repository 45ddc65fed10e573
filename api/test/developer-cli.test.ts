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

/** Starts a long-running `onecard <args>`; `stop()` is its Ctrl-C and resolves when it has ended. */
function running(...args: string[]): { stop(): Promise<void>; ended: Promise<void> } {
  const controller = new AbortController();
  const ended = createProgram({ stop: () => controller.signal })
    .exitOverride()
    .parseAsync(['node', 'onecard', ...args])
    .then(() => undefined);
  return {
    ended,
    async stop() {
      controller.abort();
      await ended;
    },
  };
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; printed:\n${printed.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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

/** `onecard trigger …`, returning the subject the command reports. */
async function triggered(...args: string[]): Promise<string> {
  const before = printed.length;
  await onecard('trigger', ...args);
  return /^Trigger succeeded: \S+ for (\S+);/.exec(printed.slice(before).find((l) => l.startsWith('Trigger succeeded'))!)![1]!;
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

describe('onecard trigger', () => {
  it('payment.succeeded: the demo merchant’s new payment is paid by the demo card in a card session', async () => {
    const payment = await triggered('payment.succeeded', '--amount', '120');
    const { body } = await graphql(server.url, 'query($id: ID!) { payment(id: $id) { status amount { amount } } }', { id: payment }, { authorization: `Bearer ${await tokenOf('merchant')}` });
    expect(body.data.payment).toEqual({ status: 'SUCCEEDED', amount: { amount: 120 } });
    expect(printed).toContainEqual(expect.stringMatching(/^ {2}demo card tapped on lin's home reader: balance \d+ → \d+$/));
  });

  it('payment.canceled and bill.paid happen for real: the objects are in the state the event says', async () => {
    const payment = await triggered('payment.canceled');
    const merchant = await graphql(server.url, 'query($id: ID!) { payment(id: $id) { status cancelReason } }', { id: payment }, { authorization: `Bearer ${await tokenOf('merchant')}` });
    expect(merchant.body.data.payment).toEqual({ status: 'CANCELED', cancelReason: 'MERCHANT' });

    const bill = await triggered('bill.paid', '--amount', '345');
    const biller = await graphql(server.url, 'query($id: ID!) { bill(id: $id) { status amountPaid { amount } } }', { id: bill }, { authorization: `Bearer ${await tokenOf('biller')}` });
    expect(biller.body.data.bill).toEqual({ status: 'PAID', amountPaid: { amount: 345 } });
  });

  it('refuses an event it cannot make happen, listing those it can, which --help lists too', async () => {
    await expect(onecard('trigger', 'payment.exploded')).rejects.toThrow('cannot trigger "payment.exploded": supported events are payment.succeeded, payment.canceled, payment.refunded, bill.paid');
    const help = createProgram().commands.find((c) => c.name() === 'trigger')!;
    let text = '';
    help.configureOutput({ writeOut: (s) => void (text += s) });
    help.outputHelp();
    for (const event of ['payment.succeeded', 'payment.canceled', 'payment.refunded', 'bill.paid']) expect(text).toContain(`  ${event} `);
  });

  it('refuses to run with NODE_ENV=production, before it calls the API', async () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const before = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from payment`);
      await expect(onecard('trigger', 'payment.canceled')).rejects.toThrow(/refuses to run with NODE_ENV=production/);
      expect(await db.orm.em.fork().execute(`select count(*)::int as n from payment`)).toEqual(before);
    } finally {
      process.env.NODE_ENV = saved;
    }
  });

  it('refuses a server that is not a sandbox (serverInfo.sandbox false), before it creates anything', async () => {
    const production = await startTestServer(db.orm, { NODE_ENV: 'production', ONECARD_DATA_DIR: dataDir, GATEWAY_URL: 'http://127.0.0.1:9', GATEWAY_SECRET_KEY: 'sk_unused', GATEWAY_WEBHOOK_SECRET: 'whsec_unused_in_this_test' });
    try {
      const before = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from payment`);
      await expect(onecard('trigger', 'payment.canceled', '--api', production.url)).rejects.toThrow(`${production.url} is not a sandbox (serverInfo.sandbox is false)`);
      expect(await db.orm.em.fork().execute(`select count(*)::int as n from payment`)).toEqual(before);
    } finally {
      await production.close();
    }
  });
});

describe('onecard events tail', () => {
  it('prints each new event of the types asked for, one line each, and stops on Ctrl-C', async () => {
    const start = printed.length;
    const tail = running('events', 'tail', '--type', 'payment.canceled');
    // The tail starts at the present: the payment.canceled event of the tests above is not printed.
    await until('the tail is ready', () => status.some((l) => l.startsWith('Tailing payment.canceled event of merchant')));
    const subject = await triggered('payment.canceled');
    const line = await until('the tail line', () => printed.slice(start).find((l) => l.endsWith(`  ${subject}`)));
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}payment\.canceled {2}\S+ {2}\S+$/);
    await tail.stop();
    const tailed = printed.slice(start).filter((l) => /^\d{4}-\d\d-\d\dT\S+Z {2}payment\./.test(l));
    expect(tailed).toEqual([line]);
  });

  it('--json: the whole event, here a refund triggered with payment.refunded', async () => {
    const tail = running('events', 'tail', '--type', 'payment.refunded', '--json');
    await until('the tail is ready', () => status.some((l) => l.startsWith('Tailing payment.refunded event of merchant')));
    const start = printed.length;
    const subject = await triggered('payment.refunded', '--amount', '230');
    const line = await until('the refunded event', () => printed.slice(start).find((l) => l.startsWith('{') && l.includes(subject)));
    await tail.stop();
    expect(JSON.parse(line)).toMatchObject({ type: 'payment.refunded', subject, data: { payment: subject, status: 'SUCCEEDED', amount: 230, refundedAmount: 230, refund: { amount: 230 } } });
  });
});
