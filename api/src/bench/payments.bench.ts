/**
 * Merchant payment benchmark: `npm run bench:payments -- [--clients N] [--seconds S] [--merchants M] [--warmup S] [--workers W]`.
 *
 * Phase "ours" runs N client loops for S seconds against the real HTTP app on 127.0.0.1: each loop
 * is a merchant (round-robin over M) with its own virtual CPU card, and one payment is the whole
 * card-present flow (DESIGN.md §7): createPayment over GraphQL, openCardSession(PURCHASE, payment)
 * on the merchant's certified till, then the SDK's ReaderAgent with the card until COMPLETED (three
 * signed messages). Phase "bare" does the same business effect as hand-written SQL on the bare `pg`
 * driver, one transaction per payment: the ceiling, with no HTTP, GraphQL, crypto or card. Same
 * clients, same duration, same database. Phase "ours ×W" (W > 1) runs ours against the API as
 * `npm start` runs it with WEB_CONCURRENCY=W (api/dist/main.js: a primary and W worker processes)
 * on the same database. Prints throughput, latency and CPU time per payment (node's
 * main thread, the readers' worker, the embedded PostgreSQL) for both, the ratio ours/bare, the
 * latency of each step of ours, the SQL statements (ours in this process) and writing commits per
 * payment, one JSON line, then checks the ledger's invariants, that every
 * payment counted is SUCCEEDED and booked once, and that every chip agrees with its ledger shadow
 * (exit 1 on a problem).
 *
 * The merchants, readers and cards run in a worker thread: a reader's RSA work and a card's 3DES
 * happen on their own devices in the field, so they must not queue on the API's event loop (they
 * still share the machine's cores; their CPU time is reported apart).
 *
 * Uses DATABASE_URL's server (in a scratch database it drops afterwards) or, without it, an
 * embedded PostgreSQL; both in a temp folder (root CA file, data folder) removed afterwards.
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import forge from 'node-forge';
import pg from 'pg';
import { createClient } from '../auth/clients.service.js';
import { issueCard as registerCard, withLuhnCheckDigit } from '../cards/cards.service.js';
import { loadConfig } from '../config/config.js';
import { freePort } from '../db/embedded-postgres.js';
import { migrate, openOrm } from '../db/orm.js';
import { toGlobalId } from '../graphql/global-id.js';
import { cardSessionEngine } from '../card-sessions.js';
import { createHttpApp } from '../http/app.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { createWorkingCa } from '../pki/pki.service.js';
import { initRootCa } from '../pki/root-ca.js';
import { storeMasterKeys } from '../readers/key-store.js';
import { registerReader } from '../readers/readers.service.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import {
  benchCommand,
  type CpuMeter,
  type DatabaseWork,
  describeError,
  environmentLine,
  fmt,
  interrupted,
  type LoopResult,
  type Operation,
  type PhaseOptions,
  positiveInt,
  postgresCpuOf,
  printFirstErrors,
  printRatio,
  printTable,
  processTreeCpu,
  statementTap,
  runBench,
  runLoops,
  scratchDatabase,
  driverCounts,
  threadCpuMs,
  withDatabaseWork,
} from './harness.js';
import { cardPurseAccount, cardPurseCode, merchantPayableAccount } from '../ledger/accounts.js';

const CURRENCY = 'CNY';
/** The code the bench city's cards carry (its card company's keys are found by it). */
const CARD_CITY_CODE = '5810';
/** On each chip and its ledger shadow: far more than both phases take at 1.00–50.00 a payment. */
const CARD_BALANCE = 50_000_000;
const MERCHANT_SCOPES = ['payments:write', 'payments:read'];

interface Options extends PhaseOptions {
  merchants: number;
  /** Also run ours against W API worker processes (WEB_CONCURRENCY=W); 1: only the API in this process. */
  workers: number;
  /** Print every SQL statement of the profiled payment, by request. */
  statements: boolean;
}

/** One merchant at its till, as the worker drives it. */
interface MerchantSeat {
  merchantId: string;
  clientId: string;
  clientSecret: string;
  /** The till reader: its global id, its keys (city: messages; national: the hello; encryption: sealed commands), its certificates and the root it pins. */
  readerId: string;
  deviceKeyPem: string;
  nationalKeyPem: string;
  encryptionKeyPem: string;
  nationalPem: string;
  cityPem: string;
  encryptionPem: string;
  rootPem: string;
}

/** What the worker needs to play the merchants, readers and cards. */
interface FleetData {
  baseUrl: string;
  merchants: MerchantSeat[];
  /** One card per client loop, as VirtualCpuCard.toJSON() states. */
  cards: CardState[];
}

type CardState = { asn: string; purses: { EP: { balance: number } } };

/** A payment as a client loop makes it: a unique key (order reference and idempotency key) and an amount. */
interface PaymentOrder {
  key: string;
  amount: number;
}

/** Makes one payment; fills in how long each of its steps took, by step name. */
type Payer = (order: PaymentOrder, steps: Record<string, number>) => Promise<void>;

interface PhaseResult extends Omit<LoopResult, 'loopCpuMsPerOp'>, DatabaseWork {
  /** CPU time of the API per payment (ms): this thread (the HTTP app) in ours, the API processes in ours ×W, the pg client code in bare. */
  nodeCpuMsPerPayment: number;
  /** Ours: CPU time of the worker (merchants' SDK clients, readers, cards) per payment (ms). */
  readerCpuMsPerPayment?: number;
  /** CPU time of the embedded PostgreSQL (all its processes) per payment (ms); not known with DATABASE_URL. */
  postgresCpuMsPerPayment?: number;
}

type ToWorker = { type: 'phase'; name: string; ms: number; baseUrl: string } | { type: 'cards' } | { type: 'stop' };
type FromWorker = { type: 'ready' } | { type: 'phase'; result: LoopResult } | { type: 'cards'; states: CardState[] } | { type: 'failed'; error: string };

/**
 * The parts of the SDK (sdk-js/src/index.ts) the bench uses. It is loaded when the bench runs, not
 * imported: the root build compiles api/ before sdk-js/, so on a clean checkout api/'s compile
 * cannot see sdk-js's declarations yet; by the time the bench runs, both are built.
 */
interface Sdk {
  OneCardClient: new (opts: { baseUrl: string; clientId: string; clientSecret: string; scope: string }) => GraphQLClient;
  ReaderAgent: new (opts: {
    deviceKey: string;
    nationalKey: string;
    encryptionKey: string;
    nationalCertificatePem: string;
    cityCertificatePem: string;
    encryptionCertificatePem: string;
    trustedCertificatesPem: string[];
    transport: unknown;
    send: (m: SignedMessage) => Promise<SessionReply>;
  }) => {
    run(session: { id: string; challenge: string }): Promise<{ state: string; refusal?: string | null }>;
  };
  VirtualCpuCard: {
    issue(opts: { asn: string; cityCode: string; masterKeys: { load: string; purchase: string; tac: string }; keyVersion: number; algorithm: '3DES'; balance: number }): VirtualCard;
    fromJSON(state: CardState): VirtualCard;
  };
  VirtualCardTransport: new (card: VirtualCard) => unknown;
  CARD_SESSION_MESSAGE: string;
}
interface GraphQLClient {
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
}
interface VirtualCard {
  readonly asn: string;
  toJSON(): CardState;
}
interface SignedMessage {
  session: string;
  seq: number;
  body: string;
  signature: string;
}
interface SessionReply {
  session: { id: string; state: string; challenge: string; nextSeq: number; refusal?: string | null } | null;
  commands: unknown[];
  userErrors: { code: string; message: string }[];
}

const SDK_MODULE = '@onecard/sdk';
const loadSdk = async () => (await import(SDK_MODULE)) as Sdk;

const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const OPEN_CARD_SESSION = `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`;
/** The steps of one payment in ours, in order; the card session's messages are named by their sequence number. */
const MESSAGE_STEPS = ['hello', 'purchaseInit', 'debit'];

function parseOptions(argv: string[]): Options {
  return benchCommand('payments.bench', 'Throughput and latency of card-present merchant payments through the API against the minimal hand-written SQL on the bare pg driver', {
    clients: 16,
    clientsHelp: 'concurrent client loops (one card each) per phase',
  })
    .option('--merchants <m>', 'merchants (each with its OAuth client and till reader) the loops take turns at', positiveInt, 8)
    .option('--workers <w>', 'also run ours against W API worker processes (WEB_CONCURRENCY=W, api/dist/main.js); 1: not', positiveInt, 2)
    .option('--statements', 'print every SQL statement of one profiled payment, by request', false)
    .parse(argv)
    .opts<Options>();
}

/** A payment as loop c makes it: 1.00 to 50.00 (a coffee to a meal), a unique key. */
function payments(name: string, payerFor: (c: number) => Payer) {
  return (c: number): Operation => {
    const pay = payerFor(c);
    return (n, steps) => pay({ key: `${name}.${c}.${n}`, amount: 100 + Math.floor(Math.random() * 4901) }, steps);
  };
}

// ——— phase "ours": the worker plays the merchants, their tills and the cards ———

/**
 * One client loop of ours: its merchant's API client (shared by the loops at that merchant, as one
 * merchant backend would share its token), the till's reader agent, and the loop's own card.
 */
function oursPayer(sdk: Sdk, seat: MerchantSeat, api: GraphQLClient, card: VirtualCard): Payer {
  let steps: Record<string, number> = {};
  const send = async (message: SignedMessage) => {
    const t0 = process.hrtime.bigint();
    const reply = (await api.request<{ cardSessionMessage: SessionReply }>(sdk.CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage;
    steps[MESSAGE_STEPS[message.seq] ?? `message${message.seq}`] = Number(process.hrtime.bigint() - t0) / 1e6;
    return reply;
  };
  const reader = new sdk.ReaderAgent({
    deviceKey: seat.deviceKeyPem,
    nationalKey: seat.nationalKeyPem,
    encryptionKey: seat.encryptionKeyPem,
    nationalCertificatePem: seat.nationalPem,
    cityCertificatePem: seat.cityPem,
    encryptionCertificatePem: seat.encryptionPem,
    trustedCertificatesPem: [seat.rootPem],
    transport: new sdk.VirtualCardTransport(card),
    send,
  });
  return async (order, timings) => {
    steps = timings;
    let t0 = process.hrtime.bigint();
    const lap = () => {
      const t = process.hrtime.bigint();
      const took = Number(t - t0) / 1e6;
      t0 = t;
      return took;
    };
    const made = await api.request<{ createPayment: { payment: { id: string } | null; userErrors: { code: string; message: string }[] } }>(CREATE_PAYMENT, {
      input: { amount: order.amount, currency: CURRENCY, orderReference: order.key, idempotencyKey: order.key },
    });
    if (!made.createPayment.payment) throw new Error(`createPayment refused: ${made.createPayment.userErrors.map((e) => `${e.code} ${e.message}`).join('; ')}`);
    steps.createPayment = lap();
    const opened = await api.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: { code: string; message: string }[] } }>(OPEN_CARD_SESSION, {
      input: { reader: seat.readerId, operation: 'PURCHASE', payment: made.createPayment.payment.id },
    });
    if (!opened.openCardSession.session) throw new Error(`openCardSession refused: ${opened.openCardSession.userErrors.map((e) => `${e.code} ${e.message}`).join('; ')}`);
    steps.openCardSession = lap();
    const done = await reader.run(opened.openCardSession.session);
    if (done.state !== 'COMPLETED') throw new Error(`card session ${done.state}${done.refusal ? `: ${done.refusal}` : ''}`);
  };
}

/** The worker: answers the main thread's requests to run a phase (against an API's base URL) and to hand back its cards. */
async function readerWorker(): Promise<void> {
  const port = parentPort!;
  const data = workerData as FleetData;
  let run: (name: string, ms: number, baseUrl: string) => Promise<LoopResult>;
  let cards: VirtualCard[];
  try {
    const sdk = await loadSdk();
    // One API client per merchant per API (its tokens are that API's); each gets its token before the first payment.
    const clients = new Map<string, GraphQLClient[]>();
    const apisAt = async (baseUrl: string) => {
      if (!clients.has(baseUrl)) {
        const apis = data.merchants.map((m) => new sdk.OneCardClient({ baseUrl, clientId: m.clientId, clientSecret: m.clientSecret, scope: MERCHANT_SCOPES.join(' ') }));
        await Promise.all(apis.map((api) => api.request('query { viewer { kind } }')));
        clients.set(baseUrl, apis);
      }
      return clients.get(baseUrl)!;
    };
    await apisAt(data.baseUrl);
    cards = data.cards.map((state) => sdk.VirtualCpuCard.fromJSON(state));
    const seatOf = (c: number) => c % data.merchants.length;
    run = async (name, ms, baseUrl) => {
      const apis = await apisAt(baseUrl);
      return runLoops(cards.length, ms, payments(name, (c) => oursPayer(sdk, data.merchants[seatOf(c)]!, apis[seatOf(c)]!, cards[c]!)));
    };
  } catch (err) {
    port.postMessage({ type: 'failed', error: describeError(err) } satisfies FromWorker);
    return;
  }
  port.on('message', async (message: ToWorker) => {
    if (message.type === 'stop') {
      interrupted.now = true;
      return;
    }
    try {
      if (message.type === 'phase') port.postMessage({ type: 'phase', result: await run(message.name, message.ms, message.baseUrl) } satisfies FromWorker);
      else port.postMessage({ type: 'cards', states: cards.map((c) => c.toJSON()) } satisfies FromWorker);
    } catch (err) {
      port.postMessage({ type: 'failed', error: describeError(err) } satisfies FromWorker);
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

/** Sends the worker a request (or none: waits for `ready`) and resolves with its answer. */
function ask<T extends FromWorker['type']>(worker: Worker, message: ToWorker | null, answer: T): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const off = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (m: FromWorker) => {
      off();
      if (m.type === answer) resolve(m as Extract<FromWorker, { type: T }>);
      else reject(new Error(m.type === 'failed' ? `reader worker: ${m.error}` : `reader worker answered ${m.type}, expected ${answer}`));
    };
    const onError = (err: Error) => {
      off();
      reject(err);
    };
    const onExit = (code: number) => {
      off();
      reject(new Error(`the reader worker exited with code ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    if (message) worker.postMessage(message);
  });
}

/**
 * A phase of ours run by the worker against the API at `baseUrl`, with the API's CPU (`apiCpu`:
 * this thread, or the API processes) and PostgreSQL's measured around it; statements are counted
 * when the API is this process.
 */
async function oursPhase(worker: Worker, meters: { url: string; apiCpu: CpuMeter; apiInProcess: boolean; postgresCpu?: CpuMeter }, baseUrl: string, name: string, ms: number): Promise<PhaseResult> {
  const pg0 = await meters.postgresCpu?.();
  const cpu0 = await meters.apiCpu();
  const result = await withDatabaseWork(meters.url, meters.apiInProcess, async () => {
    const { result: r } = await ask(worker, { type: 'phase', name, ms, baseUrl }, 'phase');
    return r;
  });
  const apiCpuMs = (await meters.apiCpu()) - cpu0;
  const { loopCpuMsPerOp, ...rest } = result;
  return {
    ...rest,
    nodeCpuMsPerPayment: apiCpuMs / result.done,
    readerCpuMsPerPayment: loopCpuMsPerOp,
    ...(meters.postgresCpu ? { postgresCpuMsPerPayment: ((await meters.postgresCpu()) - pg0!) / result.done } : {}),
  };
}

/**
 * The API as `npm start` runs it with WEB_CONCURRENCY=`workers` (api/dist/main.js: the primary and
 * its workers), on the bench's database and key-encryption key, on a free port; resolves once
 * /readyz answers. Stopped by the cleanups (SIGTERM to the primary, which stops its workers).
 */
async function startApiProcesses(opts: { workers: number; databaseUrl: string; kek: Buffer; dataDir: string; cleanups: { unshift(c: { what: string; run: () => Promise<unknown> }): void } }): Promise<{ baseUrl: string; child: ChildProcess }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      WEB_CONCURRENCY: String(opts.workers),
      DATABASE_URL: opts.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: baseUrl,
      ONECARD_KEY_ENCRYPTION_KEY: opts.kek.toString('base64url'),
      ONECARD_DATA_DIR: opts.dataDir,
      ONECARD_DEMO: 'false',
      GATEWAY_SANDBOX_PORT: '0',
      LOG_LEVEL: 'warn',
      GRAPHQL_COST_BUCKET: '100000000',
      GRAPHQL_COST_RESTORE_RATE: '100000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  opts.cleanups.unshift({
    what: `stop the API processes (${opts.workers} workers)`,
    run: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  });
  for (let waited = 0; ; waited += 200) {
    if (child.exitCode !== null) throw new Error(`the API processes exited at start with code ${child.exitCode}`);
    if (waited > 120_000) throw new Error('the API processes did not answer /readyz within 2 minutes');
    const ready = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { baseUrl, child };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Statements and writing commits of one request of a payment, as the driver counted them. */
interface RequestWork {
  statements: number;
  writingCommits: number;
  texts: string[];
}

/**
 * The database work of each request of one card-present payment (createPayment, openCardSession,
 * each card-session message), one payment at a time against the API in this process, so that
 * everything the driver sees between a request and its answer is that request's. The first payment
 * is cold (caches empty); the warm figure is the least of the next `runs` (a stray statement of a
 * background connection, the change-notice heartbeat, can fall in one of them). The steps'
 * names are MESSAGE_STEPS'.
 */
async function profileRequests(sdk: Sdk, seat: MerchantSeat, card: VirtualCard, baseUrl: string, runs = 3): Promise<{ cold: Record<string, RequestWork>; warm: Record<string, RequestWork> }> {
  const api = new sdk.OneCardClient({ baseUrl, clientId: seat.clientId, clientSecret: seat.clientSecret, scope: MERCHANT_SCOPES.join(' ') });
  await api.request('query { viewer { kind } }');
  const settle = () => new Promise((r) => setTimeout(r, 20));
  const measured = async <T>(work: Record<string, RequestWork>, name: string, request: () => Promise<T>): Promise<T> => {
    await settle();
    const texts: string[] = [];
    statementTap.sink = (text) => texts.push(text);
    const before = driverCounts();
    const answer = await request();
    await settle();
    const after = driverCounts();
    statementTap.sink = undefined;
    work[name] = { statements: after.statements - before.statements, writingCommits: after.writingCommits - before.writingCommits, texts };
    return answer;
  };
  const payOnce = async (key: string): Promise<Record<string, RequestWork>> => {
    const work: Record<string, RequestWork> = {};
    const send = (message: SignedMessage) =>
      measured(work, MESSAGE_STEPS[message.seq] ?? `message${message.seq}`, async () => (await api.request<{ cardSessionMessage: SessionReply }>(sdk.CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage);
    const reader = new sdk.ReaderAgent({
      deviceKey: seat.deviceKeyPem,
      nationalKey: seat.nationalKeyPem,
      encryptionKey: seat.encryptionKeyPem,
      nationalCertificatePem: seat.nationalPem,
      cityCertificatePem: seat.cityPem,
      encryptionCertificatePem: seat.encryptionPem,
      trustedCertificatesPem: [seat.rootPem],
      transport: new sdk.VirtualCardTransport(card),
      send,
    });
    const made = await measured(work, 'createPayment', () =>
      api.request<{ createPayment: { payment: { id: string } | null } }>(CREATE_PAYMENT, { input: { amount: 100, currency: CURRENCY, orderReference: key, idempotencyKey: key } }),
    );
    const opened = await measured(work, 'openCardSession', () =>
      api.request<{ openCardSession: { session: { id: string; challenge: string } | null } }>(OPEN_CARD_SESSION, { input: { reader: seat.readerId, operation: 'PURCHASE', payment: made.createPayment.payment!.id } }),
    );
    const done = await reader.run(opened.openCardSession.session!);
    if (done.state !== 'COMPLETED') throw new Error(`profiled payment: card session ${done.state}${done.refusal ? `: ${done.refusal}` : ''}`);
    return work;
  };
  const cold = await payOnce('profile.cold');
  let warm: Record<string, RequestWork> = {};
  for (let i = 0; i < runs; i++) {
    const run = await payOnce(`profile.warm.${i}`);
    for (const [name, w] of Object.entries(run)) if (!warm[name] || w.statements < warm[name]!.statements) warm[name] = w;
  }
  return { cold, warm };
}

/** The profile as a table: statements and writing commits per request, cold and warm, and the payment's total. */
function printProfile(profile: { cold: Record<string, RequestWork>; warm: Record<string, RequestWork> }, withTexts: boolean): void {
  const names = Object.keys(profile.warm);
  const total = (w: Record<string, RequestWork>, k: 'statements' | 'writingCommits') => Object.values(w).reduce((sum, r) => sum + r[k], 0);
  printTable([
    ['request (one payment, alone)', 'statements cold', 'writing commits cold', 'statements warm', 'writing commits warm'],
    ...names.map((n) => [n, String(profile.cold[n]?.statements ?? '-'), String(profile.cold[n]?.writingCommits ?? '-'), String(profile.warm[n]!.statements), String(profile.warm[n]!.writingCommits)]),
    ['payment', String(total(profile.cold, 'statements')), String(total(profile.cold, 'writingCommits')), String(total(profile.warm, 'statements')), String(total(profile.warm, 'writingCommits'))],
  ]);
  if (!withTexts) return;
  for (const n of names) {
    console.log(`— ${n} (warm): ${profile.warm[n]!.statements} statements`);
    for (const text of profile.warm[n]!.texts) console.log(`    ${text.replace(/\s+/g, ' ').slice(0, 160)}`);
  }
}

// ——— phase "bare": the same business effect in hand-written SQL ———

/** What a bare client loop writes for: its merchant, the card it charges, and their ledger accounts. */
interface BareSeat {
  merchantId: string;
  clientId: string;
  payableAccount: string;
  cardId: string;
  asn: string;
  purseAccount: string;
}

/**
 * The minimal SQL of one card payment, in one transaction: the payment row (REQUIRES_CARD), its
 * claim (PROCESSING), the ledger entry card purse → merchant payable as ledger.bench.ts's bare
 * phase writes it (entry insert, the two balance updates in account-id order, one posting insert),
 * the payment SUCCEEDED, and its outbox event.
 */
function bareClient(pool: pg.Pool, seat: BareSeat): Payer {
  return async (order) => {
    const conn = await pool.connect();
    let broken = false;
    try {
      await conn.query('begin');
      const id = randomUUID();
      await conn.query(
        `insert into payment (id, merchant_id, created_by_client, amount, currency, order_reference, metadata, status, expires_at)
         values ($1, $2, $3, $4, $5, $6, '{}', 'REQUIRES_CARD', now() + interval '15 minutes')`,
        [id, seat.merchantId, seat.clientId, order.amount, CURRENCY, order.key],
      );
      await conn.query(`update payment set status = 'PROCESSING', card_claim = $2, updated_at = now() where id = $1`, [id, JSON.stringify({ cardAsn: seat.asn })]);
      const entryId = randomUUID();
      // The key and the entry in one statement, as post() writes them.
      const entry = await conn.query<{ posted_at: string }>(
        `with k as (insert into journal_entry_key (entry_key, entry_id, reverses_id) values ($2, $1, $4)
                    on conflict (entry_key) do nothing returning entry_key, entry_id, reverses_id, posted_at)
         insert into journal_entry (id, entry_key, description, reverses_id, metadata, posted_at)
         select k.entry_id, k.entry_key, $3, k.reverses_id, $5, k.posted_at from k
         returning posted_at::text as posted_at`,
        [entryId, `payment:${id}`, `card payment of order ${order.key}`, null, JSON.stringify({ kind: 'PAYMENT', payment: id, merchant: seat.merchantId })],
      );
      if (entry.rowCount !== 1) throw new Error(`payment ${id} was booked before`);
      // Line 0 debits the card's purse, line 1 credits the merchant's payable; both are liabilities.
      const amount = BigInt(order.amount);
      const lines = [
        { account: seat.purseAccount, amount, delta: -amount, after: 0n },
        { account: seat.payableAccount, amount: -amount, delta: amount, after: 0n },
      ];
      for (const line of [...lines].sort((a, b) => (a.account < b.account ? -1 : 1))) {
        const r = await conn.query<{ balance: string }>(`update ledger_account set balance = balance + $1 where id = $2 returning balance`, [line.delta.toString(), line.account]);
        line.after = BigInt(r.rows[0]!.balance);
      }
      await conn.query(
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
         values ($1, 0, $2, $3, $4, $5, $9), ($1, 1, $6, $7, $4, $8, $9)`,
        [entryId, lines[0]!.account, lines[0]!.amount.toString(), CURRENCY, lines[0]!.after.toString(), lines[1]!.account, lines[1]!.amount.toString(), lines[1]!.after.toString(), entry.rows[0]!.posted_at],
      );
      await conn.query(`update payment set status = 'SUCCEEDED', succeeded_at = now(), updated_at = now(), card_id = $2, card_asn = $3 where id = $1`, [id, seat.cardId, seat.asn]);
      const globalId = toGlobalId('Payment', id);
      await conn.query(`insert into event_outbox (type, owner_kind, owner_id, subject_id, payload) values ('payment.succeeded', 'MERCHANT', $1, $2, $3)`, [
        seat.merchantId,
        globalId,
        JSON.stringify({ payment: globalId, status: 'SUCCEEDED', amount: order.amount, currency: CURRENCY, orderReference: order.key, metadata: {}, refundedAmount: 0 }),
      ]);
      await conn.query('commit');
    } catch (err) {
      await conn.query('rollback').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      conn.release(broken);
    }
  };
}

async function barePhase(pool: pg.Pool, meters: { url: string; postgresCpu?: CpuMeter }, seats: BareSeat[], name: string, ms: number): Promise<PhaseResult> {
  const pg0 = await meters.postgresCpu?.();
  const { loopCpuMsPerOp, ...rest } = await withDatabaseWork(meters.url, true, () => runLoops(seats.length, ms, payments(name, (c) => bareClient(pool, seats[c]!))));
  return { ...rest, nodeCpuMsPerPayment: loopCpuMsPerOp, ...(meters.postgresCpu ? { postgresCpuMsPerPayment: ((await meters.postgresCpu()) - pg0!) / rest.done } : {}) };
}

// ——— set-up ———

function csrFor(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

const day = (d: Date) => d.toISOString().slice(0, 10);

async function main(): Promise<void> {
  await runBench('payments', async ({ log, cleanups, onInterrupt }) => {
    const opts = parseOptions(process.argv);
    let worker: Worker | undefined;
    onInterrupt(() => worker?.postMessage({ type: 'stop' } satisfies ToWorker));
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    const { url, where, embeddedDataDir } = await scratchDatabase(log, cleanups);
    const postgresCpu = postgresCpuOf(embeddedDataDir);

    // The API's pool as main.ts opens it (20), or larger: a session message may hold a second connection (the key store's).
    const orm = await openOrm(url, { poolMax: Math.max(20, 2 * opts.clients + 2) });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    const pool = new pg.Pool({ connectionString: url, max: opts.clients });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

    // The real HTTP app on 127.0.0.1: listen first, as the OAuth issuer is built on the real URL.
    const kek = randomBytes(32);
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.unshift({
      what: 'close the HTTP server',
      run: () => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      },
    });
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The bench measures the payment path, not the per-client cost throttle: 16 loops on 8 merchants'
    // clients would empty the default buckets and wait out Retry-After (docs/security.md).
    const config = loadConfig({ NODE_ENV: 'development', PUBLIC_URL: baseUrl, ONECARD_KEY_ENCRYPTION_KEY: kek.toString('base64url'), ONECARD_DATA_DIR: path.join(tmp, 'onecard'), LOG_LEVEL: 'warn', GRAPHQL_COST_BUCKET: '100000000', GRAPHQL_COST_RESTORE_RATE: '100000000' });
    const http = await createHttpApp({ config, orm, log, cardSessions: cardSessionEngine(config) });
    cleanups.unshift({ what: 'close the HTTP app', run: () => http.close() });
    server.on('request', http.app);

    // The world: a root CA with the national and the city working CA, one city whose card company
    // has 3DES card master keys, M merchants each with an OAuth client and a certified till.
    const em = orm.em.fork();
    const root = await initRootCa(path.join(tmp, 'root.json'), 'payments bench root CA');
    await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'National', publicUrl: baseUrl });
    const { city, cardCompany } = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: CURRENCY, cardCompanyName: 'Yangchengtong' });
    await em.execute(`update city set card_city_code = ? where id = ?`, [CARD_CITY_CODE, city.id]);
    await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: city.id, cityCode: 'GZ', name: 'GZ', publicUrl: baseUrl });
    const masterKeys = await storeMasterKeys(em, kek, { cardCompanyId: cardCompany.id, keyVersion: 1, algorithm: '3DES' });
    const hex = (b: Buffer) => b.toString('hex').toUpperCase();

    const merchants: (MerchantSeat & { payableAccount: string })[] = [];
    for (let i = 0; i < opts.merchants; i++) {
      const merchant = await createMerchant(em, { cityId: city.id, name: `Bench Shop ${i}` });
      const made = await createClient(em, { kind: 'MERCHANT', tenantId: merchant.id, name: `bench merchant ${i}`, scopes: MERCHANT_SCOPES });
      const [cityKey, nationalKey, encryptionKey] = [0, 1, 2].map(() => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey);
      const till = await registerReader(em, kek, {
        serial: `BENCH-TILL-${i}`,
        model: 'OC-R1',
        owner: { kind: 'MERCHANT', id: merchant.id, name: merchant.name },
        cityId: city.id,
        cityCode: 'GZ',
        nationalCsrPem: csrFor(nationalKey!),
        cityCsrPem: csrFor(cityKey!),
        encryptionCsrPem: csrFor(encryptionKey!),
        nationalAuthority: true,
        publicUrl: baseUrl,
      });
      // Opened now, as after a merchant's first payment: no phase pays for creating it.
      const payable = await merchantPayableAccount(em, merchant.id, CURRENCY);
      merchants.push({
        merchantId: merchant.id,
        clientId: made.client.client_id,
        clientSecret: made.clientSecret!,
        readerId: toGlobalId('Reader', till.reader.id),
        deviceKeyPem: cityKey!,
        nationalKeyPem: nationalKey!,
        encryptionKeyPem: encryptionKey!,
        nationalPem: till.nationalChainPem[0]!,
        cityPem: till.cityChainPem[0]!,
        encryptionPem: till.encryptionChainPem[0]!,
        rootPem: till.cityChainPem.at(-1)!,
        payableAccount: payable.id,
      });
    }

    // One registered card per client loop, issued with CARD_BALANCE on the chip; one ledger entry
    // from a bench funding account gives its purse shadow the same, or the session would refuse.
    const sdk = await loadSdk();
    const funding = await openAccount(em, { code: `bench.card-funding.${CURRENCY}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY });
    const today = new Date();
    const cards: VirtualCard[] = [];
    const seats: BareSeat[] = [];
    let profileCard: VirtualCard | undefined;
    // One more card than loops: the last pays the profiled payments, before the phases.
    for (let c = 0; c <= opts.clients; c++) {
      const chip = sdk.VirtualCpuCard.issue({
        asn: `0000BE0C${String(c).padStart(12, '0')}`,
        cityCode: CARD_CITY_CODE,
        masterKeys: { load: hex(masterKeys.LOAD), purchase: hex(masterKeys.PURCHASE), tac: hex(masterKeys.TAC) },
        keyVersion: 1,
        algorithm: '3DES',
        balance: CARD_BALANCE,
      });
      const row = await registerCard(em, cardCompany.id, {
        cardNumber: withLuhnCheckDigit(`623177${String(c).padStart(9, '0')}`),
        asn: chip.asn,
        cardType: 'CPU',
        keyVersion: 1,
        issuedOn: day(today),
        expiresOn: day(new Date(+today + 5 * 365 * 86_400_000)),
      });
      const purse = await cardPurseAccount(em, chip.asn, CURRENCY);
      await post(em, { key: `bench.fund.${chip.asn}`, description: `bench card ${chip.asn} issued with a balance`, lines: [debit(funding.id, BigInt(CARD_BALANCE)), credit(purse.id, BigInt(CARD_BALANCE))] });
      const seat = merchants[c % merchants.length]!;
      if (c === opts.clients) {
        profileCard = chip;
        continue;
      }
      cards.push(chip);
      seats.push({ merchantId: seat.merchantId, clientId: seat.clientId, payableAccount: seat.payableAccount, cardId: row.id, asn: chip.asn, purseAccount: purse.id });
    }

    const fleet: FleetData = { baseUrl, merchants: merchants.map(({ payableAccount: _, ...seat }) => seat), cards: cards.map((c) => c.toJSON()) };
    worker = new Worker(new URL(import.meta.url), { workerData: fleet });
    const started = worker;
    cleanups.unshift({ what: 'stop the reader worker', run: () => started.terminate() });
    await ask(worker, null, 'ready');

    const env = await environmentLine(url, where);
    console.log(`payments bench: ${opts.clients} clients (one card each) at ${opts.merchants} merchants, ${opts.seconds} s per phase (after ${opts.warmup} s warm-up); ${env.line}`);
    const profile = await profileRequests(sdk, merchants[0]!, profileCard!, baseUrl);
    printProfile(profile, opts.statements);
    const inProcess = { url, apiCpu: async () => threadCpuMs(), apiInProcess: true, postgresCpu };
    await oursPhase(worker, inProcess, baseUrl, 'warm.ours', opts.warmup * 1000);
    const ours = await oursPhase(worker, inProcess, baseUrl, 'ours', opts.seconds * 1000);
    // The same against W API worker processes (npm start with WEB_CONCURRENCY=W) on this database.
    const phases: [string, PhaseResult][] = [['ours', ours]];
    if (opts.workers > 1) {
      const api = await startApiProcesses({ workers: opts.workers, databaseUrl: url, kek, dataDir: path.join(tmp, 'onecard-workers'), cleanups });
      const processes = { url, apiCpu: processTreeCpu(async () => api.child.pid!) ?? (async () => NaN), apiInProcess: false, postgresCpu };
      await oursPhase(worker, processes, api.baseUrl, `warm.workers${opts.workers}`, opts.warmup * 1000);
      phases.push([`ours ×${opts.workers}`, await oursPhase(worker, processes, api.baseUrl, `workers${opts.workers}`, opts.seconds * 1000)]);
    }
    // Before bare debits the shadows: every chip holds exactly what the ledger says it holds.
    const { states } = await ask(worker, { type: 'cards' }, 'cards');
    states.push(profileCard!.toJSON());
    const problems: string[] = [];
    for (const state of states) {
      const [shadow] = await em.execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [cardPurseCode(state.asn, CURRENCY)]);
      if (BigInt(shadow!.balance) !== BigInt(state.purses.EP.balance)) problems.push(`CARD ${state.asn}: the chip holds ${state.purses.EP.balance}, its ledger shadow ${shadow!.balance}`);
    }
    const [discrepancies] = await em.execute<{ n: string }[]>(`select count(*) as n from card_balance_discrepancy`);
    if (Number(discrepancies!.n) > 0) problems.push(`DISCREPANCY: ${discrepancies!.n} card balance discrepancies recorded`);
    const bareMeters = { url, postgresCpu };
    await barePhase(pool, bareMeters, seats, 'warm.bare', opts.warmup * 1000);
    const bare = await barePhase(pool, bareMeters, seats, 'bare', opts.seconds * 1000);
    phases.push(['bare', bare]);
    if (interrupted.now) throw new Error('interrupted');

    printTable([
      ['phase', 'payments/s', 'p50 ms', 'p99 ms', 'payments', 'errors', 'cpu ms/payment: API', 'readers', 'postgres', 'statements/payment', 'writing commits/payment', 'transaction ids/payment'],
      ...phases.map(([name, r]) => [
        name,
        fmt(r.perSec, 1),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        String(r.done),
        String(r.errors),
        fmt(r.nodeCpuMsPerPayment, 2),
        fmt(r.readerCpuMsPerPayment, 2),
        fmt(r.postgresCpuMsPerPayment, 2),
        fmt(r.statementsPerOp, 1),
        fmt(r.writingCommitsPerOp, 2),
        fmt(r.transactionIdsPerOp, 2),
      ]),
    ]);
    const ratio = printRatio(ours, bare);
    const ratios: Record<string, { throughput: number; p50: number }> = { ours: ratio };
    for (const [name, r] of phases.slice(1, -1)) ratios[name] = printRatio(r, bare, `${name}/bare`);
    for (const [name, r] of phases) if (r.steps) console.log(`${name} per step, p50/p99 ms: ${Object.entries(r.steps).map(([step, st]) => `${step} ${fmt(st.p50Ms, 1)}/${fmt(st.p99Ms, 1)}`).join(', ')}`);
    printFirstErrors(phases);
    console.log(JSON.stringify({ bench: 'payments', ...opts, perRequest: Object.fromEntries(Object.entries(profile.warm).map(([n, w]) => [n, { statements: w.statements, writingCommits: w.writingCommits }])), node: process.version, postgres: env.postgres, cpus: os.availableParallelism(), loadAverage: os.loadavg(), phases: Object.fromEntries(phases), ratios }));

    // Every payment counted as done is SUCCEEDED and booked once, and the ledger's invariants hold.
    problems.push(...(await checkLedger(em)).map((p) => `${p.rule} ${p.subject}: ${p.detail}`));
    const references: [string, string, PhaseResult][] = [['ours', 'ours', ours], ...phases.slice(1, -1).map(([name, r]): [string, string, PhaseResult] => [name, `workers${opts.workers}`, r]), ['bare', 'bare', bare]];
    for (const [name, prefix, r] of references) {
      const [row] = await em.execute<{ paid: string; booked: string }[]>(
        `select count(*) as paid, count(e.id) as booked from payment p left join journal_entry e on e.entry_key = 'payment:' || p.id
          where p.status = 'SUCCEEDED' and p.order_reference like ?`,
        [`${prefix}.%`],
      );
      if (Number(row!.paid) !== r.done || Number(row!.booked) !== r.done) {
        problems.push(`COUNT ${name}: ${r.done} payments completed, ${row!.paid} are SUCCEEDED, ${row!.booked} are in the ledger`);
      }
    }
    if (problems.length) {
      console.error(`payments check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      return false;
    }
    console.log('payments check: ok (ledger invariants, chips = shadows, every payment SUCCEEDED and booked once)');
  });
}

if (isMainThread) await main();
else await readerWorker();
