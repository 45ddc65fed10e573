/**
 * archive-ledger beside other work on the ledger (found by review of the ledger partitions, issue
 * 23 item 3): a second run of the same month, a post() caught between its entry and its postings,
 * and a long reader of journal_entry. A database of its own: the months archived elsewhere would
 * make these months refused as earlier than an archived one.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveLedgerMonth } from '../src/ledger/ledger-archive.js';
import { ensureLedgerMonthPartitions } from '../src/ledger/ledger-partitions.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { bookAt } from './support/ledger.js';

let db: TestDatabase;
let em: EntityManager;
let dataDir: string;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-ledger-archive-'));
});
afterAll(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
  await db.close();
});

let n = 0;
const account = (type: AccountType) => openAccount(em, { code: `archive-beside.${++n}`, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' }).then((a) => a.id);

describe('archive-ledger run twice at once', () => {
  it('a second run of the same month that loses the race does not delete the files of the run that archived it', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-08')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt(em, '2026-08-03T08:00:00Z', 'rev.aug.load', cash, purse, 800n);
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
    // The second finds, under the archive's lock, that the month has gone: refused, touching nothing.
    expect(b).toMatchObject({ name: 'LedgerArchiveRefusal', code: 'NO_PARTITION' });
    // August has left the database: its partitions are dropped...
    expect(await em.execute(`select to_regclass('posting_y2026m08') is null as gone`)).toEqual([{ gone: true }]);
    // ...so the files are the only copy of its entries and postings. Found by review: the second run
    // checked before taking the lock, then failed on the dropped partition and removed every file.
    expect((await fs.readdir(dir)).sort()).toEqual(['journal_entry-2026-08.tsv', 'ledger-2026-08.manifest.json', 'posting-2026-08.tsv']);
  });
});

describe('archive-ledger beside a post', () => {
  it('while the archive waits behind a long reader of journal_entry (a report, pg_dump), payments of the current month still go through', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-09')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt(em, '2026-09-03T08:00:00Z', 'rev.sep.load', cash, purse, 500n);
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
    // Found by review: the archive dropped posting_y2026m09 (ACCESS EXCLUSIVE on posting, held to its
    // commit), then waited for journal_entry behind the reader, and every post() queued on posting
    // until the reader ended. It now takes both tables for half a second at a time, then lets go.
    expect(postedInTime).toBe(true);
  });
  it('a post() of the current month that is between its entry and its postings when the archive drops the old month is not aborted by a deadlock', async () => {
    expect(await ensureLedgerMonthPartitions(em, '2026-10')).toBe(true);
    const [cash, purse] = [await account(AccountType.ASSET), await account(AccountType.LIABILITY)];
    await bookAt(em, '2026-10-03T08:00:00Z', 'rev.oct.load', cash, purse, 1000n);

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

    // Both go through: the payment of today has nothing to do with October. Found by review: the
    // archive dropped posting_y2026m10 (ACCESS EXCLUSIVE on posting), then waited for journal_entry,
    // which the writer held since its entry, while the writer's postings waited for posting: a
    // deadlock, one of the two aborted. The archive now takes journal_entry first, as post() does.
    expect({ writer: await writerResult, archive: await archiveResult }).toEqual({ writer: 'posted', archive: 'archived' });
  });

});
