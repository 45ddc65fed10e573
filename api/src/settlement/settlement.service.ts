import type { LineStatus } from './settlement-machines.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { PageRequest } from '../graphql/connection.js';
import type { Principal } from '../auth/principal.js';
import type { BatchRow } from './clearing.js';
import type { ParticipantKind } from './clearing-items.js';
import { listWindows, windowById, type WindowRow, type WindowStatus } from './windows.js';

/*
 * What each principal may read of settlement (DESIGN.md §5), enforced in these queries:
 * - the operator: everything;
 * - a card company: its city's windows and batches (it acquires there) with every line, its own
 *   statements, and the interchange positions it is a party to;
 * - a merchant or a biller: its own statements only.
 */

export interface LineRow {
  id: string;
  batch_id: string;
  window_id: string;
  city_code: string;
  business_day: string;
  participant_kind: ParticipantKind;
  participant_id: string;
  participant_name: string;
  currency: string;
  fee_plan_id: string | null;
  sales_count: string;
  refund_count: string;
  gross: string;
  refunds: string;
  fees: string;
  net: string;
  carried_in: string;
  due: string;
  payout_amount: string;
  status: LineStatus;
  carried_into: string | null;
  top_up_count: string;
  top_ups: string;
  top_up_refunds: string;
  payout_status: string | null;
  payout_failure_code: string | null;
  gateway_payout_id: string | null;
  created_at: Date;
}

export interface InterchangeRow {
  batch_id: string;
  city_code: string;
  business_day: string;
  issuer_id: string;
  issuer_name: string;
  issuer_city_code: string;
  acquirer_id: string;
  acquirer_name: string;
  acquirer_city_code: string;
  currency: string;
  count: string;
  gross: string;
  refunds: string;
  net: string;
}

const LINE_COLUMNS = `l.id, l.batch_id, b.window_id, c.code as city_code, w.business_day::text as business_day, l.participant_kind, l.participant_id, l.participant_name,
  btrim(l.currency) as currency, l.fee_plan_id, l.sales_count, l.refund_count, l.gross, l.refunds, l.fees, l.net, l.carried_in, l.due, l.payout_amount, l.status,
  l.carried_into, l.top_up_count, l.top_ups, l.top_up_refunds, p.status as payout_status, p.failure_code as payout_failure_code, p.gateway_payout_id, l.created_at`;
const LINE_FROM = `settlement_line l join settlement_batch b on b.id = l.batch_id join settlement_window w on w.id = b.window_id join city c on c.id = w.city_id
  left join settlement_payout p on p.line_id = l.id`;

/** The participant a principal is in statements, if any. */
export function participantOf(principal: Principal): { kind: ParticipantKind; id: string } | null {
  if (!principal.tenantId) return null;
  if (principal.kind === 'MERCHANT') return { kind: 'MERCHANT', id: principal.tenantId };
  if (principal.kind === 'BILLER') return { kind: 'BILLER', id: principal.tenantId };
  if (principal.kind === 'ISSUER') return { kind: 'CARD_COMPANY', id: principal.tenantId };
  return null;
}

/** The cities whose windows a principal sees: null for all (the operator). */
async function visibleCities(em: EntityManager, principal: Principal): Promise<string[] | null> {
  if (!principal.scopes.includes('settlements:read')) return [];
  if (principal.kind === 'OPERATOR') return null;
  if (principal.kind !== 'ISSUER' || !principal.tenantId) return [];
  const rows = await em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [principal.tenantId]);
  return rows.map((r) => r.city_id);
}

export async function findWindowFor(em: EntityManager, principal: Principal, id: string): Promise<WindowRow | null> {
  const cities = await visibleCities(em, principal);
  const window = await windowById(em, id);
  return window && (cities === null || cities.includes(window.city_id)) ? window : null;
}

export async function listWindowsFor(
  em: EntityManager,
  principal: Principal,
  p: { cityId?: string | null; status?: WindowStatus | null; from?: string | null; to?: string | null; page: PageRequest },
): Promise<WindowRow[]> {
  let cities = await visibleCities(em, principal);
  if (p.cityId) cities = cities === null || cities.includes(p.cityId) ? [p.cityId] : [];
  const after = p.page.after ? { day: p.page.after.sortKey, id: p.page.after.id } : null;
  return listWindows(em, { cityIds: cities, status: p.status, from: p.from, to: p.to, after, limit: p.page.fetch });
}

export async function batchFor(em: EntityManager, principal: Principal, batchId: string): Promise<(BatchRow & { window: WindowRow }) | null> {
  const [batch] = await em.execute<BatchRow[]>(`select *, btrim(currency) as currency from settlement_batch where id = ?`, [batchId]);
  const window = batch ? await findWindowFor(em, principal, batch.window_id) : null;
  return batch && window ? { ...batch, window } : null;
}

export async function batchOfWindowFor(em: EntityManager, principal: Principal, windowId: string): Promise<BatchRow | null> {
  const window = await findWindowFor(em, principal, windowId);
  if (!window) return null;
  const [batch] = await em.execute<BatchRow[]>(`select *, btrim(currency) as currency from settlement_batch where window_id = ?`, [window.id]);
  return batch ?? null;
}

/** A batch's lines in participant-name order; the caller has checked it may see the batch. */
export function linesOfBatch(em: EntityManager, batchId: string, page: PageRequest): Promise<LineRow[]> {
  const params: unknown[] = [batchId];
  let sql = `select ${LINE_COLUMNS} from ${LINE_FROM} where l.batch_id = ?`;
  if (page.after) (sql += ` and (l.participant_name, l.id) > (?, ?::uuid)`), params.push(page.after.sortKey, page.after.id);
  return em.execute<LineRow[]>(`${sql} order by l.participant_name, l.id limit ?`, [...params, page.fetch]);
}

/** The caller's own statement lines (newest business day first), optionally within days. */
export async function statementsFor(em: EntityManager, principal: Principal, p: { from?: string | null; to?: string | null; page: PageRequest }): Promise<LineRow[]> {
  const me = participantOf(principal);
  if (!me || !principal.scopes.includes('settlements:read')) return [];
  const params: unknown[] = [me.kind, me.id];
  let sql = `select ${LINE_COLUMNS} from ${LINE_FROM} where l.participant_kind = ? and l.participant_id = ?`;
  if (p.from) (sql += ` and w.business_day >= ?::date`), params.push(p.from);
  if (p.to) (sql += ` and w.business_day <= ?::date`), params.push(p.to);
  if (p.page.after) (sql += ` and (w.business_day, l.id) < (?::date, ?::uuid)`), params.push(p.page.after.sortKey, p.page.after.id);
  return em.execute<LineRow[]>(`${sql} order by w.business_day desc, l.id desc limit ?`, [...params, p.page.fetch]);
}

/** One line: the participant's own, or any of a batch the caller may see. */
export async function lineFor(em: EntityManager, principal: Principal, lineId: string): Promise<LineRow | null> {
  const [line] = await em.execute<LineRow[]>(`select ${LINE_COLUMNS} from ${LINE_FROM} where l.id = ?`, [lineId]);
  if (!line) return null;
  const me = participantOf(principal);
  if (me && me.kind === line.participant_kind && me.id === line.participant_id && principal.scopes.includes('settlements:read')) return line;
  return (await findWindowFor(em, principal, line.window_id)) ? line : null;
}

/**
 * The interchange positions of a business day across every city's window: the operator sees all,
 * a card company those it is a party to, others none.
 */
export async function interchangeFor(em: EntityManager, principal: Principal, businessDay: string): Promise<InterchangeRow[]> {
  if (!principal.scopes.includes('settlements:read')) return [];
  if (principal.kind !== 'OPERATOR' && principal.kind !== 'ISSUER') return [];
  const params: unknown[] = [businessDay];
  let sql = `select i.batch_id, c.code as city_code, w.business_day::text as business_day, i.issuer_id, ic.name as issuer_name, icity.code as issuer_city_code,
                    i.acquirer_id, ac.name as acquirer_name, acity.code as acquirer_city_code, btrim(i.currency) as currency, i.count, i.gross, i.refunds, i.net
               from interchange_position i join settlement_batch b on b.id = i.batch_id join settlement_window w on w.id = b.window_id join city c on c.id = w.city_id
               join card_company ic on ic.id = i.issuer_id join city icity on icity.id = ic.city_id
               join card_company ac on ac.id = i.acquirer_id join city acity on acity.id = ac.city_id
              where w.business_day = ?::date`;
  if (principal.kind === 'ISSUER') (sql += ` and (i.issuer_id = ? or i.acquirer_id = ?)`), params.push(principal.tenantId, principal.tenantId);
  return em.execute<InterchangeRow[]>(`${sql} order by icity.code, acity.code`, params);
}

export interface NetPosition {
  cardCompanyId: string;
  cardCompanyName: string;
  cityCode: string;
  currency: string;
  /** What other card companies' cards spent with this one (it is owed). */
  receivable: bigint;
  /** What its cards spent with others (it owes). */
  payable: bigint;
}

export interface BilateralNet {
  /** The card company that owes `amount` to `creditor` after netting the pair. */
  debtor: { id: string; name: string; cityCode: string };
  creditor: { id: string; name: string; cityCode: string };
  currency: string;
  amount: bigint;
}

/**
 * Nets positions: bilateral (each pair of card companies, one direction left) and multilateral
 * (each card company against all others). Pure, so the matrix and the reports agree.
 */
export function netPositions(rows: InterchangeRow[]): { bilateral: BilateralNet[]; multilateral: NetPosition[] } {
  const parties = new Map<string, NetPosition>();
  const party = (id: string, name: string, cityCode: string, currency: string) => {
    const key = `${id}:${currency}`;
    if (!parties.has(key)) parties.set(key, { cardCompanyId: id, cardCompanyName: name, cityCode, currency, receivable: 0n, payable: 0n });
    return parties.get(key)!;
  };
  const pairs = new Map<string, { a: InterchangeRow; owedToB: bigint }>();
  for (const r of rows) {
    const net = BigInt(r.net);
    party(r.issuer_id, r.issuer_name, r.issuer_city_code, r.currency).payable += net;
    party(r.acquirer_id, r.acquirer_name, r.acquirer_city_code, r.currency).receivable += net;
    // The pair keyed in one order; positive: the lower id owes the higher one.
    const lowIsIssuer = r.issuer_id < r.acquirer_id;
    const key = `${lowIsIssuer ? r.issuer_id : r.acquirer_id}:${lowIsIssuer ? r.acquirer_id : r.issuer_id}:${r.currency}`;
    const pair = pairs.get(key) ?? { a: r, owedToB: 0n };
    pair.owedToB += lowIsIssuer ? net : -net;
    pairs.set(key, pair);
  }
  const bilateral: BilateralNet[] = [];
  for (const [key, { owedToB }] of pairs) {
    if (owedToB === 0n) continue;
    const [low, high, currency] = key.split(':') as [string, string, string];
    const who = (id: string) => {
      const p = parties.get(`${id}:${currency}`)!;
      return { id, name: p.cardCompanyName, cityCode: p.cityCode };
    };
    bilateral.push(owedToB > 0n ? { debtor: who(low), creditor: who(high), currency, amount: owedToB } : { debtor: who(high), creditor: who(low), currency, amount: -owedToB });
  }
  bilateral.sort((x, y) => x.debtor.cityCode.localeCompare(y.debtor.cityCode) || x.creditor.cityCode.localeCompare(y.creditor.cityCode));
  const multilateral = [...parties.values()].sort((x, y) => x.cityCode.localeCompare(y.cityCode));
  return { bilateral, multilateral };
}

export interface VolumeRow {
  hour: number;
  kind: string;
  count: string;
  amount: string;
}

/** A window's transactions by local hour of the day and kind: one GROUP BY over its items. */
export function volumeByHour(em: EntityManager, windowId: string): Promise<VolumeRow[]> {
  return em.execute<VolumeRow[]>(
    `select extract(hour from i.occurred_at at time zone c.time_zone)::int as hour, i.kind, count(*)::text as count, sum(i.amount)::text as amount
       from clearing_item i join city c on c.id = i.city_id
      where i.window_id = ?
      group by 1, 2 order by 1, 2`,
    [windowId],
  );
}

/** One participant's transactions of a window by local hour and kind (its statement's chart): the same GROUP BY, on the window's participant index. */
export function participantVolumeByHour(em: EntityManager, windowId: string, participantKind: string, participantId: string): Promise<VolumeRow[]> {
  return em.execute<VolumeRow[]>(
    `select extract(hour from i.occurred_at at time zone c.time_zone)::int as hour, i.kind, count(*)::text as count, sum(i.amount)::text as amount
       from clearing_item i join city c on c.id = i.city_id
      where i.window_id = ? and i.participant_kind = ? and i.participant_id = ?
      group by 1, 2 order by 1, 2`,
    [windowId, participantKind, participantId],
  );
}

/**
 * The city a `city` argument names: a City's global id, as everywhere in the schema. Until
 * 2027-06-07 a city code (`GZ`) is taken too, the meaning `settlementWindows(city:)` had before
 * (deprecated 2026-12-07, docs/api-conventions.md#deprecations). Null: it names no city of ours.
 */
export async function cityOfArgument(em: EntityManager, value: string): Promise<string | null> {
  const decoded = /^[A-Za-z0-9_-]{1,200}$/.test(value) ? Buffer.from(value, 'base64url').toString('utf8') : '';
  // A well-formed City id of no city of ours names a city with no windows, as `billers(city:)` answers it.
  if (decoded.startsWith('City:')) return UUID_PATTERN.test(decoded.slice('City:'.length)) ? decoded.slice('City:'.length) : null;
  const [byCode] = await em.execute<{ id: string }[]>(`select id from city where code = ?`, [value]);
  return byCode?.id ?? null;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
