/**
 * Merchant payment benchmark: `npm run bench:payments -- [--clients N] [--seconds S] [--merchants M] [--warmup S]`.
 *
 * Phase "ours" runs N client loops for S seconds against the real HTTP app on 127.0.0.1: each loop
 * is a merchant (round-robin over M) with its own virtual CPU card, and one payment is the whole
 * card-present flow (DESIGN.md §7): createPayment over GraphQL, openCardSession(PURCHASE, payment)
 * on the merchant's certified till, then the SDK's ReaderAgent with the card until COMPLETED (three
 * signed messages). Phase "bare" does the same business effect as hand-written SQL on the bare `pg`
 * driver, one transaction per payment: the ceiling, with no HTTP, GraphQL, crypto or card. Same
 * clients, same duration, same database. Prints throughput, latency and CPU time per payment (node's
 * main thread, the readers' worker, the embedded PostgreSQL) for both, the ratio ours/bare, the
 * latency of each step of ours, one JSON line, then checks the ledger's invariants, that every
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
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import forge from 'node-forge';
import pg from 'pg';
import { pino } from 'pino';
import { createClient } from '../auth/clients.service.js';
import { issueCard as registerCard, withLuhnCheckDigit } from '../cards/cards.service.js';
import { loadConfig } from '../config/config.js';
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
import { type Cleanup, percentile, runCleanups, scratchDatabase } from './bench-database.js';
import { cardPurseAccount, cardPurseCode, merchantPayableAccount } from '../ledger/accounts.js';

const CURRENCY = 'CNY';
/** The code the bench city's cards carry (its card company's keys are found by it). */
const CARD_CITY_CODE = '5810';
/** On each chip and its ledger shadow: far more than both phases take at 1.00–50.00 a payment. */
const CARD_BALANCE = 50_000_000;
const MERCHANT_SCOPES = ['payments:write', 'payments:read'];

interface Options {
  clients: number;
  seconds: number;
  merchants: number;
  /** Untimed run of each phase first, so both are measured warm (JIT, plans, pools, tokens). */
  warmup: number;
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

interface LoopResult {
  payments: number;
  errors: number;
  elapsedMs: number;
  paymentsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the thread that ran the loops, per completed payment (ms). */
  loopCpuMsPerPayment: number;
  /** Per step of a payment: p50 and p99 of its round trip (ms). */
  steps?: Record<string, { p50Ms: number; p99Ms: number }>;
  firstError?: string;
}

interface PhaseResult extends Omit<LoopResult, 'loopCpuMsPerPayment'> {
  /** CPU time of the main thread per payment (ms): the HTTP app in ours, the pg client code in bare. */
  nodeCpuMsPerPayment: number;
  /** Ours: CPU time of the worker (merchants' SDK clients, readers, cards) per payment (ms). */
  readerCpuMsPerPayment?: number;
  /** CPU time of the embedded PostgreSQL (all its processes) per payment (ms); not known with DATABASE_URL. */
  postgresCpuMsPerPayment?: number;
}

/** Reads how much CPU time (ms) PostgreSQL has used so far. */
type PostgresCpu = () => Promise<number>;

type ToWorker = { type: 'phase'; name: string; ms: number } | { type: 'cards' } | { type: 'stop' };
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

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('Expected a positive integer.');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('Expected a non-negative integer.');
  return n;
}

function parseOptions(argv: string[]): Options {
  return new Command('payments.bench')
    .description('Throughput and latency of card-present merchant payments through the API against the minimal hand-written SQL on the bare pg driver')
    .option('--clients <n>', 'concurrent client loops (one card each) per phase', positiveInt, 16)
    .option('--seconds <s>', 'measured duration of each phase', positiveInt, 10)
    .option('--merchants <m>', 'merchants (each with its OAuth client and till reader) the loops take turns at', positiveInt, 8)
    .option('--warmup <s>', 'untimed run of each phase before it is measured', nonNegativeInt, 5)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.')
    .parse(argv)
    .opts<Options>();
}

/**
 * CPU time (ms) an embedded PostgreSQL has used so far, from /proc: the postmaster and its live
 * backends, plus what the children it has reaped used. Undefined where there is no /proc.
 */
function postgresCpuOf(dataDir: string): PostgresCpu | undefined {
  let ticksPerSecond = 100;
  try {
    ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    // Linux's usual USER_HZ.
  }
  const stat = async (pid: string) => {
    const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state ppid … utime stime cutime cstime (proc(5) fields 3, 4, 14–17).
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
    return { ppid: f[1]!, own: f[11]! + f[12]!, reaped: f[13]! + f[14]! };
  };
  return async () => {
    const postmaster = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]!;
    let ticks = 0;
    for (const pid of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const s = await stat(pid).catch(() => undefined); // gone meanwhile
      if (pid === postmaster) ticks += (s?.own ?? 0) + (s?.reaped ?? 0);
      else if (s && String(s.ppid) === postmaster) ticks += s.own;
    }
    return (ticks * 1000) / ticksPerSecond;
  };
}

const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));
const threadCpuMs = (since?: NodeJS.CpuUsage) => {
  const u = process.threadCpuUsage(since);
  return (u.user + u.system) / 1000;
};

let stopping = false;

/** Runs `clients` loops of payments for `ms` milliseconds and measures each payment and each of its steps. */
async function runLoops(name: string, clients: number, ms: number, payerFor: (c: number) => Payer): Promise<LoopResult> {
  const latencies: number[] = [];
  const stepLatencies = new Map<string, number[]>();
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.threadCpuUsage();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(ms) * 1_000_000n;
  const loop = async (c: number) => {
    const pay = payerFor(c);
    for (let n = 0; !stopping && process.hrtime.bigint() < deadline; n++) {
      // 1.00 to 50.00: a coffee to a meal.
      const order = { key: `${name}.${c}.${n}`, amount: 100 + Math.floor(Math.random() * 4901) };
      const steps: Record<string, number> = {};
      const t0 = process.hrtime.bigint();
      try {
        await pay(order, steps);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        for (const [step, took] of Object.entries(steps)) {
          if (!stepLatencies.has(step)) stepLatencies.set(step, []);
          stepLatencies.get(step)!.push(took);
        }
      } catch (err) {
        errors++;
        firstError ??= describe(err);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuMs = threadCpuMs(cpu0);
  const sorted = Float64Array.from(latencies).sort();
  const steps = Object.fromEntries(
    [...stepLatencies].map(([step, values]) => {
      const s = Float64Array.from(values).sort();
      return [step, { p50Ms: percentile(s, 50), p99Ms: percentile(s, 99) }];
    }),
  );
  return {
    payments: latencies.length,
    errors,
    elapsedMs,
    paymentsPerSec: latencies.length / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    loopCpuMsPerPayment: cpuMs / latencies.length,
    ...(stepLatencies.size ? { steps } : {}),
    ...(firstError ? { firstError } : {}),
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

/** The worker: answers the main thread's requests to run a phase and to hand back its cards. */
async function readerWorker(): Promise<void> {
  const port = parentPort!;
  const data = workerData as FleetData;
  let run: (name: string, ms: number) => Promise<LoopResult>;
  let cards: VirtualCard[];
  try {
    const sdk = await loadSdk();
    const apis = data.merchants.map((m) => new sdk.OneCardClient({ baseUrl: data.baseUrl, clientId: m.clientId, clientSecret: m.clientSecret, scope: MERCHANT_SCOPES.join(' ') }));
    // Each merchant gets its token now, not in the first measured payment.
    await Promise.all(apis.map((api) => api.request('query { viewer { kind } }')));
    cards = data.cards.map((state) => sdk.VirtualCpuCard.fromJSON(state));
    const seatOf = (c: number) => c % data.merchants.length;
    run = (name, ms) => runLoops(name, cards.length, ms, (c) => oursPayer(sdk, data.merchants[seatOf(c)]!, apis[seatOf(c)]!, cards[c]!));
  } catch (err) {
    port.postMessage({ type: 'failed', error: describe(err) } satisfies FromWorker);
    return;
  }
  port.on('message', async (message: ToWorker) => {
    if (message.type === 'stop') {
      stopping = true;
      return;
    }
    try {
      if (message.type === 'phase') port.postMessage({ type: 'phase', result: await run(message.name, message.ms) } satisfies FromWorker);
      else port.postMessage({ type: 'cards', states: cards.map((c) => c.toJSON()) } satisfies FromWorker);
    } catch (err) {
      port.postMessage({ type: 'failed', error: describe(err) } satisfies FromWorker);
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

/** A phase of ours run by the worker, with the API's CPU (this thread) and PostgreSQL's measured around it. */
async function oursPhase(worker: Worker, postgresCpu: PostgresCpu | undefined, name: string, ms: number): Promise<PhaseResult> {
  const pg0 = await postgresCpu?.();
  const cpu0 = process.threadCpuUsage();
  const { result } = await ask(worker, { type: 'phase', name, ms }, 'phase');
  const nodeCpuMs = threadCpuMs(cpu0);
  const { loopCpuMsPerPayment, ...rest } = result;
  return {
    ...rest,
    nodeCpuMsPerPayment: nodeCpuMs / result.payments,
    readerCpuMsPerPayment: loopCpuMsPerPayment,
    ...(postgresCpu ? { postgresCpuMsPerPayment: ((await postgresCpu()) - pg0!) / result.payments } : {}),
  };
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
      const entry = await conn.query(
        `insert into journal_entry (id, entry_key, description, reverses_id, metadata) values ($1, $2, $3, $4, $5)
         on conflict (entry_key) do nothing returning posted_at`,
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
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after)
         values ($1, 0, $2, $3, $4, $5), ($1, 1, $6, $7, $4, $8)`,
        [entryId, lines[0]!.account, lines[0]!.amount.toString(), CURRENCY, lines[0]!.after.toString(), lines[1]!.account, lines[1]!.amount.toString(), lines[1]!.after.toString()],
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

async function barePhase(pool: pg.Pool, postgresCpu: PostgresCpu | undefined, seats: BareSeat[], name: string, ms: number): Promise<PhaseResult> {
  const pg0 = await postgresCpu?.();
  const { loopCpuMsPerPayment, ...rest } = await runLoops(name, seats.length, ms, (c) => bareClient(pool, seats[c]!));
  return { ...rest, nodeCpuMsPerPayment: loopCpuMsPerPayment, ...(postgresCpu ? { postgresCpuMsPerPayment: ((await postgresCpu()) - pg0!) / rest.payments } : {}) };
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

function fmt(n: number | undefined, digits: number): string {
  return n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const cleanups: Cleanup[] = [];
  let worker: Worker | undefined;
  const onSignal = () => {
    stopping = true;
    worker?.postMessage({ type: 'stop' } satisfies ToWorker);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let exitCode = 0;
  try {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    const { url, where, embeddedDataDir } = await scratchDatabase(log, cleanups);
    const postgresCpu: PostgresCpu | undefined = embeddedDataDir && process.platform === 'linux' ? postgresCpuOf(embeddedDataDir) : undefined;

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
    const pgVersion = (await em.execute<{ server_version: string }[]>('show server_version'))[0]!.server_version;
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
    for (let c = 0; c < opts.clients; c++) {
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
      cards.push(chip);
      seats.push({ merchantId: seat.merchantId, clientId: seat.clientId, payableAccount: seat.payableAccount, cardId: row.id, asn: chip.asn, purseAccount: purse.id });
    }

    const fleet: FleetData = { baseUrl, merchants: merchants.map(({ payableAccount: _, ...seat }) => seat), cards: cards.map((c) => c.toJSON()) };
    worker = new Worker(new URL(import.meta.url), { workerData: fleet });
    const started = worker;
    cleanups.unshift({ what: 'stop the reader worker', run: () => started.terminate() });
    await ask(worker, null, 'ready');

    console.log(
      `payments bench: ${opts.clients} clients (one card each) at ${opts.merchants} merchants, ${opts.seconds} s per phase (after ${opts.warmup} s warm-up); ` +
        `PostgreSQL ${pgVersion} (${where}), node ${process.version}, ${os.availableParallelism()} cpus`,
    );
    await oursPhase(worker, postgresCpu, 'warm.ours', opts.warmup * 1000);
    const ours = await oursPhase(worker, postgresCpu, 'ours', opts.seconds * 1000);
    // Before bare debits the shadows: every chip holds exactly what the ledger says it holds.
    const { states } = await ask(worker, { type: 'cards' }, 'cards');
    const problems: string[] = [];
    for (const state of states) {
      const [shadow] = await em.execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [cardPurseCode(state.asn, CURRENCY)]);
      if (BigInt(shadow!.balance) !== BigInt(state.purses.EP.balance)) problems.push(`CARD ${state.asn}: the chip holds ${state.purses.EP.balance}, its ledger shadow ${shadow!.balance}`);
    }
    const [discrepancies] = await em.execute<{ n: string }[]>(`select count(*) as n from card_balance_discrepancy`);
    if (Number(discrepancies!.n) > 0) problems.push(`DISCREPANCY: ${discrepancies!.n} card balance discrepancies recorded`);
    await barePhase(pool, postgresCpu, seats, 'warm.bare', opts.warmup * 1000);
    const bare = await barePhase(pool, postgresCpu, seats, 'bare', opts.seconds * 1000);
    if (stopping) throw new Error('interrupted');

    const ratio = { throughput: ours.paymentsPerSec / bare.paymentsPerSec, p50: ours.p50Ms / bare.p50Ms };
    const rows = [
      ['phase', 'payments/s', 'p50 ms', 'p99 ms', 'payments', 'errors', 'cpu ms/payment: node main', 'readers', 'postgres'],
      ...([['ours', ours], ['bare', bare]] as const).map(([name, r]) => [
        name,
        fmt(r.paymentsPerSec, 1),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        String(r.payments),
        String(r.errors),
        fmt(r.nodeCpuMsPerPayment, 2),
        fmt(r.readerCpuMsPerPayment, 2),
        fmt(r.postgresCpuMsPerPayment, 2),
      ]),
    ];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    console.log(`ratio ours/bare: throughput ${fmt(ratio.throughput, 3)}, p50 latency ${fmt(ratio.p50, 1)}`);
    if (ours.steps) console.log(`ours per step, p50/p99 ms: ${Object.entries(ours.steps).map(([step, s]) => `${step} ${fmt(s.p50Ms, 1)}/${fmt(s.p99Ms, 1)}`).join(', ')}`);
    for (const [name, r] of [['ours', ours], ['bare', bare]] as const) if (r.firstError) console.log(`first ${name} error: ${r.firstError}`);
    console.log(
      JSON.stringify({
        bench: 'payments',
        clients: opts.clients,
        merchants: opts.merchants,
        seconds: opts.seconds,
        warmup: opts.warmup,
        node: process.version,
        postgres: pgVersion,
        cpus: os.availableParallelism(),
        ours,
        bare,
        ratio,
      }),
    );

    // Every payment counted as done is SUCCEEDED and booked once, and the ledger's invariants hold.
    problems.push(...(await checkLedger(em)).map((p) => `${p.rule} ${p.subject}: ${p.detail}`));
    for (const [name, r] of [['ours', ours], ['bare', bare]] as const) {
      const [row] = await em.execute<{ paid: string; booked: string }[]>(
        `select count(*) as paid, count(e.id) as booked from payment p left join journal_entry e on e.entry_key = 'payment:' || p.id
          where p.status = 'SUCCEEDED' and p.order_reference like ?`,
        [`${name}.%`],
      );
      if (Number(row!.paid) !== r.payments || Number(row!.booked) !== r.payments) {
        problems.push(`COUNT ${name}: ${r.payments} payments completed, ${row!.paid} are SUCCEEDED, ${row!.booked} are in the ledger`);
      }
    }
    if (problems.length) {
      console.error(`payments check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      exitCode = 1;
    } else {
      console.log('payments check: ok (ledger invariants, chips = shadows, every payment SUCCEEDED and booked once)');
    }
  } catch (err) {
    console.error('payments bench failed:', err);
    exitCode = 1;
  } finally {
    if (!(await runCleanups(cleanups))) exitCode = 1;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

if (isMainThread) process.exitCode = await main();
else await readerWorker();
