/**
 * The developer commands (docs/cli.md) against a started server with the demo data: `onecard token`,
 * `listen --forward-to`, `trigger`, `events tail`. The server runs the webhook delivery worker, so
 * events are published as in production; a receiver on 127.0.0.1 checks what `listen` forwards with
 * the SDK's verifyWebhook, beside a real endpoint that gets OneCard's own deliveries.
 */
import fs from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyWebhook } from '../../sdk-js/src/index.js';
import { createProgram } from '../src/cli/program.js';
import { seedDemoFile } from '../src/demo/seed.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { type RunningWebhookDelivery, startWebhookDelivery } from '../src/webhooks/delivery-worker.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let delivery: RunningWebhookDelivery;
let sandbox: SandboxGateway;
let dataDir: string;
let demo: { clients: Record<string, { client_id: string; client_secret: string }> };
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// ------------------------------------------------------------ a receiver: the developer's local app

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
let receiver: Server;
let receiverUrl: string;

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

const printedLine = (pattern: RegExp) => printed.find((line) => pattern.test(line));
const bodyOf = (r: Received) => JSON.parse(r.body) as { id: string; type: string; created: string; data: Record<string, unknown> };

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-devcli-'));
  // The sandbox payment gateway npm start runs, for the top-ups trigger makes.
  sandbox = await startSandboxGateway({ secretKey: 'sk_test_devcli', webhookSecret: 'whsec_gateway_devcli_test', webhookRetryDelaysMs: [50, 100] });
  server = await startTestServer(db.orm, { ONECARD_DATA_DIR: dataDir, GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: 'sk_test_devcli', GATEWAY_WEBHOOK_SECRET: 'whsec_gateway_devcli_test' });
  sandbox.setWebhookUrl(`${server.url}/webhooks/gateway`);
  // demo.json as `npm start` writes it, for this server (publicUrl is its URL).
  await seedDemoFile(db.orm.em.fork(), log, { config: server.config, kek: Buffer.from(TEST_KEK, 'base64url'), database: { url: db.url, embedded: false } });
  demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
  process.env.ONECARD_DATA_DIR = dataDir;
  delivery = await startWebhookDelivery({ orm: db.orm, config: server.config, log, dispatchIntervalMs: 50, jobPollIntervalMs: 50, stopGraceMs: 300 });

  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(req.url === '/broken' ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  vi.spyOn(console, 'log').mockImplementation((...parts) => void printed.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void status.push(parts.join(' ')));
});
afterAll(async () => {
  vi.restoreAllMocks();
  delete process.env.ONECARD_DATA_DIR;
  await delivery?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await server?.close();
  await sandbox?.close();
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

  it('topup.paid and topup.loaded: the demo card’s top-up is paid at the sandbox gateway, then written onto the card', async () => {
    const issuer = `Bearer ${await tokenOf('issuer')}`;
    const topUp = async (id: string) => (await graphql(server.url, 'query($id: ID!) { topUp(id: $id) { status amount { amount } } }', { id }, { authorization: issuer })).body.data.topUp;
    const paid = await triggered('topup.paid', '--amount', '700');
    expect(await topUp(paid)).toEqual({ status: 'PAID', amount: { amount: 700 } });
    const loaded = await triggered('topup.loaded', '--amount', '800');
    expect(await topUp(loaded)).toEqual({ status: 'LOADED', amount: { amount: 800 } });
  });

  it('refuses an event it cannot make happen, listing those it can, which --help lists too', async () => {
    await expect(onecard('trigger', 'payment.exploded')).rejects.toThrow('cannot trigger "payment.exploded": supported events are payment.succeeded, payment.canceled, payment.refunded, topup.paid, topup.loaded, bill.paid');
    const help = createProgram().commands.find((c) => c.name() === 'trigger')!;
    let text = '';
    help.configureOutput({ writeOut: (s) => void (text += s) });
    help.outputHelp();
    for (const event of ['payment.succeeded', 'payment.canceled', 'payment.refunded', 'topup.paid', 'topup.loaded', 'bill.paid']) expect(text).toContain(`  ${event} `);
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

describe('onecard events tail within the cost limit', () => {
  it('waits out a THROTTLED answer instead of failing, polls cheaply, and still prints the event', async () => {
    // The same database behind a server whose cost buckets hold 1,050 points and refill 20 a second.
    const small = await startTestServer(db.orm, { ONECARD_DATA_DIR: dataDir, GRAPHQL_COST_BUCKET: '1050', GRAPHQL_COST_RESTORE_RATE: '20' });
    try {
      const start = printed.length;
      const statusStart = status.length;
      const tail = running('events', 'tail', '--client', 'biller', '--type', 'bill.paid', '--api', small.url);
      let failed: unknown;
      tail.ended.catch((err: unknown) => (failed = err));
      await until('the tail is ready', () => status.slice(statusStart).some((l) => l.startsWith('Tailing bill.paid event of biller')));
      // Catching up cost 1,001 points: the first poll (101) waits for the bucket, and says so.
      await until('the wait', () => status.slice(statusStart).some((l) => /^throttled by OneCard's cost limit: waiting \d+ s$/.test(l)));
      await triggered('bill.paid', '--amount', '99');
      const line = await until('the tail line', () => printed.slice(start).find((l) => l.includes('  bill.paid  ')), 40_000);
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}bill\.paid {2}\S+ {2}\S+$/);
      expect(failed).toBeUndefined();
      await tail.stop();
    } finally {
      await small.close();
    }
  });
});

describe('onecard listen --forward-to', () => {
  it('forwards a triggered payment.succeeded, signed as OneCard signs it: the SDK verifies it, and the body is the real delivery’s, byte for byte', async () => {
    // A real endpoint too, so the forwarded event can be compared with OneCard's own delivery of it.
    const made = await graphql(server.url, 'mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret userErrors { code } } }', { input: { url: `${receiverUrl}/real`, eventTypes: ['payment.succeeded'] } }, { authorization: `Bearer ${await tokenOf('merchant')}` });
    expect(made.body.data.createWebhookEndpoint.userErrors).toEqual([]);

    const secret = 'whsec_the_developers_own_secret';
    const listener = running('listen', '--forward-to', `${receiverUrl}/local`, '--secret', secret, '--events', 'payment.succeeded');
    await until('the listener is ready', () => printedLine(/^Ready! Forwarding payment\.succeeded event of merchant/));
    const subject = await triggered('payment.succeeded', '--amount', '150');

    const forwarded = await until('the forwarded event', () => received.find((r) => r.path === '/local' && bodyOf(r).data.payment === subject));
    const checked = verifyWebhook(forwarded.body, forwarded.headers['onecard-signature'] as string, secret);
    expect(checked).toMatchObject({ ok: true, event: { type: 'payment.succeeded', data: { payment: subject, status: 'SUCCEEDED', amount: 150, currency: 'CNY' } } });
    expect(verifyWebhook(forwarded.body, forwarded.headers['onecard-signature'] as string, 'whsec_another').ok).toBe(false);
    expect(forwarded.headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': 'OneCard-Webhooks/1', 'onecard-event-id': bodyOf(forwarded).id });

    const real = await until('OneCard’s own delivery', () => received.find((r) => r.path === '/real' && bodyOf(r).data.payment === subject));
    expect(forwarded.body).toBe(real.body);
    expect(forwarded.headers['onecard-event-id']).toBe(real.headers['onecard-event-id']);

    // One line per event, with what the local URL answered.
    await until('the line of the forwarded event', () => printedLine(new RegExp(`--> payment\\.succeeded ${bodyOf(forwarded).id}  ${receiverUrl}/local  <-- \\[204\\]`)));
    await listener.stop(); // Ctrl-C: the command ends
    expect(received.filter((r) => r.path === '/local')).toHaveLength(1); // from the present on: the earlier payments were not forwarded
  });

  it('without --secret signs with the listener secret it prints, and shows a failing local answer', async () => {
    const listener = running('listen', '--forward-to', `${receiverUrl}/broken`, '--events', 'payment.canceled');
    const announced = await until('the secret line', () => printedLine(/^Your webhook signing secret is whsec_/));
    const secret = /is (whsec_\S+)/.exec(announced)![1]!;
    expect((await fs.readFile(path.join(dataDir, 'listen-secret'), 'utf8')).trim()).toBe(secret);
    await until('ready', () => printedLine(/^Ready! Forwarding payment\.canceled/));

    const subject = await triggered('payment.canceled');
    const forwarded = await until('the forwarded event', () => received.find((r) => r.path === '/broken' && bodyOf(r).data.payment === subject));
    expect(verifyWebhook(forwarded.body, forwarded.headers['onecard-signature'] as string, secret)).toMatchObject({ ok: true, event: { type: 'payment.canceled', data: { cancelReason: 'MERCHANT' } } });
    await until('the failing answer printed', () => printedLine(new RegExp(`--> payment\\.canceled ${bodyOf(forwarded).id}  ${receiverUrl}/broken  <-- \\[500\\]`)));
    await listener.stop();
  });
});
