/**
 * Online refund benchmark (issue 20, P2: a pure online money mutation):
 * `npm run bench:refunds -- [--clients N] [--seconds S] [--merchants M] [--warmup S]`.
 *
 * Phase "ours": N client loops, each a merchant back end (round-robin over M merchants, each with
 * its MERCHANT OAuth client and its token from the client-credentials grant) refunding 1.00–50.00
 * of one of its succeeded card payments with `refundPayment` over GraphQL on the real HTTP app, a
 * fresh idempotency key each time (docs/payments.md): the payment locked, the refund as a pending
 * load to the card (merchant payable → the card company's pending loads, one ledger entry), its
 * clearing item, the refund row, the payment's refunded amount, the `payment.refunded` event and
 * the stored answer of the idempotent mutation. No card, reader or certificate is involved.
 * Phase "bare": the same effect in one transaction of hand-written SQL on the bare `pg` driver
 * (the guarded update of the payment, the top-up row and its history, the ledger entry as the
 * ledger bench's bare phase writes it, the clearing item, the refund, the event): the ceiling.
 * The clients run in a worker thread, so their HTTP and JSON work is not on the API's event loop.
 *
 * Prints refunds/s, p50/p99, CPU per refund (API thread, clients' worker, embedded PostgreSQL),
 * SQL statements and writing commits per refund, the ratio ours/bare, one JSON line, then checks
 * the ledger's invariants and that each phase's counted refunds are exactly its rows and entries.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { createClient } from '../auth/clients.service.js';
import { issueCard as registerCard, withLuhnCheckDigit } from '../cards/cards.service.js';
import { cardSessionEngine } from '../card-sessions.js';
import { loadConfig } from '../config/config.js';
import { migrate, openOrm } from '../db/orm.js';
import { toGlobalId } from '../graphql/global-id.js';
import { createHttpApp } from '../http/app.js';
import { merchantPayableAccount, pendingLoadAccount } from '../ledger/accounts.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { windowForNewItem } from '../settlement/windows.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { REFUND_CLIENT } from '../topups/topups.service.js';
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
  runBench,
  runLoops,
  scratchDatabase,
  statementTap,
  threadCpuMs,
  withDatabaseWork,
} from './harness.js';

const CURRENCY = 'CNY';
const TIME_ZONE = 'Asia/Shanghai';
/** Each loop's payment: far more than both phases refund at 1.00–50.00 a time. */
const PAYMENT_AMOUNT = 1_000_000_000;
const SCOPES = 'payments:read refunds:write';
const REFUND = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { id } userErrors { code message } } }`;

interface Options extends PhaseOptions {
  merchants: number;
  statements: boolean;
}

/** What a client loop of ours needs: its merchant's client and its payment. */
interface Seat {
  clientId: string;
  clientSecret: string;
  payment: string;
}

type ToWorker = { type: 'phase'; name: string; ms: number } | { type: 'stop' };
type FromWorker = { type: 'ready' } | { type: 'phase'; result: LoopResult } | { type: 'failed'; error: string };

/** A refund as loop c makes it: 1.00 to 50.00, a unique key. */
function refunds(name: string, refund: (c: number) => (key: string, amount: number) => Promise<void>) {
  return (c: number): Operation => {
    const run = refund(c);
    return (n) => run(`${name}.${c}.${n}`, 100 + Math.floor(Math.random() * 4901));
  };
}

// ——— phase "ours": merchants' back ends in a worker thread ———

async function tokenFor(baseUrl: string, seat: Seat): Promise<string> {
  const res = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(seat.clientId)}:${encodeURIComponent(seat.clientSecret)}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPES }),
  });
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function clientsWorker(): Promise<void> {
  const port = parentPort!;
  const { baseUrl, seats } = workerData as { baseUrl: string; seats: Seat[] };
  let tokens: string[];
  try {
    // One token per merchant client, shared by its loops (as one back end shares it), fetched before any phase.
    const byClient = new Map<string, string>();
    for (const seat of seats) if (!byClient.has(seat.clientId)) byClient.set(seat.clientId, await tokenFor(baseUrl, seat));
    tokens = seats.map((s) => byClient.get(s.clientId)!);
  } catch (err) {
    port.postMessage({ type: 'failed', error: describeError(err) } satisfies FromWorker);
    return;
  }
  const refundAt = (c: number) => async (key: string, amount: number) => {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[c]}` },
      body: JSON.stringify({ query: REFUND, variables: { input: { payment: seats[c]!.payment, amount, reason: key, idempotencyKey: key } } }),
    });
    const body = (await res.json()) as { data?: { refundPayment: { refund: { id: string } | null; userErrors: { code: string; message: string }[] } }; errors?: { message: string }[] };
    if (body.errors?.length) throw new Error(`refundPayment: ${body.errors.map((e) => e.message).join('; ')}`);
    if (!body.data?.refundPayment.refund) throw new Error(`refundPayment refused: ${body.data?.refundPayment.userErrors.map((e) => `${e.code} ${e.message}`).join('; ')}`);
  };
  port.on('message', async (message: ToWorker) => {
    if (message.type === 'stop') {
      interrupted.now = true;
      return;
    }
    try {
      port.postMessage({ type: 'phase', result: await runLoops(seats.length, message.ms, refunds(message.name, refundAt)) } satisfies FromWorker);
    } catch (err) {
      port.postMessage({ type: 'failed', error: describeError(err) } satisfies FromWorker);
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

function ask(worker: Worker, message: ToWorker | null): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const off = () => {
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    };
    const onMessage = (m: FromWorker) => {
      off();
      if (m.type === 'failed') reject(new Error(`clients worker: ${m.error}`));
      else resolve(m);
    };
    const onExit = (code: number) => {
      off();
      reject(new Error(`the clients worker exited with code ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('exit', onExit);
    if (message) worker.postMessage(message);
  });
}

interface PhaseResult extends Omit<LoopResult, 'loopCpuMsPerOp'>, DatabaseWork {
  /** CPU per refund (ms) of this thread: the API in ours, the pg client code in bare. */
  nodeCpuMsPerRefund: number;
  /** Ours: CPU per refund of the clients' worker. */
  clientCpuMsPerRefund?: number;
  postgresCpuMsPerRefund?: number;
}

async function measured(url: string, postgresCpu: CpuMeter | undefined, run: () => Promise<LoopResult>, ownCpu: boolean): Promise<PhaseResult> {
  const pg0 = await postgresCpu?.();
  const cpu0 = threadCpuMs();
  const result = await withDatabaseWork(url, true, run);
  const cpu = threadCpuMs() - cpu0;
  const { loopCpuMsPerOp, ...rest } = result;
  return {
    ...rest,
    nodeCpuMsPerRefund: ownCpu ? loopCpuMsPerOp : cpu / result.done,
    ...(ownCpu ? {} : { clientCpuMsPerRefund: loopCpuMsPerOp }),
    ...(postgresCpu ? { postgresCpuMsPerRefund: ((await postgresCpu()) - pg0!) / result.done } : {}),
  };
}

// ——— phase "bare" ———

interface BareSeat {
  payment: string;
  merchantId: string;
  clientId: string;
  cardId: string;
  cardCompanyId: string;
  cityId: string;
  payableAccount: string;
  pendingAccount: string;
}

/** The refund's effect in one transaction: 12 statements with begin and commit. */
function bareRefund(pool: pg.Pool, seat: BareSeat) {
  return async (key: string, amountNumber: number) => {
    const amount = BigInt(amountNumber);
    const conn = await pool.connect();
    let broken = false;
    try {
      await conn.query('begin');
      // Locks the payment and refuses a refund past what is left, in one statement.
      const paid = await conn.query(`update payment set refunded_amount = refunded_amount + $2, updated_at = now() where id = $1 and status = 'SUCCEEDED' and amount - refunded_amount >= $2 returning refunded_amount`, [seat.payment, amount.toString()]);
      if (paid.rowCount !== 1) throw new Error(`payment ${seat.payment} cannot take ${amount} more`);
      const refundId = randomUUID();
      const entryKey = `payment-refund:${seat.payment}:${refundId}`;
      const topUpId = randomUUID();
      await conn.query(
        `insert into top_up (id, card_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, city_day, paid_at)
         values ($1, $2, $3, 'REFUND', null, $4, $5, 'refund', $6, $7, 'PAID', (now() at time zone $8)::date, now())`,
        [topUpId, seat.cardId, seat.cardCompanyId, REFUND_CLIENT, entryKey, amount.toString(), CURRENCY, TIME_ZONE],
      );
      await conn.query(`insert into top_up_history (top_up_id, from_status, to_status, cause) values ($1, null, 'PAID', $2)`, [topUpId, `refund of payment ${seat.payment}`]);
      const entryId = randomUUID();
      // The key and the entry in one statement, as post() writes them.
      const entry = await conn.query<{ posted_at: string }>(
        `with k as (insert into journal_entry_key (entry_key, entry_id) values ($2, $1) returning entry_key, entry_id, posted_at)
         insert into journal_entry (id, entry_key, description, reverses_id, metadata, posted_at) select k.entry_id, k.entry_key, $3, null, $4, k.posted_at from k
         returning posted_at::text as posted_at`,
        [
          entryId,
          entryKey,
          `refund of payment ${seat.payment} to the card`,
          JSON.stringify({ kind: 'REFUND', payment: seat.payment, refund: refundId, merchant: seat.merchantId, toCard: seat.cardId }),
        ],
      );
      // Line 0 debits the merchant's payable, line 1 credits the pending loads; both are liabilities.
      const lines = [
        { account: seat.payableAccount, amount, delta: -amount, after: 0n },
        { account: seat.pendingAccount, amount: -amount, delta: amount, after: 0n },
      ];
      for (const line of [...lines].sort((a, b) => (a.account < b.account ? -1 : 1))) {
        const r = await conn.query<{ balance: string }>(`update ledger_account set balance = balance + $1 where id = $2 returning balance`, [line.delta.toString(), line.account]);
        line.after = BigInt(r.rows[0]!.balance);
      }
      await conn.query(`insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at) values ($1, 0, $2, $3, $4, $5, $9), ($1, 1, $6, $7, $4, $8, $9)`, [
        entryId,
        lines[0]!.account,
        lines[0]!.amount.toString(),
        CURRENCY,
        lines[0]!.after.toString(),
        lines[1]!.account,
        lines[1]!.amount.toString(),
        lines[1]!.after.toString(),
        entry.rows[0]!.posted_at,
      ]);
      // Into the open settlement window of the city's business day, holding it as windowForNewItem does.
      const cleared = await conn.query(
        `insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference)
         select w.city_id, w.business_day, w.id, 'REFUND', 'MERCHANT', $2, $3, $4, $5, now(), $6, $7
           from settlement_window w where w.city_id = $1 and w.business_day = (now() at time zone $8)::date and w.status = 'OPEN' for key share`,
        [seat.cityId, seat.merchantId, seat.cardCompanyId, amount.toString(), CURRENCY, entryKey, refundId, TIME_ZONE],
      );
      if (cleared.rowCount !== 1) throw new Error('no open settlement window');
      await conn.query(`insert into payment_refund (id, payment_id, amount, reason, top_up_id, created_by_client, idempotency_key) values ($1, $2, $3, $4, $5, $6, $4)`, [refundId, seat.payment, amount.toString(), key, topUpId, seat.clientId]);
      const paymentId = toGlobalId('Payment', seat.payment);
      await conn.query(`insert into event_outbox (type, owner_kind, owner_id, subject_id, payload) values ('payment.refunded', 'MERCHANT', $1, $2, $3)`, [
        seat.merchantId,
        paymentId,
        JSON.stringify({ payment: paymentId, status: 'SUCCEEDED', amount: PAYMENT_AMOUNT, currency: CURRENCY, refundedAmount: Number(paid.rows[0].refunded_amount), refund: { id: toGlobalId('PaymentRefund', refundId), amount: amountNumber } }),
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

// ——— set-up and run ———

/**
 * --statements: one refund as a client sends it, from this thread, with each statement the API
 * sends printed (this process's pg driver). Its reason is not a phase's, so the end-of-run counts
 * leave it out; the one before it fills the per-process caches (accounts, token status) as the
 * warm-up does for the phases.
 */
async function printStatementsOfOneRefund(baseUrl: string, seat: Seat): Promise<void> {
  const token = await tokenFor(baseUrl, seat);
  const refund = async (key: string) => {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: REFUND, variables: { input: { payment: seat.payment, amount: 100, reason: key, idempotencyKey: key } } }),
    });
    const body = (await res.json()) as { data?: { refundPayment: { refund: { id: string } | null } } };
    if (!body.data?.refundPayment.refund) throw new Error(`profiled refund ${key} failed: ${JSON.stringify(body)}`);
  };
  await refund('profile.warm');
  const texts: string[] = [];
  statementTap.sink = (text) => texts.push(text.replace(/\s+/g, ' '));
  try {
    await refund('profile.printed');
  } finally {
    statementTap.sink = undefined;
  }
  console.log(`— one refund of ours (warm): ${texts.length} statements`);
  texts.forEach((t, i) => console.log(`${String(i + 1).padStart(3)}  ${t}`));
}

function parseOptions(argv: string[]): Options {
  return benchCommand('refunds.bench', 'Throughput and latency of refundPayment over HTTP (OAuth, idempotency) against the minimal hand-written SQL of the same effect on the bare pg driver', {
    clients: 16,
    clientsHelp: 'concurrent client loops per phase (each refunds its own payment)',
  })
    .option('--merchants <m>', 'merchants (each with its OAuth client) the loops take turns at', positiveInt, 8)
    .option('--statements', 'print every SQL statement of one refund of ours (after one untimed refund warms the caches)', false)
    .parse(argv)
    .opts<Options>();
}

async function main(): Promise<void> {
  await runBench('refunds', async ({ log, cleanups, onInterrupt }) => {
    const opts = parseOptions(process.argv);
    let worker: Worker | undefined;
    onInterrupt(() => worker?.postMessage({ type: 'stop' } satisfies ToWorker));
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    const { url, where, embeddedDataDir } = await scratchDatabase(log, cleanups);
    const postgresCpu = postgresCpuOf(embeddedDataDir);
    const orm = await openOrm(url, { poolMax: Math.max(20, opts.clients + 2) });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    const pool = new pg.Pool({ connectionString: url, max: opts.clients });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

    // The real HTTP app on 127.0.0.1 (listening first: the OAuth issuer is built on the real URL).
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
    // As bench:payments: the per-client cost throttle is not what is measured.
    const config = loadConfig({ NODE_ENV: 'development', PUBLIC_URL: baseUrl, ONECARD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'), ONECARD_DATA_DIR: path.join(tmp, 'onecard'), LOG_LEVEL: 'warn', GRAPHQL_COST_BUCKET: '100000000', GRAPHQL_COST_RESTORE_RATE: '100000000' });
    const http = await createHttpApp({ config, orm, log, cardSessions: cardSessionEngine(config) });
    cleanups.unshift({ what: 'close the HTTP app', run: () => http.close() });
    server.on('request', http.app);

    // The world: a city with its card company, M merchants with their clients and funded payables,
    // one registered CPU card per loop and per phase, and each loop's succeeded payment by it.
    const em = orm.em.fork();
    const { city, cardCompany } = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: TIME_ZONE, currency: CURRENCY, cardCompanyName: 'Yangchengtong' });
    const funding = await openAccount(em, { code: `bench.sales.${CURRENCY}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY });
    const pending = await pendingLoadAccount(em, cardCompany.id, CURRENCY);
    const merchants: { id: string; clientId: string; clientSecret: string; payable: string }[] = [];
    for (let i = 0; i < opts.merchants; i++) {
      const merchant = await createMerchant(em, { cityId: city.id, name: `Bench Shop ${i}` });
      const made = await createClient(em, { kind: 'MERCHANT', tenantId: merchant.id, name: `bench merchant ${i}`, scopes: SCOPES.split(' ') });
      const payable = await merchantPayableAccount(em, merchant.id, CURRENCY);
      // What the merchant's earlier card sales left on its payable (the refunds come out of it).
      await post(em, { key: `bench.sales.${i}`, description: 'earlier card sales', lines: [debit(funding.id, BigInt(PAYMENT_AMOUNT) * BigInt(2 * opts.clients)), credit(payable.id, BigInt(PAYMENT_AMOUNT) * BigInt(2 * opts.clients))] });
      merchants.push({ id: merchant.id, clientId: made.client.client_id, clientSecret: made.clientSecret!, payable: payable.id });
    }
    // The settlement window refunds are cleared in, opened as the first item of the day opens it.
    await windowForNewItem(em, city.id, (await em.execute<{ day: string }[]>(`select (now() at time zone ?)::date::text as day`, [TIME_ZONE]))[0]!.day);
    const today = new Date().toISOString().slice(0, 10);
    const succeededPayment = async (merchant: (typeof merchants)[number], n: number) => {
      const card = await registerCard(em, cardCompany.id, { cardNumber: withLuhnCheckDigit(`623177${String(n).padStart(9, '0')}`), asn: `0000BE0C${String(n).padStart(12, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: today, expiresOn: `${Number(today.slice(0, 4)) + 5}${today.slice(4)}` });
      const id = randomUUID();
      await em.execute(
        `insert into payment (id, merchant_id, created_by_client, amount, currency, order_reference, metadata, status, expires_at, succeeded_at, card_id, card_asn)
         values (?, ?, ?, ?, ?, ?, '{}', 'SUCCEEDED', now() + interval '15 minutes', now(), ?, ?)`,
        [id, merchant.id, merchant.clientId, PAYMENT_AMOUNT, CURRENCY, `bench order ${n}`, card.id, card.asn],
      );
      return { id, cardId: card.id };
    };
    const seats: Seat[] = [];
    const bareSeats: BareSeat[] = [];
    for (let c = 0; c < opts.clients; c++) {
      const merchant = merchants[c % merchants.length]!;
      const ours = await succeededPayment(merchant, 2 * c);
      seats.push({ clientId: merchant.clientId, clientSecret: merchant.clientSecret, payment: toGlobalId('Payment', ours.id) });
      const bare = await succeededPayment(merchant, 2 * c + 1);
      bareSeats.push({ payment: bare.id, merchantId: merchant.id, clientId: merchant.clientId, cardId: bare.cardId, cardCompanyId: cardCompany.id, cityId: city.id, payableAccount: merchant.payable, pendingAccount: pending.id });
    }

    if (opts.statements) await printStatementsOfOneRefund(baseUrl, seats[0]!);

    worker = new Worker(new URL(import.meta.url), { workerData: { baseUrl, seats } });
    const started = worker;
    cleanups.unshift({ what: 'stop the clients worker', run: () => started.terminate() });
    await ask(worker, null);

    const env = await environmentLine(url, where);
    console.log(`refunds bench: ${opts.clients} clients at ${opts.merchants} merchants, ${opts.seconds} s per phase (after ${opts.warmup} s warm-up); ${env.line}`);
    const oursPhase = async (name: string, ms: number) => measured(url, postgresCpu, async () => ((await ask(started, { type: 'phase', name, ms })) as Extract<FromWorker, { type: 'phase' }>).result, false);
    const barePhase = (name: string, ms: number) => measured(url, postgresCpu, () => runLoops(bareSeats.length, ms, refunds(name, (c) => bareRefund(pool, bareSeats[c]!))), true);
    await oursPhase('warm.ours', opts.warmup * 1000);
    const ours = await oursPhase('ours', opts.seconds * 1000);
    await barePhase('warm.bare', opts.warmup * 1000);
    const bare = await barePhase('bare', opts.seconds * 1000);
    if (interrupted.now) throw new Error('interrupted');

    printTable([
      ['phase', 'refunds/s', 'p50 ms', 'p99 ms', 'refunds', 'errors', 'cpu ms/refund: API', 'clients', 'postgres', 'statements/refund', 'writing commits/refund', 'transaction ids/refund'],
      ...([['ours', ours], ['bare', bare]] as const).map(([name, r]) => [
        name,
        fmt(r.perSec, 1),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        String(r.done),
        String(r.errors),
        fmt(r.nodeCpuMsPerRefund, 2),
        fmt(r.clientCpuMsPerRefund, 2),
        fmt(r.postgresCpuMsPerRefund, 2),
        fmt(r.statementsPerOp, 1),
        fmt(r.writingCommitsPerOp, 2),
        fmt(r.transactionIdsPerOp, 2),
      ]),
    ]);
    const ratio = printRatio(ours, bare);
    printFirstErrors([['ours', ours], ['bare', bare]]);
    console.log(JSON.stringify({ bench: 'refunds', ...opts, node: process.version, postgres: env.postgres, cpus: os.availableParallelism(), loadAverage: os.loadavg(), ours, bare, ratio }));

    // Each counted refund is one refund row and one ledger entry; the ledger's invariants hold.
    const problems = (await checkLedger(em)).map((p) => `${p.rule} ${p.subject}: ${p.detail}`);
    for (const [name, r] of [['ours', ours], ['bare', bare]] as const) {
      const [row] = await em.execute<{ refunds: string; entries: string; cleared: string }[]>(
        `select count(*) as refunds, count(e.id) as entries, count(ci.id) as cleared from payment_refund f
           left join journal_entry e on e.entry_key = 'payment-refund:' || f.payment_id || ':' || f.id
           left join clearing_item ci on ci.entry_key = 'payment-refund:' || f.payment_id || ':' || f.id
          where f.reason like ?`,
        [`${name}.%`],
      );
      if (Number(row!.refunds) !== r.done || Number(row!.entries) !== r.done || Number(row!.cleared) !== r.done) {
        problems.push(`COUNT ${name}: ${r.done} refunds completed; ${row!.refunds} refund rows, ${row!.entries} ledger entries, ${row!.cleared} clearing items`);
      }
    }
    if (problems.length) {
      console.error(`refunds check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      return false;
    }
    console.log('refunds check: ok (ledger invariants; every refund counted has its row, its ledger entry and its clearing item)');
  });
}

if (isMainThread) await main();
else await clientsWorker();
