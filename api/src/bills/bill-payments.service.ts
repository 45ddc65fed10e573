import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { recordClearingItem } from '../settlement/clearing-items.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { billerPayableAccount } from '../ledger/accounts.js';
import { recordEvent } from '../webhooks/outbox.js';
import type { DebitClaim } from '../readers/session/card-claims.js';
import { type CsvColumns, toCsv } from '../csv/csv-writer.js';
import { BillPaymentError } from './bill-payments.errors.js';
import { spendTopUp, topUpById } from '../topups/topups.service.js';
import { TopUpError } from '../topups/topups.errors.js';
import { billAmounts, billById, type BillRow, findBillFor, moveBill } from './bills.service.js';
import { defineMachine, NOW, type Patch, sql, transition, transitionWhere } from '../lifecycle/machine.js';

export type BillPaymentStatus = 'REQUIRES_CARD' | 'PROCESSING' | 'SUCCEEDED' | 'CANCELED' | 'FAILED';

/** What the card said when a session claimed the payment (as for merchant payments), and what the bill still asked then. */
export interface BillPaymentClaim extends DebitClaim {
  /** What remained to pay on the bill when the card step accepted the payment (minor units, as text). */
  remaining?: string;
}

export interface BillPaymentRow {
  id: string;
  bill_id: string;
  biller_id: string;
  amount: string;
  currency: string;
  status: BillPaymentStatus;
  card_session_id: string | null;
  card_claim: BillPaymentClaim | null;
  card_id: string | null;
  card_asn: string | null;
  holder_id: string | null;
  created_by_client: string;
  receipt_number: string | null;
  business_day: string | null;
  expires_at: Date;
  created_at: Date;
  paid_at: Date | null;
  /** Joined, for receipts. */
  biller_name: string;
  account_number: string;
  period: string;
  card_number: string | null;
}

/** How long a bill payment waits for the card. */
export const BILL_PAYMENT_EXPIRY_SECONDS = 15 * 60;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = `p.*, p.amount::text as amount, btrim(p.currency) as currency, p.business_day::text as business_day,
  bl.name as biller_name, b.account_number, b.period, c.card_number`;
const FROM = `bill_payment p join bill b on b.id = p.bill_id join biller bl on bl.id = p.biller_id left join card c on c.id = p.card_id`;

export const billPaymentGlobalId = (id: string) => toGlobalId('BillPayment', id);

export async function billPaymentById(em: EntityManager, id: string, lock = false): Promise<BillPaymentRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<BillPaymentRow[]>(`select ${COLUMNS} from ${FROM} where p.id = ?${lock ? ' for update of p' : ''}`, [id]);
  return row ?? null;
}

/**
 * Who sees a bill payment and its receipt: the holder's app that made it (card:read or
 * card:topup, the same holder), the biller it pays (bills:read), the operator (bills:read).
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  const s = principal.scopes;
  if (principal.kind === 'CARDHOLDER_APP' && principal.holderId && UUID.test(principal.holderId) && (s.includes('card:read') || s.includes('card:topup'))) return { sql: 'p.holder_id = ?', params: [principal.holderId] };
  if (principal.kind === 'BILLER' && principal.tenantId && UUID.test(principal.tenantId) && (s.includes('bills:read') || s.includes('bills:write'))) return { sql: 'p.biller_id = ?', params: [principal.tenantId] };
  if (principal.kind === 'OPERATOR' && s.includes('bills:read')) return { sql: 'true', params: [] };
  return null;
}

export async function findBillPaymentFor(em: EntityManager, principal: Principal, id: string): Promise<BillPaymentRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<BillPaymentRow[]>(`select ${COLUMNS} from ${FROM} where p.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

/**
 * One bill's payments, newest first, for its biller (bills:read or bills:write) and the operator
 * (bills:read): null when the caller may not list them (a holder's app sees its own by id only).
 * Keyset on (created_at, id); the position's row gives the exact timestamp, as listBillsFor does.
 */
export async function listPaymentsOfBill(em: EntityManager, principal: Principal, billId: string, page: { after?: { createdAt: string; id: string }; limit: number }): Promise<BillPaymentRow[] | null> {
  if (principal.kind !== 'BILLER' && principal.kind !== 'OPERATOR') return null;
  const where = visibility(principal);
  if (!where) return null;
  if (!UUID.test(billId)) return [];
  const clauses = ['p.bill_id = ?', `(${where.sql})`];
  const params: unknown[] = [billId, ...where.params];
  if (page.after) {
    if (!UUID.test(page.after.id) || Number.isNaN(Date.parse(page.after.createdAt))) return [];
    clauses.push('(p.created_at, p.id) < (coalesce((select created_at from bill_payment where id = ?::uuid), ?::timestamptz), ?::uuid)');
    params.push(page.after.id, page.after.createdAt, page.after.id);
  }
  return em.execute<BillPaymentRow[]>(`select ${COLUMNS} from ${FROM} where ${clauses.join(' and ')} order by p.created_at desc, p.id desc limit ?`, [...params, page.limit]);
}

/** Receipt numbers: the biller's business day and 64 bits of the payment's random id (unique by index; collisions out of reach). */
export function receiptNumberFor(businessDay: string, paymentId: string): string {
  return `R${businessDay.replaceAll('-', '')}-${paymentId.replaceAll('-', '').slice(-16).toUpperCase()}`;
}

export async function recordBillPaid(em: EntityManager, payment: BillPaymentRow, bill: BillRow): Promise<void> {
  await recordEvent(em, {
    type: 'bill.paid',
    ownerKind: 'BILLER',
    ownerId: payment.biller_id,
    subjectId: billPaymentGlobalId(payment.id),
    payload: {
      billPayment: billPaymentGlobalId(payment.id),
      bill: toGlobalId('Bill', payment.bill_id),
      accountNumber: bill.account_number,
      period: bill.period,
      amount: Number(payment.amount),
      currency: payment.currency,
      receiptNumber: payment.receipt_number,
      businessDay: payment.business_day,
      billStatus: bill.status,
    },
  });
}

const errorIfRefused = (code: ConstructorParameters<typeof BillPaymentError>[0], message: string, field?: string) => new BillPaymentError(code, message, field);

/**
 * A cardholder app pays (part of) a bill from the card purse: this records the bill payment
 * (REQUIRES_CARD) that a card session then pays (openCardSession(PURCHASE, billPayment)). The
 * amount defaults to what remains today (late fee included); a part only where the biller allows
 * it; never more than remains. One payment per bill in flight at once.
 */
export async function payBill(em: EntityManager, principal: Principal, input: { billId: string; amount?: bigint | null; fromTopUpId?: string | null }, now = new Date()): Promise<BillPaymentRow> {
  if (principal.kind !== 'CARDHOLDER_APP' || !principal.scopes.includes('card:topup') || !principal.holderId) throw errorIfRefused('NOT_FOUND', `no bill ${input.billId} you may pay`, 'bill');
  return em.transactional(async (tx) => {
    const seen = await findBillFor(tx, principal, input.billId);
    if (!seen) throw errorIfRefused('NOT_FOUND', `no bill ${input.billId} you may pay`, 'bill');
    const bill = (await billById(tx, seen.id, true))!;
    if (bill.status !== 'OPEN') throw errorIfRefused('BILL_NOT_PAYABLE', `the bill is ${bill.status}`, 'bill');
    if (input.fromTopUpId) return payFromTopUp(tx, principal, bill, input.fromTopUpId, input.amount ?? null);
    const amount = checkAmount(bill, input.amount ?? billAmounts(bill).remaining);
    // A payment merely waiting for a card does not hold the bill (anyone who knows it could make
    // one): a new payment takes its place. One a card is paying does.
    await cancelWaitingPayments(tx, bill.id);
    const id = randomUUID();
    const [row] = await tx.execute<{ id: string }[]>(
      `insert into bill_payment (id, bill_id, biller_id, amount, currency, status, holder_id, created_by_client, expires_at)
       values (?, ?, ?, ?, ?, 'REQUIRES_CARD', ?, ?, ?) on conflict do nothing returning id`,
      [id, bill.id, bill.biller_id, amount.toString(), bill.currency, principal.holderId, principal.clientId, new Date(+now + BILL_PAYMENT_EXPIRY_SECONDS * 1000)],
    );
    if (!row) throw errorIfRefused('BILL_PAYMENT_IN_PROGRESS', 'a card is paying this bill right now; try again when it has finished', 'bill');
    return (await billPaymentById(tx, id))!;
  });
}

/**
 * Pays a bill with one of the holder's PAID top-ups instead of the card: no card session; the
 * top-up is spent whole (its amount is the payment's), its value goes from the card company's
 * pending loads to the biller's payable in one entry, and the receipt is given at once.
 */
async function payFromTopUp(tx: EntityManager, principal: Principal, bill: BillRow, topUpId: string, amount: bigint | null): Promise<BillPaymentRow> {
  const topUp = UUID.test(topUpId) ? await topUpById(tx, topUpId, true) : null;
  const [owner] = topUp ? await tx.execute<{ holder_id: string | null }[]>(`select holder_id from card where id = ?`, [topUp.card_id]) : [];
  if (!topUp || owner?.holder_id !== principal.holderId) throw errorIfRefused('NOT_FOUND', `no top-up ${topUpId} of yours`, 'fromTopUp');
  if (amount != null && amount !== BigInt(topUp.amount)) throw errorIfRefused('INVALID_INPUT', `a top-up is spent whole: ${topUp.amount}`, 'amount');
  if (topUp.currency !== bill.currency) throw errorIfRefused('INVALID_INPUT', `the top-up is in ${topUp.currency}, the bill in ${bill.currency}`, 'fromTopUp');
  checkAmount(bill, BigInt(topUp.amount));
  const [carding] = await tx.execute(`select 1 from bill_payment where bill_id = ? and status = 'PROCESSING'`, [bill.id]);
  if (carding) throw errorIfRefused('BILL_PAYMENT_IN_PROGRESS', 'a card is paying this bill right now; try again when it has finished', 'bill');
  await cancelWaitingPayments(tx, bill.id);
  const id = randomUUID();
  const payable = await billerPayableAccount(tx, bill.biller_id, bill.currency);
  try {
    await spendTopUp(tx, topUp, {
      toAccountId: payable.id,
      key: `bill-payment:${id}`,
      description: `bill ${bill.period} of account ${bill.account_number} paid to ${bill.biller_name} from a top-up`,
      metadata: { kind: 'BILL_PAYMENT', billPayment: id, bill: bill.id, biller: bill.biller_id },
      spentOn: `bill payment ${id}`,
    });
  } catch (err) {
    if (err instanceof TopUpError) throw errorIfRefused('INVALID_INPUT', err.message, 'fromTopUp');
    throw err;
  }
  await recordClearingItem(tx, { kind: 'BILL_PAYMENT', participant: { kind: 'BILLER', id: bill.biller_id }, cardCompanyId: topUp.card_company_id, amount: BigInt(topUp.amount), currency: bill.currency, entryKey: `bill-payment:${id}`, reference: id });
  await tx.execute(
    `insert into bill_payment (id, bill_id, biller_id, amount, currency, status, card_id, holder_id, created_by_client, receipt_number, business_day, expires_at, paid_at)
     values (?, ?, ?, ?, ?, 'SUCCEEDED', ?, ?, ?, ?, ?::date, now(), now())`,
    [id, bill.id, bill.biller_id, topUp.amount, bill.currency, topUp.card_id, principal.holderId, principal.clientId, receiptNumberFor(bill.today, id), bill.today],
  );
  await tx.execute(`update bill set amount_paid = amount_paid + ?, updated_at = now() where id = ?`, [topUp.amount, bill.id]);
  const after = (await billById(tx, bill.id))!;
  const settled = billAmounts(after).remaining === 0n ? await moveBill(tx, after, 'PAID') : after;
  const paid = (await billPaymentById(tx, id))!;
  await recordBillPaid(tx, paid, settled);
  return paid;
}

/** The amount a payment may take from a bill now: positive, not more than remains, all of it unless partial is allowed. */
export function checkAmount(bill: BillRow, amount: bigint): bigint {
  const { remaining } = billAmounts(bill);
  if (amount <= 0n) throw errorIfRefused(remaining === 0n ? 'BILL_NOT_PAYABLE' : 'INVALID_INPUT', remaining === 0n ? 'nothing remains to pay on this bill' : 'a payment is at least 1 minor unit', 'amount');
  if (amount > remaining) throw errorIfRefused('OVERPAYMENT', `${remaining} remains to pay; a bill is never overpaid`, 'amount');
  if (amount < remaining && !bill.allow_partial) throw errorIfRefused('PARTIAL_PAYMENT_NOT_ALLOWED', `the biller takes this bill only in full (${remaining})`, 'amount');
  return amount;
}

/**
 * Where a bill payment may go: a CANCELED or FAILED one is over, so a card's late proof can never
 * make it SUCCEEDED. A later session takes a dead claim over (PROCESSING again, with its claim).
 * One paid from a top-up is created SUCCEEDED.
 */
export const BILL_PAYMENT_TRANSITIONS: Readonly<Record<BillPaymentStatus, readonly BillPaymentStatus[]>> = {
  REQUIRES_CARD: ['PROCESSING', 'SUCCEEDED', 'CANCELED', 'FAILED'],
  PROCESSING: ['PROCESSING', 'SUCCEEDED', 'CANCELED', 'FAILED'],
  SUCCEEDED: [],
  CANCELED: [],
  FAILED: [],
};

/** The bill payment lifecycle (lifecycle/machine.ts). */
export const billPaymentMachine = defineMachine<BillPaymentStatus, BillPaymentRow>({
  name: 'bill_payment',
  table: 'bill_payment',
  initial: ['REQUIRES_CARD', 'SUCCEEDED'],
  transitions: BILL_PAYMENT_TRANSITIONS,
  refuse: (from, to) => new BillPaymentError('INVALID_STATE', `a ${from} bill payment cannot become ${to}`),
  reload: async (em, id) => (await billPaymentById(em, id))!,
});

/** Moves a bill payment (locked by the caller) along BILL_PAYMENT_TRANSITIONS, with what goes with it. */
export async function moveBillPayment(
  em: EntityManager,
  id: string,
  to: BillPaymentStatus,
  set: { failureCode?: string | null; receipt?: { number: string; businessDay: string }; cardId?: string | null; cardSessionId?: string; claim?: BillPaymentClaim; cardAsn?: string } = {},
): Promise<BillPaymentRow> {
  const [current] = await em.execute<{ id: string; status: BillPaymentStatus }[]>(`select id, status from bill_payment where id = ?`, [id]);
  if (!current) throw new BillPaymentError('INVALID_STATE', `a missing bill payment cannot become ${to}`);
  const patch: Patch = {
    updated_at: NOW,
    failure_code: sql('coalesce(?, failure_code)', set.failureCode ?? null),
    receipt_number: sql('coalesce(?, receipt_number)', set.receipt?.number ?? null),
    business_day: sql('coalesce(?::date, business_day)', set.receipt?.businessDay ?? null),
    card_id: sql('coalesce(?, card_id)', set.cardId ?? null),
    card_session_id: sql('coalesce(?, card_session_id)', set.cardSessionId ?? null),
  };
  if (to === 'SUCCEEDED') patch.paid_at = NOW;
  if (to === 'CANCELED') patch.canceled_at = NOW;
  // A claim names its session (a dead one's claim is replaced whole).
  if (set.claim) Object.assign(patch, { card_session_id: set.cardSessionId, card_claim: JSON.stringify(set.claim), card_asn: set.cardAsn ?? null });
  return transition(em, billPaymentMachine, current, to, patch);
}

/** A payment merely waiting for a card gives way to a new one for the same bill (SUPERSEDED). */
async function cancelWaitingPayments(tx: EntityManager, billId: string): Promise<void> {
  await transitionWhere(tx, billPaymentMachine, {
    from: ['REQUIRES_CARD'],
    to: 'CANCELED',
    patch: { canceled_at: NOW, updated_at: NOW, failure_code: 'SUPERSEDED' },
    where: 't.bill_id = ?',
    params: [billId],
    cause: 'superseded by a new payment of the bill',
  });
}

/**
 * The expiry job: bill payments still waiting for a card past their expiry are CANCELED; one a
 * card may have paid (MAC1 left, no answer) waits a day for the card's next tap (as payments do).
 */
export async function expireBillPayments(em: EntityManager, now = new Date()): Promise<number> {
  return em.transactional(async (tx) => {
    const rows = await transitionWhere(tx, billPaymentMachine, {
      from: ['REQUIRES_CARD', 'PROCESSING'],
      to: 'CANCELED',
      patch: { canceled_at: NOW, updated_at: NOW, failure_code: sql(`case when card_claim is not null then 'CARD_ANSWER_LOST' else 'EXPIRED' end`) },
      where: `t.id in (select id from bill_payment where status in ('REQUIRES_CARD','PROCESSING') and expires_at <= ?
                         and (card_claim is null or expires_at <= ?::timestamptz - interval '1 day')
                         and (card_session_id is null or not exists (select 1 from card_session s where s.id = card_session_id and s.state not in ('COMPLETED','FAILED') and s.expires_at > ?))
                       for update skip locked)`,
      params: [now, now, now],
      cause: 'expiry job',
    });
    return rows.length;
  });
}

export interface ReconciliationLine {
  id: string;
  receipt_number: string;
  paid_at: Date;
  account_number: string;
  period: string;
  biller_reference: string;
  amount: string;
  currency: string;
  card_number: string | null;
}

/**
 * A biller's day (its city's business day): every bill payment that succeeded on it, the totals,
 * and what the ledger holds for them (the entries posted to the biller's payable for those
 * payments), which must be equal. Set-based SQL; a biller sees only its own.
 */
export async function billerReconciliation(em: EntityManager, principal: Principal, businessDay: string) {
  if (principal.kind !== 'BILLER' || !principal.tenantId || !UUID.test(principal.tenantId) || !principal.scopes.includes('bills:read')) return null;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(businessDay) || Number.isNaN(Date.parse(`${businessDay}T00:00:00Z`))) throw errorIfRefused('INVALID_INPUT', 'a business day is YYYY-MM-DD', 'businessDay');
  const lines = await em.execute<ReconciliationLine[]>(
    `select p.id, p.receipt_number, p.paid_at, b.account_number, b.period, b.biller_reference, p.amount::text as amount, btrim(p.currency) as currency, c.card_number
       from bill_payment p join bill b on b.id = p.bill_id left join card c on c.id = p.card_id
      where p.biller_id = ? and p.business_day = ?::date and p.status = 'SUCCEEDED'
      order by p.paid_at, p.id`,
    [principal.tenantId, businessDay],
  );
  const [ledger] = await em.execute<{ total: string; entries: number }[]>(
    `select coalesce(sum(-po.amount), 0)::text as total, count(distinct e.entry_id)::int as entries
       from bill_payment p
       join journal_entry_key e on e.entry_key = 'bill-payment:' || p.id::text
       join posting po on po.entry_id = e.entry_id and po.posted_at = e.posted_at
       join ledger_account a on a.id = po.account_id and a.owner_kind = 'BILLER_PAYABLE' and a.owner_id = p.biller_id::text
      where p.biller_id = ? and p.business_day = ?::date and p.status = 'SUCCEEDED'`,
    [principal.tenantId, businessDay],
  );
  const total = lines.reduce((sum, l) => sum + BigInt(l.amount), 0n);
  return { businessDay, lines, count: lines.length, total, ledgerTotal: BigInt(ledger!.total), ledgerEntries: ledger!.entries };
}

/** The reconciliation file's columns: one row per payment, card numbers masked. */
const RECONCILIATION_COLUMNS: CsvColumns<ReconciliationLine> = [
  ['receipt_number', 'text', (l) => l.receipt_number],
  ['paid_at', 'text', (l) => new Date(l.paid_at).toISOString()],
  // Account numbers and references come from payers and billers: the writer makes formula-looking ones inert.
  ['account_number', 'text', (l) => l.account_number],
  ['period', 'text', (l) => l.period],
  ['biller_reference', 'text', (l) => l.biller_reference],
  ['amount', 'int', (l) => l.amount],
  ['currency', 'text', (l) => l.currency],
  ['card', 'text', (l) => (l.card_number ? `**** ${l.card_number.slice(-4)}` : '')],
];

/** The reconciliation as CSV (csv/csv-writer.ts): one row per payment, a header, card numbers masked. */
export function reconciliationCsv(lines: ReconciliationLine[]): string {
  return toCsv(RECONCILIATION_COLUMNS, lines);
}

export { BillPaymentError };
