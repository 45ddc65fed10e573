import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { feeRevenueAccount, PAYABLE_ACCOUNT_CODE, payableAccount, settlementInTransitAccount } from '../ledger/accounts.js';
import { credit, debit, type PostingLine, postMany } from '../ledger/ledger.service.js';
import { toGlobalId } from '../graphql/global-id.js';
import { type EventOwnerKind, recordEvents } from '../webhooks/outbox.js';
import { SALE_KINDS } from './clearing-items.js';
import { partitionHolding } from './clearing-partitions.js';
import { SettlementError } from './settlement.errors.js';
import { windowById, type WindowRow } from './windows.js';
import { NOW, transition } from '../lifecycle/machine.js';
import { batchMachine, windowMachine } from './settlement-machines.js';

export interface BatchRow {
  id: string;
  window_id: string;
  currency: string;
  status: 'PAYING' | 'SETTLED';
  item_count: string;
  gross: string;
  refunds: string;
  fees: string;
  net: string;
  payout_total: string;
  top_ups: string;
  top_up_refunds: string;
  journal_entry_id: string | null;
  created_at: Date;
  settled_at: Date | null;
}

/** Whose webhook endpoints hear of a participant's statements. */
export const EVENT_OWNER: Record<string, EventOwnerKind> = { MERCHANT: 'MERCHANT', BILLER: 'BILLER', CARD_COMPANY: 'ISSUER' };


export async function batchOfWindow(em: EntityManager, windowId: string): Promise<BatchRow | null> {
  const [row] = await em.execute<BatchRow[]>(`select *, btrim(currency) as currency from settlement_batch where window_id = ?`, [windowId]);
  return row ?? null;
}

// Every participant with its name and fee plan, whatever its kind.
const PARTICIPANTS = `(select 'MERCHANT' as kind, id, name, fee_plan_id from merchant
   union all select 'BILLER', id, name, fee_plan_id from biller
   union all select 'CARD_COMPANY', id, name, fee_plan_id from card_company)`;

// Every participant that has a fee plan, with the plan's terms: one hash for the pass to probe per item.
const PARTICIPANT_PLANS = `(select 'MERCHANT' as kind, m.id, fp.basis_points, fp.fixed_fee, fp.minimum_fee from merchant m join fee_plan fp on fp.id = m.fee_plan_id
   union all select 'BILLER', b.id, fp.basis_points, fp.fixed_fee, fp.minimum_fee from biller b join fee_plan fp on fp.id = b.fee_plan_id
   union all select 'CARD_COMPANY', c.id, fp.basis_points, fp.fixed_fee, fp.minimum_fee from card_company c join fee_plan fp on fp.id = c.fee_plan_id)`;

const SALES = `(${SALE_KINDS.map((k) => `'${k}'`).join(',')})`;
/** Sales and refunds summed from the pass's rows (per kind). */
const GROSS = `coalesce(sum(t.amount) filter (where t.kind in ${SALES}), 0)`;
const REFUNDS = `coalesce(sum(t.amount) filter (where t.kind = 'REFUND'), 0)`;

/**
 * The pass's plan: the window read in parallel, one hash join to the participants' plans, a hash
 * aggregate of a few thousand groups. Left alone the planner costs the hash join on the union as if
 * each probe met many rows (a union has no statistics) and sorts the window for a merge join, and it
 * overestimates the groups and sorts them too, spilling at the default work_mem (EXPLAIN in
 * docs/performance.md). No nested loop either: with statistics that missed the window it would
 * loop over millions of items. Only for the pass: the later statements join to ledger_account, where
 * a hash join would read every account.
 */
const PASS_PLAN: Record<string, string> = { work_mem: '64MB', enable_mergejoin: 'off', enable_nestloop: 'off' };

/**
 * Runs `work` with planner settings changed for it alone, then puts them back. Local to the caller's
 * transaction: if `work` fails, the rollback undoes them.
 */
async function withPlannerSettings<T>(tx: EntityManager, settings: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const names = Object.keys(settings);
  const [before] = await tx.execute<Record<string, string>[]>(`select ${names.map((n, k) => `current_setting('${n}') as s${k}`).join(', ')}`);
  const apply = (values: string[]) => tx.execute(`select ${names.map((n, k) => `set_config('${n}', ?, true) as s${k}`).join(', ')}`, values);
  await apply(names.map((n) => settings[n]!));
  const result = await work();
  await apply(names.map((_, k) => before![`s${k}`]!));
  return result;
}

/**
 * Clears a closed window: set-based SQL over its items makes one line per participant (counts,
 * gross, refunds, the operator's fee by the participant's plan, net, what earlier windows left),
 * the interchange positions between card companies, one ledger entry (payables → fee revenue and
 * settlement in transit) and a payout instruction per positive due. Runs once per window: running
 * it again answers the batch it made.
 *
 * The fee is `feeFor()` per sale item (tenancy/fee.ts), written here in SQL so it runs in the
 * database; a test holds the two equal. Refunds give no fee back.
 */
export async function clearWindow(em: EntityManager, windowId: string): Promise<BatchRow> {
  await refreshStatisticsFor(em, windowId);
  return em.transactional(async (tx) => {
    const window = await windowById(tx, windowId, true);
    if (!window) throw new SettlementError('NOT_FOUND', `no settlement window ${windowId}`, 'window');
    // One clearing of a city at a time: what one window carries, the next takes. (No key update:
    // transactions opening a window of the city meanwhile are not held up.)
    await tx.execute(`select id from city where id = ? for no key update`, [window.city_id]);
    if (window.status === 'OPEN') throw new SettlementError('WINDOW_OPEN', 'the window is open: close it first', 'window');
    const done = await batchOfWindow(tx, window.id);
    if (done) return done;

    const batchId = randomUUID();
    await tx.execute(
      `insert into settlement_batch (id, window_id, currency, status, item_count, gross, refunds, fees, net, payout_total, top_ups, top_up_refunds)
       values (?, ?, ?, 'PAYING', 0, 0, 0, 0, 0, 0, 0, 0)`,
      [batchId, window.id, window.currency],
    );
    await insertLinesAndInterchange(tx, batchId, window);
    const entryId = await postClearing(tx, batchId, window);
    await tx.execute(
      `insert into settlement_payout (id, line_id, amount, currency, status)
       select gen_random_uuid(), l.id, l.payout_amount, l.currency, 'PENDING' from settlement_line l where l.batch_id = ? and l.payout_amount > 0`,
      [batchId],
    );
    const [totals] = await tx.execute<{ paying: string }[]>(
      `update settlement_batch b set item_count = t.item_count, gross = t.gross, refunds = t.refunds, fees = t.fees, net = t.net, payout_total = t.payout_total,
              top_ups = t.top_ups, top_up_refunds = t.top_up_refunds, journal_entry_id = ?
         from (select coalesce(sum(sales_count + refund_count + top_up_count), 0) as item_count, coalesce(sum(gross), 0) as gross, coalesce(sum(refunds), 0) as refunds,
                      coalesce(sum(fees), 0) as fees, coalesce(sum(net), 0) as net, coalesce(sum(payout_amount), 0) as payout_total,
                      coalesce(sum(top_ups), 0) as top_ups, coalesce(sum(top_up_refunds), 0) as top_up_refunds, count(*) filter (where status = 'PAYING') as paying
                 from settlement_line where batch_id = ?) t
        where b.id = ?
        returning t.paying`,
      [entryId, batchId, batchId],
    );
    // Nothing to pay out: the batch is settled at once.
    const settled = Number(totals!.paying) === 0;
    if (settled) await transition(tx, batchMachine, { id: batchId, status: 'PAYING' }, 'SETTLED', { settled_at: NOW }, { cause: 'cleared with nothing to pay' });
    await announceStatements(tx, batchId, window);
    await transition(tx, windowMachine, window, settled ? 'SETTLED' : 'CLEARED', { cleared_at: NOW, settled_at: settled ? NOW : null }, { cause: 'cleared' });
    return (await batchOfWindow(tx, window.id))!;
  });
}

/**
 * Statistics that know the window's items, before clearing plans its pass: without them the planner
 * expects a handful and walks millions one by one. Only the window's month partition
 * (clearing-partitions.ts): analyzing the partitioned table samples every month kept, and the table
 * as a whole. And only when its statistics are older than the window's close: the window takes no
 * item after its close, so statistics taken since (by the clearing of another city's window of the
 * same days, or by autovacuum) already know all of it. Outside the clearing's transaction, so that
 * the statistics and the time they were taken commit together even if the clearing fails.
 */
export async function refreshStatisticsFor(em: EntityManager, windowId: string): Promise<boolean> {
  const window = await windowById(em, windowId);
  if (!window?.closed_at || window.status !== 'CLOSED') return false; // nothing to clear (the transaction says why)
  const partition = await partitionHolding(em, window.business_day);
  const [stats] = await em.execute<{ fresh: boolean }[]>(
    `select coalesce(greatest(last_analyze, last_autoanalyze) > ?, false) as fresh from pg_stat_user_tables where relid = to_regclass(?)`,
    [window.closed_at, partition],
  );
  if (stats?.fresh) return false;
  // Only the columns the pass filters and groups on: half the time of all fifteen (the texts are the
  // costly ones). A partial ANALYZE leaves autovacuum's count of changes, so it still analyzes the rest.
  await em.execute(`analyze ${partition} (window_id, participant_kind, participant_id, card_company_id, kind)`);
  return true;
}

/**
 * One line per participant with items in the window, or with something left from earlier windows
 * of this city (a negative due, a failed payout): those are carried into the new line. Lines and
 * interchange positions come from one read of the window's items (issue 23), summed per
 * (participant, card issuer, kind) with each item's fee by the participant's plan into a temporary
 * table of a few thousand rows: a CREATE TABLE AS may read in parallel, an INSERT may not. Three
 * plain sums per row (grouping by kind) rather than eight filtered ones: the filters ran per item,
 * and the top-up sums only ever meant anything for card companies.
 */
async function insertLinesAndInterchange(tx: EntityManager, batchId: string, window: WindowRow): Promise<void> {
  // The earlier lines to carry, locked: a payout failing right now either committed before (and is
  // carried here) or waits and stays for the next window; a line is never carried twice or lost.
  const carried = await tx.execute<{ id: string }[]>(
    `select l.id from settlement_line l join settlement_batch b on b.id = l.batch_id join settlement_window w on w.id = b.window_id
      where l.status in ('CARRIED_FORWARD','PAYOUT_FAILED') and l.carried_into is null and w.city_id = ? and l.currency = ?
      for update of l`,
    [window.city_id, window.currency],
  );
  const carriedIds = `{${carried.map((r) => r.id).join(',')}}`;
  await tx.execute(`drop table if exists pg_temp.clearing_window_totals`);
  await withPlannerSettings(tx, PASS_PLAN, () =>
    tx.execute(
      `create temporary table clearing_window_totals on commit drop as
       select i.participant_kind, i.participant_id, i.card_company_id, i.kind, count(*) as item_count, sum(i.amount) as amount,
              -- every item's fee by its participant's plan (null without a plan); only sales' fees are charged
              sum(greatest(p.minimum_fee, p.fixed_fee + (i.amount * p.basis_points + 5000) / 10000)) as fees
         from clearing_item i
         left join ${PARTICIPANT_PLANS} p on p.kind = i.participant_kind and p.id = i.participant_id
        where i.window_id = ?
        group by i.participant_kind, i.participant_id, i.card_company_id, i.kind`,
      [window.id],
    ),
  );
  // Cards used outside their home city: what each issuer's cards spent (less refunds) with the window city's card company.
  await tx.execute(
    `insert into interchange_position (batch_id, issuer_id, acquirer_id, currency, count, gross, refunds, net)
     select ?, t.card_company_id, acquirer.id, ?, sum(t.item_count), ${GROSS}, ${REFUNDS}, ${GROSS} - ${REFUNDS}
       from clearing_window_totals t cross join (select id from card_company where city_id = ?) acquirer
      where t.card_company_id is not null and t.card_company_id <> acquirer.id and (t.kind in ${SALES} or t.kind = 'REFUND')
      group by t.card_company_id, acquirer.id`,
    [batchId, window.currency, window.city_id],
  );
  await tx.execute(
    `with totals as (
       select t.participant_kind, t.participant_id,
              coalesce(sum(t.item_count) filter (where t.kind in ${SALES}), 0) as sales_count, coalesce(sum(t.item_count) filter (where t.kind = 'REFUND'), 0) as refund_count,
              ${GROSS} as gross, ${REFUNDS} as refunds,
              -- refunds give no fee back; no plan, no fee
              coalesce(sum(t.fees) filter (where t.kind in ${SALES}), 0) as fees,
              coalesce(sum(t.item_count) filter (where t.kind = 'TOP_UP'), 0) as top_up_count, coalesce(sum(t.amount) filter (where t.kind = 'TOP_UP'), 0) as top_ups,
              coalesce(sum(case t.kind when 'TOP_UP_REFUND' then t.amount when 'TOP_UP_REFUND_FAILED' then -t.amount end), 0) as top_up_refunds
         from clearing_window_totals t group by t.participant_kind, t.participant_id),
     outstanding as (
       select l.participant_kind, l.participant_id, sum(case l.status when 'CARRIED_FORWARD' then l.due else l.payout_amount end) as carried
         from settlement_line l join ${PARTICIPANTS} p on p.kind = l.participant_kind and p.id = l.participant_id
        where l.id = any(?::uuid[])
        group by l.participant_kind, l.participant_id),
     lines as (
       select coalesce(t.participant_kind, o.participant_kind) as participant_kind, coalesce(t.participant_id, o.participant_id) as participant_id,
              coalesce(t.sales_count, 0) as sales_count, coalesce(t.refund_count, 0) as refund_count, coalesce(t.gross, 0) as gross,
              coalesce(t.refunds, 0) as refunds, coalesce(t.fees, 0) as fees, coalesce(o.carried, 0) as carried_in,
              coalesce(t.top_up_count, 0) as top_up_count, coalesce(t.top_ups, 0) as top_ups, coalesce(t.top_up_refunds, 0) as top_up_refunds
         from totals t full join outstanding o on o.participant_kind = t.participant_kind and o.participant_id = t.participant_id)
     insert into settlement_line (id, batch_id, participant_kind, participant_id, participant_name, currency, fee_plan_id, sales_count, refund_count,
                                  gross, refunds, fees, net, carried_in, due, payout_amount, status, top_up_count, top_ups, top_up_refunds)
     select gen_random_uuid(), ?, l.participant_kind, l.participant_id, p.name, ?, p.fee_plan_id, l.sales_count, l.refund_count,
            l.gross, l.refunds, l.fees, l.gross - l.refunds - l.fees, l.carried_in, l.gross - l.refunds - l.fees + l.carried_in,
            greatest(l.gross - l.refunds - l.fees + l.carried_in, 0),
            case when l.gross - l.refunds - l.fees + l.carried_in > 0 then 'PAYING' when l.gross - l.refunds - l.fees + l.carried_in < 0 then 'CARRIED_FORWARD' else 'NOTHING_DUE' end,
            l.top_up_count, l.top_ups, l.top_up_refunds
       from lines l join ${PARTICIPANTS} p on p.kind = l.participant_kind and p.id = l.participant_id`,
    [carriedIds, batchId, window.currency],
  );
  // What earlier lines left is now the new line's.
  await tx.execute(
    `update settlement_line old set carried_into = l.id
       from settlement_line l
      where l.batch_id = ? and old.id = any(?::uuid[]) and old.participant_kind = l.participant_kind and old.participant_id = l.participant_id`,
    [batchId, carriedIds],
  );
}

/** Every participant of the batch hears that its statement is ready. */
async function announceStatements(tx: EntityManager, batchId: string, window: WindowRow): Promise<void> {
  const lines = await tx.execute<{ id: string; participant_kind: string; participant_id: string; net: string; due: string; payout_amount: string; status: string }[]>(
    `select id, participant_kind, participant_id, net::text as net, due::text as due, payout_amount::text as payout_amount, status from settlement_line where batch_id = ?`,
    [batchId],
  );
  await recordEvents(
    tx,
    lines.map((l) => ({
      type: 'settlement.ready',
      ownerKind: EVENT_OWNER[l.participant_kind]!,
      ownerId: l.participant_id,
      subjectId: toGlobalId('SettlementLine', l.id),
      payload: { statement: toGlobalId('SettlementLine', l.id), city: window.city_code, businessDay: window.business_day, currency: window.currency, net: Number(l.net), due: Number(l.due), payout: Number(l.payout_amount), status: l.status },
    })),
  );
}

/**
 * One entry for the batch, set-based: each payable gives its fees to the operator's fee revenue and its
 * payout to settlement in transit. A negative due stays in the payable (carried to the next line).
 */
async function postClearing(tx: EntityManager, batchId: string, window: WindowRow): Promise<string | null> {
  const rows = await tx.execute<{ participant_kind: string; participant_id: string; fees: string; payout_amount: string }[]>(
    `select participant_kind, participant_id, fees::text as fees, payout_amount::text as payout_amount from settlement_line
      where batch_id = ? and fees + payout_amount <> 0 order by participant_kind, participant_id`,
    [batchId],
  );
  if (rows.length === 0) return null;
  const accounts = await accountIds(tx, rows, window.currency);
  const lines: PostingLine[] = [];
  let fees = 0n;
  let payouts = 0n;
  for (const r of rows) {
    lines.push(debit(accounts.get(`${r.participant_kind}:${r.participant_id}`)!, BigInt(r.fees) + BigInt(r.payout_amount)));
    fees += BigInt(r.fees);
    payouts += BigInt(r.payout_amount);
  }
  if (fees !== 0n) lines.push(credit((await feeRevenueAccount(tx, window.currency)).id, fees));
  if (payouts !== 0n) lines.push(credit((await settlementInTransitAccount(tx, window.currency)).id, payouts));
  // postMany(): the ~4,000 payables locked and moved by one statement each, not one statement per payable.
  const [entry] = await postMany(tx, [
    {
      key: `settlement:${window.id}:clearing`,
      description: `clearing of ${window.city_code} ${window.business_day}: payables to fees and settlement in transit`,
      lines,
      metadata: { kind: 'CLEARING', window: window.id, batch: batchId },
    },
  ]);
  return entry!.id;
}

/** The payable accounts of many participants in one query; the rare missing one is opened. */
async function accountIds(tx: EntityManager, rows: { participant_kind: string; participant_id: string }[], currency: string): Promise<Map<string, string>> {
  const codes = rows.map((r) => PAYABLE_ACCOUNT_CODE[r.participant_kind]!(r.participant_id, currency));
  const found = await tx.execute<{ id: string; code: string }[]>(`select id, code from ledger_account where code in (?)`, [codes]);
  const byCode = new Map(found.map((a) => [a.code, a.id]));
  const ids = new Map<string, string>();
  for (const r of rows) {
    const code = PAYABLE_ACCOUNT_CODE[r.participant_kind]!(r.participant_id, currency);
    ids.set(`${r.participant_kind}:${r.participant_id}`, byCode.get(code) ?? (await payableAccount(tx, r.participant_kind, r.participant_id, currency)).id);
  }
  return ids;
}
