import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { seal, unseal } from '../secrets/kek.js';
import { findBillerFor } from '../tenancy/tenancy.service.js';
import { checkEndpointUrlResolved, type InternalUrls } from '../webhooks/endpoint-url.js';
import { textArray } from '../webhooks/endpoints.service.js';
import { WebhookError } from '../webhooks/webhooks.errors.js';
import { type BillDraft, type BillFields, checkAmountDue, checkBill, checkDueDate, checkText, TEXT_LIMITS } from './bill-input.js';
import { admitLookUp, recordOutcome } from './account-lookups.js';
import { BillError, BillerUnavailable, type BillRefusal, BillsRefused } from './bills.errors.js';
import { lookUpBills } from './bills.fetch.js';
import { checkLateFee, type LateFeeParts, type LateFeeRule, lateFeeFor, lateFeeFromJson, lateFeeJson } from './late-fee.js';
import { defineMachine, NOW, type Patch, sql, transition, transitionWhere } from '../lifecycle/machine.js';

export type BillStatus = 'OPEN' | 'PAID' | 'WITHDRAWN';
export type BillSource = 'PUBLISHED' | 'FETCHED';

export interface BillRow {
  id: string;
  biller_id: string;
  biller_name: string;
  currency: string;
  account_number: string;
  period: string;
  amount_due: string;
  /** `YYYY-MM-DD`. */
  due_date: string;
  late_fee: { kind: string; amount?: number; basisPoints?: number; cap?: number };
  allow_partial: boolean;
  biller_reference: string;
  status: BillStatus;
  amount_paid: string;
  version: number;
  source: BillSource;
  created_at: Date;
  updated_at: Date;
  paid_at: Date | null;
  withdrawn_at: Date | null;
  /** The biller's city day as the row was read: late fees are counted to it. */
  today: string;
}

/** What a bill asks for on its row's `today`: amount due, late fee, owed, paid, and what remains. */
export interface BillAmounts {
  amountDue: bigint;
  lateFee: bigint;
  owed: bigint;
  paid: bigint;
  remaining: bigint;
}

/** The biller as the bills context needs it: city time zone and live look-up settings. */
export interface BillerRow {
  id: string;
  name: string;
  currency: string;
  status: 'ACTIVE' | 'SUSPENDED';
  time_zone: string;
  fetch_url: string | null;
  fetch_enabled: boolean;
  fetch_secret_sealed: string | null;
}

/** Bills one publishBills call takes; a CSV import takes more (bills.import.ts). */
export const MAX_BILLS_PER_CALL = 1_000;
/** Rows per INSERT statement of a set-based insert (all inside one transaction). */
const INSERT_CHUNK = 5_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = `b.id, b.biller_id, bl.name as biller_name, btrim(b.currency) as currency, b.account_number, b.period, b.amount_due::text as amount_due,
  b.due_date::text as due_date, b.late_fee, b.allow_partial, b.biller_reference, b.status, b.amount_paid::text as amount_paid, b.version, b.source,
  b.created_at, b.updated_at, b.paid_at, b.withdrawn_at, (now() at time zone ci.time_zone)::date::text as today`;
const FROM = `bill b join biller bl on bl.id = b.biller_id join city ci on ci.id = bl.city_id`;
/**
 * Payments that hold a bill: one a card is paying (PROCESSING). One merely waiting for a card does
 * not: anyone who knows the bill could make those, and the card step checks the bill again anyway.
 */
const PAYMENT_IN_FLIGHT = `exists (select 1 from bill_payment p where p.bill_id = b.id and p.status = 'PROCESSING')`;

export const billGlobalId = (id: string) => toGlobalId('Bill', id);

export function lateFeeRuleOf(bill: Pick<BillRow, 'late_fee'>): LateFeeRule {
  return lateFeeFromJson(bill.late_fee);
}

/**
 * What an OPEN bill asks for on its biller's today (late fee by `lateFeeFor`); a PAID bill owed what
 * was paid, a WITHDRAWN one nothing. `remaining` never goes below zero.
 */
export function billAmounts(bill: BillRow): BillAmounts {
  const amountDue = BigInt(bill.amount_due);
  const paid = BigInt(bill.amount_paid);
  if (bill.status !== 'OPEN') {
    const owed = bill.status === 'PAID' ? paid : 0n;
    return { amountDue, lateFee: bill.status === 'PAID' && paid > amountDue ? paid - amountDue : 0n, owed, paid, remaining: 0n };
  }
  const lateFee = lateFeeFor({ amountDue, dueDate: bill.due_date, lateFee: lateFeeRuleOf(bill) }, bill.today);
  const owed = amountDue + lateFee;
  return { amountDue, lateFee, owed, paid, remaining: owed > paid ? owed - paid : 0n };
}

// ——— states ———

/** Bill states as data (STYLE.md §2). PAID and WITHDRAWN are final; amending keeps a bill OPEN. */
export const BILL_TRANSITIONS: Readonly<Record<BillStatus, readonly BillStatus[]>> = {
  OPEN: ['PAID', 'WITHDRAWN'],
  PAID: [],
  WITHDRAWN: [],
};

/** The bill lifecycle (lifecycle/machine.ts). */
export const billMachine = defineMachine<BillStatus, BillRow>({
  name: 'bill',
  table: 'bill',
  initial: ['OPEN'],
  transitions: BILL_TRANSITIONS,
  refuse: (from, to) => new BillError('INVALID_BILL_STATE', `a ${from} bill cannot become ${to}`, 'bill'),
  reload: async (em, id) => (await billById(em, id))!,
});

/** What a bill's move writes beside its status: its version goes up, and the time it was paid or withdrawn. */
const billMovePatch = (to: BillStatus): Patch => ({
  version: sql('version + 1'),
  updated_at: NOW,
  ...(to === 'PAID' ? { paid_at: NOW } : {}),
  ...(to === 'WITHDRAWN' ? { withdrawn_at: NOW } : {}),
});

/** Moves a bill (locked in the caller's transaction) along BILL_TRANSITIONS; its version goes up. */
export async function moveBill(em: EntityManager, bill: Pick<BillRow, 'id' | 'status'>, to: BillStatus): Promise<BillRow> {
  return transition(em, billMachine, bill, to, billMovePatch(to));
}

// ——— reading ———

export async function billById(em: EntityManager, id: string, lock = false): Promise<BillRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<BillRow[]>(`select ${COLUMNS} from ${FROM} where b.id = ?${lock ? ' for update of b' : ''}`, [id]);
  return row ?? null;
}

/**
 * Who sees a bill (ownership in the query): its biller (bills:read or bills:write), the operator
 * (bills:read), and a cardholder app (card:read or card:topup) any bill of an ACTIVE biller by its
 * id or its account (bills are found by account number; they belong to no holder).
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  const s = principal.scopes;
  if (principal.kind === 'BILLER' && principal.tenantId && UUID.test(principal.tenantId) && (s.includes('bills:read') || s.includes('bills:write'))) return { sql: 'b.biller_id = ?', params: [principal.tenantId] };
  if (principal.kind === 'OPERATOR' && s.includes('bills:read')) return { sql: 'true', params: [] };
  if (principal.kind === 'CARDHOLDER_APP' && (s.includes('card:read') || s.includes('card:topup'))) return { sql: `bl.status = 'ACTIVE'`, params: [] };
  return null;
}

export async function findBillFor(em: EntityManager, principal: Principal, id: string): Promise<BillRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<BillRow[]>(`select ${COLUMNS} from ${FROM} where b.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

export interface BillFilter {
  statuses?: BillStatus[];
  accountNumber?: string;
  billerReference?: string;
  period?: string;
  source?: BillSource;
}

/**
 * A biller's bills (the operator's: all), newest first; keyset on (created_at, id). The position's
 * row gives the exact timestamp (a cursor's ISO string drops microseconds, and an import's bills
 * share one); the cursor's text is the fallback once the row is gone.
 */
export async function listBillsFor(em: EntityManager, principal: Principal, filter: BillFilter, page: { after?: { createdAt: string; id: string }; limit: number }): Promise<BillRow[]> {
  if (principal.kind === 'CARDHOLDER_APP') return [];
  const where = visibility(principal);
  if (!where) return [];
  const clauses = [`(${where.sql})`];
  const params: unknown[] = [...where.params];
  const add = (sql: string, value: unknown) => {
    clauses.push(sql);
    params.push(value);
  };
  if (filter.statuses?.length) add('b.status in (?)', filter.statuses);
  if (filter.accountNumber) add('b.account_number = ?', filter.accountNumber);
  if (filter.billerReference) add('b.biller_reference = ?', filter.billerReference);
  if (filter.period) add('b.period = ?', filter.period);
  if (filter.source) add('b.source = ?', filter.source);
  if (page.after) {
    if (!UUID.test(page.after.id) || Number.isNaN(Date.parse(page.after.createdAt))) return [];
    clauses.push('(b.created_at, b.id) < (coalesce((select created_at from bill where id = ?::uuid), ?::timestamptz), ?::uuid)');
    params.push(page.after.id, page.after.createdAt, page.after.id);
  }
  return em.execute<BillRow[]>(`select ${COLUMNS} from ${FROM} where ${clauses.join(' and ')} order by b.created_at desc, b.id desc limit ?`, [...params, page.limit]);
}

/** The OPEN bills of one account of a biller, the earliest due first (then by period and reference). */
export function openBillsOfAccount(em: EntityManager, billerId: string, accountNumber: string): Promise<BillRow[]> {
  return em.execute<BillRow[]>(`select ${COLUMNS} from ${FROM} where b.biller_id = ? and b.account_number = ? and b.status = 'OPEN' order by b.due_date, b.period, b.biller_reference`, [billerId, accountNumber]);
}

async function billsByIds(em: EntityManager, ids: string[]): Promise<BillRow[]> {
  if (!ids.length) return [];
  const rows = await em.execute<BillRow[]>(`select ${COLUMNS} from ${FROM} where b.id = any(?::uuid[])`, [textArray(ids)]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id)!);
}

// ——— the biller ———

export async function billerRow(em: EntityManager, id: string, lock = false): Promise<BillerRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<BillerRow[]>(
    `select bl.id, bl.name, btrim(bl.currency) as currency, bl.status, ci.time_zone, bl.fetch_url, bl.fetch_enabled, bl.fetch_secret_sealed
       from biller bl join city ci on ci.id = bl.city_id where bl.id = ?${lock ? ' for update of bl' : ''}`,
    [id],
  );
  return row ?? null;
}

/** The calling biller; publishing and changing bills needs it ACTIVE. */
export async function callingBiller(em: EntityManager, principal: Principal, opts: { active: boolean } = { active: true }): Promise<BillerRow> {
  const biller = principal.kind === 'BILLER' && principal.tenantId ? await billerRow(em, principal.tenantId) : null;
  if (!biller) throw new BillError('FORBIDDEN_OPERATION', 'bills are published by a biller');
  if (opts.active && biller.status !== 'ACTIVE') throw new BillError('FORBIDDEN_OPERATION', 'the biller is suspended: it publishes and changes no bills');
  return biller;
}

/** Serialises the writers of one biller's bills (publish, import, live answers), so the reference checks hold. */
export async function lockBillerBills(em: EntityManager, billerId: string): Promise<void> {
  await em.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`bills:${billerId}`]);
}

// ——— publishing ———

/** The references among `refs` that the biller's bills already use. */
export async function takenReferences(em: EntityManager, billerId: string, refs: string[]): Promise<Set<string>> {
  if (!refs.length) return new Set();
  const rows = await em.execute<{ biller_reference: string }[]>(`select biller_reference from bill where biller_id = ? and biller_reference = any(?::text[])`, [billerId, textArray(refs)]);
  return new Set(rows.map((r) => r.biller_reference));
}

/** Writes bills in one set-based statement per chunk (in the caller's transaction); returns their ids in order. */
export async function insertBills(em: EntityManager, biller: Pick<BillerRow, 'id' | 'currency'>, drafts: BillDraft[], source: BillSource): Promise<string[]> {
  const ids = drafts.map(() => randomUUID());
  for (let at = 0; at < drafts.length; at += INSERT_CHUNK) {
    const chunk = drafts.slice(at, at + INSERT_CHUNK);
    await em.execute(
      `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source)
       select u.id, ?, ?, u.account_number, u.period, u.amount_due, u.due_date, u.late_fee, u.allow_partial, u.biller_reference, ?
         from unnest(?::uuid[], ?::text[], ?::text[], ?::bigint[], ?::date[], ?::jsonb[], ?::boolean[], ?::text[])
           as u(id, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference)`,
      [
        biller.id,
        biller.currency,
        source,
        textArray(ids.slice(at, at + INSERT_CHUNK)),
        textArray(chunk.map((d) => d.accountNumber)),
        textArray(chunk.map((d) => d.period)),
        textArray(chunk.map((d) => d.amountDue.toString())),
        textArray(chunk.map((d) => d.dueDate)),
        textArray(chunk.map((d) => lateFeeJson(d.lateFee))),
        textArray(chunk.map((d) => String(d.allowPartial))),
        textArray(chunk.map((d) => d.billerReference)),
      ],
    );
  }
  return ids;
}

/** The reference an item names, when it is a valid one (to find duplicates even among otherwise bad items). */
function referenceOf(item: BillFields): string | null {
  return checkText(item.billerReference, 'billerReference', TEXT_LIMITS.billerReference).value;
}

/**
 * Publishes bills, all or nothing: every item is checked (every field, duplicate references within
 * the list and against the biller's bills), and when any is refused, BillsRefused lists each
 * refusal and nothing is written.
 */
export async function publishBills(em: EntityManager, principal: Principal, items: BillFields[]): Promise<BillRow[]> {
  const biller = await callingBiller(em, principal);
  if (items.length === 0) throw new BillError('INVALID_INPUT', 'give at least one bill', 'bills');
  if (items.length > MAX_BILLS_PER_CALL) throw new BillError('INVALID_INPUT', `at most ${MAX_BILLS_PER_CALL} bills at once; import a CSV file for more`, 'bills');
  const refusals: BillRefusal[] = [];
  const drafts = items.map((item, index) => {
    const checked = checkBill(item);
    for (const p of checked.problems) refusals.push({ index, field: p.field, code: 'INVALID_INPUT', message: p.message });
    return checked.draft;
  });
  const refs = items.map(referenceOf);
  const firstIndex = new Map<string, number>();
  refs.forEach((ref, index) => {
    if (ref === null) return;
    const first = firstIndex.get(ref);
    if (first === undefined) firstIndex.set(ref, index);
    else refusals.push({ index, field: 'billerReference', code: 'DUPLICATE_BILLER_REFERENCE', message: `billerReference ${ref} is also bills[${first}]` });
  });
  return em.transactional(async (tx) => {
    await lockBillerBills(tx, biller.id);
    const taken = await takenReferences(tx, biller.id, [...firstIndex.keys()]);
    refs.forEach((ref, index) => {
      if (ref !== null && taken.has(ref)) refusals.push({ index, field: 'billerReference', code: 'DUPLICATE_BILLER_REFERENCE', message: `you already have a bill with billerReference ${ref}` });
    });
    if (refusals.length) throw new BillsRefused(refusals.sort((a, b) => a.index - b.index));
    const ids = await insertBills(tx, biller, drafts as BillDraft[], 'PUBLISHED');
    return billsByIds(tx, ids);
  });
}

export async function publishBill(em: EntityManager, principal: Principal, item: BillFields): Promise<BillRow> {
  const [bill] = await publishBills(em, principal, [item]);
  return bill!;
}

// ——— amending and withdrawing ———

export interface AmendBillInput {
  amountDue?: bigint | null;
  dueDate?: string | null;
  lateFee?: LateFeeParts | null;
  allowPartial?: boolean | null;
  expectedVersion?: number | null;
}

/** The caller's own bill, locked; another biller's answers as missing. */
async function ownBillLocked(em: EntityManager, billerId: string, billId: string): Promise<BillRow> {
  const bill = UUID.test(billId) ? await billById(em, billId, true) : null;
  if (!bill || bill.biller_id !== billerId) throw new BillError('NOT_FOUND', 'no such bill', 'bill');
  return bill;
}

/** A bill the biller may still change: OPEN, at the version the caller saw, no payment holding it. */
async function checkChangeable(em: EntityManager, bill: BillRow, expectedVersion: number | null | undefined): Promise<void> {
  if (bill.status !== 'OPEN') throw new BillError('INVALID_BILL_STATE', `the bill is ${bill.status}`, 'bill');
  if (expectedVersion != null && expectedVersion !== bill.version) throw new BillError('BILL_VERSION_CONFLICT', `the bill is at version ${bill.version}, not ${expectedVersion}: read it again`, 'expectedVersion');
  const [held] = await em.execute<{ held: boolean }[]>(`select ${PAYMENT_IN_FLIGHT} as held from bill b where b.id = ?`, [bill.id]);
  if (held?.held) throw new BillError('PAYMENT_IN_PROGRESS', 'a payment of the bill is waiting for or taking a card; try again when it is over', 'bill');
}

/**
 * Changes an OPEN bill's amount due, due date, late fee or partial-payment rule; its version goes
 * up. A partly paid bill keeps an amount due above what was paid.
 */
export async function amendBill(em: EntityManager, principal: Principal, billId: string, input: AmendBillInput): Promise<BillRow> {
  const biller = await callingBiller(em, principal);
  const refuse = (problem: { field: string; message: string } | undefined) => {
    if (problem) throw new BillError('INVALID_INPUT', problem.message, problem.field);
  };
  const amountDue = input.amountDue != null ? checkAmountDue(input.amountDue) : null;
  refuse(amountDue?.problem);
  const dueDate = input.dueDate != null ? checkDueDate(input.dueDate) : null;
  refuse(dueDate?.problem);
  const lateFee = input.lateFee != null ? checkLateFee(input.lateFee) : null;
  refuse(lateFee?.problems[0]);
  if (input.expectedVersion != null && (!Number.isInteger(input.expectedVersion) || input.expectedVersion < 1)) throw new BillError('INVALID_INPUT', 'expectedVersion is a version the bill had (1 or more)', 'expectedVersion');
  if (!amountDue && !dueDate && !lateFee && input.allowPartial == null) throw new BillError('INVALID_INPUT', 'give at least one of amountDue, dueDate, lateFee, allowPartial', 'bill');
  return em.transactional(async (tx) => {
    const bill = await ownBillLocked(tx, biller.id, billId);
    await checkChangeable(tx, bill, input.expectedVersion);
    const paid = BigInt(bill.amount_paid);
    if (amountDue?.value != null && paid > 0n && amountDue.value <= paid) throw new BillError('AMOUNT_DUE_BELOW_PAID', `${paid} has been paid on the bill: its amount due stays above that`, 'amountDue');
    await tx.execute(
      `update bill set amount_due = coalesce(?::bigint, amount_due), due_date = coalesce(?::date, due_date), late_fee = coalesce(?::jsonb, late_fee),
              allow_partial = coalesce(?::boolean, allow_partial), version = version + 1, updated_at = now()
        where id = ?`,
      [amountDue?.value?.toString() ?? null, dueDate?.value ?? null, lateFee?.rule ? lateFeeJson(lateFee.rule) : null, input.allowPartial ?? null, bill.id],
    );
    const amended = (await billById(tx, bill.id))!;
    // A partly paid bill must still owe something today (a later due date or a smaller late fee
    // could leave it overpaid and unpayable): the transaction rolls back.
    if (paid > 0n && billAmounts(amended).owed <= paid) throw new BillError('AMOUNT_DUE_BELOW_PAID', `${paid} has been paid on the bill: what it owes must stay above that`, 'bill');
    return amended;
  });
}

/** Withdraws an OPEN bill nothing has been paid on (and no payment holds): it can no longer be paid. */
export async function withdrawBill(em: EntityManager, principal: Principal, billId: string, expectedVersion?: number | null): Promise<BillRow> {
  const biller = await callingBiller(em, principal);
  return em.transactional(async (tx) => {
    const bill = await ownBillLocked(tx, biller.id, billId);
    await checkChangeable(tx, bill, expectedVersion);
    if (BigInt(bill.amount_paid) > 0n) throw new BillError('INVALID_BILL_STATE', `${bill.amount_paid} has been paid on the bill: it can no longer be withdrawn (amend it instead)`, 'bill');
    return moveBill(tx, bill, 'WITHDRAWN');
  });
}

// ——— live look-up ———

/** The associated data a fetch secret is sealed under: moved to another biller, it does not open. */
const fetchSecretContext = (billerId: string) => `biller-fetch-secret:${billerId}`;

export interface FetchSettings {
  url: string | null;
  enabled: boolean;
  /** The new signing secret, returned this once; null when the current one stays. */
  secret: string | null;
}

/**
 * Sets where OneCard asks the biller for an account's bills, and turns asking on or off. The
 * signing secret is made the first time (or on `rotateSecret`), returned once, and kept sealed.
 */
export async function setFetchUrl(em: EntityManager, deps: { kek: Buffer; internalUrls: InternalUrls }, principal: Principal, input: { url?: string | null; enabled: boolean; rotateSecret?: boolean | null }): Promise<FetchSettings> {
  const caller = await callingBiller(em, principal, { active: false });
  let url: string | null = null;
  if (input.url != null) {
    try {
      url = await checkEndpointUrlResolved(input.url, deps.internalUrls);
    } catch (err) {
      if (err instanceof WebhookError) throw new BillError('INVALID_FETCH_URL', err.message.replace(/^(.*?): webhooks are sent/, '$1: look-ups are sent').replace('cannot receive webhooks', 'cannot be asked'), 'url');
      throw err;
    }
  }
  return em.transactional(async (tx) => {
    const biller = (await billerRow(tx, caller.id, true))!;
    const nextUrl = url ?? biller.fetch_url;
    if (input.enabled && !nextUrl) throw new BillError('INVALID_FETCH_URL', 'give the url OneCard should ask', 'url');
    const secret = nextUrl && (!biller.fetch_secret_sealed || input.rotateSecret) ? `bls_${randomBytes(32).toString('base64url')}` : null;
    const sealed = secret ? seal(deps.kek, fetchSecretContext(biller.id), Buffer.from(secret, 'utf8')) : biller.fetch_secret_sealed;
    await tx.execute(`update biller set fetch_url = ?, fetch_enabled = ?, fetch_secret_sealed = ? where id = ?`, [nextUrl, input.enabled, sealed, biller.id]);
    return { url: nextUrl, enabled: input.enabled, secret };
  });
}

export type LookUpOutcome = 'NOT_USED' | 'ANSWERED' | 'FAILED';

export interface AccountBills {
  biller: BillerRow;
  accountNumber: string;
  bills: BillRow[];
  lookUp: LookUpOutcome;
  /** Why the look-up failed (for the log; the payer sees BILLER_UNAVAILABLE). */
  failure: string | null;
  /** A holder's app looked up an account not bound to its holder: it sees the payer's view of the bills. */
  payerView: boolean;
}

export interface LookUpDeps {
  kek: Buffer;
  env: Config['env'];
  internalUrls: InternalUrls;
  timeoutMs?: number;
  log?: Pick<Logger, 'warn'>;
}

/**
 * The OPEN bills of an account, for a cardholder app (card:read or card:topup; ACTIVE billers) or
 * the biller itself (and the operator, bills:read). When the biller answers look-ups and a
 * cardholder app asks, the biller is asked first and its answer stored (storeLookUpAnswer); if it
 * cannot answer, the bills already stored are returned with `lookUp: FAILED`. Null when the
 * principal may not see the biller (another biller's id answers like a missing one).
 */
export async function billsForAccount(em: EntityManager, deps: LookUpDeps, principal: Principal, billerId: string, accountNumber: string): Promise<AccountBills | null> {
  const account = checkText(accountNumber, 'accountNumber', TEXT_LIMITS.accountNumber);
  if (account.problem) throw new BillError('INVALID_INPUT', account.problem.message, 'accountNumber');
  const s = principal.scopes;
  const allowed =
    (principal.kind === 'CARDHOLDER_APP' && principal.holderId !== null && (s.includes('card:read') || s.includes('card:topup'))) ||
    (principal.kind === 'BILLER' && (s.includes('bills:read') || s.includes('bills:write'))) ||
    (principal.kind === 'OPERATOR' && s.includes('bills:read'));
  if (!allowed || !(await findBillerFor(em, principal, billerId))) return null;
  const biller = (await billerRow(em, billerId))!;
  // A holder's look-up is audited and, unless the account is bound to the holder, throttled.
  const admitted = principal.kind === 'CARDHOLDER_APP' ? await admitLookUp(em, principal, billerId, accountNumber, 'LOOK_UP') : null;
  let lookUp: LookUpOutcome = 'NOT_USED';
  let failure: string | null = null;
  if (principal.kind === 'CARDHOLDER_APP' && biller.fetch_enabled && biller.fetch_url && biller.fetch_secret_sealed) {
    try {
      const secret = unseal(deps.kek, fetchSecretContext(biller.id), biller.fetch_secret_sealed).toString('utf8');
      const drafts = await lookUpBills({ url: biller.fetch_url, secret, accountNumber, timeoutMs: deps.timeoutMs, internal: deps.internalUrls });
      await storeLookUpAnswer(em, biller, accountNumber, drafts);
      lookUp = 'ANSWERED';
    } catch (err) {
      if (!(err instanceof BillerUnavailable)) throw err;
      lookUp = 'FAILED';
      failure = err.reason;
      deps.log?.warn({ biller: biller.id, reason: err.reason }, 'a biller’s live bill look-up failed');
    }
  }
  const bills = await openBillsOfAccount(em, biller.id, accountNumber);
  if (admitted) await recordOutcome(em, admitted, bills.length ? 'FOUND' : 'NOT_FOUND');
  return { biller, accountNumber, bills, lookUp, failure, payerView: admitted !== null && !admitted.bound };
}

/**
 * Stores a biller's live answer for an account, by biller reference: new bills are inserted
 * (source FETCHED); a stored OPEN bill with nothing paid and no payment holding it takes the
 * answer's terms (its version goes up when they differ); any other bill is left as it is. A
 * FETCHED bill of the account the answer no longer lists, OPEN and untouched by payments, is
 * withdrawn: the biller says it is no longer owed (paid at a counter, cancelled). A reference of
 * another account makes the whole answer unusable (BillerUnavailable), and nothing is stored.
 */
export async function storeLookUpAnswer(em: EntityManager, biller: Pick<BillerRow, 'id' | 'currency'>, accountNumber: string, drafts: BillDraft[]): Promise<void> {
  await em.transactional(async (tx) => {
    await lockBillerBills(tx, biller.id);
    // The account's bills locked first: a card step claiming one of them (it locks the bill) has
    // committed by then, and the statements below, each with a fresh snapshot, see its payment.
    await tx.execute(`select id from bill where biller_id = ? and account_number = ? for update`, [biller.id, accountNumber]);
    const refs = drafts.map((d) => d.billerReference);
    if (refs.length) {
      const [other] = await tx.execute<{ biller_reference: string }[]>(`select biller_reference from bill where biller_id = ? and biller_reference = any(?::text[]) and account_number <> ? limit 1`, [
        biller.id,
        textArray(refs),
        accountNumber,
      ]);
      if (other) throw new BillerUnavailable(`the answer names bill ${other.biller_reference}, which is another account's`);
      const taken = await takenReferences(tx, biller.id, refs);
      const fresh = drafts.filter((d) => !taken.has(d.billerReference));
      if (fresh.length) await insertBills(tx, biller, fresh, 'FETCHED');
      const known = drafts.filter((d) => taken.has(d.billerReference));
      if (known.length) {
        await tx.execute(
          `update bill b set period = u.period, amount_due = u.amount_due, due_date = u.due_date, late_fee = u.late_fee, allow_partial = u.allow_partial,
                  version = b.version + 1, updated_at = now()
             from unnest(?::text[], ?::text[], ?::bigint[], ?::date[], ?::jsonb[], ?::boolean[]) as u(biller_reference, period, amount_due, due_date, late_fee, allow_partial)
            where b.biller_id = ? and b.biller_reference = u.biller_reference and b.status = 'OPEN' and b.amount_paid = 0 and not ${PAYMENT_IN_FLIGHT}
              and (b.period, b.amount_due, b.due_date, b.late_fee, b.allow_partial) is distinct from (u.period, u.amount_due, u.due_date, u.late_fee, u.allow_partial)`,
          [
            textArray(known.map((d) => d.billerReference)),
            textArray(known.map((d) => d.period)),
            textArray(known.map((d) => d.amountDue.toString())),
            textArray(known.map((d) => d.dueDate)),
            textArray(known.map((d) => lateFeeJson(d.lateFee))),
            textArray(known.map((d) => String(d.allowPartial))),
            biller.id,
          ],
        );
      }
    }
    await transitionWhere(tx, billMachine, {
      from: ['OPEN'],
      to: 'WITHDRAWN',
      alias: 'b',
      patch: billMovePatch('WITHDRAWN'),
      where: `b.biller_id = ? and b.account_number = ? and b.source = 'FETCHED' and b.amount_paid = 0 and b.biller_reference <> all(?::text[]) and not ${PAYMENT_IN_FLIGHT}`,
      params: [biller.id, accountNumber, textArray(refs)],
      cause: 'live look-up: no longer in the biller’s answer',
    });
  });
}
