/**
 * The ledger's journal_entry and posting partitioned by month of posted_at (issue 23, item 3;
 * docs/scaling.md "Partitions and retention"): the migration moves the entries there before it with
 * their ids; an entry and its postings land in the same month; the job keeps months ahead and moves
 * what the default partition took; `onecard partitions archive-ledger` carries every balance
 * forward, exports and drops a month, and the ledger check still proves every balance; an archived
 * key replayed moves nothing; a post during the archive goes through.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { onecard } from './support/cli.js';
import { migrate, openOrm } from '../src/db/orm.js';
import { archiveLedgerMonth } from '../src/ledger/ledger-archive.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createLedgerPartitionsAhead, ensureLedgerMonthPartitions } from '../src/ledger/ledger-partitions.js';
import { balance, balanceAt, credit, debit, openAccount, post, postMany, reverse } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';
import { bookAt } from './support/ledger.js';

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
let n = 0;
const account = (type: AccountType, nonNegative = false) =>
  openAccount(em, { code: `ledpart.${++n}`, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative }).then((a) => a.id);

/** Which partition holds an entry, and which hold its postings. */
async function partitionsOf(entryId: string): Promise<{ entry: string; postings: string[] }> {
  const [entry] = await em.execute<{ part: string }[]>(`select tableoid::regclass::text as part from journal_entry where id = ?`, [entryId]);
  const postings = await em.execute<{ part: string }[]>(`select distinct tableoid::regclass::text as part from posting where entry_id = ?`, [entryId]);
  return { entry: entry!.part, postings: postings.map((p) => p.part) };
}

/** The opening and the postings kept of an account, as the check adds them (debits positive). */
async function openingAndKept(accountId: string): Promise<{ opening: string | null; kept: string | null }> {
  const [row] = await em.execute<{ opening: string | null; kept: string | null }[]>(
    `select (select balance::text from ledger_opening where account_id = ? and month = (select max(month) from ledger_opening)) as opening,
            (select sum(amount)::text from posting where account_id = ?) as kept`,
    [accountId, accountId],
  );
  return row!;
}

describe('the migration', () => {
  it('moves the entries and postings there before it into monthly partitions with their ids, and the ledger goes on from them', async () => {
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    const name = `${inject('testDatabasePrefix')}${randomBytes(6).toString('hex')}`;
    await admin.query(`create database ${name}`);
    const url = new URL(inject('pgAdminUrl'));
    url.pathname = `/${name}`;
    const orm = await openOrm(url.toString());
    try {
      await orm.migrator.up({ to: 'Migration20261207002800_session_read_notices' });
      const old = orm.em.fork();
      const open = (code: string, type: AccountType) => openAccount(old, { code, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' }).then((a) => a.id);
      const [cash, purse] = [await open('old.cash', AccountType.ASSET), await open('old.purse', AccountType.LIABILITY)];
      // As the unpartitioned tables held them: 500 loaded in October, 120 spent in November.
      const entries = [
        { id: randomUUID(), key: 'old:load', at: '2026-10-31T23:59:59.999999Z', from: cash, to: purse, amount: 500 },
        { id: randomUUID(), key: 'old:spend', at: '2026-11-01T00:00:00.000001Z', from: purse, to: cash, amount: 120 },
      ];
      for (const e of entries) {
        await old.execute(`insert into journal_entry (id, entry_key, description, posted_at) values (?, ?, 'before', ?::timestamptz)`, [e.id, e.key, e.at]);
        await old.execute(`insert into posting (entry_id, line_no, account_id, amount, currency, balance_after) values (?, 0, ?, ?, 'CNY', 0), (?, 1, ?, ?, 'CNY', 0)`, [e.id, e.from, e.amount, e.id, e.to, -e.amount]);
      }
      await old.execute(`update ledger_account set balance = 380 where id in (?, ?)`, [cash, purse]);
      const before = await old.execute<{ id: string; entry_id: string; amount: string }[]>(`select id::text, entry_id, amount::text from posting order by id`);

      expect(await migrate(orm)).toContain('Migration20261207003500_ledger_partitions');
      const now = orm.em.fork();
      const kinds = await now.execute<{ relname: string; relkind: string }[]>(`select relname, relkind from pg_class where relname in ('journal_entry', 'posting') order by 1`);
      expect(kinds).toEqual([{ relname: 'journal_entry', relkind: 'p' }, { relname: 'posting', relkind: 'p' }]);
      expect(await now.execute(`select id::text, entry_id, amount::text from posting order by id`)).toEqual(before);
      // Each in the month of its posted_at in UTC, to the microsecond, its postings with it.
      const parts = await now.execute<{ key: string; entry: string; postings: string }[]>(
        `select e.entry_key as key, e.tableoid::regclass::text as entry, string_agg(distinct p.tableoid::regclass::text, ',') as postings
           from journal_entry e join posting p on p.entry_id = e.id and p.posted_at = e.posted_at group by 1, 2 order by 1`,
      );
      expect(parts).toEqual([
        { key: 'old:load', entry: 'journal_entry_y2026m10', postings: 'posting_y2026m10' },
        { key: 'old:spend', entry: 'journal_entry_y2026m11', postings: 'posting_y2026m11' },
      ]);
      expect(await checkLedger(now)).toEqual([]);

      // A migrated key is still known: posting it again moves nothing. New postings number on.
      const replay = await post(now, { key: 'old:load', description: 'again', lines: [debit(cash, 500n), credit(purse, 500n)] });
      expect(replay).toMatchObject({ id: entries[0]!.id, replayed: true });
      const fresh = await post(now, { key: 'new:spend', description: 'after', lines: [debit(purse, 30n), credit(cash, 30n)] });
      const [last] = await now.execute<{ id: string }[]>(`select max(id)::text as id from posting where entry_id = ?`, [fresh.id]);
      expect(BigInt(last!.id)).toBeGreaterThan(BigInt(before.at(-1)!.id));
      // A migrated entry is reversed once, not twice.
      await reverse(now, entries[1]!.id, { key: 'old:spend:undo', description: 'undo' });
      await expect(reverse(now, entries[1]!.id, { key: 'old:spend:undo-again', description: 'undo again' })).rejects.toMatchObject({ code: 'ALREADY_REVERSED' });
      expect(await balance(now, purse)).toBe(380n - 30n + 120n);
      expect(await checkLedger(now)).toEqual([]);
    } finally {
      await orm.close(true);
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});

describe('partitions', () => {
  it('an entry and its postings land in one month, to the microsecond, by post() and by postMany()', async () => {
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    const one = await post(em, { key: `ledpart.one.${n}`, description: 'one', lines: [debit(cash, 10n), credit(purse, 10n)] });
    const [many] = await postMany(em, [{ key: `ledpart.many.${n}`, description: 'many', lines: [debit(cash, 5n), credit(purse, 5n)] }]);
    for (const id of [one.id, many!.id]) {
      const [row] = await em.execute<{ same: boolean; month: string }[]>(
        `select bool_and(p.posted_at = e.posted_at) as same, to_char(e.posted_at at time zone 'UTC', '"journal_entry_y"YYYY"m"MM') as month
           from journal_entry e join posting p on p.entry_id = e.id where e.id = ? group by e.posted_at`,
        [id],
      );
      expect(row!.same).toBe(true);
      const parts = await partitionsOf(id);
      expect(parts.entry).toBe(row!.month);
      expect(parts.postings).toEqual([row!.month.replace('journal_entry', 'posting')]);
    }
  });

  it('an entry whose month has no partition lands in the default one, and the job moves it and its postings into a month made for it', async () => {
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    const id = await bookAt(em, '2032-01-15T12:00:00.123456Z', `ledpart.far.${n}`, cash, purse, 70n);
    expect(await partitionsOf(id)).toEqual({ entry: 'journal_entry_default', postings: ['posting_default'] });
    const created = await createLedgerPartitionsAhead(em, new Date('2031-06-15T00:00:00Z'));
    expect(created).toEqual(['2031-06', '2031-07', '2031-08', '2031-09', '2032-01']);
    expect(await partitionsOf(id)).toEqual({ entry: 'journal_entry_y2032m01', postings: ['posting_y2032m01'] });
    expect(await createLedgerPartitionsAhead(em, new Date('2031-06-15T00:00:00Z'))).toEqual([]);
    // The rows moved are still append-only.
    await expect(em.execute(`delete from posting where entry_id = ?`, [id])).rejects.toThrow(/append-only/);
    expect(await checkLedger(em)).toEqual([]);
  });
});

describe('onecard partitions archive-ledger', () => {
  it('refuses a month with a settlement window of its days not settled, or with an earlier month still kept or waiting in the default partition; archives them in order, carrying the openings through an empty month', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-08')).toBe(true);
    const { city } = await createCity(em, { code: 'LPA', name: 'Ledger Partitions', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'LPA Card Co' });
    const window = randomUUID();
    // The last local day of August: its window is still open.
    await em.execute(`insert into settlement_window (id, city_id, business_day, currency, status, cutoff_at) values (?, ?, '2026-08-31', 'CNY', 'OPEN', now())`, [window, city.id]);
    const dir = path.join(dataDir, 'august');
    await expect(archiveLedgerMonth(em, db.url, { month: '2026-08', dir })).rejects.toMatchObject({ code: 'MONTH_NOT_SETTLED', message: expect.stringMatching(/2026-08-31 OPEN/) });
    expect(await fs.readdir(dir).catch(() => [])).toEqual([]);
    await em.execute(`update settlement_window set status = 'SETTLED', closed_at = now(), settled_at = now() where id = ?`, [window]);

    // July has no partition: its entry waits in the default partition, and August may not leave before it.
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt(em, '2026-07-20T10:00:00Z', 'ledpart.jul.load', cash, purse, 90n);
    await expect(archiveLedgerMonth(em, db.url, { month: '2026-08', dir })).rejects.toMatchObject({ code: 'ROWS_IN_DEFAULT_PARTITION' });
    expect(await createLedgerPartitionsAhead(em)).toEqual(['2026-07']);
    await expect(archiveLedgerMonth(em, db.url, { month: '2026-08', dir })).rejects.toMatchObject({ code: 'EARLIER_MONTH_KEPT' });
    expect(await archiveLedgerMonth(em, db.url, { month: '2026-07', dir })).toMatchObject({ month: '2026-07', entries: 1, postings: 2, openings: 2 });
    // August moved nothing: its openings are July's, carried on.
    expect(await archiveLedgerMonth(em, db.url, { month: '2026-08', dir })).toMatchObject({ month: '2026-08', entries: 0, postings: 0, openings: 2 });
    expect(await em.execute(`select month::text, balance::text from ledger_opening where account_id = ? order by month`, [purse])).toEqual([
      { month: '2026-08-01', balance: '-90' },
      { month: '2026-09-01', balance: '-90' },
    ]);
    expect(await balance(em, purse)).toBe(90n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('carries every balance forward, archives October then November, and the check proves each balance from its opening and the postings kept', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-10')).toBe(true);
    expect(await ensureLedgerMonthPartitions(em, '2026-11')).toBe(true);
    const [cash, purse, shop] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY, true), await account(AccountType.LIABILITY)];
    await bookAt(em, '2026-10-03T08:00:00Z', 'ledpart.oct.load', cash, purse, 1000n);
    await bookAt(em, '2026-10-20T08:00:00Z', 'ledpart.oct.spend', purse, shop, 300n);
    await bookAt(em, '2026-11-30T23:59:59.999999Z', 'ledpart.nov.spend', purse, shop, 200n);
    await post(em, { key: 'ledpart.dec.spend', description: 'now', lines: [debit(purse, 100n), credit(shop, 100n)] });
    const dir = path.join(dataDir, 'ledger');

    const refused = await onecard('partitions', 'archive-ledger', '--month', '2026-11', '--dir', dir);
    expect(refused.exitCode).toBe(2);
    expect(refused.err).toMatch(/EARLIER_MONTH_KEPT: 2026-10 still kept/);
    const current = new Date().toISOString().slice(0, 7);
    expect((await onecard('partitions', 'archive-ledger', '--month', current, '--dir', dir)).err).toMatch(/MONTH_NOT_OVER/);
    expect((await onecard('partitions', 'archive-ledger', '--month', '2026-13', '--dir', dir)).err).toMatch(/INVALID_MONTH/);
    expect(await fs.readdir(dir).catch(() => [])).toEqual([]);

    const october = await onecard('partitions', 'archive-ledger', '--month', '2026-10', '--dir', dir);
    expect(october).toMatchObject({ exitCode: 0 });
    expect(october.out).toMatch(/archived 2026-10: 2 entr\(ies\), 4 posting\(s\)/);
    expect(october.out).toMatch(/ledger OK/);
    const lines = (await fs.readFile(path.join(dir, 'posting-2026-10.tsv'), 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => l.split('\t')[4])).toEqual(['1000', '-1000', '300', '-300']);
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'ledger-2026-10.manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ month: '2026-10', entries: 2, postings: 4, openingsAt: '2026-11-01' });
    expect(await em.execute(`select to_regclass('posting_y2026m10') is null as gone`)).toEqual([{ gone: true }]);
    // `partitions list`: which monthly tables still have each month (October's ledger is gone, November's kept).
    const listed = (await onecard('partitions', 'list')).out.split('\n');
    expect(listed[0]).toMatch(/^month\s+clearing_item\s+journal_entry\s+posting$/);
    expect(listed).toContainEqual(expect.stringMatching(/^2026-11\s+(yes|-)\s+yes\s+yes$/));
    expect(listed.filter((l) => l.startsWith('2026-10')).every((l) => /^2026-10\s+yes\s+-\s+-$/.test(l))).toBe(true);

    // The purse: 1000 loaded, 300 spent in October (opening -700, a liability's credit), 200 and 100 since.
    expect(await openingAndKept(purse)).toEqual({ opening: '-700', kept: '300' });
    expect(await openingAndKept(shop)).toEqual({ opening: '-300', kept: '-300' });
    expect(await balance(em, purse)).toBe(400n);
    expect(await checkLedger(em)).toEqual([]);
    expect(await balanceAt(em, purse, new Date('2026-11-15T00:00:00Z'))).toBe(700n);
    await expect(balanceAt(em, purse, new Date('2026-10-15T00:00:00Z'))).rejects.toMatchObject({ code: 'MONTH_ARCHIVED' });

    // An archived key replayed is recognised: refused, and nothing moves.
    await expect(post(em, { key: 'ledpart.oct.load', description: 'again', lines: [debit(cash, 1000n), credit(purse, 1000n)] })).rejects.toMatchObject({
      code: 'ENTRY_KEY_REUSED',
      message: expect.stringMatching(/archived/),
    });
    expect(await balance(em, purse)).toBe(400n);

    const november = await onecard('partitions', 'archive-ledger', '--month', '2026-11', '--dir', dir);
    expect(november).toMatchObject({ exitCode: 0 });
    expect(await openingAndKept(purse)).toEqual({ opening: '-500', kept: '100' });
    expect(await checkLedger(em)).toEqual([]);
    // A drifted balance is still caught once its postings are partly archived.
    await em.execute(`update ledger_account set balance = balance + 1 where id = ?`, [shop]);
    expect((await checkLedger(em)).map((p) => p.rule)).toEqual(['BALANCE_DIFFERS_FROM_POSTINGS']);
    await em.execute(`update ledger_account set balance = balance - 1 where id = ?`, [shop]);
  });

  it('a post still committing into the month being archived is waited for and archived with it; the openings hold it', async () => {
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let posted!: () => void;
    const inPost = new Promise<void>((resolve) => (posted = resolve));
    const writer = db.orm.em.fork().transactional(async (tx) => {
      await post(tx, { key: `ledpart.during.${n}`, description: 'during', lines: [debit(cash, 40n), credit(purse, 40n)] });
      posted();
      await held;
    });
    await inPost;
    // This month, archived as if it were over: its last writer has not committed yet.
    const month = new Date().toISOString().slice(0, 7);
    let done = false;
    const archive = archiveLedgerMonth(db.orm.em.fork(), db.url, { month, dir: path.join(dataDir, 'during'), now: new Date('2099-01-01T00:00:00Z') }).finally(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(done).toBe(false);
    release();
    await writer;
    const result = await archive;
    expect(result.entries).toBeGreaterThanOrEqual(1);
    expect(await fs.readFile(result.files.entries, 'utf8')).toContain(`ledpart.during.${n}`);
    expect(await openingAndKept(purse)).toEqual({ opening: '-40', kept: null });
    expect(await balance(em, purse)).toBe(40n);
    expect(await checkLedger(em)).toEqual([]);
    // A month before the last one archived cannot come after it: the openings chain forward.
    expect(await ensureLedgerMonthPartitions(em, '2026-09')).toBe(true);
    await expect(archiveLedgerMonth(em, db.url, { month: '2026-09', dir: path.join(dataDir, 'late') })).rejects.toMatchObject({ code: 'LATER_MONTH_ARCHIVED' });
  });
});
