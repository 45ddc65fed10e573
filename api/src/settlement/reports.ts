import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { type CsvColumns, toCsv } from '../csv/csv-writer.js';
import { windowById, type WindowRow } from './windows.js';

/**
 * Settlement reports as CSV (served by settlement.routes.ts) and the totals of a batch (printed by
 * `onecard settle`), built from SQL over the tables clearing wrote.
 *
 * Every amount is an integer number of minor units of the row's `currency` column (1250 CNY is
 * 12.50 yuan), never a decimal; ids are GraphQL global ids. Written by the one CSV writer
 * (csv/csv-writer.ts: RFC 4180, formula-looking text made inert).
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const REPORT_SCOPE = 'settlements:read';
/** The longest statement period one download covers. */
export const MAX_STATEMENT_DAYS = 366;

/** A refusal with the HTTP status the route answers. */
export class ReportError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'ReportError';
  }
}

export interface CsvReport {
  filename: string;
  csv: string;
  rows: number;
}

const safeFilePart = (v: string) => v.replace(/[^A-Za-z0-9_-]/g, '_');

// ---------------------------------------------------------------------------------------------
// Who may read what

const PARTICIPANT_TYPE: Record<string, string> = { MERCHANT: 'Merchant', BILLER: 'Biller', CARD_COMPANY: 'CardCompany' };
/** The participant a principal is in settlement: merchants and billers themselves, an issuer its card company. */
const PARTICIPANT_OF: Partial<Record<Principal['kind'], string>> = { MERCHANT: 'MERCHANT', BILLER: 'BILLER', ISSUER: 'CARD_COMPANY' };

function requireScope(principal: Principal): void {
  if (!principal.scopes.includes(REPORT_SCOPE)) throw new ReportError(403, `a token with scope ${REPORT_SCOPE}`);
  if (principal.kind !== 'OPERATOR' && !(principal.tenantId && UUID.test(principal.tenantId))) throw new ReportError(403, 'a token of a merchant, biller, card company or the operator');
}

/** A window id as the API gives it (global id of a SettlementWindow) or its uuid. */
export function windowUuid(raw: string): string {
  if (UUID.test(raw)) return raw.toLowerCase();
  let id: string;
  try {
    id = fromGlobalId(raw, 'SettlementWindow').id;
  } catch {
    throw new ReportError(400, `"${raw}" is not a SettlementWindow id`);
  }
  if (!UUID.test(id)) throw new ReportError(400, `"${raw}" is not a SettlementWindow id`);
  return id.toLowerCase();
}

async function cityOfCardCompany(em: EntityManager, cardCompanyId: string): Promise<string | null> {
  const [row] = await em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [cardCompanyId]);
  return row?.city_id ?? null;
}

async function batchIdOf(em: EntityManager, window: WindowRow): Promise<string> {
  const [batch] = await em.execute<{ id: string }[]>(`select id from settlement_batch where window_id = ?`, [window.id]);
  if (!batch) throw new ReportError(409, `the window of ${window.city_code} ${window.business_day} is ${window.status}: it has no lines until it is cleared`);
  return batch.id;
}

// ---------------------------------------------------------------------------------------------
// Lines and statements

export interface LineReportRow {
  window_id: string;
  city: string;
  business_day: string;
  id: string;
  participant_kind: string;
  participant_id: string;
  participant_name: string;
  currency: string;
  sales_count: string;
  refund_count: string;
  gross: string;
  refunds: string;
  fees: string;
  net: string;
  carried_in: string;
  due: string;
  payout_amount: string;
  status: string;
  payout_status: string | null;
  top_up_count: string;
  top_ups: string;
  top_up_refunds: string;
}

const LINE_SELECT = `select w.id as window_id, c.code as city, w.business_day::text as business_day, l.id, l.participant_kind, l.participant_id::text as participant_id,
       l.participant_name, btrim(l.currency) as currency, l.sales_count::text as sales_count, l.refund_count::text as refund_count, l.gross::text as gross,
       l.refunds::text as refunds, l.fees::text as fees, l.net::text as net, l.carried_in::text as carried_in, l.due::text as due,
       l.payout_amount::text as payout_amount, l.status, p.status as payout_status, l.top_up_count::text as top_up_count, l.top_ups::text as top_ups,
       l.top_up_refunds::text as top_up_refunds
  from settlement_line l
  join settlement_batch b on b.id = l.batch_id
  join settlement_window w on w.id = b.window_id
  join city c on c.id = w.city_id
  left join settlement_payout p on p.line_id = l.id`;

/** The columns of lines.csv and statements.csv. */
export const LINE_COLUMNS: CsvColumns<LineReportRow> = [
  ['window', 'text', (r) => toGlobalId('SettlementWindow', r.window_id)],
  ['city', 'text', (r) => r.city],
  ['business_day', 'text', (r) => r.business_day],
  ['line', 'text', (r) => toGlobalId('SettlementLine', r.id)],
  ['participant_kind', 'text', (r) => r.participant_kind],
  ['participant', 'text', (r) => toGlobalId(PARTICIPANT_TYPE[r.participant_kind] ?? r.participant_kind, r.participant_id)],
  ['participant_name', 'text', (r) => r.participant_name],
  ['currency', 'text', (r) => r.currency],
  ['sales_count', 'int', (r) => r.sales_count],
  ['refund_count', 'int', (r) => r.refund_count],
  ['gross', 'int', (r) => r.gross],
  ['refunds', 'int', (r) => r.refunds],
  ['fees', 'int', (r) => r.fees],
  ['net', 'int', (r) => r.net],
  ['carried_in', 'int', (r) => r.carried_in],
  ['due', 'int', (r) => r.due],
  ['payout_amount', 'int', (r) => r.payout_amount],
  ['status', 'text', (r) => r.status],
  ['payout_status', 'text', (r) => r.payout_status],
  ['top_up_count', 'int', (r) => r.top_up_count],
  ['top_ups', 'int', (r) => r.top_ups],
  ['top_up_refunds', 'int', (r) => r.top_up_refunds],
];

/**
 * A cleared window's lines, one per participant. The operator reads any window; a card company
 * the windows of its own city; anyone else, or a window not visible to the caller, is 404.
 */
export async function windowLinesReport(em: EntityManager, principal: Principal, rawWindowId: string): Promise<CsvReport> {
  requireScope(principal);
  const window = await windowById(em, windowUuid(rawWindowId));
  const visible =
    window && (principal.kind === 'OPERATOR' || (principal.kind === 'ISSUER' && (await cityOfCardCompany(em, principal.tenantId!)) === window.city_id));
  if (!window || !visible) throw new ReportError(404, `no settlement window ${rawWindowId}`);
  const batchId = await batchIdOf(em, window);
  const rows = await em.execute<LineReportRow[]>(`${LINE_SELECT} where l.batch_id = ? order by l.participant_kind, l.participant_name, l.id`, [batchId]);
  return { filename: `settlement-lines-${safeFilePart(window.city_code)}-${window.business_day}.csv`, csv: toCsv(LINE_COLUMNS, rows), rows: rows.length };
}

function checkedDay(value: unknown, name: string): string {
  const day = typeof value === 'string' ? value : '';
  if (!DAY.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
    throw new ReportError(400, `${name} is a date YYYY-MM-DD`);
  }
  return day;
}

/**
 * The caller's own lines (a merchant's, a biller's, a card company's) in the windows whose business
 * day is from..to (inclusive), oldest first. The operator has no statement of its own: it reads a
 * window's lines.csv.
 */
export async function statementsReport(em: EntityManager, principal: Principal, query: { from?: unknown; to?: unknown }): Promise<CsvReport> {
  requireScope(principal);
  const participantKind = PARTICIPANT_OF[principal.kind];
  if (!participantKind) throw new ReportError(403, 'statements are a merchant’s, biller’s or card company’s own lines; the operator reads /settlement/windows/{id}/lines.csv');
  const from = checkedDay(query.from, 'from');
  const to = checkedDay(query.to, 'to');
  if (from > to) throw new ReportError(400, 'from is after to');
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  if (days > MAX_STATEMENT_DAYS) throw new ReportError(400, `one statement covers at most ${MAX_STATEMENT_DAYS} days`);
  const rows = await em.execute<LineReportRow[]>(
    `${LINE_SELECT} where l.participant_kind = ? and l.participant_id = ? and w.business_day between ?::date and ?::date order by w.business_day, c.code, l.id`,
    [participantKind, principal.tenantId, from, to],
  );
  return { filename: `settlement-statements-${from}-to-${to}.csv`, csv: toCsv(LINE_COLUMNS, rows), rows: rows.length };
}

// ---------------------------------------------------------------------------------------------
// Interchange

export interface InterchangeReportRow {
  window_id: string;
  city: string;
  business_day: string;
  issuer_id: string;
  issuer_name: string;
  acquirer_id: string;
  acquirer_name: string;
  currency: string;
  count: string;
  gross: string;
  refunds: string;
  net: string;
}

export const INTERCHANGE_COLUMNS: CsvColumns<InterchangeReportRow> = [
  ['window', 'text', (r) => toGlobalId('SettlementWindow', r.window_id)],
  ['city', 'text', (r) => r.city],
  ['business_day', 'text', (r) => r.business_day],
  ['issuer', 'text', (r) => toGlobalId('CardCompany', r.issuer_id)],
  ['issuer_name', 'text', (r) => r.issuer_name],
  ['acquirer', 'text', (r) => toGlobalId('CardCompany', r.acquirer_id)],
  ['acquirer_name', 'text', (r) => r.acquirer_name],
  ['currency', 'text', (r) => r.currency],
  ['count', 'int', (r) => r.count],
  ['gross', 'int', (r) => r.gross],
  ['refunds', 'int', (r) => r.refunds],
  ['net', 'int', (r) => r.net],
];

/**
 * A cleared window's interchange positions: what each visiting card's issuer owes the card company
 * of the window's city (the acquirer). The operator reads every row; a card company the rows where
 * it is issuer or acquirer, of a window of its city or one it has a position in (else 404).
 */
export async function interchangeReport(em: EntityManager, principal: Principal, rawWindowId: string): Promise<CsvReport> {
  requireScope(principal);
  const window = await windowById(em, windowUuid(rawWindowId));
  const notFound = new ReportError(404, `no settlement window ${rawWindowId}`);
  if (!window || (principal.kind !== 'OPERATOR' && principal.kind !== 'ISSUER')) throw notFound;
  const own = principal.kind === 'ISSUER' ? principal.tenantId! : null;
  const [batch] = await em.execute<{ id: string }[]>(`select id from settlement_batch where window_id = ?`, [window.id]);
  if (own && (await cityOfCardCompany(em, own)) !== window.city_id) {
    // Another city's window: visible only through a position of this card company's.
    const [mine] = batch ? await em.execute<{ n: number }[]>(`select 1 as n from interchange_position where batch_id = ? and (issuer_id = ? or acquirer_id = ?) limit 1`, [batch.id, own, own]) : [];
    if (!mine) throw notFound;
  }
  const batchId = batch?.id ?? (await batchIdOf(em, window));
  const rows = await em.execute<InterchangeReportRow[]>(
    `select w.id as window_id, c.code as city, w.business_day::text as business_day, ip.issuer_id::text as issuer_id, iss.name as issuer_name,
            ip.acquirer_id::text as acquirer_id, acq.name as acquirer_name, btrim(ip.currency) as currency, ip.count::text as count,
            ip.gross::text as gross, ip.refunds::text as refunds, ip.net::text as net
       from interchange_position ip
       join settlement_batch b on b.id = ip.batch_id
       join settlement_window w on w.id = b.window_id
       join city c on c.id = w.city_id
       join card_company iss on iss.id = ip.issuer_id
       join card_company acq on acq.id = ip.acquirer_id
      where ip.batch_id = ? and (?::uuid is null or ip.issuer_id = ?::uuid or ip.acquirer_id = ?::uuid)
      order by iss.name, acq.name, ip.issuer_id, ip.acquirer_id`,
    [batchId, own, own, own],
  );
  return { filename: `settlement-interchange-${safeFilePart(window.city_code)}-${window.business_day}.csv`, csv: toCsv(INTERCHANGE_COLUMNS, rows), rows: rows.length };
}

// ---------------------------------------------------------------------------------------------
// A batch's totals (`onecard settle`)

/** Totals of a batch's lines; amounts are minor units as text. */
export interface LineTotals {
  participants: string;
  sales_count: string;
  gross: string;
  refund_count: string;
  refunds: string;
  fees: string;
  net: string;
  carried_in: string;
  payouts: string;
  payout_total: string;
  carried_forward: string;
  carried_forward_total: string;
  top_up_count: string;
  top_ups: string;
  top_up_refunds: string;
}

export async function lineTotals(em: EntityManager, batchId: string): Promise<LineTotals> {
  const [row] = await em.execute<LineTotals[]>(
    `select count(*)::text as participants, coalesce(sum(sales_count), 0)::text as sales_count, coalesce(sum(gross), 0)::text as gross,
            coalesce(sum(refund_count), 0)::text as refund_count, coalesce(sum(refunds), 0)::text as refunds, coalesce(sum(fees), 0)::text as fees,
            coalesce(sum(net), 0)::text as net, coalesce(sum(carried_in), 0)::text as carried_in,
            count(*) filter (where payout_amount > 0)::text as payouts, coalesce(sum(payout_amount), 0)::text as payout_total,
            count(*) filter (where status = 'CARRIED_FORWARD')::text as carried_forward,
            coalesce(sum(due) filter (where status = 'CARRIED_FORWARD'), 0)::text as carried_forward_total,
            coalesce(sum(top_up_count), 0)::text as top_up_count, coalesce(sum(top_ups), 0)::text as top_ups, coalesce(sum(top_up_refunds), 0)::text as top_up_refunds
       from settlement_line where batch_id = ?`,
    [batchId],
  );
  return row!;
}

export async function itemCount(em: EntityManager, windowId: string): Promise<string> {
  const [row] = await em.execute<{ n: string }[]>(`select count(*)::text as n from clearing_item where window_id = ?`, [windowId]);
  return row!.n;
}

export async function interchangeTotals(em: EntityManager, batchId: string): Promise<{ positions: string; count: string; net: string }> {
  const [row] = await em.execute<{ positions: string; count: string; net: string }[]>(
    `select count(*)::text as positions, coalesce(sum(count), 0)::text as count, coalesce(sum(net), 0)::text as net from interchange_position where batch_id = ?`,
    [batchId],
  );
  return row!;
}

/** The batch's clearing entry and how many postings it has; null when clearing had nothing to move. */
export async function clearingEntry(em: EntityManager, batchId: string): Promise<{ id: string; entry_key: string; postings: number } | null> {
  const [row] = await em.execute<{ id: string; entry_key: string; postings: number }[]>(
    `select e.id, e.entry_key, (select count(*)::int from posting p where p.entry_id = e.id and p.posted_at = k.posted_at) as postings
       from settlement_batch b join journal_entry_key k on k.entry_id = b.journal_entry_id join journal_entry e on e.id = k.entry_id and e.posted_at = k.posted_at where b.id = ?`,
    [batchId],
  );
  return row ?? null;
}

/** The batch's payout instructions by status (PENDING, SENT, PAID, FAILED). */
export async function payoutStatuses(em: EntityManager, batchId: string): Promise<Record<string, number>> {
  const rows = await em.execute<{ status: string; n: number }[]>(
    `select p.status, count(*)::int as n from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ? group by p.status order by p.status`,
    [batchId],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
