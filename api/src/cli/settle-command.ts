import type { EntityManager } from '@mikro-orm/postgresql';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { toGlobalId } from '../graphql/global-id.js';
import { type BatchRow, clearWindow } from '../settlement/clearing.js';
import { clearingEntry, interchangeTotals, itemCount, lineTotals, type LineTotals, payoutStatuses } from '../settlement/reports.js';
import { SettlementError } from '../settlement/settlement.errors.js';
import { closeWindow, windowOf, type WindowRow } from '../settlement/windows.js';
import { createProgress, type Progress } from './progress-bar.js';

/** Exit code of a command refused for its input (unknown city, bad or future date, bad cut-off). */
export const EXIT_USAGE = 2;

/** A refusal of the command's input: printed without a stack, exit code 2. */
export class SettleUsageError extends Error {
  override name = 'SettleUsageError';
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const TIME_OF_DAY = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
const USAGE_CODES = new Set(['NOT_FOUND', 'INVALID_INPUT', 'WINDOW_NOT_STARTED']);

// ---------------------------------------------------------------------------------------------
// Money in major units, from integer minor units, with no floating point

/** Digits after the decimal point of a currency (CNY 2, JPY 0), from the ISO 4217 data Node carries. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** `105583` CNY → `1,055.83`; `-1300` → `-13.00`. String arithmetic on the integer, never a float. */
export function formatMinorUnits(amount: bigint | string, currency: string): string {
  const value = typeof amount === 'bigint' ? amount : BigInt(amount);
  const digits = currencyDigits(currency);
  const abs = (value < 0n ? -value : value).toString().padStart(digits + 1, '0');
  const whole = abs.slice(0, abs.length - digits).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = digits > 0 ? `.${abs.slice(abs.length - digits)}` : '';
  return `${value < 0n ? '-' : ''}${whole}${fraction}`;
}

// ---------------------------------------------------------------------------------------------
// The work

export interface SettleInput {
  city: string;
  date: string;
  cutoff: string;
  /** The clock (tests); now by default. */
  now?: Date;
}

export interface SettleReport {
  window: WindowRow;
  batch: BatchRow;
  /** The window had been cleared before this run: nothing changed. */
  alreadyCleared: boolean;
  /** Earlier closed windows of the city that this run cleared first (oldest first). */
  earlierCleared: string[];
  items: string;
  lines: LineTotals;
  interchange: { positions: string; count: string; net: string };
  entry: { id: string; entry_key: string; postings: number } | null;
  payouts: Record<string, number>;
}

const plural = (count: string, noun: string) => `${count} ${noun}${count === '1' ? '' : 's'}`;

function checkedDay(date: string): string {
  if (!DAY.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
    throw new SettleUsageError(`--date is a business day YYYY-MM-DD; got "${date}"`);
  }
  return date;
}

/**
 * Closes a city's window for a business day (closed by `cli`), clears it (and, first, any earlier
 * window of the city left closed and not cleared, as the settlement job would), and reads back the
 * batch's totals. Running it again on a cleared window changes nothing and reports the same batch.
 */
export async function settle(em: EntityManager, input: SettleInput, progress: Progress): Promise<SettleReport> {
  const date = checkedDay(input.date);
  if (!TIME_OF_DAY.test(input.cutoff)) throw new SettleUsageError(`--cutoff is a time of day HH:MM (24-hour); got "${input.cutoff}"`);
  const code = input.city.trim().toUpperCase();
  const [city] = await em.execute<{ id: string; code: string }[]>(`select id, code from city where code = ?`, [code]);
  if (!city) {
    const known = await em.execute<{ code: string }[]>(`select code from city order by code limit 50`);
    throw new SettleUsageError(`no city ${input.city}${known.length ? ` (cities: ${known.map((c) => c.code).join(', ')})` : ' (there are no cities yet)'}`);
  }
  const before = await windowOf(em, city.id, date);
  const alreadyCleared = before?.status === 'CLEARED' || before?.status === 'SETTLED';

  const { window, items } = await progress.run(
    `closing ${code} ${date}`,
    async () => {
      const closed = await closeWindow(em, { cityId: city.id, businessDay: date, closedBy: 'cli', cutoff: input.cutoff, now: input.now });
      return { window: closed, items: await itemCount(em, closed.id) };
    },
    (c) => (before && before.status !== 'OPEN' ? `already closed by ${before.closed_by}: ${c.items} items` : `${c.items} items assigned`),
  );
  const earlier = await em.execute<{ id: string; day: string }[]>(
    `select id, business_day::text as day from settlement_window where city_id = ? and status = 'CLOSED' and business_day < ?::date order by business_day`,
    [city.id, date],
  );
  progress.setTotal(1 + earlier.length + 1 + 4);
  for (const w of earlier) await progress.run(`clearing ${code} ${w.day} (an earlier window left closed)`, () => clearWindow(em, w.id), (b) => `batch ${b.status}`);
  const batch = await progress.run(
    `clearing ${code} ${date} (${items} items)`,
    () => clearWindow(em, window.id),
    (b) => (alreadyCleared ? `already cleared, batch ${b.status}` : `batch ${b.status}`),
  );
  const lines = await progress.run('lines', () => lineTotals(em, batch.id), (t) => plural(t.participants, 'participant'));
  const interchange = await progress.run('interchange', () => interchangeTotals(em, batch.id), (t) => plural(t.positions, 'position'));
  const entry = await progress.run('ledger entry', () => clearingEntry(em, batch.id), (e) => (e ? `${e.entry_key} (${e.postings} postings)` : 'none: nothing to move'));
  const payouts = await progress.run('payouts', () => payoutStatuses(em, batch.id), (p) => Object.entries(p).map(([s, n]) => `${n} ${s}`).join(', ') || 'none');
  const after = (await windowOf(em, city.id, date))!;
  return { window: after, batch, alreadyCleared, earlierCleared: earlier.map((w) => w.day), items, lines, interchange, entry, payouts };
}

// ---------------------------------------------------------------------------------------------
// The printout

/** The batch's totals as a table; the same for every run on the same window. */
export function summaryTable(r: SettleReport): string[] {
  const cur = r.window.currency;
  const money = (v: string) => formatMinorUnits(v, cur);
  const rows: [string, string, string][] = [
    ['participants', r.lines.participants, ''],
    ['items', r.items, ''],
    ['gross sales', r.lines.sales_count, money(r.lines.gross)],
    ['refunds', r.lines.refund_count, money(r.lines.refunds)],
    ['fees', '', money(r.lines.fees)],
    ['net', '', money(r.lines.net)],
    ['carried in', '', money(r.lines.carried_in)],
    ['payouts', r.lines.payouts, money(r.lines.payout_total)],
    ['carried forward', r.lines.carried_forward, money(r.lines.carried_forward_total)],
    ['top-ups', r.lines.top_up_count, money(r.lines.top_ups)],
    ['top-up refunds', '', money(r.lines.top_up_refunds)],
    ['interchange positions', r.interchange.positions, money(r.interchange.net)],
  ];
  const header: [string, string, string] = ['', 'count', `amount (${cur})`];
  const w = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const fmt = (row: [string, string, string]) => `  ${row[0].padEnd(w[0]!)}  ${row[1].padStart(w[1]!)}  ${row[2].padStart(w[2]!)}`.trimEnd();
  return [
    fmt(header),
    ...rows.map(fmt),
    `  ledger entry  ${r.entry ? `${r.entry.entry_key} (${r.entry.postings} postings)` : 'none (nothing to move)'}`,
  ];
}

export function formatSettleReport(r: SettleReport): string {
  const w = r.window;
  const head = r.alreadyCleared
    ? `${w.city_code} ${w.business_day} (${w.currency}) was already cleared${w.cleared_at ? ` at ${new Date(w.cleared_at).toISOString()}` : ''}: nothing changed. Its batch:`
    : `${w.city_code} ${w.business_day} (${w.currency}) cleared${w.closed_by === 'cli' ? '' : ` (closed earlier by ${w.closed_by})`}:`;
  const payouts = Object.entries(r.payouts).map(([s, n]) => `${n} ${s}`).join(', ') || 'none';
  return [
    head,
    ...(r.earlierCleared.length ? [`(first cleared earlier windows left closed: ${r.earlierCleared.join(', ')})`] : []),
    `window ${toGlobalId('SettlementWindow', w.id)}`,
    '',
    ...summaryTable(r),
    '',
    `window ${w.status}, batch ${r.batch.status}; payout instructions: ${payouts}.`,
    'Payouts are sent by the running platform’s settlement job, not by this command.',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The command

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

export function settleCommand(withOrm: WithOrm): Command {
  return new Command('settle')
    .description(
      'close a city’s settlement window for a business day and clear it: lines per participant, interchange, the clearing ledger entry and payout instructions; ' +
        'prints the batch totals. It does not send payouts: the running platform’s settlement job sends them (and retries). ' +
        'Running it again on a cleared window changes nothing and prints the same totals.',
    )
    .requiredOption('--city <code>', 'the city code, e.g. GZ')
    .requiredOption('--date <YYYY-MM-DD>', 'the business day (local to the city); it must have begun')
    .option('--cutoff <HH:MM>', 'the cut-off of a window this opens (default: SETTLEMENT_CUTOFF, else 02:00)')
    .addHelpText('after', '\nProgress goes to stderr (a bar on a terminal, one line per stage otherwise); the totals to stdout.\nExit code 2: unknown city, a bad date or cut-off, a day that has not begun.')
    .action(async (opts: { city: string; date: string; cutoff?: string }) => {
      const progress = createProgress({ title: 'settle', total: 6 });
      try {
        const report = await withOrm((orm, config) => settle(orm.em.fork(), { city: opts.city, date: opts.date, cutoff: opts.cutoff ?? config.settlementCutoff }, progress));
        progress.finish();
        console.log(formatSettleReport(report));
      } catch (err) {
        progress.finish();
        if (err instanceof SettleUsageError || (err instanceof SettlementError && USAGE_CODES.has(err.code))) {
          console.error(`onecard settle: ${err.message}`);
          process.exitCode = EXIT_USAGE;
          return;
        }
        throw err;
      }
    });
}
