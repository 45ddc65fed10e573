import type { EntityManager } from '@mikro-orm/postgresql';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { type BalanceTransaction, type GatewayClient, GatewayError } from '../topups/gateway/gateway-client.js';
import { SettlementError } from './settlement.errors.js';
import { windowById, type WindowRow } from './windows.js';
import { gatewayClearingAccount, gatewayFeesAccount } from '../ledger/accounts.js';

/*
 * Reconciliation (对账) of a closed settlement window with the payment gateway: the gateway's
 * balance transactions are imported, each is given to exactly one window, and what the gateway
 * moved per object (charge, refund, payout) is compared with what we booked for it. Every
 * difference is kept as a row an operator resolves with a note; none is dropped or overwritten.
 * docs/settlement.md#reconciliation tells the same story for operators.
 */

export type DifferenceKind = 'OURS_ONLY' | 'THEIRS_ONLY' | 'AMOUNT_DIFFERS';
export type { DifferenceStatus } from './settlement-machines.js';
import { differenceMachine, type DifferenceStatus } from './settlement-machines.js';
import { NOW, sql, transition, transitionWhere } from '../lifecycle/machine.js';

export interface DifferenceRow {
  id: string;
  window_id: string;
  kind: DifferenceKind;
  /** The gateway object's id, or `ours:<our reference>` for an item the gateway has not named yet. */
  gateway_reference: string;
  our_reference: string | null;
  our_amount: string | null;
  gateway_amount: string | null;
  currency: string;
  status: DifferenceStatus;
  note: string | null;
  resolved_by: string | null;
  resolved_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** What the gateway calls the object (charge, refund, payout), when it has transactions for it. */
  gateway_type: string | null;
  /** created_at to the microsecond, for keyset pages (a Date keeps only milliseconds). */
  position: string;
}

export interface ReconciliationSummary {
  runId: string;
  windowId: string;
  currency: string;
  ranAt: Date;
  /** Balance transactions this run stored for the first time. */
  imported: number;
  /** Balance transactions of the window (by the attribution rules below). */
  gatewayCount: number;
  /** Our records compared: the window's top-up clearing items and its batch's sent payouts. */
  ourCount: number;
  /** References (gateway objects) on which both sides agree. */
  matched: number;
  /** References that differ now, whatever their status (a resolved one still differs). */
  differences: number;
  /** Differences of the window still waiting for an operator. */
  openDifferences: number;
  /** The gateway's fees on the window's transactions (booked as an expense when imported). */
  gatewayFees: bigint;
}

/** The clearing items the gateway sees, and their sign on the gateway balance: money in (+) or out (−). */
const GATEWAY_KINDS = `('TOP_UP','TOP_UP_REFUND','TOP_UP_REFUND_FAILED')`;
const SIGN = `case i.kind when 'TOP_UP_REFUND' then -1 else 1 end`;
/**
 * Key of our items the gateway has not named yet (a refund whose id we have not learnt): listed as
 * OURS_ONLY unless they net to zero (a refund the gateway refused, and its reversal).
 */
export const UNNAMED_PREFIX = 'ours:';
const PAGE_SIZE = 100;
/**
 * A charge is created before we record it (the webhook comes after), possibly before midnight for
 * an item of the next day; and a late item's day is older than its window's. This far before the
 * earliest of the window's day and its items, transactions naming one of our items are fetched too.
 */
const LOOKBACK_SECONDS = 24 * 60 * 60;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_NOTE = 1000;

// ——— the gateway's side ———

function usable(t: unknown): t is BalanceTransaction {
  const r = t as Record<string, unknown>;
  return (
    typeof r === 'object' && r !== null &&
    typeof r.id === 'string' && r.id.length > 0 && r.id.length <= 255 &&
    typeof r.source === 'string' && r.source.length > 0 && r.source.length <= 255 &&
    typeof r.type === 'string' &&
    typeof r.currency === 'string' && /^[a-zA-Z]{3}$/.test(r.currency) &&
    [r.amount, r.fee, r.net, r.created].every((n) => Number.isSafeInteger(n))
  );
}

/** Every balance transaction created in [from, to), oldest first, following `has_more`. */
async function fetchBalanceTransactions(gateway: GatewayClient, from: number, to: number): Promise<BalanceTransaction[]> {
  const byId = new Map<string, BalanceTransaction>();
  let startingAfter: string | undefined;
  for (;;) {
    const page = await gateway.listBalanceTransactions({ createdGte: from, createdLt: to, limit: PAGE_SIZE, startingAfter });
    if (!Array.isArray(page.data) || !page.data.every(usable)) throw new GatewayError('UNAVAILABLE', 'GET /v1/balance_transactions: an answer we cannot use');
    for (const t of page.data) byId.set(t.id, t);
    if (!page.has_more) return [...byId.values()];
    // More pages promised but none given: we would ask for the same page forever.
    if (page.data.length === 0) throw new GatewayError('UNAVAILABLE', 'GET /v1/balance_transactions: has_more without data');
    startingAfter = page.data.at(-1)!.id;
  }
}

/** The window's business day in its city, and the earliest of its gateway items, in unix seconds. */
async function bounds(em: EntityManager, windowId: string): Promise<{ dayStart: number; dayEnd: number; earliest: number | null }> {
  const [row] = await em.execute<{ day_start: number; day_end: number; earliest: number | null }[]>(
    `select extract(epoch from (w.business_day::timestamp at time zone c.time_zone))::float8 as day_start,
            extract(epoch from ((w.business_day + 1)::timestamp at time zone c.time_zone))::float8 as day_end,
            (select extract(epoch from min(i.occurred_at))::float8 from clearing_item i where i.window_id = w.id and i.kind in ${GATEWAY_KINDS}) as earliest
       from settlement_window w join city c on c.id = w.city_id where w.id = ?`,
    [windowId],
  );
  return { dayStart: Number(row!.day_start), dayEnd: Number(row!.day_end), earliest: row!.earliest === null ? null : Math.floor(Number(row!.earliest)) };
}

/** The gateway ids our side of a window names: its top-up items' charges and refunds, its batch's payouts. */
async function ourGatewayIds(tx: EntityManager, windowId: string): Promise<Set<string>> {
  const rows = await tx.execute<{ ref: string }[]>(
    `select i.gateway_reference as ref from clearing_item i where i.window_id = ? and i.kind in ${GATEWAY_KINDS} and i.gateway_reference is not null
     union
     select p.gateway_payout_id from settlement_payout p join settlement_line l on l.id = p.line_id join settlement_batch b on b.id = l.batch_id
      where b.window_id = ? and p.gateway_payout_id is not null`,
    [windowId, windowId],
  );
  return new Set(rows.map((r) => r.ref));
}

/** Stores transactions not seen before (the gateway's records never change); returns how many were new. */
async function importTransactions(tx: EntityManager, txns: BalanceTransaction[]): Promise<number> {
  let inserted = 0;
  for (let from = 0; from < txns.length; from += 1000) {
    const chunk = txns.slice(from, from + 1000).map((t) => ({ id: t.id, type: t.type, source: t.source, amount: t.amount, fee: t.fee, net: t.net, currency: t.currency.toUpperCase(), created: t.created }));
    const rows = await tx.execute<{ id: string }[]>(
      `insert into gateway_balance_transaction (id, type, source, amount, fee, net, currency, created)
       select r.id, r.type, r.source, r.amount, r.fee, r.net, r.currency, to_timestamp(r.created)
         from jsonb_to_recordset(?::jsonb) as r(id text, type text, source text, amount bigint, fee bigint, net bigint, currency text, created bigint)
       on conflict (id) do nothing
       returning id`,
      [JSON.stringify(chunk)],
    );
    inserted += rows.length;
  }
  return inserted;
}

/**
 * The gateway keeps a fee on each charge: it pays out of a balance that is the charges less its
 * fees, while our gateway clearing account (an asset: what the gateway holds for us) was debited
 * with the whole charge when the top-up was paid. Each transaction's fee is booked once, by the
 * key `gateway-fee:<txn id>`, as an operator expense against gateway clearing, so that after
 * import gateway clearing equals what the gateway's own balance says. A negative fee (the gateway
 * giving a fee back) is booked the other way round.
 */
async function bookFees(tx: EntityManager, txns: BalanceTransaction[]): Promise<void> {
  const withFee = txns.filter((t) => t.fee !== 0);
  if (withFee.length === 0) return;
  const booked = await tx.execute<{ entry_key: string }[]>(`select entry_key from journal_entry_key where entry_key in (select jsonb_array_elements_text(?::jsonb))`, [
    JSON.stringify(withFee.map((t) => `gateway-fee:${t.id}`)),
  ]);
  const done = new Set(booked.map((b) => b.entry_key));
  const accounts = new Map<string, { fees: string; clearing: string }>();
  for (const t of withFee) {
    const key = `gateway-fee:${t.id}`;
    if (done.has(key)) continue;
    const currency = t.currency.toUpperCase();
    if (!accounts.has(currency)) accounts.set(currency, { fees: (await gatewayFeesAccount(tx, currency)).id, clearing: (await gatewayClearingAccount(tx, currency)).id });
    const { fees, clearing } = accounts.get(currency)!;
    const amount = BigInt(Math.abs(t.fee));
    await post(tx, {
      key,
      description: `gateway fee on ${t.type} ${t.source}`,
      lines: t.fee > 0 ? [debit(fees, amount), credit(clearing, amount)] : [debit(clearing, amount), credit(fees, amount)],
      metadata: { kind: 'GATEWAY_FEE', balanceTransaction: t.id, source: t.source, type: t.type },
    });
  }
}

/**
 * A transaction no clearing item or payout names, created in the window's business day and in its
 * currency, is taken by the first window of that day to reconcile it (two cities share a calendar
 * day): that way it is listed once, not once per city.
 */
async function claimUnknown(tx: EntityManager, window: WindowRow, dayStart: number, dayEnd: number): Promise<void> {
  await tx.execute(
    `update gateway_balance_transaction t set claimed_by_window = ?
      where t.claimed_by_window is null and t.created >= to_timestamp(?) and t.created < to_timestamp(?) and t.currency = ?
        and not exists (select 1 from clearing_item i where i.gateway_reference = t.source)
        and not exists (select 1 from settlement_payout p where p.gateway_payout_id = t.source)`,
    [window.id, dayStart, dayEnd, window.currency],
  );
}

// ——— comparing ———

interface Compared {
  key: string;
  refs: string | null;
  our_amount: string | null;
  gateway_amount: string | null;
  our_records: number;
  gateway_records: number;
  fees: string;
  kind: DifferenceKind | null;
}

/**
 * Our side and the gateway's side of a window, per reference, in one query.
 *
 * Ours: the window's top-up items, signed as they move the gateway balance (TOP_UP +,
 * TOP_UP_REFUND −, TOP_UP_REFUND_FAILED +) and summed per gateway reference (one not named yet is
 * its own reference, `ours:top-up:<id>`); and the batch's payouts the gateway has an id for (−amount;
 * a FAILED one 0, as the gateway's payout and its reversal make 0).
 *
 * Theirs: each balance transaction belongs to one window, the first that applies of
 *   1. the window of a clearing item that names its source, one of the same sign first (a refund
 *      and its failure can fall in different windows);
 *   2. the window of the batch whose payout it is;
 *   3. the window that claimed it (claimUnknown), while nothing of ours names it.
 * A transaction named only by an item still in an open window waits for that window.
 */
async function compare(tx: EntityManager, window: WindowRow, dayStart: number, dayEnd: number): Promise<Compared[]> {
  return tx.execute<Compared[]>(
    `with ours_rows as (
       select coalesce(i.gateway_reference, '${UNNAMED_PREFIX}top-up:' || i.reference) as key, i.gateway_reference is not null as named,
              ${SIGN} * i.amount as amount, 'top-up:' || i.reference as ref
         from clearing_item i where i.window_id = ? and i.kind in ${GATEWAY_KINDS}
       union all
       select p.gateway_payout_id, true, case when p.status = 'FAILED' then 0 else -p.amount end, 'payout:' || p.id
         from settlement_payout p join settlement_line l on l.id = p.line_id join settlement_batch b on b.id = l.batch_id
        where b.window_id = ? and p.gateway_payout_id is not null),
     ours as (
       select key, bool_or(named) as named, sum(amount) as amount, count(*) as n, string_agg(distinct ref, ' ' order by ref) as refs
         from ours_rows group by key),
     candidates as (
       select t.* from gateway_balance_transaction t
        where t.source in (select key from ours) or (t.created >= to_timestamp(?) and t.created < to_timestamp(?)) or t.claimed_by_window = ?),
     attributed as (
       select c.source, c.amount, c.fee, c.currency, coalesce(
                (select i.window_id from clearing_item i join settlement_window w on w.id = i.window_id
                  where i.gateway_reference = c.source and i.kind in ${GATEWAY_KINDS}
                  order by (${SIGN}) = sign(c.amount) desc, w.business_day, w.id limit 1),
                (select b.window_id from settlement_payout p join settlement_line l on l.id = p.line_id join settlement_batch b on b.id = l.batch_id
                  where p.gateway_payout_id = c.source),
                case when not exists (select 1 from clearing_item i where i.gateway_reference = c.source) then c.claimed_by_window end) as window_id
         from candidates c),
     theirs as (
       select source as key, sum(amount) as amount, sum(fee) as fees, count(*) as n, bool_or(currency <> ?) as other_currency
         from attributed where window_id = ? group by source)
     select coalesce(o.key, t.key) as key, o.refs, o.amount::text as our_amount, t.amount::text as gateway_amount,
            coalesce(o.n, 0)::int as our_records, coalesce(t.n, 0)::int as gateway_records, coalesce(t.fees, 0)::text as fees,
            case when t.key is null then case when o.named or o.amount <> 0 then 'OURS_ONLY' end
                 when o.key is null then 'THEIRS_ONLY'
                 when o.amount <> t.amount or t.other_currency then 'AMOUNT_DIFFERS' end as kind
       from ours o full join theirs t on t.key = o.key
      order by 1`,
    [window.id, window.id, dayStart, dayEnd, window.id, window.currency, window.id],
  );
}

/**
 * Writes what a comparison found: each difference upserted by (window, reference) — a new one OPEN,
 * an OPEN one updated only when it changed, a MATCHED_LATER one OPEN again, a RESOLVED one never
 * touched — and each OPEN one that no longer differs becomes MATCHED_LATER.
 */
async function recordDifferences(tx: EntityManager, window: WindowRow, compared: Compared[]): Promise<void> {
  const differing = compared.filter((c) => c.kind !== null);
  if (differing.length > 0) {
    const found = JSON.stringify(differing.map((c) => ({ kind: c.kind, key: c.key, refs: c.refs, our_amount: c.our_amount, gateway_amount: c.gateway_amount })));
    const FOUND = 'jsonb_to_recordset(?::jsonb) as r(kind text, key text, refs text, our_amount bigint, gateway_amount bigint)';
    // New ones OPEN; an OPEN one updated only when it changed.
    await tx.execute(
      `insert into reconciliation_difference (id, window_id, kind, gateway_reference, our_reference, our_amount, gateway_amount, currency, status)
       select gen_random_uuid(), ?, r.kind, r.key, r.refs, r.our_amount, r.gateway_amount, ?, 'OPEN' from ${FOUND}
       on conflict (window_id, gateway_reference) do update
          set kind = excluded.kind, our_reference = excluded.our_reference, our_amount = excluded.our_amount,
              gateway_amount = excluded.gateway_amount, updated_at = now()
        where reconciliation_difference.status = 'OPEN'
          and (reconciliation_difference.kind, reconciliation_difference.our_reference, reconciliation_difference.our_amount, reconciliation_difference.gateway_amount)
              is distinct from (excluded.kind, excluded.our_reference, excluded.our_amount, excluded.gateway_amount)`,
      [window.id, window.currency, found],
    );
    // A MATCHED_LATER one found again is OPEN again, as now found.
    await transitionWhere(tx, differenceMachine, {
      from: ['MATCHED_LATER'],
      to: 'OPEN',
      using: sql(FOUND, found),
      patch: { kind: sql('r.kind'), our_reference: sql('r.refs'), our_amount: sql('r.our_amount'), gateway_amount: sql('r.gateway_amount'), updated_at: NOW },
      where: 't.window_id = ? and t.gateway_reference = r.key',
      params: [window.id],
      cause: 'found again by reconciliation',
    });
  }
  await transitionWhere(tx, differenceMachine, {
    from: ['OPEN'],
    to: 'MATCHED_LATER',
    patch: { updated_at: NOW },
    where: 't.window_id = ? and t.gateway_reference not in (select jsonb_array_elements_text(?::jsonb))',
    params: [window.id, JSON.stringify(differing.map((c) => c.key))],
    cause: 'no longer found by reconciliation',
  });
}

async function compareAndRecord(tx: EntityManager, window: WindowRow): Promise<Compared[]> {
  const { dayStart, dayEnd } = await bounds(tx, window.id);
  const compared = await compare(tx, window, dayStart, dayEnd);
  await recordDifferences(tx, window, compared);
  return compared;
}

// ——— the run ———

/**
 * Reconciles a closed (or cleared, or settled) window with the gateway: imports the balance
 * transactions of its business day (day start to next day start in its city's time zone) and the
 * ones before and after it that name one of the window's items or payouts (payouts are made after
 * the window closed: the range reaches `now`), books their fees, compares, records the
 * differences and a run. Running it again imports nothing new and changes no difference that did
 * not change. Every page is fetched before anything is written: a gateway that does not answer
 * leaves nothing half-done.
 */
export async function reconcileWindow(em: EntityManager, gateway: GatewayClient | null, windowId: string, now = new Date()): Promise<ReconciliationSummary> {
  const found = UUID.test(windowId) ? await windowById(em, windowId) : null;
  if (!found) throw new SettlementError('NOT_FOUND', `no settlement window ${windowId}`, 'window');
  if (found.status === 'OPEN') throw new SettlementError('WINDOW_OPEN', 'the window is open: close it before reconciling it', 'window');
  if (!gateway) throw new SettlementError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured');

  const { dayStart, dayEnd, earliest } = await bounds(em, found.id);
  const from = Math.min(dayStart, earliest ?? dayStart) - LOOKBACK_SECONDS;
  const to = Math.max(dayEnd, Math.floor(now.getTime() / 1000) + 1);
  let fetched: BalanceTransaction[];
  try {
    fetched = await fetchBalanceTransactions(gateway, from, to);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    throw new SettlementError('GATEWAY_UNAVAILABLE', `the payment gateway did not give its balance transactions: ${err.message}`);
  }

  return em.transactional(async (tx) => {
    // One reconciliation at a time: claims and attributions span windows and cities.
    await tx.execute(`select pg_advisory_xact_lock(hashtext('onecard.settlement.reconciliation'))`);
    const window = (await windowById(tx, found.id, true))!;
    const ours = await ourGatewayIds(tx, window.id);
    const kept = fetched.filter((t) => (t.created >= dayStart && t.created < dayEnd) || ours.has(t.source));
    const imported = await importTransactions(tx, kept);
    await bookFees(tx, kept);
    await claimUnknown(tx, window, dayStart, dayEnd);
    const compared = await compareAndRecord(tx, window);

    // A transaction now with this window may have been another window's difference (theirs only
    // there, or our item there waiting for it): those windows are compared again.
    const touched = [...new Set([...compared.map((c) => c.key), ...kept.map((t) => t.source)])];
    const others = await tx.execute<{ window_id: string }[]>(
      `select distinct window_id from reconciliation_difference
        where status = 'OPEN' and window_id <> ? and gateway_reference in (select jsonb_array_elements_text(?::jsonb)) order by window_id`,
      [window.id, JSON.stringify(touched)],
    );
    for (const o of others) await compareAndRecord(tx, (await windowById(tx, o.window_id))!);

    const differences = compared.filter((c) => c.kind !== null).length;
    const [open] = await tx.execute<{ n: number }[]>(`select count(*)::int as n from reconciliation_difference where window_id = ? and status = 'OPEN'`, [window.id]);
    const summary = {
      windowId: window.id,
      currency: window.currency,
      imported,
      gatewayCount: compared.reduce((n, c) => n + c.gateway_records, 0),
      ourCount: compared.reduce((n, c) => n + c.our_records, 0),
      matched: compared.length - differences,
      differences,
      openDifferences: open!.n,
      gatewayFees: compared.reduce((sum, c) => sum + BigInt(c.fees), 0n),
    };
    const [run] = await tx.execute<{ id: string; ran_at: Date }[]>(
      `insert into reconciliation_run (id, window_id, currency, gateway_count, our_count, matched, differences, open_differences, imported, gateway_fees)
       values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?, ?, ?) returning id, ran_at`,
      [window.id, window.currency, summary.gatewayCount, summary.ourCount, summary.matched, summary.differences, summary.openDifferences, summary.imported, summary.gatewayFees.toString()],
    );
    return { runId: run!.id, ranAt: new Date(run!.ran_at), ...summary };
  });
}

// ——— differences ———

const DIFFERENCE_COLUMNS = `d.id, d.window_id, d.kind, d.gateway_reference, d.our_reference, d.our_amount::text as our_amount, d.gateway_amount::text as gateway_amount,
  btrim(d.currency) as currency, d.status, d.note, d.resolved_by, d.resolved_at, d.created_at, d.updated_at,
  to_char(d.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position,
  (select string_agg(distinct t.type, ',') from gateway_balance_transaction t where t.source = d.gateway_reference) as gateway_type`;

export async function differenceById(em: EntityManager, id: string): Promise<DifferenceRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<DifferenceRow[]>(`select ${DIFFERENCE_COLUMNS} from reconciliation_difference d where d.id = ?`, [id]);
  return row ?? null;
}

/**
 * An operator settles an OPEN difference: what was found and done, in a note of 1 to 1000
 * characters. A resolved difference stays resolved, whatever later runs find.
 */
export async function resolveDifference(em: EntityManager, resolvedBy: string, differenceId: string, note: string): Promise<DifferenceRow> {
  const text = note.trim();
  if (text.length < 1 || text.length > MAX_NOTE) throw new SettlementError('INVALID_INPUT', `a note is 1 to ${MAX_NOTE} characters`, 'note');
  if (!UUID.test(differenceId)) throw new SettlementError('NOT_FOUND', `no reconciliation difference ${differenceId}`, 'difference');
  return em.transactional(async (tx) => {
    const [row] = await tx.execute<{ status: DifferenceStatus }[]>(`select status from reconciliation_difference where id = ? for update`, [differenceId]);
    if (!row) throw new SettlementError('NOT_FOUND', `no reconciliation difference ${differenceId}`, 'difference');
    if (row.status !== 'OPEN') throw new SettlementError('DIFFERENCE_NOT_OPEN', `the difference is ${row.status}, not OPEN`, 'difference');
    await transition(tx, differenceMachine, { id: differenceId, status: row.status }, 'RESOLVED', { note: text, resolved_by: resolvedBy, resolved_at: NOW, updated_at: NOW }, { cause: `resolved by ${resolvedBy}` });
    return (await differenceById(tx, differenceId))!;
  });
}

/** A window's differences, oldest first (then by id), a page at a time. */
export async function listDifferences(
  em: EntityManager,
  p: { windowId: string; status?: DifferenceStatus | null; after?: { position: string; id: string } | null; limit: number },
): Promise<DifferenceRow[]> {
  if (!UUID.test(p.windowId)) return [];
  const where = ['d.window_id = ?'];
  const params: unknown[] = [p.windowId];
  if (p.status) (where.push('d.status = ?'), params.push(p.status));
  if (p.after) (where.push('(d.created_at, d.id) > (?::timestamptz, ?::uuid)'), params.push(p.after.position, p.after.id));
  return em.execute<DifferenceRow[]>(`select ${DIFFERENCE_COLUMNS} from reconciliation_difference d where ${where.join(' and ')} order by d.created_at, d.id limit ?`, [...params, p.limit]);
}
