/**
 * The retention path of `clearing_item` (issue 23, item 3; docs/operations.md "Archiving a month
 * of clearing items"): a month's partition is detached, exported with COPY to a file, read back and
 * dropped only when the file holds the same rows and the same amounts, per currency, as the
 * partition did; otherwise it is attached again and nothing is lost.
 *
 * Only clearing items: they are the settlement's input, and once every window of the month is
 * settled its lines, batches and payouts carry the totals. The ledger's months leave on their own,
 * once every balance is carried past them (ledger/ledger-archive.ts).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { EntityManager } from '@mikro-orm/postgresql';
import { copyOut } from '../db/copy-out.js';
import { isMonth, monthBounds } from '../db/months.js';
import { partitionOf } from './clearing-partitions.js';

/** Why a month was not archived: its input is refused (exit 2), or the copy did not match (nothing dropped). */
export class ArchiveRefusal extends Error {
  override name = 'ArchiveRefusal';
  constructor(
    readonly code: 'INVALID_MONTH' | 'NO_PARTITION' | 'MONTH_NOT_SETTLED' | 'ITEMS_IN_DEFAULT_PARTITION' | 'FILE_EXISTS' | 'ARCHIVE_MISMATCH',
    message: string,
  ) {
    super(message);
  }
}

/** Rows and amount per currency of a set of items. */
export type Totals = { rows: number; amounts: Record<string, string> };

export interface ArchiveResult {
  month: string;
  partition: string;
  file: string;
  manifest: string;
  totals: Totals;
  sha256: string;
}

/** The columns in the file, in this order (the first line of the manifest says so too). */
const COLUMNS = ['id', 'city_id', 'business_day', 'window_id', 'kind', 'participant_kind', 'participant_id', 'card_company_id', 'amount', 'currency', 'occurred_at', 'recorded_at', 'entry_key', 'reference', 'gateway_reference'];
const AMOUNT = COLUMNS.indexOf('amount');
const CURRENCY = COLUMNS.indexOf('currency');

/**
 * Why the month may not go yet: an item with no window, or in a window not SETTLED (open, closed
 * but not cleared, cleared but not paid out), or items of the month still in the default partition.
 */
async function refusalOf(em: EntityManager, month: string): Promise<ArchiveRefusal | null> {
  const { from, to } = monthBounds(month);
  const [open] = await em.execute<{ n: string; windows: string | null }[]>(
    `select count(*) as n, string_agg(distinct coalesce(w.business_day::text || ' ' || w.status, 'no window'), ', ') as windows
       from ${partitionOf(month)} i left join settlement_window w on w.id = i.window_id
      where w.id is null or w.status <> 'SETTLED'`,
  );
  if (Number(open!.n) > 0) return new ArchiveRefusal('MONTH_NOT_SETTLED', `${open!.n} item(s) of ${month} are in windows not settled yet (${open!.windows}): a month is archived once every window of it is settled`);
  const [stray] = await em.execute<{ n: string }[]>(`select count(*) as n from clearing_item_default where business_day >= ?::date and business_day < ?::date`, [from, to]);
  if (Number(stray!.n) > 0) return new ArchiveRefusal('ITEMS_IN_DEFAULT_PARTITION', `${stray!.n} item(s) of ${month} are in the default partition: run the partitions job first (onecard partitions ahead)`);
  return null;
}

async function totalsOf(em: EntityManager, table: string): Promise<Totals> {
  const rows = await em.execute<{ currency: string; n: string; total: string }[]>(`select btrim(currency) as currency, count(*) as n, sum(amount)::text as total from ${table} group by 1 order by 1`);
  return { rows: rows.reduce((n, r) => n + Number(r.n), 0), amounts: Object.fromEntries(rows.map((r) => [r.currency, r.total])) };
}

/** What the file holds, read back line by line: COPY's text format is one row a line, columns split by tabs. */
async function totalsInFile(file: string): Promise<Totals & { sha256: string }> {
  const hash = createHash('sha256');
  const amounts = new Map<string, bigint>();
  let rows = 0;
  const stream = createReadStream(file);
  stream.on('data', (chunk) => hash.update(chunk));
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line === '') continue;
    const columns = line.split('\t');
    const currency = columns[CURRENCY]!.trim();
    amounts.set(currency, (amounts.get(currency) ?? 0n) + BigInt(columns[AMOUNT]!));
    rows++;
  }
  return { rows, amounts: Object.fromEntries([...amounts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, v]) => [c, v.toString()])), sha256: hash.digest('hex') };
}

const sameTotals = (a: Totals, b: Totals) => a.rows === b.rows && JSON.stringify(a.amounts) === JSON.stringify(b.amounts);

/**
 * Archives a month of clearing items into `dir` (`clearing_item-YYYY-MM.tsv` and its
 * `.manifest.json`): refuses a month not wholly settled, checked before and again after its
 * partition is detached (a late ride of a settled day can still be booked into the month's partition,
 * in the next open window); exports it; drops it only when the file's rows and amounts match the partition's.
 */
export async function archiveClearingMonth(em: EntityManager, databaseUrl: string, input: { month: string; dir: string }): Promise<ArchiveResult> {
  const { month } = input;
  if (!isMonth(month)) throw new ArchiveRefusal('INVALID_MONTH', `a month is YYYY-MM; got ${month}`);
  const partition = partitionOf(month);
  const file = path.resolve(input.dir, `clearing_item-${month}.tsv`);
  const manifest = path.resolve(input.dir, `clearing_item-${month}.manifest.json`);
  const attached = await em.execute<{ found: boolean }[]>(`select exists (select 1 from pg_inherits where inhrelid = to_regclass(?) and inhparent = 'clearing_item'::regclass) as found`, [partition]);
  const [standalone] = await em.execute<{ found: boolean }[]>(`select to_regclass(?) is not null as found`, [partition]);
  if (!standalone!.found) throw new ArchiveRefusal('NO_PARTITION', `there is no partition ${partition} (archived already, or never created)`);
  if (await fs.stat(file).then(() => true, () => false)) throw new ArchiveRefusal('FILE_EXISTS', `${file} exists: move it away, or archive into another folder`);
  await fs.mkdir(input.dir, { recursive: true });

  // Checked and detached in one transaction, the month's windows locked: no close or clearing moves one in between.
  if (attached[0]!.found) {
    await em.transactional(async (tx) => {
      const { from, to } = monthBounds(month);
      await tx.execute(`select id from settlement_window where business_day >= ?::date and business_day < ?::date order by id for update`, [from, to]);
      const refusal = await refusalOf(tx, month);
      if (refusal) throw refusal;
      await tx.execute(`alter table clearing_item detach partition ${partition}`);
      // Checked again once detached: the detach waited for every booking writing into the partition
      // (a late ride of a settled day goes into the next OPEN window, with this month's business
      // day), and what those committed is in it now. Refused, the detach rolls back with the rest.
      const late = await refusalOf(tx, month);
      if (late) throw late;
    });
  }
  // A partition detached by an earlier run that stopped half-way is taken up again from here.
  const totals = await totalsOf(em, partition);
  await copyOut(databaseUrl, `copy (select ${COLUMNS.join(', ')} from ${partition} order by id) to stdout`, file);
  const copied = await totalsInFile(file);
  if (!sameTotals(totals, copied)) {
    await fs.rm(file, { force: true });
    const { from, to } = monthBounds(month);
    await em.execute(`alter table clearing_item attach partition ${partition} for values from ('${from}') to ('${to}')`);
    throw new ArchiveRefusal('ARCHIVE_MISMATCH', `the file held ${JSON.stringify(copied)}, the partition ${JSON.stringify(totals)}: nothing dropped, ${partition} attached again`);
  }
  await fs.writeFile(manifest, `${JSON.stringify({ table: 'clearing_item', month, columns: COLUMNS, format: 'PostgreSQL COPY text', file: path.basename(file), sha256: copied.sha256, ...totals }, null, 2)}\n`, { flag: 'wx' });
  await em.execute(`drop table ${partition}`);
  return { month, partition, file, manifest, totals, sha256: copied.sha256 };
}
