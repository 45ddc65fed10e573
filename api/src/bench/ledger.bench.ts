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
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migrate, openOrm, type Orm } from '../db/orm.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { benchCommand, environmentLine, fmt, type Operation, type PhaseOptions, positiveInt, printFirstErrors, printRatio, printTable, runBench, runLoops, scratchDatabase, withDatabaseWork } from './harness.js';

const CURRENCY = 'CNY';
/** Opening balance of every account: far more than S seconds of 1..100 transfers can take out. */
const OPENING = 100_000_000n;

interface Options extends PhaseOptions {
  accounts: number;
}

interface Transfer {
  key: string;
  from: string;
  to: string;
  amount: bigint;
}

function parseOptions(argv: string[]): Options {
  const program = benchCommand('ledger.bench', 'Throughput and latency of post() against the minimal hand-written SQL on the bare pg driver', { clients: 16, clientsHelp: 'concurrent clients (and connections) per phase' })
    .option('--accounts <a>', 'liability accounts transfers move between', positiveInt, 50)
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

/** A phase: `clients` loops of random transfers, each loop with its own `transfer` function. */
function transfers(name: string, accounts: string[], makeClient: () => (t: Transfer) => Promise<void>) {
  return (c: number): Operation => {
    const transfer = makeClient();
    return (n) => transfer(randomTransfer(accounts, `${name}.${c}.${n}`));
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
      // The key and the entry in one statement, as post() writes them (docs/scaling.md: the key table).
      const inserted = await conn.query<{ posted_at: string }>(
        `with k as (insert into journal_entry_key (entry_key, entry_id, reverses_id) values ($2, $1, $4)
                    on conflict (entry_key) do nothing returning entry_key, entry_id, reverses_id, posted_at)
         insert into journal_entry (id, entry_key, description, reverses_id, metadata, posted_at)
         select k.entry_id, k.entry_key, $3, k.reverses_id, $5, k.posted_at from k
         returning posted_at::text as posted_at`,
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
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
         values ($1, 0, $2, $3, $4, $5, $9), ($1, 1, $6, $7, $4, $8, $9)`,
        [id, lines[0]!.account, lines[0]!.amount.toString(), CURRENCY, lines[0]!.after.toString(), lines[1]!.account, lines[1]!.amount.toString(), lines[1]!.after.toString(), inserted.rows[0]!.posted_at],
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

await runBench('ledger', async ({ log, cleanups }) => {
  const opts = parseOptions(process.argv);
  const { url, where } = await scratchDatabase(log, cleanups);

  const orm = await openOrm(url, { poolMax: opts.clients + 2 });
  cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
  await migrate(orm);
  const pool = new pg.Pool({ connectionString: url, max: opts.clients });
  cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });

  // Set-up: one asset account funds every liability account through post().
  const em = orm.em.fork();
  const source = await openAccount(em, { code: 'bench.source', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY });
  const accounts: string[] = [];
  for (let i = 0; i < opts.accounts; i++) {
    const acc = await openAccount(em, { code: `bench.acc.${i}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY, nonNegative: true });
    await post(em, { key: `bench.open.${i}`, description: 'opening', lines: [debit(source.id, OPENING), credit(acc.id, OPENING)] });
    accounts.push(acc.id);
  }

  const env = await environmentLine(url, where);
  console.log(`ledger bench: ${opts.clients} clients, ${opts.seconds} s per phase (after ${opts.warmup} s warm-up), ${opts.accounts} accounts; ${env.line}`);
  const phase = (name: string, ms: number, client: () => (t: Transfer) => Promise<void>) => withDatabaseWork(url, true, () => runLoops(opts.clients, ms, transfers(name, accounts, client)));
  await phase('warm.ours', opts.warmup * 1000, oursClient(orm));
  const ours = await phase('ours', opts.seconds * 1000, oursClient(orm));
  await phase('warm.bare', opts.warmup * 1000, bareClient(pool));
  const bare = await phase('bare', opts.seconds * 1000, bareClient(pool));

  printTable([
    ['phase', 'entries/s', 'p50 ms', 'p99 ms', 'entries', 'errors', 'node cpu ms/entry', 'statements/entry', 'writing commits/entry', 'transaction ids/entry'],
    ...([['ours', ours], ['bare', bare]] as const).map(([name, r]) => [name, fmt(r.perSec, 0), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), String(r.done), String(r.errors), fmt(r.loopCpuMsPerOp, 3), fmt(r.statementsPerOp, 1), fmt(r.writingCommitsPerOp, 2), fmt(r.transactionIdsPerOp, 2)]),
  ]);
  const ratio = printRatio(ours, bare);
  printFirstErrors([['ours', ours], ['bare', bare]]);
  console.log(JSON.stringify({ bench: 'ledger', ...opts, node: process.version, postgres: env.postgres, ours, bare, ratio }));

  // Every committed transfer is in the ledger, once, and the ledger's invariants hold.
  const problems: string[] = (await checkLedger(em)).map((p) => `${p.rule} ${p.subject}: ${p.detail}`);
  for (const [name, r] of [['ours', ours], ['bare', bare]] as const) {
    const n = (await em.execute<{ n: string }[]>(`select count(*) as n from journal_entry where entry_key like ?`, [`${name}.%`]))[0]!.n;
    if (Number(n) !== r.done) problems.push(`COUNT ${name}: ${r.done} transfers succeeded but ${n} entries are in the ledger`);
  }
  if (problems.length) {
    console.error(`ledger check: ${problems.length} problem(s)`);
    for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
    return false;
  }
  console.log('ledger check: ok');
});
