/**
 * Ledger posting benchmark: `npm run bench:ledger -- [--clients N] [--seconds S] [--accounts A]`.
 *
 * Phase "ours" drives `post()` (validation, account lookup, MikroORM, transaction) from N concurrent
 * clients for S seconds; phase "bare" does the minimal hand-written SQL for the same effect with the
 * bare `pg` driver, same clients, same duration, same database. Prints throughput and latency for
 * both and the ratio ours/bare, then one JSON line, then checks the ledger's invariants (exit 1 on a
 * problem). Uses DATABASE_URL's server (in a scratch database it drops afterwards) or, without it,
 * an embedded PostgreSQL in a temp folder that is removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { pino } from 'pino';
import { migrate, openOrm, type Orm } from '../db/orm.js';
import { type Cleanup, percentile, runCleanups, scratchDatabase } from './bench-database.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { credit, debit, openAccount, post } from '../ledger/ledger.service.js';

const CURRENCY = 'CNY';
/** Opening balance of every account: far more than S seconds of 1..100 transfers can take out. */
const OPENING = 100_000_000n;

interface Options {
  clients: number;
  seconds: number;
  accounts: number;
  /** Untimed run of each phase first, so both are measured warm (JIT, plans, pools). */
  warmup: number;
}

interface Transfer {
  key: string;
  from: string;
  to: string;
  amount: bigint;
}

interface PhaseResult {
  entries: number;
  errors: number;
  elapsedMs: number;
  entriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this node process (user + system) per committed entry, in ms: the client-side cost. */
  nodeCpuMsPerEntry: number;
  firstError?: string;
}

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
  const program = new Command('ledger.bench')
    .description('Throughput and latency of post() against the minimal hand-written SQL on the bare pg driver')
    .option('--clients <n>', 'concurrent clients (and connections) per phase', positiveInt, 16)
    .option('--seconds <s>', 'measured duration of each phase', positiveInt, 10)
    .option('--accounts <a>', 'liability accounts transfers move between', positiveInt, 50)
    .option('--warmup <s>', 'untimed run of each phase before it is measured', nonNegativeInt, 5)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.')
    .parse(argv);
  const opts = program.opts<Options>();
  if (opts.accounts < 2) program.error('--accounts must be at least 2');
  return opts;
}

function randomTransfer(accounts: string[], key: string): Transfer {
  const i = Math.floor(Math.random() * accounts.length);
  const j = (i + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
  return { key, from: accounts[i]!, to: accounts[j]!, amount: BigInt(1 + Math.floor(Math.random() * 100)) };
}

let stopping = false;

/** Runs `clients` loops of `transfer` for `ms` milliseconds and measures each call. */
async function runPhase(
  name: string,
  opts: Options,
  ms: number,
  accounts: string[],
  makeClient: () => (t: Transfer) => Promise<void>,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(ms) * 1_000_000n;
  const client = async (c: number) => {
    const transfer = makeClient();
    for (let n = 0; !stopping && process.hrtime.bigint() < deadline; n++) {
      const t = randomTransfer(accounts, `${name}.${c}.${n}`);
      const t0 = process.hrtime.bigint();
      try {
        await transfer(t);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const sorted = Float64Array.from(latencies).sort();
  return {
    entries: latencies.length,
    errors,
    elapsedMs,
    entriesPerSec: latencies.length / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    nodeCpuMsPerEntry: (cpu.user + cpu.system) / 1000 / latencies.length,
    ...(firstError ? { firstError } : {}),
  };
}

/** Phase "ours": the ledger service, one forked EntityManager per client. */
function oursClient(orm: Orm) {
  return () => {
    const em = orm.em.fork();
    return async (t: Transfer) => {
      await post(em, { key: t.key, description: 'bench transfer', lines: [debit(t.from, t.amount), credit(t.to, t.amount)] });
    };
  };
}

/**
 * Phase "bare": what post() amounts to in SQL for a transfer between two liability accounts (the
 * types are known here, so no lookup): the idempotent entry insert, the two guarded balance
 * updates in account-id order, one multi-row posting insert.
 */
function bareClient(pool: pg.Pool) {
  return () => async (t: Transfer) => {
    const conn = await pool.connect();
    let broken = false;
    try {
      await conn.query('begin');
      const id = randomUUID();
      const inserted = await conn.query(
        `insert into journal_entry (id, entry_key, description, reverses_id, metadata) values ($1, $2, $3, $4, $5)
         on conflict (entry_key) do nothing returning posted_at`,
        [id, t.key, 'bench transfer', null, '{}'],
      );
      if (inserted.rowCount !== 1) throw new Error(`entry key ${t.key} posted before`);
      // Line 0 debits `from`, line 1 credits `to`; on liability accounts a debit lowers the balance.
      const lines = [
        { account: t.from, amount: t.amount, delta: -t.amount, after: 0n },
        { account: t.to, amount: -t.amount, delta: t.amount, after: 0n },
      ];
      for (const line of [...lines].sort((a, b) => (a.account < b.account ? -1 : 1))) {
        const r = await conn.query<{ balance: string }>(`update ledger_account set balance = balance + $1 where id = $2 returning balance`, [
          line.delta.toString(),
          line.account,
        ]);
        line.after = BigInt(r.rows[0]!.balance);
      }
      await conn.query(
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after)
         values ($1, 0, $2, $3, $4, $5), ($1, 1, $6, $7, $4, $8)`,
        [id, lines[0]!.account, lines[0]!.amount.toString(), CURRENCY, lines[0]!.after.toString(), lines[1]!.account, lines[1]!.amount.toString(), lines[1]!.after.toString()],
      );
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

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const cleanups: Cleanup[] = [];
  const onSignal = () => {
    stopping = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let exitCode = 0;
  try {
    const { url, where } = await scratchDatabase(log, cleanups);

    const orm = await openOrm(url, { poolMax: opts.clients + 2 });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    const pool = new pg.Pool({ connectionString: url, max: opts.clients });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

    // Set-up: one asset account funds every liability account through post().
    const em = orm.em.fork();
    const pgVersion = (await em.execute<{ server_version: string }[]>('show server_version'))[0]!.server_version;
    const source = await openAccount(em, { code: 'bench.source', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY });
    const accounts: string[] = [];
    for (let i = 0; i < opts.accounts; i++) {
      const acc = await openAccount(em, {
        code: `bench.acc.${i}`,
        type: AccountType.LIABILITY,
        ownerKind: AccountOwnerKind.OTHER,
        currency: CURRENCY,
        nonNegative: true,
      });
      await post(em, { key: `bench.open.${i}`, description: 'opening', lines: [debit(source.id, OPENING), credit(acc.id, OPENING)] });
      accounts.push(acc.id);
    }

    console.log(
      `ledger bench: ${opts.clients} clients, ${opts.seconds} s per phase (after ${opts.warmup} s warm-up), ${opts.accounts} accounts; ` +
        `PostgreSQL ${pgVersion} (${where}), node ${process.version}, ${os.availableParallelism()} cpus`,
    );
    await runPhase('warm.ours', opts, opts.warmup * 1000, accounts, oursClient(orm));
    const ours = await runPhase('ours', opts, opts.seconds * 1000, accounts, oursClient(orm));
    await runPhase('warm.bare', opts, opts.warmup * 1000, accounts, bareClient(pool));
    const bare = await runPhase('bare', opts, opts.seconds * 1000, accounts, bareClient(pool));
    if (stopping) throw new Error('interrupted');

    const ratio = { throughput: ours.entriesPerSec / bare.entriesPerSec, p50: ours.p50Ms / bare.p50Ms };
    const rows = [
      ['phase', 'entries/s', 'p50 ms', 'p99 ms', 'entries', 'errors', 'node cpu ms/entry'],
      ...([['ours', ours], ['bare', bare]] as const).map(([name, r]) => [
        name,
        fmt(r.entriesPerSec, 0),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        String(r.entries),
        String(r.errors),
        fmt(r.nodeCpuMsPerEntry, 3),
      ]),
    ];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    console.log(`ratio ours/bare: throughput ${fmt(ratio.throughput, 2)}, p50 latency ${fmt(ratio.p50, 2)}`);
    for (const [name, r] of [['ours', ours], ['bare', bare]] as const) if (r.firstError) console.log(`first ${name} error: ${r.firstError}`);
    console.log(
      JSON.stringify({
        bench: 'ledger',
        clients: opts.clients,
        seconds: opts.seconds,
        accounts: opts.accounts,
        warmup: opts.warmup,
        node: process.version,
        postgres: pgVersion,
        cpus: os.availableParallelism(),
        ours,
        bare,
        ratio,
      }),
    );

    // Every committed transfer is in the ledger, once, and the ledger's invariants hold.
    const problems: string[] = (await checkLedger(em)).map((p) => `${p.rule} ${p.subject}: ${p.detail}`);
    for (const [name, r] of [['ours', ours], ['bare', bare]] as const) {
      const n = (await em.execute<{ n: string }[]>(`select count(*) as n from journal_entry where entry_key like ?`, [`${name}.%`]))[0]!.n;
      if (Number(n) !== r.entries) problems.push(`COUNT ${name}: ${r.entries} transfers succeeded but ${n} entries are in the ledger`);
    }
    if (problems.length) {
      console.error(`ledger check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      exitCode = 1;
    } else {
      console.log('ledger check: ok');
    }
  } catch (err) {
    console.error('ledger bench failed:', err);
    exitCode = 1;
  } finally {
    if (!(await runCleanups(cleanups))) exitCode = 1;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

process.exitCode = await main();
