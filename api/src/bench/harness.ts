/**
 * What every benchmark in this folder shares: its command line, a scratch database and the
 * cleanups, closed-loop phases timed the same way, the CPU of PostgreSQL, the database work per
 * operation (statements and writing commits), and the printing of a phase table and the ratio
 * ours/bare. A bench file holds only its world and its two ways of doing the same work.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { type Logger, pino } from 'pino';
import { startEmbeddedPostgres } from '../db/embedded-postgres.js';

// ——— command line ———

/** A positive integer, `1_000_000` allowed. */
export function positiveInt(value: string): number {
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('Expected a positive integer.');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('Expected a non-negative integer.');
  return n;
}

/** The options every phase bench takes: clients, seconds, warm-up. */
export interface PhaseOptions {
  clients: number;
  seconds: number;
  /** Untimed run of each phase first, so both are measured warm (JIT, plans, pools, tokens). */
  warmup: number;
}

/** A commander program with the shared options of a phase bench and the database note. */
export function benchCommand(name: string, description: string, defaults: { clients: number; clientsHelp: string }): Command {
  return new Command(name)
    .description(description)
    .option('--clients <n>', defaults.clientsHelp, positiveInt, defaults.clients)
    .option('--seconds <s>', 'measured duration of each phase', positiveInt, 10)
    .option('--warmup <s>', 'untimed run of each phase before it is measured', nonNegativeInt, 5)
    .addHelpText('after', '\nUses DATABASE_URL (a scratch database on that server) or else an embedded PostgreSQL in a temp folder.');
}

// ——— running a bench: cleanups, Ctrl-C, exit code ———

/** Undone in reverse order when the bench ends, also on failure or Ctrl-C. */
export interface Cleanup {
  what: string;
  run: () => Promise<unknown>;
}

/** Runs every cleanup (in list order, each whatever the others do); false when one failed. */
export async function runCleanups(cleanups: Cleanup[]): Promise<boolean> {
  let ok = true;
  for (const c of cleanups) {
    try {
      await c.run();
    } catch (err) {
      console.error(`cleanup (${c.what}) failed:`, err);
      ok = false;
    }
  }
  return ok;
}

/** Set by Ctrl-C or SIGTERM: phases stop at their next operation. */
export const interrupted = { now: false };

export interface BenchRun {
  log: Logger;
  /** First in, last undone. */
  cleanups: Cleanup[];
  /** Also called on Ctrl-C (e.g. to tell a worker thread). */
  onInterrupt(handler: () => void): void;
}

/**
 * Runs a bench's body with a logger, the cleanups (always run), and Ctrl-C handling; sets the exit
 * code: 1 when the body throws, returns false (its checks failed) or a cleanup fails.
 */
export async function runBench(name: string, body: (run: BenchRun) => Promise<boolean | void>): Promise<void> {
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const cleanups: Cleanup[] = [];
  const handlers: (() => void)[] = [];
  const onSignal = () => {
    interrupted.now = true;
    for (const h of handlers) h();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let exitCode = 0;
  try {
    if ((await body({ log, cleanups, onInterrupt: (h) => handlers.push(h) })) === false) exitCode = 1;
    if (interrupted.now) throw new Error('interrupted');
  } catch (err) {
    console.error(`${name} bench failed:`, err);
    exitCode = 1;
  } finally {
    if (!(await runCleanups(cleanups))) exitCode = 1;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.exitCode = exitCode;
}

// ——— the scratch database ———

export interface ScratchDatabase {
  /** A fresh, empty database, dropped by the cleanups. */
  url: string;
  /** For the printed set-up line. */
  where: 'embedded' | 'DATABASE_URL';
  /** The embedded PostgreSQL's data folder (its processes can be measured), when one was started. */
  embeddedDataDir?: string;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A scratch database on DATABASE_URL's server or, without it, on an embedded PostgreSQL in a temp
 * folder; everything it made is registered in `cleanups` (first in, last undone).
 */
export async function scratchDatabase(log: Logger, cleanups: Cleanup[]): Promise<ScratchDatabase> {
  let serverUrl = process.env.DATABASE_URL;
  let embeddedDataDir: string | undefined;
  if (!serverUrl) {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-pg-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    await fs.chmod(tmp, 0o755); // PostgreSQL runs as the postgres user when we are root
    embeddedDataDir = path.join(tmp, 'data');
    const embedded = await startEmbeddedPostgres({ dataDir: embeddedDataDir, port: 0, log });
    cleanups.unshift({ what: 'stop embedded PostgreSQL', run: () => embedded.stop() });
    serverUrl = embedded.adminUrl;
  }
  const server = serverUrl;
  const dbName = `onecard_bench_${randomBytes(6).toString('hex')}`;
  const onServer = async (sql: string) => {
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  };
  await onServer(`create database ${dbName}`);
  cleanups.unshift({ what: `drop database ${dbName}`, run: () => onServer(`drop database if exists ${dbName} with (force)`) });
  return { url: withDatabase(server, dbName), where: embeddedDataDir ? 'embedded' : 'DATABASE_URL', ...(embeddedDataDir ? { embeddedDataDir } : {}) };
}

// ——— phases: N closed loops for S seconds ———

/** The p-th percentile of sorted latencies (nearest rank); NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const describeError = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/** Sends `chunks` to `COPY … FROM STDIN` on the bare `pg` driver (what pg-copy-streams does, in a few lines); resolves when the server has stored them. */
export function copyIn(client: pg.PoolClient, sql: string, chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: unknown;
    const submittable = {
      submit(connection: { query(text: string): void }) {
        connection.query(sql);
      },
      async handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void; sendCopyFail(m: string): void }) {
        try {
          for await (const chunk of chunks) connection.sendCopyFromChunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
          connection.endCopyFrom();
        } catch (err) {
          connection.sendCopyFail(describeError(err));
        }
      },
      handleCommandComplete() {},
      handleError(err: unknown) {
        failed = err;
      },
      handleReadyForQuery() {
        if (failed) reject(failed);
        else resolve();
      },
    };
    client.query(submittable as unknown as pg.QueryConfig);
  });
}

/** The calling thread's CPU usage; undefined on a Node without process.threadCpuUsage (before 22.x): CPU figures then print as `-`. */
const threadCpuUsage = (since?: NodeJS.CpuUsage): NodeJS.CpuUsage | undefined => (typeof process.threadCpuUsage === 'function' ? process.threadCpuUsage(since) : undefined);

/** CPU time (ms) of the calling thread, since `since` when given; NaN where Node cannot tell. */
export const threadCpuMs = (since?: NodeJS.CpuUsage) => {
  const u = threadCpuUsage(since);
  return u ? (u.user + u.system) / 1000 : NaN;
};

/** One operation of a loop: `n` is the loop's count so far; fills in how long its named steps took. */
export type Operation = (n: number, steps: Record<string, number>) => Promise<void>;

export interface LoopResult {
  /** Operations that completed. */
  done: number;
  errors: number;
  elapsedMs: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the thread that ran the loops, per completed operation (ms). */
  loopCpuMsPerOp: number;
  /** Per named step of an operation: p50 and p99 (ms). */
  steps?: Record<string, { p50Ms: number; p99Ms: number }>;
  firstError?: string;
}

/** Runs `clients` loops of operations for `ms` milliseconds; measures each operation and each of its named steps. */
export async function runLoops(clients: number, ms: number, operationFor: (c: number) => Operation): Promise<LoopResult> {
  const latencies: number[] = [];
  const stepLatencies = new Map<string, number[]>();
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = threadCpuUsage();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(ms) * 1_000_000n;
  const loop = async (c: number) => {
    const operation = operationFor(c);
    for (let n = 0; !interrupted.now && process.hrtime.bigint() < deadline; n++) {
      const steps: Record<string, number> = {};
      const t0 = process.hrtime.bigint();
      try {
        await operation(n, steps);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        for (const [step, took] of Object.entries(steps)) {
          if (!stepLatencies.has(step)) stepLatencies.set(step, []);
          stepLatencies.get(step)!.push(took);
        }
      } catch (err) {
        errors++;
        firstError ??= describeError(err);
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
    done: latencies.length,
    errors,
    elapsedMs,
    perSec: latencies.length / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    loopCpuMsPerOp: cpuMs / latencies.length,
    ...(stepLatencies.size ? { steps } : {}),
    ...(firstError ? { firstError } : {}),
  };
}

// ——— what it cost: CPU of PostgreSQL and of processes, statements, writing commits ———

/** Reads how much CPU time (ms) a set of processes has used so far. */
export type CpuMeter = () => Promise<number>;

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // Linux's usual USER_HZ
    }
  }
  return ticksPerSecond;
}

async function procStat(pid: string | number) {
  const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state ppid … utime stime cutime cstime (proc(5) fields 3, 4, 14–17).
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
  return { ppid: f[1]!, own: f[11]! + f[12]!, reaped: f[13]! + f[14]! };
}

/**
 * CPU time (ms) of a process and its live children so far, plus what its reaped children used,
 * from /proc. Undefined where there is no /proc.
 */
export function processTreeCpu(rootPid: () => Promise<number>): CpuMeter | undefined {
  if (process.platform !== 'linux') return undefined;
  return async () => {
    const root = String(await rootPid());
    let ticks = 0;
    for (const pid of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const s = await procStat(pid).catch(() => undefined); // gone meanwhile
      if (pid === root) ticks += (s?.own ?? 0) + (s?.reaped ?? 0);
      else if (s && String(s.ppid) === root) ticks += s.own;
    }
    return (ticks * 1000) / clockTicks();
  };
}

/** The embedded PostgreSQL's CPU (the postmaster and its backends), when the bench started one. */
export function postgresCpuOf(dataDir: string | undefined): CpuMeter | undefined {
  if (!dataDir) return undefined;
  return processTreeCpu(async () => Number((await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]));
}

/** What this process has sent to PostgreSQL so far, as counted at the `pg` driver. */
export interface DriverCounts {
  statements: number;
  /** Commits of transactions that ran an insert, update, delete or merge, and such statements run outside a transaction (each its own commit). */
  writingCommits: number;
}

/** A statement's text as the driver got it (a string, or a config object with `text`). */
function statementText(args: unknown[]): string {
  const first = args[0];
  const text = typeof first === 'string' ? first : first && typeof first === 'object' && 'text' in first ? String((first as { text: unknown }).text) : '';
  return text.trimStart().slice(0, 2000).toLowerCase();
}

const WRITE = /^(insert|update|delete|merge)\b|^with\b[\s\S]*\b(insert|update|delete)\b/;

/**
 * Counts every statement sent through the `pg` driver by this process, at `Client.prototype.query`
 * of each copy of `pg` (ours, and the one MikroORM brings), and the commits that wrote: what a
 * phase asks of the database, whatever the machine's load.
 */
/** Set to see each statement's text as the driver gets it (the payments bench's --statements). */
export const statementTap: { sink?: (text: string) => void } = {};

export const driverCounts: () => DriverCounts = (() => {
  const counts: DriverCounts = { statements: 0, writingCommits: 0 };
  const state = new WeakMap<object, { inTransaction: boolean; wrote: boolean }>();
  const require = createRequire(import.meta.url);
  const copies = new Set<typeof pg>([pg]);
  try {
    copies.add(createRequire(require.resolve('@mikro-orm/postgresql'))('pg') as typeof pg);
  } catch {
    // MikroORM uses ours.
  }
  for (const copy of copies) {
    const proto = copy.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const query = proto.query;
    proto.query = function (this: object, ...args: unknown[]) {
      counts.statements++;
      const sentText = statementText(args);
      statementTap.sink?.(sentText);
      let s = state.get(this);
      if (!s) state.set(this, (s = { inTransaction: false, wrote: false }));
      // A begin sent with the transaction's first statement (db/deferred-begin.ts): one round trip,
      // counted once, and the statement behind it counted as what it is.
      const opened = /^(begin|start transaction)\b[^;]*;\s*/.exec(sentText);
      if (opened) Object.assign(s, { inTransaction: true, wrote: false });
      const text = opened ? sentText.slice(opened[0].length) : sentText;
      if (text.startsWith('begin') || text.startsWith('start transaction')) Object.assign(s, { inTransaction: true, wrote: false });
      else if (text.startsWith('commit')) {
        if (s.wrote) counts.writingCommits++;
        Object.assign(s, { inTransaction: false, wrote: false });
      } else if (text.startsWith('rollback') && !text.startsWith('rollback to')) Object.assign(s, { inTransaction: false, wrote: false });
      else if (WRITE.test(text)) {
        if (s.inTransaction) s.wrote = true;
        else counts.writingCommits++;
      }
      return query.apply(this, args);
    };
  }
  return () => ({ ...counts });
})();

/**
 * Transaction ids given out on the database's server so far: the next one, read without taking
 * one. The difference over a phase counts the transactions that wrote, from every process, and
 * each savepoint (subtransaction) that wrote as one more.
 */
export async function transactionIdsGiven(url: string): Promise<bigint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ next: string }>(`select pg_snapshot_xmax(pg_current_snapshot())::text as next`);
    return BigInt(rows[0]!.next);
  } finally {
    await client.end();
  }
}

/** What a phase asked of the database per operation; counted at the driver only when the work ran in this process. */
export interface DatabaseWork {
  statementsPerOp?: number;
  writingCommitsPerOp?: number;
  /** Transaction ids PostgreSQL gave out per operation, from every process: writing transactions and the subtransactions (savepoints) that wrote. */
  transactionIdsPerOp: number;
}

/** Measures what `phase` asked of the database per operation: at the driver (when `inProcess`) and transaction ids (anywhere). */
export async function withDatabaseWork<R extends { done: number }>(url: string, inProcess: boolean, phase: () => Promise<R>): Promise<R & DatabaseWork> {
  const xid0 = await transactionIdsGiven(url);
  const before = driverCounts();
  const result = await phase();
  const after = driverCounts();
  const xids = Number((await transactionIdsGiven(url)) - xid0);
  return {
    ...result,
    ...(inProcess ? { statementsPerOp: (after.statements - before.statements) / result.done, writingCommitsPerOp: (after.writingCommits - before.writingCommits) / result.done } : {}),
    transactionIdsPerOp: xids / result.done,
  };
}

// ——— printing ———

export function fmt(n: number | undefined, digits: number): string {
  return n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** A table with a left-aligned first column, the others right-aligned. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  for (const r of rows) console.log(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
}

/** The ratios ours/bare of throughput and median latency, printed and returned. */
export function printRatio(ours: { perSec: number; p50Ms: number }, bare: { perSec: number; p50Ms: number }, label = 'ours/bare'): { throughput: number; p50: number } {
  const ratio = { throughput: ours.perSec / bare.perSec, p50: ours.p50Ms / bare.p50Ms };
  console.log(`ratio ${label}: throughput ${fmt(ratio.throughput, 3)}, p50 latency ${fmt(ratio.p50, 1)}`);
  return ratio;
}

/** The first error of each phase that had one. */
export function printFirstErrors(phases: [string, { firstError?: string }][]): void {
  for (const [name, r] of phases) if (r.firstError) console.log(`first ${name} error: ${r.firstError}`);
}

/** The set-up line every bench prints first. */
export async function environmentLine(url: string, where: string): Promise<{ line: string; postgres: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const postgres = (await client.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  await client.end();
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return { postgres, line: `PostgreSQL ${postgres} (${where}), node ${process.version}, ${os.availableParallelism()} cpus, load average ${load}` };
}
