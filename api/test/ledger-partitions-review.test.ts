/**
 * Review of s21-ledpart: regressions found in the ledger partitions and archive-ledger.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createProgram } from '../src/cli/program.js';
import { migrate, openOrm } from '../src/db/orm.js';
import { archiveLedgerMonth } from '../src/ledger/ledger-archive.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createLedgerPartitionsAhead, ensureLedgerMonthPartitions } from '../src/ledger/ledger-partitions.js';
import { balance, balanceAt, credit, debit, openAccount, post, postMany, reverse } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
let em: EntityManager;
let dataDir: string;
const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY };

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-ledger-partitions-'));
  process.env.ONECARD_DATA_DIR = dataDir;
  process.env.DATABASE_URL = db.url;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = TEST_KEK;
});
afterAll(async () => {
  for (const [name, value] of [['DATABASE_URL', saved.url], ['ONECARD_KEY_ENCRYPTION_KEY', saved.kek]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  delete process.env.ONECARD_DATA_DIR;
  await fs.rm(dataDir, { recursive: true, force: true });
  await db.close();
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

/** Runs `onecard <args>` in-process: what it printed (stdout, stderr) and its exit code. */
async function onecard(...args: string[]): Promise<{ out: string; err: string; exitCode: number }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts) => void out.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void err.push(parts.join(' ')));
  await createProgram().exitOverride().parseAsync(['node', 'onecard', ...args]);
  return { out: out.join('\n'), err: err.join('\n'), exitCode: Number(process.exitCode ?? 0) };
}

let n = 0;
const account = (type: AccountType, nonNegative = false) =>
  openAccount(em, { code: `ledpart.${++n}`, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative }).then((a) => a.id);

/**
 * A transfer booked at a past instant, as post() books it (key, entry, postings with their entry's
 * posted_at, balances moved): post() itself takes the database's clock, which a test cannot turn back.
 */
async function bookAt(at: string, key: string, from: string, to: string, amount: bigint): Promise<string> {
  return em.transactional(async (tx) => {
    const id = randomUUID();
    await tx.execute(
      `with k as (insert into journal_entry_key (entry_key, entry_id, posted_at) values (?, ?, ?::timestamptz) returning entry_key, entry_id, posted_at)
       insert into journal_entry (id, entry_key, description, posted_at) select entry_id, entry_key, 'booked at', posted_at from k`,
      [key, id, at],
    );
    const moved: string[] = [];
    for (const [account, amt] of [[from, amount], [to, -amount]] as const) {
      const [a] = await tx.execute<{ type: string }[]>(`select type from ledger_account where id = ?`, [account]);
      const delta = ['ASSET', 'EXPENSE'].includes(a!.type) ? amt : -amt;
      const [row] = await tx.execute<{ balance: string }[]>(`update ledger_account set balance = balance + ? where id = ? returning balance`, [delta.toString(), account]);
      moved.push(row!.balance);
    }
    await tx.execute(
      `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at) values (?, 0, ?, ?, 'CNY', ?, ?::timestamptz), (?, 1, ?, ?, 'CNY', ?, ?::timestamptz)`,
      [id, from, amount.toString(), moved[0], at, id, to, (-amount).toString(), moved[1], at],
    );
    return id;
  });
}


describe('archive-ledger run twice at once', () => {
  it('a second run of the same month that loses the race does not delete the files of the run that archived it', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-08')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt('2026-08-03T08:00:00Z', 'rev.aug.load', cash, purse, 800n);
    const dir = path.join(dataDir, 'twice');

    // A writer still committing into August holds the first run at its SHARE lock for a moment,
    // long enough for a second run (an operator, a retry, a cron) to pass its FILE_EXISTS check.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const isHolding = new Promise<void>((resolve) => (holding = resolve));
    const writer = db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(`lock table journal_entry_y2026m08 in row exclusive mode`);
      holding();
      await released;
    });
    await isHolding;
    const first = archiveLedgerMonth(db.orm.em.fork(), db.url, { month: '2026-08', dir }).then((r) => r, (err: unknown) => err as Error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = archiveLedgerMonth(db.orm.em.fork(), db.url, { month: '2026-08', dir }).then((r) => r, (err: unknown) => err as Error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await writer;
    const [a, b] = [await first, await second];

    expect(a).toMatchObject({ month: '2026-08', entries: 1, postings: 2 });
    expect(b).toBeInstanceOf(Error);
    expect((b as Error).message).toMatch(/journal_entry_y2026m08.*does not exist/);
    // August has left the database: its partitions are dropped...
    expect(await em.execute(`select to_regclass('posting_y2026m08') is null as gone`)).toEqual([{ gone: true }]);
    // ...so the files are the only copy of its entries and postings. On the branch the second run's
    // `lock table` fails (the partitions are gone), and its catch removes every file of the month.
    expect((await fs.readdir(dir)).sort()).toEqual(['journal_entry-2026-08.tsv', 'ledger-2026-08.manifest.json', 'posting-2026-08.tsv']);
  });
});

describe('archive-ledger beside a post', () => {
  it('while the archive waits behind a long reader of journal_entry (a report, pg_dump), payments of the current month still go through', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-09')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt('2026-09-03T08:00:00Z', 'rev.sep.load', cash, purse, 500n);
    // A reader holds journal_entry (ACCESS SHARE) for a while, as a long report or a backup does.
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let reading!: () => void;
    const isReading = new Promise<void>((resolve) => (reading = resolve));
    const reader = db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(`select count(*) from journal_entry`);
      reading();
      await finished;
    });
    await isReading;
    const archive = archiveLedgerMonth(db.orm.em.fork(), db.url, { month: '2026-09', dir: path.join(dataDir, 'stall') }).then(() => 'archived', (err: unknown) => `failed: ${(err as Error).message}`);
    await new Promise((resolve) => setTimeout(resolve, 500));

    // A payment of today, which touches nothing of September.
    let settled = false;
    const payment = post(db.orm.em.fork(), { key: `rev.stall.${randomUUID()}`, description: 'a payment today', lines: [debit(cash, 5n), credit(purse, 5n)] }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const postedInTime = settled;
    finish();
    await reader;
    await payment.catch(() => undefined);
    await archive;
    // On the branch the archive has dropped posting_y2026m09 (ACCESS EXCLUSIVE on posting, held to its
    // commit) and waits for ACCESS EXCLUSIVE on journal_entry behind the reader: every post() queues
    // on posting until the reader ends.
    expect(postedInTime).toBe(true);
  });
  it('a post() of the current month that is between its entry and its postings when the archive drops the old month is not aborted by a deadlock', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-10')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt('2026-10-03T08:00:00Z', 'rev.oct.load', cash, purse, 1000n);

    // Something else holds the purse for a moment (another payment on the same card): the writer
    // has written its key and entry into this month and waits to move the balances.
    let unlock!: () => void;
    const unlocked = new Promise<void>((resolve) => (unlock = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(`select 1 from ledger_account where id = ? for no key update`, [purse]);
      locked();
      await unlocked;
    });
    await isLocked;
    const writer = post(db.orm.em.fork(), { key: `rev.now.${randomUUID()}`, description: 'a payment today', lines: [debit(cash, 25n), credit(purse, 25n)] });
    const writerResult = writer.then(() => 'posted', (err: unknown) => `failed: ${(err as Error).message}`);
    await new Promise((resolve) => setTimeout(resolve, 400));

    // October is over and settled: the archive runs and reaches its drop/detach meanwhile.
    const archive = archiveLedgerMonth(db.orm.em.fork(), db.url, { month: '2026-10', dir: path.join(dataDir, 'deadlock') });
    const archiveResult = archive.then(() => 'archived', (err: unknown) => `failed: ${(err as Error).message}`);
    // Longer than deadlock_timeout (1 s): the archive has checked for a deadlock once already, found
    // none, and the writer, waking into its postings, is the one PostgreSQL aborts.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    unlock();
    await holder;

    // Both should go through: the payment of today has nothing to do with October. On the branch the
    // archive drops posting_y2026m10 (ACCESS EXCLUSIVE on posting, the parent), then waits for
    // ACCESS EXCLUSIVE on journal_entry, which the writer holds ROW EXCLUSIVE since its entry; the
    // writer's posting insert waits for the archive: deadlock detected, one of the two aborted.
    expect({ writer: await writerResult, archive: await archiveResult }).toEqual({ writer: 'posted', archive: 'archived' });
  });

});

