/**
 * The retention path of the ledger (issue 23, item 3; docs/scaling.md "Partitions and retention",
 * docs/operations.md "Archiving a month of the ledger"): a month's entries and postings leave the
 * database once every account's balance is carried forward past them, so the ledger check still
 * proves each balance: balance = opening at the first month kept + postings kept.
 *
 * In one transaction, holding the month's partitions against writers: export both with COPY, read
 * the files back, write each account's opening at the next month as its previous opening plus the
 * sum of its postings in the file, verify those openings against the partition and against double
 * entry (they sum to zero per currency), and only then drop the partitions. Any mismatch rolls
 * everything back and removes the files: nothing is lost.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { EntityManager } from '@mikro-orm/postgresql';
import { copyOut } from '../db/copy-out.js';
import { isMonth, monthBounds } from '../db/months.js';
import { LEDGER_PARTITIONS_LOCK, ledgerMonths, ledgerPartitionOf } from './ledger-partitions.js';

/** Why a month of the ledger was not archived (exit 2): its input is refused, or the copy did not match. */
export class LedgerArchiveRefusal extends Error {
  override name = 'LedgerArchiveRefusal';
  constructor(
    readonly code:
      | 'INVALID_MONTH'
      | 'NO_PARTITION'
      | 'MONTH_NOT_OVER'
      | 'EARLIER_MONTH_KEPT'
      | 'LATER_MONTH_ARCHIVED'
      | 'ROWS_IN_DEFAULT_PARTITION'
      | 'REFUND_IN_FLIGHT'
      | 'MONTH_NOT_SETTLED'
      | 'FILE_EXISTS'
      | 'ARCHIVE_MISMATCH'
      | 'LEDGER_BUSY',
    message: string,
  ) {
    super(message);
  }
}

export interface LedgerArchiveResult {
  month: string;
  entries: number;
  postings: number;
  /** Accounts whose opening at the next month was written. */
  openings: number;
  files: { entries: string; postings: string; manifest: string };
  sha256: { entries: string; postings: string };
}

const ENTRY_COLUMNS = ['id', 'entry_key', 'description', 'posted_at', 'reverses_id', 'metadata'];
const POSTING_COLUMNS = ['id', 'entry_id', 'line_no', 'account_id', 'amount', 'currency', 'balance_after', 'posted_at'];
const ACCOUNT = POSTING_COLUMNS.indexOf('account_id');
const AMOUNT = POSTING_COLUMNS.indexOf('amount');

/** What a COPY text file holds: its lines, the sum of `amount` per account (postings), its sha256. */
async function readBack(file: string, sumPerAccount: boolean): Promise<{ rows: number; perAccount: Map<string, bigint>; sha256: string }> {
  const hash = createHash('sha256');
  const perAccount = new Map<string, bigint>();
  let rows = 0;
  const stream = createReadStream(file);
  stream.on('data', (chunk) => hash.update(chunk));
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line === '') continue;
    rows++;
    if (!sumPerAccount) continue;
    const columns = line.split('\t');
    perAccount.set(columns[ACCOUNT]!, (perAccount.get(columns[ACCOUNT]!) ?? 0n) + BigInt(columns[AMOUNT]!));
  }
  return { rows, perAccount, sha256: hash.digest('hex') };
}

/** Why the month may not go yet, asked with its partitions held (nothing can write into them meanwhile). */
async function refusalOf(tx: EntityManager, month: string, now: Date): Promise<LedgerArchiveRefusal | null> {
  const { from, to } = monthBounds(month);
  const end = new Date(`${to}T00:00:00Z`);
  if (now < end) return new LedgerArchiveRefusal('MONTH_NOT_OVER', `${month} is not over in UTC (it ends at ${end.toISOString()})`);
  const [last] = await tx.execute<{ month: string | null }[]>(`select max(month)::text as month from ledger_opening`);
  if (last!.month && last!.month > from) return new LedgerArchiveRefusal('LATER_MONTH_ARCHIVED', `the ledger is archived up to ${last!.month} already: each opening carries the one before, so months leave in order`);
  const earlier = (await ledgerMonths(tx)).filter((m) => m < month);
  if (earlier.length) return new LedgerArchiveRefusal('EARLIER_MONTH_KEPT', `${earlier.join(', ')} still kept: months are archived in order, each opening carries the one before`);
  const [stray] = await tx.execute<{ n: string }[]>(`select count(*) as n from journal_entry_default where posted_at < ?::timestamptz`, [`${to} 00:00:00+00`]);
  if (Number(stray!.n) > 0) return new LedgerArchiveRefusal('ROWS_IN_DEFAULT_PARTITION', `${stray!.n} entr(ies) up to ${month} are in the default partition: run onecard partitions ahead first`);
  // A refund the gateway refuses is reversed, and reverse() reads the original entry's lines.
  const [refunding] = await tx.execute<{ n: string }[]>(
    `select count(*) as n from top_up t join journal_entry_key k on k.entry_key = 'top-up:' || t.id || ':refund:' || t.refund_attempt
      where t.status = 'REFUNDING' and k.posted_at < ?::timestamptz`,
    [`${to} 00:00:00+00`],
  );
  if (Number(refunding!.n) > 0) return new LedgerArchiveRefusal('REFUND_IN_FLIGHT', `${refunding!.n} top-up refund(s) booked up to ${month} are still REFUNDING: their entries may yet be reversed`);
  // A city's business day overlaps the UTC month by up to a day at each edge.
  const [open] = await tx.execute<{ n: string; days: string | null }[]>(
    `select count(*) as n, string_agg(distinct business_day::text || ' ' || status, ', ') as days from settlement_window
      where status <> 'SETTLED' and business_day >= ?::date - 1 and business_day <= ?::date`,
    [from, to],
  );
  if (Number(open!.n) > 0) return new LedgerArchiveRefusal('MONTH_NOT_SETTLED', `${open!.n} settlement window(s) of ${month} are not settled yet (${open!.days})`);
  return null;
}

/**
 * Archives a month of the ledger into `dir` (`journal_entry-YYYY-MM.tsv`, `posting-YYYY-MM.tsv`, and
 * `ledger-YYYY-MM.manifest.json`), carrying each account's balance forward into `ledger_opening`.
 */
export async function archiveLedgerMonth(em: EntityManager, databaseUrl: string, input: { month: string; dir: string; now?: Date }): Promise<LedgerArchiveResult> {
  const { month } = input;
  if (!isMonth(month)) throw new LedgerArchiveRefusal('INVALID_MONTH', `a month is YYYY-MM; got ${month}`);
  const [entriesTable, postingsTable] = [ledgerPartitionOf('journal_entry', month), ledgerPartitionOf('posting', month)];
  const files = {
    entries: path.resolve(input.dir, `journal_entry-${month}.tsv`),
    postings: path.resolve(input.dir, `posting-${month}.tsv`),
    manifest: path.resolve(input.dir, `ledger-${month}.manifest.json`),
  };
  // The files this run made, and only those, go when it does not finish: another run's may be the
  // only copy of a month it archived.
  const made: string[] = [];
  await fs.mkdir(input.dir, { recursive: true });
  const next = monthBounds(month).to;

  try {
    return await em.transactional(async (tx) => {
      // One archive at a time, and no month made or filled from the default partition meanwhile:
      // what the checks below find of the other months holds until the commit.
      await tx.execute(`select pg_advisory_xact_lock(hashtext('ledger archive'))`);
      await tx.execute(`select pg_advisory_xact_lock(hashtext(?))`, [LEDGER_PARTITIONS_LOCK]);
      // Checked under the lock: a run of the same month that went first has dropped the partitions
      // and written the files by now, and this one must leave both alone.
      if (!(await ledgerMonths(tx)).includes(month)) throw new LedgerArchiveRefusal('NO_PARTITION', `there is no partition ${entriesTable} (archived already, or never created)`);
      for (const file of Object.values(files)) {
        if (await fs.stat(file).then(() => true, () => false)) throw new LedgerArchiveRefusal('FILE_EXISTS', `${file} exists: move it away, or archive into another folder`);
      }
      // SHARE waits for a writer still committing into the month and lets none start; readers go on.
      await tx.execute(`lock table ${entriesTable}, ${postingsTable} in share mode`);
      const refusal = await refusalOf(tx, month, input.now ?? new Date());
      if (refusal) throw refusal;

      made.push(files.entries);
      await copyOut(databaseUrl, `copy (select ${ENTRY_COLUMNS.join(', ')} from ${entriesTable} order by posted_at, id) to stdout`, files.entries);
      made.push(files.postings);
      await copyOut(databaseUrl, `copy (select ${POSTING_COLUMNS.join(', ')} from ${postingsTable} order by id) to stdout`, files.postings);
      const [entries, postings] = [await readBack(files.entries, false), await readBack(files.postings, true)];

      const [counts] = await tx.execute<{ entries: string; postings: string }[]>(`select (select count(*) from ${entriesTable}) as entries, (select count(*) from ${postingsTable}) as postings`);
      if (Number(counts!.entries) !== entries.rows || Number(counts!.postings) !== postings.rows) {
        throw new LedgerArchiveRefusal('ARCHIVE_MISMATCH', `the files held ${entries.rows} entries and ${postings.rows} postings, the partitions ${counts!.entries} and ${counts!.postings}`);
      }

      // The openings at the next month: the previous ones plus the file's sums, per account.
      const previous = await tx.execute<{ account_id: string; balance: string }[]>(`select account_id, balance from ledger_opening where month = (select max(month) from ledger_opening)`);
      const opening = new Map(previous.map((p) => [p.account_id, BigInt(p.balance)]));
      for (const [account, sum] of postings.perAccount) opening.set(account, (opening.get(account) ?? 0n) + sum);
      await tx.execute(
        `insert into ledger_opening (month, account_id, balance) select ?::date, o.account_id, o.balance from json_to_recordset(?::json) as o(account_id uuid, balance bigint)`,
        [next, JSON.stringify([...opening].map(([account_id, balance]) => ({ account_id, balance: balance.toString() })))],
      );
      // Verified in the database, independently of the file: previous opening + the partition's sums,
      // account by account; and double entry: the openings sum to zero in each currency.
      const [differ] = await tx.execute<{ n: string }[]>(
        `select count(*) as n from (
           select account_id, sum(balance) as expected from (
             select account_id, balance from ledger_opening where month = (select max(month) from ledger_opening where month < ?::date)
             union all select account_id, sum(amount) from ${postingsTable} group by account_id) s group by account_id) e
         full join (select account_id, balance from ledger_opening where month = ?::date) o using (account_id)
         where o.balance is distinct from e.expected`,
        [next, next],
      );
      const [unbalanced] = await tx.execute<{ n: string }[]>(
        `select count(*) as n from (select a.currency from ledger_opening o join ledger_account a on a.id = o.account_id where o.month = ?::date group by a.currency having sum(o.balance) <> 0) c`,
        [next],
      );
      if (Number(differ!.n) > 0 || Number(unbalanced!.n) > 0) {
        throw new LedgerArchiveRefusal('ARCHIVE_MISMATCH', `${differ!.n} opening(s) differ from the partition's postings, ${unbalanced!.n} currency(ies) do not balance: nothing dropped`);
      }

      made.push(files.manifest);
      await fs.writeFile(
        files.manifest,
        `${JSON.stringify(
          {
            tables: { journal_entry: ENTRY_COLUMNS, posting: POSTING_COLUMNS },
            month,
            format: 'PostgreSQL COPY text',
            files: { journal_entry: path.basename(files.entries), posting: path.basename(files.postings) },
            sha256: { journal_entry: entries.sha256, posting: postings.sha256 },
            entries: entries.rows,
            postings: postings.rows,
            openingsAt: next,
            openings: opening.size,
          },
          null,
          2,
        )}\n`,
        { flag: 'wx' },
      );
      // On disk before the month leaves the database: a crash after the commit must not find them half-written.
      await syncToDisk([...made, input.dir]);
      await lockLedgerParents(tx);
      // Postings first: they refer to the entries. The detach checks that nothing refers to what leaves.
      await tx.execute(`drop table ${postingsTable}`);
      await tx.execute(`alter table journal_entry detach partition ${entriesTable}`);
      await tx.execute(`drop table ${entriesTable}`);
      return { month, entries: entries.rows, postings: postings.rows, openings: opening.size, files, sha256: { entries: entries.sha256, postings: postings.sha256 } };
    });
  } catch (err) {
    // Nothing was dropped: the transaction rolled back. The files this run made go.
    for (const file of made) await fs.rm(file, { force: true });
    throw err;
  }
}

/** How long the archive waits for each ledger table at a time, and how often it tries, before it gives up. */
const PARENT_LOCK_WAIT_MS = 500;
const PARENT_LOCK_ATTEMPTS = 120;
const PARENT_LOCK_PAUSE_MS = 1_000;

/**
 * Dropping a month's partitions takes both ledger tables whole (ACCESS EXCLUSIVE) until the commit.
 * Taken here, before the drop, in the order post() writes them (the entry, then its postings), so a
 * post() between the two cannot deadlock with the archive; and each for at most half a second at a
 * time, then let go for a second, so that an archive queued behind a long reader (a report, a
 * backup) holds up today's payments for half a second at most rather than until the reader ends.
 * Gives up with LEDGER_BUSY after about three minutes of trying (the transaction then rolls back).
 */
async function lockLedgerParents(tx: EntityManager): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await tx.execute(`savepoint ledger_parents`);
    try {
      await tx.execute(`set local lock_timeout = ${PARENT_LOCK_WAIT_MS}`);
      await tx.execute(`lock table journal_entry in access exclusive mode`);
      await tx.execute(`lock table posting in access exclusive mode`);
      await tx.execute(`set local lock_timeout = 0`);
      await tx.execute(`release savepoint ledger_parents`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      await tx.execute(`rollback to savepoint ledger_parents`);
      if (attempt === PARENT_LOCK_ATTEMPTS) throw new LedgerArchiveRefusal('LEDGER_BUSY', `the ledger's tables stayed in use for ${attempt} tries of ${PARENT_LOCK_WAIT_MS} ms: nothing dropped, try again later`);
      await new Promise((resolve) => setTimeout(resolve, PARENT_LOCK_PAUSE_MS));
    }
  }
}
/** SQLSTATE of a lock not had within lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

/** fsync each file, and the folder that names them. */
async function syncToDisk(paths: string[]): Promise<void> {
  for (const p of paths) {
    const handle = await fs.open(p, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
