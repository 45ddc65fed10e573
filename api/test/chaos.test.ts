/**
 * Chaos (issue 19): a small bank test. The API runs as a child process (its TypeScript sources,
 * compiled on the fly: support/ts-loader.mjs) on a database of this file's own, with the sandbox
 * gateway in this process so that it outlives every kill. Concurrent clients run a few hundred money
 * operations — counter loads, card payments, refunds, bill payments by card and from top-ups, top-ups
 * through the gateway — each retried with the same idempotency key until it is answered, while the
 * API is killed with SIGKILL: by this test at moments picked at random, and by itself at its crash
 * points (an effect committed, its answer not yet sent: ONECARD_TEST_CRASH_PROBABILITY). Each time it
 * is started again. Then:
 *
 * - the ledger holds (checkLedger, what `onecard ledger check` runs);
 * - every operation a client saw succeed exists exactly once;
 * - every key's stored answer is what its effect is (no refusal stored for a request that took effect);
 * - every virtual card's chip holds what its ledger shadow says.
 *
 * No timing is asserted: waits are generous bounds, and the number of operations is fixed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { decodePayload } from '../src/graphql/idempotency.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createWorkingCa } from '../src/pki/pki.service.js';
import { initRootCa } from '../src/pki/root-ca.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { addCity, addMasterKeys, balanceOnCard, type CardSessionWorld, issueCard, newReader, OPEN, purseBalance, sessionsOf, sessionUuid, type TestReader, testCardNumber } from './support/card-sessions.js';
import { freshDatabase } from './support/database.js';
import { cardholderAccessToken, clientCredentialsToken, discover } from './support/oauth.js';
import { TEST_KEK, type TestServer } from './support/server.js';

const WORKERS = Number(process.env.CHAOS_WORKERS ?? 8);
const OPERATIONS_PER_WORKER = Number(process.env.CHAOS_OPERATIONS ?? 25);
/** SIGKILLs by this test, at random moments spread over the run. */
const FORCED_KILLS = 2;
/** Kills by the API itself at its crash points (inside the commit-to-answer window), before they are disarmed. */
const SELF_KILLS = 1;
const CRASH_PROBABILITY = '0.05';
const GATEWAY_SECRET = 'sk_test_chaos';
const WEBHOOK_SECRET = 'whsec_chaos_0123456789abcdef';
/** How long one operation keeps retrying through restarts before the test gives up on the run: a bound, not a measurement. */
const OPERATION_DEADLINE_MS = 150_000;

const repo = path.resolve(import.meta.dirname, '../..');
const world = {} as CardSessionWorld;
let sandbox: SandboxGateway;
let api: ApiProcess;
let url: string;

// ——— the API as a child process, started again after every death ———

class ApiProcess {
  child: ChildProcess | null = null;
  ready: Promise<void> = Promise.resolve();
  output = '';
  forcedKills = 0;
  selfKills = 0;
  starts = 0;
  private stopping = false;
  private killing = false;

  constructor(
    private readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  start(): Promise<void> {
    this.ready = this.spawn();
    return this.ready;
  }

  private async spawn(): Promise<void> {
    this.starts++;
    const began = Date.now();
    const armed = this.selfKills < SELF_KILLS ? CRASH_PROBABILITY : '0';
    const child = spawn(process.execPath, ['--import', path.join(repo, 'api/test/support/ts-loader.mjs'), path.join(repo, 'api/src/main.ts')], {
      cwd: repo,
      env: { ...process.env, ...this.env, ONECARD_TEST_CRASH_PROBABILITY: armed },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-20_000)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => {
      if (this.child !== child || this.stopping) return;
      if (signal !== 'SIGKILL') {
        this.ready = Promise.reject(new Error(`the API exited by itself (code ${code}, signal ${signal}):\n${this.output}`));
        this.ready.catch(() => {});
        return;
      }
      if (!this.killing) this.selfKills++;
      this.killing = false;
      this.ready = this.spawn();
      this.ready.catch(() => {});
    });
    // Ready when /readyz says so; a bound of two minutes for a loaded machine.
    for (let waited = 0; ; waited += 200) {
      if (child.exitCode !== null || child.signalCode !== null) return exited.then(() => this.ready);
      const ok = await fetch(`http://127.0.0.1:${this.port}/readyz`).then((r) => r.ok, () => false);
      if (ok) {
        if (process.env.CHAOS_REPORT) console.info(`API start ${this.starts}: ${Date.now() - began} ms`);
        return;
      }
      if (waited > 120_000) throw new Error(`the API did not become ready:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** kill -9, now. */
  kill(): void {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.forcedKills++;
    this.killing = true;
    this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

// ——— calls that survive the API's deaths ———

type Body = { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] };

/**
 * Worth sending again (the same request, the same key): no answer, or the API said "not now"
 * (THROTTLED is answered before anything runs: the client's cost bucket is refilling).
 */
function transient(status: number, body: Body | null): boolean {
  if (!body) return true;
  const code = body.errors?.[0]?.extensions?.code;
  return status >= 500 || code === 'IDEMPOTENCY_CONFLICT' || code === 'INTERNAL_SERVER_ERROR' || code === 'THROTTLED';
}

/**
 * Sends a GraphQL request again, the same, through kills and restarts until the API answers it
 * (an answer is anything `transient` does not call "not now").
 */
async function untilAnswered(token: string, query: string, variables: Record<string, unknown> | undefined, countConflicts: boolean): Promise<Body> {
  const until = Date.now() + OPERATION_DEADLINE_MS;
  for (let attempt = 1; ; attempt++) {
    let status = 0;
    let body: Body | null = null;
    try {
      const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
      status = res.status;
      body = (await res.json()) as Body;
    } catch {
      // the API is down (killed): send it again
    }
    // A resumable mutation's claim (the gateway top-ups) waits 10 s unrenewed before it is taken over
    // (a live process whose liveness session died keeps it): a 409 for it after a quick restart is expected.
    if (countConflicts && body?.errors?.[0]?.extensions?.code === 'IDEMPOTENCY_CONFLICT' && !/\b(createTopUp|refundTopUp)\b/.test(query)) conflicts++;
    if (!transient(status, body)) return body!;
    if (Date.now() > until) throw new Error(`no answer after ${attempt} attempts: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * attempt)));
  }
}

/** A GraphQL call retried through kills and restarts until it is answered; GraphQL errors that are answers throw. */
async function persist(token: string, query: string, variables: Record<string, unknown>): Promise<Record<string, any>> {
  const body = await untilAnswered(token, query, variables, true);
  if (body.errors?.length) throw new Error(`${body.errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('; ')}`);
  return body.data!;
}

/**
 * A requester for the card-session helpers, as a reader agent that keeps its message should use:
 * a message that got no answer (the API died) is sent again, the same, until the API answers. A
 * message the API had handled before dying is then refused as out of order, and the session shows
 * how it ended.
 */
const relay = (token: string) => ({
  async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const body = await untilAnswered(token, query, variables, false);
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
    return body.data as T;
  },
});

// ——— the bank ———

let merchantToken: string;
let issuerToken: string;
let appToken: string;
let holderId: string;
let counter: TestReader;
let home: TestReader;
let waterId: string;

interface Card {
  chip: VirtualCpuCard;
  id: string;
  uuid: string;
}

/** What the clients saw succeed. */
const seen = {
  payments: [] as { key: string; id: string; orderReference: string; amount: number; succeeded: boolean }[],
  refunds: [] as { key: string; paymentId: string; refundId: string }[],
  billPayments: [] as { key: string; id: string; bill: string; amount: number }[],
  topUps: [] as { key: string; id: string }[],
  loads: [] as { sessionId: string }[],
};
let done = 0;
/** IDEMPOTENCY_CONFLICT answers: each key is retried by one client only, so any is a dead process's claim not taken over. */
let conflicts = 0;

beforeAll(async () => {
  world.db = await freshDatabase();
  world.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-chaos-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  world.server = { url } as TestServer;
  sandbox = await startSandboxGateway({ secretKey: GATEWAY_SECRET, webhookSecret: WEBHOOK_SECRET, statePath: path.join(world.dir, 'sandbox.json') });
  sandbox.setWebhookUrl(`${url}/webhooks/gateway`);

  const em = world.db.orm.em.fork();
  world.root = await initRootCa(path.join(world.dir, 'root.json'), 'chaos test root');
  await createWorkingCa(em, Buffer.from(TEST_KEK, 'base64url'), world.root, { kind: 'NATIONAL', name: 'National', publicUrl: url });
  world.gz = await addCity(world, { code: 'GZ', name: 'Guangzhou', cardCompanyName: 'Yangchengtong', cardCode: '5810' });
  world.gzMasterKeys = await addMasterKeys(world, world.gz, '3DES');
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Chaos Mart' });
  waterId = (await createBiller(em, { cityId: world.gz.cityId, name: 'Chaos Water', kind: BillerKind.WATER })).id;
  counter = await newReader(world, 'GZ-COUNTER-CHAOS', world.gz);

  api = new ApiProcess(port, {
    NODE_ENV: 'test',
    DATABASE_URL: world.db.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: url,
    ONECARD_DATA_DIR: world.dir,
    ONECARD_DEMO: 'false',
    ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK,
    GATEWAY_URL: sandbox.url,
    GATEWAY_SECRET_KEY: GATEWAY_SECRET,
    GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET,
    LOG_LEVEL: 'warn',
  });
  await api.start();

  const as = await discover(url);
  const token = async (kind: 'MERCHANT' | 'ISSUER', tenantId: string, scopes: string[]) => {
    const made = await createClient(world.db.orm.em.fork(), { kind, tenantId, name: `chaos ${kind}`, scopes });
    return (await clientCredentialsToken(as, made.client.client_id, made.clientSecret!, scopes.join(' '))).access_token;
  };
  merchantToken = await token('MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
  issuerToken = await token('ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  // The holder's app, signed in the way a real one is (authorization code with PKCE).
  holderId = (await createCardholder(em, { username: 'chaos-holder', password: 'chaos-holder password 1', displayName: 'Chaos Holder' })).id;
  const redirectUri = 'http://127.0.0.1:8799/callback';
  const app = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: world.gz.cardCompanyId, name: 'Chaos App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  appToken = await cardholderAccessToken(url, { clientId: app.client.client_id, redirectUri, username: 'chaos-holder', password: 'chaos-holder password 1', scope: 'card:read card:topup' });
  home = await newReader(world, 'HOME-chaos', world.gz, { kind: 'CARDHOLDER', id: holderId });
}, 300_000);

afterAll(async () => {
  await api?.stop();
  await sandbox?.close();
  await world.db?.close();
  if (world.dir) await fs.rm(world.dir, { recursive: true, force: true });
});

// ——— the operations ———

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status amount { amount } orderReference } userErrors { code message } } }`;
const PAYMENT = `query($id: ID!) { payment(id: $id) { id status } }`;
const REFUND_PAYMENT = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { id amount { amount } } userErrors { code message } } }`;
const PAY_BILL = `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id status amount { amount } } userErrors { code message } } }`;
const BILL_PAYMENT = `query($id: ID!) { billPayment(id: $id) { id status } }`;
const CREATE_TOP_UP = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }`;

/** The card was cut off mid-session (the API died): the session's 120 s are over for it, as they would run out. */
async function endSession(sessionId: string | undefined) {
  if (sessionId) await world.db.orm.em.fork().execute(`update card_session set expires_at = now() - interval '1 second' where id = ?`, [sessionUuid(sessionId)]);
}

/** Runs a card session until it completes (a session that ended otherwise is started again). Returns the completed session's id, or null when `isSettled` says another one did the work. */
async function runSession(token: string, reader: TestReader, chip: VirtualCpuCard, input: Record<string, unknown>, isSettled: () => Promise<boolean>): Promise<string | null> {
  const until = Date.now() + OPERATION_DEADLINE_MS;
  for (;;) {
    let sessionId: string | undefined;
    try {
      const opened = await relay(token).request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: { code: string; message: string }[] } }>(OPEN, { input: { reader: reader.id, ...input } });
      if (!opened.openCardSession.session) {
        // Already paid (by a session whose answer was lost, settled since), or still held by a cut session.
        if (await isSettled()) return null;
        throw new Error(opened.openCardSession.userErrors.map((e) => e.message).join('; '));
      }
      sessionId = opened.openCardSession.session.id;
      await sessionsOf(relay(token), () => reader).agent(chip, reader).run(opened.openCardSession.session);
    } catch {
      // refused (e.g. a re-sent message the dead API had handled): the session says how it ended
    }
    if (sessionId) {
      // How it ended (the reader's last answer may have been lost with the API): as the database has it.
      const [{ state }] = await world.db.orm.em.fork().execute<{ state: string }[]>(`select state from card_session where id = ?`, [sessionUuid(sessionId)]);
      if (state === 'COMPLETED') return sessionId;
      await endSession(sessionId);
    }
    if (await isSettled()) return null;
    if (Date.now() > until) throw new Error(`a card session did not complete: ${JSON.stringify(input)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function counterLoad(card: Card) {
  const id = await runSession(issuerToken, counter, card.chip, { operation: 'LOAD', amount: 2_000 }, async () => false);
  if (id) seen.loads.push({ sessionId: id });
}

async function cardPayment(card: Card, worker: number, n: number) {
  const key = randomUUID();
  const orderReference = `chaos-${worker}-${n}`;
  const amount = 500 + ((worker * 37 + n * 11) % 300);
  const made = (await persist(merchantToken, CREATE_PAYMENT, { input: { amount, currency: 'CNY', orderReference, idempotencyKey: key } })).createPayment;
  expect(made.userErrors).toEqual([]);
  const record = { key, id: made.payment.id as string, orderReference, amount, succeeded: false };
  seen.payments.push(record);
  const status = async () => (await persist(merchantToken, PAYMENT, { id: record.id })).payment.status as string;
  await runSession(appToken, home, card.chip, { operation: 'PURCHASE', payment: record.id }, async () => (await status()) === 'SUCCEEDED');
  record.succeeded = (await status()) === 'SUCCEEDED';
}

/** A refund of 100 of one of the worker's paid payments (at most three each); false when there is none to refund. */
async function refund(worker: number): Promise<boolean> {
  const payment = seen.payments.find((p) => p.succeeded && p.orderReference.startsWith(`chaos-${worker}-`) && seen.refunds.filter((r) => r.paymentId === p.id).length < 3);
  if (!payment) return false;
  const key = randomUUID();
  const made = (await persist(merchantToken, REFUND_PAYMENT, { input: { payment: payment.id, amount: 100, idempotencyKey: key } })).refundPayment;
  expect(made.userErrors).toEqual([]);
  seen.refunds.push({ key, paymentId: payment.id, refundId: made.refund.id });
  return true;
}

async function newBill(amount: number): Promise<string> {
  const id = randomUUID();
  await world.db.orm.em.fork().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, 'CNY', ?, '2026-12', ?, '2099-12-31', '{"kind":"NONE"}', false, ?, 'PUBLISHED')`,
    [id, waterId, `CH-${id.slice(0, 8)}`, amount, `ref-${id}`],
  );
  return toGlobalId('Bill', id);
}

async function billByCard(card: Card) {
  const bill = await newBill(600);
  const key = randomUUID();
  const made = (await persist(appToken, PAY_BILL, { input: { bill, idempotencyKey: key } })).payBill;
  expect(made.userErrors).toEqual([]);
  seen.billPayments.push({ key, id: made.billPayment.id, bill, amount: 600 });
  const status = async () => (await persist(appToken, BILL_PAYMENT, { id: made.billPayment.id })).billPayment.status as string;
  await runSession(appToken, home, card.chip, { operation: 'PURCHASE', billPayment: made.billPayment.id }, async () => (await status()) === 'SUCCEEDED');
}

async function topUpAndPayBill(card: Card) {
  const key = randomUUID();
  const made = (await persist(appToken, CREATE_TOP_UP, { input: { card: card.id, amount: 1_000, idempotencyKey: key, paymentMethod: 'pm_card_visa' } })).createTopUp;
  expect(made).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
  seen.topUps.push({ key, id: made.topUp.id });
  const bill = await newBill(1_000);
  const payKey = randomUUID();
  const paid = (await persist(appToken, PAY_BILL, { input: { bill, fromTopUp: made.topUp.id, idempotencyKey: payKey } })).payBill;
  expect(paid).toMatchObject({ billPayment: { status: 'SUCCEEDED' }, userErrors: [] });
  seen.billPayments.push({ key: payKey, id: paid.billPayment.id, bill, amount: 1_000 });
}

async function topUp(card: Card) {
  const key = randomUUID();
  const made = (await persist(appToken, CREATE_TOP_UP, { input: { card: card.id, amount: 500, idempotencyKey: key, paymentMethod: 'pm_card_visa' } })).createTopUp;
  expect(made).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
  seen.topUps.push({ key, id: made.topUp.id });
}

/** A fixed mix per worker: card-present operations (slow: certificate chains, signatures) are a third of it. */
async function worker(index: number, card: Card) {
  for (let n = 0; n < OPERATIONS_PER_WORKER; n++) {
    const pick = (index + n * 7) % 10;
    if (pick === 0) await counterLoad(card);
    else if (pick <= 2) await cardPayment(card, index, n);
    else if (pick <= 4) (await refund(index)) || (await topUp(card));
    else if (pick === 5) await billByCard(card);
    else if (pick <= 7) await topUpAndPayBill(card);
    else await topUp(card);
    done++;
  }
}

it(
  'a few hundred money operations through kill -9 and restarts: the ledger holds, each success exists once, each stored answer is its effect, each chip equals its shadow',
  async () => {
    // Each worker has a card of its own (a chip is in one reader at a time), loaded at the counter first.
    const cards: Card[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
      const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623177800000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
      const card = { chip, id: toGlobalId('Card', row.id), uuid: row.id };
      await counterLoad(card);
      await counterLoad(card);
      cards.push(card);
    }

    // The killer: kill -9 at random moments spread over the run, once each past a random share of the operations.
    const total = WORKERS * OPERATIONS_PER_WORKER;
    const killAt = Array.from({ length: FORCED_KILLS }, (_, i) => Math.floor(total * ((i + 0.2 + Math.random() * 0.6) / (FORCED_KILLS + 1))));
    let running = true;
    const killer = (async () => {
      while (running && killAt.length) {
        if (done >= killAt[0]!) {
          killAt.shift();
          await api.ready.catch(() => {});
          await new Promise((r) => setTimeout(r, Math.random() * 300));
          api.kill();
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await Promise.all(cards.map((card, i) => worker(i, card)));
    running = false;
    await killer;
    await api.ready;

    if (process.env.CHAOS_REPORT) console.info(JSON.stringify({ operations: done, conflicts, starts: api.starts, forcedKills: api.forcedKills, selfKills: api.selfKills, seen: Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.length])) }));
    expect(api.forcedKills).toBeGreaterThanOrEqual(FORCED_KILLS);
    expect(api.selfKills).toBeGreaterThanOrEqual(SELF_KILLS); // inside the commit-to-answer window
    expect(api.forcedKills + api.selfKills).toBeGreaterThanOrEqual(3);
    // A retry after a restart was answered as soon as the API was back: never a 409 for the dead process's claim (but for the resumable top-ups').
    expect(conflicts).toBe(0);
    const em = world.db.orm.em.fork();

    // 1. The ledger holds.
    expect(await checkLedger(em)).toEqual([]);

    // 2. Every success a client saw exists exactly once.
    for (const p of seen.payments) {
      const [row] = await em.execute<{ n: number; id: string }[]>(`select count(*)::int as n, min(id::text) as id from payment where order_reference = ?`, [p.orderReference]);
      expect(row, p.orderReference).toMatchObject({ n: 1, id: fromGlobalId(p.id, 'Payment').id });
    }
    for (const r of seen.refunds) {
      const [row] = await em.execute<{ n: number }[]>(`select count(*)::int as n from payment_refund where idempotency_key = ?`, [r.key]);
      expect(row!.n, r.key).toBe(1);
    }
    for (const b of seen.billPayments) {
      const rows = await em.execute<{ id: string; status: string }[]>(`select id, status from bill_payment where bill_id = ?`, [fromGlobalId(b.bill, 'Bill').id]);
      expect(rows, b.bill).toEqual([{ id: fromGlobalId(b.id, 'BillPayment').id, status: 'SUCCEEDED' }]);
      const [entries] = await em.execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key = ?`, [`bill-payment:${rows[0]!.id}`]);
      expect(entries!.n).toBe(1);
    }
    for (const t of seen.topUps) {
      const [row] = await em.execute<{ n: number }[]>(`select count(*)::int as n from top_up where idempotency_key like ?`, [`%${t.key}`]);
      expect(row!.n, t.key).toBe(1);
    }
    for (const l of seen.loads) {
      const [row] = await em.execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key = ?`, [`card-session:${sessionUuid(l.sessionId)}`]);
      expect(row!.n).toBe(1);
    }
    const succeeded = seen.payments.filter((p) => p.succeeded).length;
    expect(succeeded).toBeGreaterThan(0);

    // 3. Every key's stored answer is its effect: no stored refusal (every request here was valid), and the object it names is there as answered.
    const records = await em.execute<{ operation: string; key: string; response: Parameters<typeof decodePayload>[0] }[]>(`select operation, key, response from idempotency_record where state = 'DONE'`);
    expect(records.length).toBeGreaterThan(seen.payments.length);
    for (const r of records) {
      const answer = decodePayload(r.response) as Record<string, any>;
      expect(answer.userErrors, `${r.operation} ${r.key}`).toEqual([]);
      const object = answer.payment ?? answer.billPayment ?? answer.topUp;
      const table = answer.billPayment ? 'bill_payment' : answer.topUp ? 'top_up' : 'payment';
      const [row] = await em.execute<{ amount: string }[]>(`select amount::text as amount from ${table} where id = ?`, [object.uuid ?? fromGlobalId(object.id, table === 'bill_payment' ? 'BillPayment' : table === 'top_up' ? 'TopUp' : 'Payment').id]);
      expect(row, `${r.operation} ${r.key}`).toBeDefined();
      expect(BigInt(row!.amount)).toBe(BigInt(object.amount.amount));
      if (answer.refund) expect((await em.execute(`select 1 from payment_refund where id = ?`, [sessionUuid(answer.refund.id)])).length).toBe(1);
    }

    // 4. Every chip holds what its shadow says (after a balance read, the card's next tap, which books what a card proved).
    for (const card of cards) {
      await runSession(appToken, home, card.chip, { operation: 'BALANCE' }, async () => false);
      expect(BigInt(await balanceOnCard(card.chip)), card.chip.asn).toBe(await purseBalance(world, card.chip.asn));
    }
  },
  600_000,
);
