/**
 * Settlement clearing benchmark: `npm run bench:settlement -- [--transactions N] [--merchants M] [--billers B] [--analyze] [--keep]`.
 *
 * Generates one business day of N clearing items over two cities (their card companies), M
 * merchants and B billers, set-based in SQL (`insert … select … from generate_series`, a few large
 * statements), funds each participant's payable account with one ledger entry equal to its window
 * total, then times what settlement does with the day: `closeWindow` for each city (the items were
 * written into their window as recordClearingItem writes them, so closing flips the window's status)
 * and `clearWindow` for each window (lines, fees, interchange, the
 * ledger entry, payouts). The floor, measured in the same run against the same rows, is one bare
 * aggregation per window on the bare `pg` driver (`select participant_kind, participant_id,
 * count(*), sum(amount) … group by`): the least any clearing has to read. It runs once right after
 * closing (untimed against clearing: that first read sets the updated rows' hint bits, and it shows
 * the plan clearing gets with the statistics of before the close), then, timed, after clearing and
 * a fresh ANALYZE: warm pages and the plan it deserves. Prints seconds and items/s per phase and the
 * ratio ours/bare (floor time / our time, i.e. our throughput as a share of the floor's), the
 * statements of close and clear that took the time, one JSON line, then checks the result against
 * sums computed independently over the items (fees by feeFor()) and the ledger's invariants
 * (exit 1 on a problem). Uses DATABASE_URL's server (in a scratch database it drops afterwards) or,
 * without it, an embedded PostgreSQL in a temp folder that is removed afterwards.
 */
import 'reflect-metadata';
import os from 'node:os';
import { Command } from 'commander';
import { type Logger as OrmLogger, type LogContext, MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { pino } from 'pino';
import { migrate, ormConfig, type Orm } from '../db/orm.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { SALE_KINDS } from '../settlement/clearing-items.js';
import { ensureMonthPartition } from '../settlement/clearing-partitions.js';
import { clearWindow, type BatchRow } from '../settlement/clearing.js';
import { closeWindow, ensureWindow, type WindowRow } from '../settlement/windows.js';
import { feeFor } from '../tenancy/fee.js';
import { createCity, createFeePlan } from '../tenancy/tenancy.service.js';
import { type Cleanup, positiveInt, runCleanups, scratchDatabase } from './harness.js';
import { feeRevenueAccount, PAYABLE_ACCOUNT_CODE, payableAccount, settlementInTransitAccount } from '../ledger/accounts.js';

const CURRENCY = 'CNY';
const TIME_ZONE = 'Asia/Shanghai';
const BUSINESS_DAY = '2026-03-02';
/** When the windows are closed: the next morning, after the 02:00 cut-off. */
const CLOSE_AT = new Date('2026-03-03T09:00:00+08:00');
const CUTOFF = '02:00';
/** The larger city's share of the day's items, merchants and billers. */
const CITY_A_SHARE = 0.6;
/** Cards issued by the other city's card company, on sales and refunds. */
const CROSS_CITY = 0.05;
const SALES = `(${SALE_KINDS.map((k) => `'${k}'`).join(',')})`;

/**
 * The day's mix, by cumulative share of items: transit fares (many, small), card payments at
 * merchants, offline purchases, bill payments, refunds, top-ups of cards, and the rare top-up
 * refund (and failed one). Amounts in minor units (fen).
 */
const KIND_OF = `case when r_kind < 0.45 then 'TRANSIT' when r_kind < 0.70 then 'PAYMENT' when r_kind < 0.84 then 'PURCHASE'
  when r_kind < 0.88 then 'BILL_PAYMENT' when r_kind < 0.91 then 'REFUND' when r_kind < 0.995 then 'TOP_UP'
  when r_kind < 0.999 then 'TOP_UP_REFUND' else 'TOP_UP_REFUND_FAILED' end`;
const AMOUNT_OF = `case kind
  when 'TRANSIT' then 100 + floor(r_amt * 8)::bigint * 50
  when 'PAYMENT' then floor(500 * power(200, r_amt))::bigint
  when 'PURCHASE' then floor(200 * power(100, r_amt))::bigint
  when 'BILL_PAYMENT' then floor(3000 * power(50, r_amt))::bigint
  when 'REFUND' then floor(500 * power(40, r_amt))::bigint
  when 'TOP_UP' then (array[2000, 5000, 10000, 20000, 50000]::bigint[])[1 + floor(r_amt * 5)::int]
  else floor(1000 * power(20, r_amt))::bigint end`;
/** Entry keys and references shaped like the services' (`payment:<uuid>`, `top-up:<uuid>:paid`, …). */
const ENTRY_KEY_OF = `case kind
  when 'PAYMENT' then 'payment:' || ref when 'REFUND' then 'payment-refund:' || ref || ':' || ref
  when 'PURCHASE' then 'card-session:' || ref when 'TRANSIT' then 'card-session:' || ref
  when 'BILL_PAYMENT' then 'bill-payment:' || ref when 'TOP_UP' then 'top-up:' || ref || ':paid'
  when 'TOP_UP_REFUND' then 'top-up:' || ref || ':refund:1' else 'top-up:' || ref || ':refund:1:failed' end`;

interface Options {
  transactions: number;
  merchants: number;
  billers: number;
  /** Items per generating statement. */
  chunk: number;
  /** Generating statements run at once (connections). */
  loadClients: number;
  /** ANALYZE clearing_item right after closing (timed with close). */
  analyze: boolean;
  keep: boolean;
}

interface City {
  no: number;
  code: string;
  cityId: string;
  cardCompanyId: string;
  merchants: number;
  billers: number;
}

interface PhaseTime {
  seconds: number;
  itemsPerSec: number;
}

interface StatementTime {
  statement: string;
  count: number;
  ms: number;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('settlement.bench')
    .description('Time to close and clear one generated business day against a bare SQL aggregation of the same items')
    .option('--transactions <n>', 'clearing items in the day (over both cities)', positiveInt, 1_000_000)
    .option('--merchants <m>', 'merchants over the two cities (60 % / 40 %)', positiveInt, 4_000)
    .option('--billers <b>', 'billers over the two cities', positiveInt, 40)
    .option('--chunk <n>', 'items per generating insert statement', positiveInt, 500_000)
    .option('--load-clients <n>', 'generating statements run at once', positiveInt, 2)
    .option('--analyze', 'ANALYZE clearing_item right after closing, timed with close (what closeWindow could do)', false)
    .option('--keep', 'after the run, keep the database and wait for Ctrl-C (to look at it with psql)', false)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.')
    .parse(argv);
  const opts = program.opts<Options>();
  if (opts.merchants < 2 || opts.billers < 2) program.error('--merchants and --billers must be at least 2 (one per city)');
  return opts;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const int = (n: number | bigint) => n.toLocaleString('en-US');
function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
}

/**
 * Records the time MikroORM measured for each statement while `recording` is set, grouped by the
 * statement's start: it gets every statement through the slow-query hook (threshold 0 ms), which
 * costs nothing when not recording. Times are whole milliseconds (Date.now()).
 */
class StatementRecorder implements OrmLogger {
  recording = false;
  private times = new Map<string, StatementTime>();
  log(): void {}
  error(): void {}
  warn(): void {}
  setDebugMode(): void {}
  isEnabled(): boolean {
    return true;
  }
  logQuery(context: LogContext): void {
    if (!this.recording || !context.query) return;
    const statement = context.query.replace(/\s+/g, ' ').trim().slice(0, 90);
    const t = this.times.get(statement) ?? { statement, count: 0, ms: 0 };
    t.count++;
    t.ms += context.took ?? 0;
    this.times.set(statement, t);
  }
  take(): StatementTime[] {
    const all = [...this.times.values()].sort((a, b) => b.ms - a.ms);
    this.times = new Map();
    return all;
  }
}

/** Runs `work` over `items` with at most `width` at a time. */
async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Two cities with their card companies, fee plans, merchants and billers (participant numbers in `bench_participant`). */
async function setUpTenants(orm: Orm, opts: Options): Promise<City[]> {
  const em = orm.em.fork();
  const cities: City[] = [];
  const merchantsA = Math.round(opts.merchants * CITY_A_SHARE);
  const billersA = Math.round(opts.billers * CITY_A_SHARE);
  for (const [no, code] of [[0, 'BENCHA'], [1, 'BENCHB']] as const) {
    const { city, cardCompany } = await createCity(em, { code, name: `Bench city ${code}`, timeZone: TIME_ZONE, currency: CURRENCY, cardCompanyName: `${code} Card Co` });
    cities.push({
      no,
      code,
      cityId: city.id,
      cardCompanyId: cardCompany.id,
      merchants: no === 0 ? merchantsA : opts.merchants - merchantsA,
      billers: no === 0 ? billersA : opts.billers - billersA,
    });
  }
  const plan = async (name: string, basisPoints: number, fixedFee: bigint, minimumFee: bigint) => (await createFeePlan(em, { name, basisPoints, fixedFee, minimumFee, currency: CURRENCY })).id;
  const retail = await plan('bench retail 0.60 % + 0.03, at least 0.10', 60, 3n, 10n);
  const large = await plan('bench large retail 0.38 %', 38, 0n, 0n);
  const small = await plan('bench small shop 0.80 %, at least 0.05', 80, 0n, 5n);
  const transit = await plan('bench transit 1.00 %', 100, 0n, 0n);
  const bills = await plan('bench bills 0.20 % + 0.50', 20, 50n, 0n);
  await em.execute(`update card_company set fee_plan_id = ? where id in (?)`, [transit, cities.map((c) => c.cardCompanyId)]);

  await em.execute(`create table bench_city (no int primary key, city_id uuid not null, card_company_id uuid not null, merchants int not null, billers int not null)`);
  for (const c of cities) await em.execute(`insert into bench_city values (?, ?, ?, ?, ?)`, [c.no, c.cityId, c.cardCompanyId, c.merchants, c.billers]);
  await em.execute(`create table bench_participant (kind text not null, city_no int not null, n int not null, id uuid not null, primary key (kind, city_no, n))`);
  await em.execute(
    `insert into bench_participant (kind, city_no, n, id)
     select 'MERCHANT', c.no, n, gen_random_uuid() from bench_city c, generate_series(0, c.merchants - 1) n
     union all select 'BILLER', c.no, n, gen_random_uuid() from bench_city c, generate_series(0, c.billers - 1) n
     union all select 'CARD_COMPANY', c.no, 0, c.card_company_id from bench_city c`,
  );
  // Most merchants on a plan: the busiest 5 % on large retail, one in ten on none, the rest on retail or small shop.
  await em.execute(
    `insert into merchant (id, city_id, currency, name, fee_plan_id, status)
     select p.id, c.city_id, ?, 'Bench merchant ' || p.n,
            case when p.n < c.merchants * 0.05 then ?::uuid when p.n % 10 = 9 then null when p.n % 3 = 0 then ?::uuid else ?::uuid end, 'ACTIVE'
       from bench_participant p join bench_city c on c.no = p.city_no where p.kind = 'MERCHANT'`,
    [CURRENCY, large, small, retail],
  );
  await em.execute(
    `insert into biller (id, city_id, currency, name, kind, fee_plan_id, status)
     select p.id, c.city_id, ?, 'Bench biller ' || p.n, (array['WATER','GAS','HEATING','ELECTRICITY','TELECOM'])[1 + p.n % 5], ?, 'ACTIVE'
       from bench_participant p join bench_city c on c.no = p.city_no where p.kind = 'BILLER'`,
    [CURRENCY, bills],
  );
  return cities;
}

/** The payable account of every participant, opened as clearing opens it. */
async function openPayables(orm: Orm): Promise<void> {
  const participants = await orm.em.fork().execute<{ kind: string; id: string }[]>(`select kind, id from bench_participant order by kind, id`);
  await inParallel(participants, 4, async (p) => {
    await payableAccount(orm.em.fork(), p.kind, p.id, CURRENCY);
  });
}

/** The constraints and indexes of clearing_item other than its primary key, as PostgreSQL would recreate them. */
async function secondaryStructures(pool: pg.Pool): Promise<{ constraints: { name: string; def: string }[]; indexes: { name: string; def: string }[] }> {
  const constraints = await pool.query<{ name: string; def: string }>(
    `select conname as name, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'clearing_item'::regclass and contype in ('u', 'f') order by contype desc, conname`,
  );
  const indexes = await pool.query<{ name: string; def: string }>(
    `select c.relname as name, pg_get_indexdef(i.indexrelid) as def from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid = 'clearing_item'::regclass and not i.indisprimary
        and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)
      order by c.relname`,
  );
  return { constraints: constraints.rows, indexes: indexes.rows };
}

/**
 * The day's items, set-based: the secondary indexes and constraints come off for the load and are
 * built again afterwards (as they were), then VACUUM ANALYZE, as autovacuum would have left a
 * table filled over a day. Returns the seconds of the inserts and of the rebuild.
 */
async function generateItems(pool: pg.Pool, opts: Options): Promise<{ insert: number; rebuild: number }> {
  const { constraints, indexes } = await secondaryStructures(pool);
  for (const c of constraints) await pool.query(`alter table clearing_item drop constraint ${c.name}`);
  for (const i of indexes) await pool.query(`drop index ${i.name}`);

  const t0 = process.hrtime.bigint();
  const chunks: { no: number; from: number; to: number }[] = [];
  for (let from = 1, no = 0; from <= opts.transactions; from += opts.chunk, no++) chunks.push({ no, from, to: Math.min(opts.transactions, from + opts.chunk - 1) });
  let done = 0;
  await inParallel(chunks, opts.loadClients, async (chunk) => {
    const conn = await pool.connect();
    try {
      await conn.query(`select setseed($1)`, [((chunk.no * 7919) % 1000) / 1000]);
      await conn.query(
        `insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference, gateway_reference)
         select c.city_id, $3::date, w.id, t.kind, t.pkind, p.id,
                case when t.kind like 'TOP_UP%' or t.r_card >= $4 then c.card_company_id else o.card_company_id end,
                t.amount, $5, ($3::date + t.r_time * interval '1 day') at time zone $6, t.entry_key, t.ref,
                case when t.kind = 'TOP_UP' then 'ch_' || t.g when t.kind like 'TOP_UP_REFUND%' then 're_' || t.g end
           from (select k.*, ${AMOUNT_OF} as amount, ${ENTRY_KEY_OF} as entry_key,
                        case kind when 'BILL_PAYMENT' then 'BILLER' when 'TRANSIT' then 'CARD_COMPANY' when 'TOP_UP' then 'CARD_COMPANY'
                                  when 'TOP_UP_REFUND' then 'CARD_COMPANY' when 'TOP_UP_REFUND_FAILED' then 'CARD_COMPANY' else 'MERCHANT' end as pkind,
                        -- merchants: the low numbers are the busy ones; billers: evenly
                        case when kind = 'BILL_PAYMENT' then r_who else r_who * r_who end as x
                   from (select s.*, ${KIND_OF} as kind, case when r_city < $7 then 0 else 1 end as city_no
                           from (select g, random() as r_kind, random() as r_who, random() as r_amt, random() as r_city, random() as r_card, random() as r_time,
                                        gen_random_uuid()::text as ref
                                   from generate_series($1::bigint, $2::bigint) g) s) k) t
           join bench_city c on c.no = t.city_no
           join bench_city o on o.no = 1 - t.city_no
           -- the city's open window of the day, as recordClearingItem writes each item into it
           join settlement_window w on w.city_id = c.city_id and w.business_day = $3::date and w.status = 'OPEN'
           join bench_participant p on p.kind = t.pkind and p.city_no = t.city_no
                and p.n = floor(t.x * case t.pkind when 'MERCHANT' then c.merchants when 'BILLER' then c.billers else 1 end)::int`,
        [chunk.from, chunk.to, BUSINESS_DAY, CROSS_CITY, CURRENCY, TIME_ZONE, CITY_A_SHARE],
      );
    } finally {
      conn.release();
    }
    done += chunk.to - chunk.from + 1;
    if (chunks.length > 1) console.log(`  generated ${int(done)} of ${int(opts.transactions)} items (${fmt(seconds(t0), 1)} s)`);
  });
  const insert = seconds(t0);

  const t1 = process.hrtime.bigint();
  const conn = await pool.connect();
  try {
    await conn.query(`set maintenance_work_mem = '1GB'`);
    // A partitioned table's index definition reads ON ONLY (the parent alone): built ON the table, it is built on every partition.
    for (const i of indexes) await conn.query(i.def.replace(' ON ONLY ', ' ON '));
    for (const c of constraints) await conn.query(`alter table clearing_item add constraint ${c.name} ${c.def}`);
    await conn.query(`vacuum (analyze) clearing_item`);
  } finally {
    conn.release();
  }
  return { insert, rebuild: seconds(t1) };
}

/** One ledger entry per participant: its window total (sales less refunds) from the card purses into its payable. */
async function fundPayables(orm: Orm): Promise<number> {
  const em = orm.em.fork();
  const purses = await openAccount(em, { code: `bench.card-purses.${CURRENCY}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: CURRENCY });
  const totals = await em.execute<{ participant_kind: string; participant_id: string; total: string }[]>(
    `select participant_kind, participant_id,
            coalesce(sum(amount) filter (where kind in ${SALES}), 0) - coalesce(sum(amount) filter (where kind = 'REFUND'), 0) as total
       from clearing_item group by participant_kind, participant_id`,
  );
  const codes = totals.map((t) => PAYABLE_ACCOUNT_CODE[t.participant_kind]!(t.participant_id, CURRENCY));
  const ids = new Map((await em.execute<{ id: string; code: string }[]>(`select id, code from ledger_account where code in (?)`, [codes])).map((a) => [a.code, a.id]));
  const funded = totals.filter((t) => BigInt(t.total) !== 0n);
  await inParallel(funded, 4, async (t) => {
    const payable = ids.get(PAYABLE_ACCOUNT_CODE[t.participant_kind]!(t.participant_id, CURRENCY))!;
    const amount = BigInt(t.total);
    await post(orm.em.fork(), {
      key: `bench.day:${t.participant_kind}:${t.participant_id}`,
      description: `the bench day's sales less refunds of ${t.participant_kind.toLowerCase()} ${t.participant_id}`,
      lines: amount > 0n ? [debit(purses.id, amount), credit(payable, amount)] : [debit(payable, -amount), credit(purses.id, -amount)],
    });
  });
  return funded.length;
}

/** The floor: one bare aggregation of the window's items. */
async function floorOf(pool: pg.Pool, windowId: string): Promise<number> {
  const r = await pool.query(`select participant_kind, participant_id, count(*), sum(amount) from clearing_item where window_id = $1 group by participant_kind, participant_id`, [windowId]);
  return r.rowCount ?? 0;
}

/** The floor's plan, as node types from the top (e.g. `HashAggregate < Seq Scan`). */
async function floorPlan(pool: pg.Pool, windowId: string): Promise<string> {
  const r = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
    `explain (format json) select participant_kind, participant_id, count(*), sum(amount) from clearing_item where window_id = $1 group by participant_kind, participant_id`,
    [windowId],
  );
  const names: string[] = [];
  for (let node: PlanNode | undefined = r.rows[0]!['QUERY PLAN'][0].Plan; node; node = node.Plans?.[0]) {
    names.push(`${node['Partial Mode'] && node['Partial Mode'] !== 'Simple' ? `${node['Partial Mode']} ` : ''}${node['Node Type']}${node['Index Name'] ? ` (${node['Index Name']})` : ''}`);
  }
  return names.join(' < ');
}

interface PlanNode {
  'Node Type': string;
  'Partial Mode'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** The batches against sums computed over the items another way, the payouts, and the ledger. */
async function verify(orm: Orm, pool: pg.Pool, cities: City[], windows: WindowRow[], batches: BatchRow[]): Promise<string[]> {
  const problems: string[] = [];
  const em = orm.em.fork();
  const expect = (what: string, got: unknown, want: unknown) => {
    if (String(got) !== String(want)) problems.push(`${what}: ${String(got)}, expected ${String(want)}`);
  };
  for (const [i, city] of cities.entries()) {
    const window = windows[i]!;
    const batch = batches[i]!;
    const [day] = (
      await pool.query<Record<string, string>>(
        `select count(*) filter (where kind in ${SALES}) + count(*) filter (where kind in ('REFUND', 'TOP_UP')) as item_count,
                coalesce(sum(amount) filter (where kind in ${SALES}), 0) as gross, coalesce(sum(amount) filter (where kind = 'REFUND'), 0) as refunds,
                coalesce(sum(amount) filter (where kind = 'TOP_UP'), 0) as top_ups,
                coalesce(sum(amount) filter (where kind = 'TOP_UP_REFUND'), 0) - coalesce(sum(amount) filter (where kind = 'TOP_UP_REFUND_FAILED'), 0) as top_up_refunds,
                count(*) filter (where window_id is distinct from $3) as elsewhere,
                (select count(*) from (select distinct participant_kind, participant_id from clearing_item where city_id = $1 and business_day = $2::date) d) as participants
           from clearing_item where city_id = $1 and business_day = $2::date`,
        [city.cityId, BUSINESS_DAY, window.id],
      )
    ).rows;
    const w = `${city.code} batch`;
    expect(`${city.code} items not in the window`, day!.elsewhere, 0);
    for (const k of ['item_count', 'gross', 'refunds', 'top_ups', 'top_up_refunds'] as const) expect(`${w} ${k}`, batch[k], day![k]);

    // Fees by feeFor() itself, over (plan, amount) groups of the sale items.
    const groups = await pool.query<{ basis_points: number; fixed_fee: string; minimum_fee: string; amount: string; n: string }>(
      `select fp.basis_points, fp.fixed_fee, fp.minimum_fee, i.amount, count(*) as n
         from clearing_item i
         left join merchant m on i.participant_kind = 'MERCHANT' and m.id = i.participant_id
         left join biller b on i.participant_kind = 'BILLER' and b.id = i.participant_id
         left join card_company cc on i.participant_kind = 'CARD_COMPANY' and cc.id = i.participant_id
         join fee_plan fp on fp.id = coalesce(m.fee_plan_id, b.fee_plan_id, cc.fee_plan_id)
        where i.city_id = $1 and i.business_day = $2::date and i.kind in ${SALES}
        group by 1, 2, 3, 4`,
      [city.cityId, BUSINESS_DAY],
    );
    let fees = 0n;
    for (const g of groups.rows) fees += BigInt(g.n) * feeFor({ basisPoints: g.basis_points, fixedFee: BigInt(g.fixed_fee), minimumFee: BigInt(g.minimum_fee) }, BigInt(g.amount));
    expect(`${w} fees`, batch.fees, fees);

    const [lines] = (
      await pool.query<Record<string, string>>(
        `select count(*) as n, sum(net) as net, sum(payout_amount) as payout, count(*) filter (where payout_amount > 0) as paying,
                (select count(*) from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = $1) as payouts,
                (select coalesce(sum(p.amount), 0) from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = $1) as payout_sum
           from settlement_line where batch_id = $1`,
        [batch.id],
      )
    ).rows;
    expect(`${w} lines`, lines!.n, day!.participants);
    expect(`${w} net`, batch.net, BigInt(day!.gross!) - BigInt(day!.refunds!) - fees);
    expect(`${w} payout total`, batch.payout_total, lines!.payout);
    expect(`${w} payouts`, lines!.payouts, lines!.paying);
    expect(`${w} payout sum`, lines!.payout_sum, lines!.payout);

    // Interchange: what the other city's cards spent here, less their refunds.
    const visiting = (
      await pool.query<{ issuer: string; n: string; net: string }>(
        `select card_company_id as issuer, count(*) as n, sum(case when kind = 'REFUND' then -amount else amount end) as net
           from clearing_item where city_id = $1 and business_day = $2::date and card_company_id <> $3 and (kind in ${SALES} or kind = 'REFUND')
          group by 1`,
        [city.cityId, BUSINESS_DAY, city.cardCompanyId],
      )
    ).rows;
    const positions = (await pool.query<{ issuer_id: string; acquirer_id: string; count: string; net: string }>(`select issuer_id, acquirer_id, count, net from interchange_position where batch_id = $1`, [batch.id])).rows;
    expect(`${w} interchange positions`, positions.length, visiting.length);
    for (const v of visiting) {
      const p = positions.find((x) => x.issuer_id === v.issuer && x.acquirer_id === city.cardCompanyId);
      expect(`${w} interchange ${v.issuer} count/net`, p ? `${p.count}/${p.net}` : 'none', `${v.n}/${v.net}`);
    }
  }

  // Each payable keeps exactly what its line did not move: its due less its payout (nothing was carried in).
  const lines = (await pool.query<{ participant_kind: string; participant_id: string; due: string; payout_amount: string }>(
    `select participant_kind, participant_id, due, payout_amount from settlement_line where batch_id = any($1)`,
    [batches.map((b) => b.id)],
  )).rows;
  const balances = new Map(
    (await em.execute<{ code: string; balance: string }[]>(`select code, balance::text as balance from ledger_account where code in (?)`, [
      lines.map((l) => PAYABLE_ACCOUNT_CODE[l.participant_kind]!(l.participant_id, CURRENCY)),
    ])).map((a) => [a.code, a.balance]),
  );
  let wrong = 0;
  for (const l of lines) {
    const code = PAYABLE_ACCOUNT_CODE[l.participant_kind]!(l.participant_id, CURRENCY);
    if (balances.get(code) !== String(BigInt(l.due) - BigInt(l.payout_amount))) {
      if (wrong++ < 5) problems.push(`PAYABLE ${code}: balance ${balances.get(code)}, expected ${BigInt(l.due) - BigInt(l.payout_amount)}`);
    }
  }
  if (wrong > 5) problems.push(`PAYABLE: ${wrong - 5} more`);
  const sum = (k: 'fees' | 'payout_total') => batches.reduce((s, b) => s + BigInt(b[k]), 0n);
  expect('fee revenue balance', await balance(em, (await feeRevenueAccount(em, CURRENCY)).id), sum('fees'));
  expect('settlement in transit balance', await balance(em, (await settlementInTransitAccount(em, CURRENCY)).id), sum('payout_total'));
  for (const p of await checkLedger(em)) problems.push(`${p.rule} ${p.subject}: ${p.detail}`);
  return problems;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const cleanups: Cleanup[] = [];
  let stopping = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stopping = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let exitCode = 0;
  try {
    const { url, where } = await scratchDatabase(log, cleanups);
    const statements = new StatementRecorder();
    const orm = await MikroORM.init({ ...ormConfig(url, { poolMax: 8 }), slowQueryThreshold: 0, slowQueryLoggerFactory: () => statements });
    cleanups.unshift({ what: 'close MikroORM', run: () => orm.close(true) });
    await migrate(orm);
    // The day's month has its partition, as the partitions job makes it ahead in production.
    await ensureMonthPartition(orm.em.fork(), BUSINESS_DAY.slice(0, 7));
    const pool = new pg.Pool({ connectionString: url, max: Math.max(2, opts.loadClients) });
    cleanups.unshift({ what: 'end pg pool', run: () => pool.end() });
    const server = (await pool.query<{ server_version: string; work_mem: string; shared_buffers: string }>(`select current_setting('server_version') as server_version, current_setting('work_mem') as work_mem, current_setting('shared_buffers') as shared_buffers`)).rows[0]!;

    console.log(
      `settlement bench: ${int(opts.transactions)} items in one business day, 2 cities, ${int(opts.merchants)} merchants, ${int(opts.billers)} billers; ` +
        `PostgreSQL ${server.server_version} (${where}; shared_buffers ${server.shared_buffers}, work_mem ${server.work_mem}), node ${process.version}, ${os.availableParallelism()} cpus`,
    );
    const tSetup = process.hrtime.bigint();
    const cities = await setUpTenants(orm, opts);
    await openPayables(orm);
    const setup = seconds(tSetup);
    // The day's windows are open before the day's first item, as the settlement job opens them.
    for (const c of cities) await ensureWindow(orm.em.fork(), c.cityId, BUSINESS_DAY, CUTOFF);
    const generated = await generateItems(pool, opts);
    const [{ count: itemsInTable, bytes }] = (await pool.query<{ count: string; bytes: string }>(`select count(*) as count, (select sum(pg_total_relation_size(relid)) from pg_partition_tree('clearing_item')) as bytes from clearing_item`)).rows as [{ count: string; bytes: string }];
    const items = Number(itemsInTable);
    const tFund = process.hrtime.bigint();
    const fundedParticipants = await fundPayables(orm);
    const funding = seconds(tFund);
    console.log(
      `set-up ${fmt(setup, 1)} s; generated ${int(items)} items in ${fmt(generated.insert, 1)} s (${int(Math.round(items / generated.insert))} items/s), ` +
        `indexes, constraints and VACUUM ANALYZE ${fmt(generated.rebuild, 1)} s, table with indexes ${fmt(Number(bytes) / 2 ** 30, 2)} GiB; ` +
        `${int(fundedParticipants)} payables funded in ${fmt(funding, 1)} s`,
    );
    if (stopping) throw new Error('interrupted');

    // Timed: close each city's day (the assignment UPDATE), then clear each window.
    statements.recording = true;
    const windows: WindowRow[] = [];
    const tClose = process.hrtime.bigint();
    for (const c of cities) windows.push(await closeWindow(orm.em.fork(), { cityId: c.cityId, businessDay: BUSINESS_DAY, closedBy: 'bench', cutoff: CUTOFF, now: CLOSE_AT }));
    let close = seconds(tClose);
    const closeStatements = statements.take();
    statements.recording = false;
    // --analyze: what closeWindow could do last, so the planner knows the window's rows (timed as part of close).
    let analyzeAfterClose: number | undefined;
    if (opts.analyze) {
      const tAnalyze = process.hrtime.bigint();
      await pool.query(`analyze clearing_item`);
      analyzeAfterClose = seconds(tAnalyze);
      close += analyzeAfterClose;
    }
    const bytesAfterClose = Number((await pool.query<{ bytes: string }>(`select sum(pg_total_relation_size(relid)) as bytes from pg_partition_tree('clearing_item')`)).rows[0]!.bytes);

    // The first read after the UPDATE sets the new rows' hint bits (and writes those pages). The
    // floor takes that once, before clearing, with the statistics clearing will plan with.
    const planAsCleared = await floorPlan(pool, windows[0]!.id);
    const tFirst = process.hrtime.bigint();
    for (const w of windows) await floorOf(pool, w.id);
    const floorFirst = seconds(tFirst);

    statements.recording = true;
    const batches: BatchRow[] = [];
    const tClear = process.hrtime.bigint();
    for (const w of windows) batches.push(await clearWindow(orm.em.fork(), w.id));
    const clear = seconds(tClear);
    const clearStatements = statements.take();
    statements.recording = false;

    // The floor proper: fresh statistics (ANALYZE, untimed), warm pages.
    await pool.query(`analyze clearing_item`);
    const planFloor = await floorPlan(pool, windows[0]!.id);
    const tFloor = process.hrtime.bigint();
    let floorGroups = 0;
    for (const w of windows) floorGroups += await floorOf(pool, w.id);
    const floor = seconds(tFloor);
    if (stopping) throw new Error('interrupted');

    const phase = (s: number): PhaseTime => ({ seconds: s, itemsPerSec: items / s });
    const result = {
      close: phase(close),
      clear: phase(clear),
      floor: phase(floor),
      floorFirstRead: phase(floorFirst),
      analyzeAfterCloseSeconds: analyzeAfterClose ?? null,
      floorPlan: planFloor,
      floorPlanAsCleared: planAsCleared,
    };
    const ratio = { clear: floor / clear, closeAndClear: floor / (close + clear) };
    const rows = [
      ['phase', 'seconds', 'items/s'],
      [`close (closeWindow, 2 cities${analyzeAfterClose === undefined ? '' : `, then ANALYZE ${fmt(analyzeAfterClose, 2)} s`})`, fmt(close, 2), int(Math.round(items / close))],
      ['clear (clearWindow, 2 windows)', fmt(clear, 2), int(Math.round(items / clear))],
      ['floor (bare group by, 2 windows)', fmt(floor, 2), int(Math.round(items / floor))],
      ['floor, first read after close', fmt(floorFirst, 2), int(Math.round(items / floorFirst))],
    ];
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
    console.log(
      `ratio ours/bare (floor time / our time): clear ${fmt(ratio.clear, 3)} (clearing takes ${fmt(1 / ratio.clear, 1)}× the floor), ` +
        `close + clear ${fmt(ratio.closeAndClear, 3)} (${fmt(1 / ratio.closeAndClear, 1)}×); table ${fmt(Number(bytes) / 2 ** 30, 2)} → ${fmt(bytesAfterClose / 2 ** 30, 2)} GiB after close`,
    );
    console.log(`floor plan: ${planFloor}; with the statistics clearing planned with: ${planAsCleared}`);
    const top = (list: StatementTime[], total: number) =>
      list
        .slice(0, 6)
        .map((s) => `    ${fmt(s.ms / 1000, 2).padStart(8)} s  ${String(s.count).padStart(5)}×  ${s.statement}`)
        .concat(`    ${fmt(Math.max(0, total - list.reduce((t, s) => t + s.ms / 1000, 0)), 2).padStart(8)} s         outside statements (transactions, node)`);
    console.log(`close, by statement (${closeStatements.reduce((n, s) => n + s.count, 0)} statements):`);
    for (const line of top(closeStatements, close)) console.log(line);
    console.log(`clear, by statement (${clearStatements.reduce((n, s) => n + s.count, 0)} statements):`);
    for (const line of top(clearStatements, clear)) console.log(line);
    console.log(
      JSON.stringify({
        bench: 'settlement',
        transactions: opts.transactions,
        items,
        merchants: opts.merchants,
        billers: opts.billers,
        node: process.version,
        postgres: server.server_version,
        cpus: os.availableParallelism(),
        generate: { setupSeconds: setup, insertSeconds: generated.insert, rebuildSeconds: generated.rebuild, fundingSeconds: funding, tableBytes: Number(bytes), tableBytesAfterClose: bytesAfterClose },
        ...result,
        ratio,
        floorGroups,
        lines: Number((await pool.query<{ n: string }>(`select count(*) as n from settlement_line`)).rows[0]!.n),
        closeStatements: closeStatements.slice(0, 6),
        clearStatements: clearStatements.slice(0, 6),
      }),
    );

    const tVerify = process.hrtime.bigint();
    const problems = await verify(orm, pool, cities, windows, batches);
    if (problems.length) {
      console.error(`settlement check: ${problems.length} problem(s)`);
      for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
      exitCode = 1;
    } else {
      console.log(
        `settlement check: ok (${fmt(seconds(tVerify), 1)} s: batch totals, fees by feeFor(), a line per participant, payouts, interchange, payables, ledger invariants over the whole ledger)`,
      );
    }

    if (opts.keep && !stopping) {
      console.log(`--keep: the database is ${url}; Ctrl-C ends the bench and removes it`);
      await new Promise<void>((resolve) => {
        const alive = setInterval(() => {}, 60_000); // nothing else keeps node running meanwhile
        wake = () => {
          clearInterval(alive);
          resolve();
        };
      });
    }
  } catch (err) {
    console.error('settlement bench failed:', err);
    exitCode = 1;
  } finally {
    if (!(await runCleanups(cleanups))) exitCode = 1;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

process.exitCode = await main();
