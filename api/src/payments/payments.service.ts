import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { recordClearingItem } from '../settlement/clearing-items.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { type DebitClaim, sessionIsLive } from '../readers/session/card-claims.js';
import { findMerchant } from '../tenancy/tenancy.service.js';
import { TenantStatus } from '../tenancy/merchant.entity.js';
import { recordPendingLoad } from '../topups/topups.service.js';
import { eventInsert, recordEvent } from '../webhooks/outbox.js';
import { PaymentError } from './payments.errors.js';
import { merchantPayableAccount } from '../ledger/accounts.js';
import { defineMachine, NOW, type Patch, refusal, sql, transition, transitionWhere } from '../lifecycle/machine.js';
import { inTransaction } from '../db/in-transaction.js';

export type PaymentStatus = 'REQUIRES_CARD' | 'PROCESSING' | 'SUCCEEDED' | 'CANCELED' | 'FAILED';

/** What the card said when a session took the payment to PROCESSING: the evidence to settle a lost answer. */
export type PaymentClaim = DebitClaim;

export interface PaymentRow {
  id: string;
  merchant_id: string;
  created_by_client: string;
  amount: string;
  currency: string;
  order_reference: string;
  description: string | null;
  metadata: Record<string, string>;
  status: PaymentStatus;
  expires_at: Date;
  card_session_id: string | null;
  card_claim: PaymentClaim | null;
  attempts: number;
  failure_code: string | null;
  cancel_reason: 'MERCHANT' | 'EXPIRED' | null;
  card_id: string | null;
  card_asn: string | null;
  refunded_amount: string;
  created_at: Date;
  updated_at: Date;
  succeeded_at: Date | null;
  canceled_at: Date | null;
  /** Joined: the merchant's name, for the holder's app. */
  merchant_name: string;
  /** The merchant's status now (ACTIVE or SUSPENDED): read with the payment, so the card step's debit guard reads no second row. */
  merchant_status: string;
  /** Joined: the holder of the card that paid (null until a card paid, or for an anonymous card). */
  payer_holder_id: string | null;
}

export interface RefundRow {
  id: string;
  payment_id: string;
  amount: string;
  reason: string | null;
  top_up_id: string;
  created_by_client: string;
  created_at: Date;
}

/** Largest payment: what one purchase may take from a card (the 4-byte amount a card accepts is far larger). */
export const MAX_PAYMENT = 100_000n;
/** How long a payment waits for the card by default, and at most. */
export const DEFAULT_EXPIRY_SECONDS = 15 * 60;
export const MAX_EXPIRY_SECONDS = 24 * 3600;
/** Refused card attempts before a payment is FAILED (the holder may try again, or another card). */
export const MAX_ATTEMPTS = 3;
/** How long past its expiry a payment a card may have paid waits for the card's next tap. */
export const CLAIM_GRACE_SECONDS = 24 * 3600;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = `p.*, p.amount::text as amount, p.refunded_amount::text as refunded_amount, btrim(p.currency) as currency, m.name as merchant_name, m.status as merchant_status`;
const FROM = `payment p join merchant m on m.id = p.merchant_id`;

export const paymentGlobalId = (id: string) => toGlobalId('Payment', id);

/**
 * Payment states as data. A session that claims the payment makes it PROCESSING (payment-card-step.ts
 * does it in the purchase step); a later session may take a dead claim over once the card shows it
 * did not pay (PROCESSING again, with the new session's claim), so PROCESSING has no way back to
 * REQUIRES_CARD.
 */
export const PAYMENT_TRANSITIONS: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  REQUIRES_CARD: ['PROCESSING', 'CANCELED', 'FAILED'],
  PROCESSING: ['PROCESSING', 'SUCCEEDED', 'CANCELED'],
  SUCCEEDED: [],
  CANCELED: [],
  FAILED: [],
};

export async function paymentById(em: EntityManager, id: string, lock = false): Promise<PaymentRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<PaymentRow[]>(`select ${COLUMNS} from ${FROM} where p.id = ?${lock ? ' for update of p for share of m' : ''}`, [id]);
  return row ?? null;
}

/**
 * Who sees a payment (ownership in the query): its merchant (payments:read or payments:write), the
 * operator (payments:read); a cardholder app (card:topup) one waiting for a card by its id (the
 * holder is asked to pay it), or one its holder's cards paid.
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  const scopes = principal.scopes;
  if (principal.kind === 'MERCHANT' && principal.tenantId && UUID.test(principal.tenantId) && (scopes.includes('payments:read') || scopes.includes('payments:write'))) return { sql: 'p.merchant_id = ?', params: [principal.tenantId] };
  if (principal.kind === 'OPERATOR' && scopes.includes('payments:read')) return { sql: 'true', params: [] };
  // A holder's app: a payment waiting for a card (its id is what the checkout hands over), or one
  // the holder's own cards paid.
  if (principal.kind === 'CARDHOLDER_APP' && scopes.includes('card:topup') && principal.holderId && UUID.test(principal.holderId)) {
    // The payer is the card's holder when it paid, not whoever holds the card now.
    return { sql: `(p.status in ('REQUIRES_CARD','PROCESSING') or p.payer_holder_id = ?)`, params: [principal.holderId] };
  }
  return null;
}

export async function findPaymentFor(em: EntityManager, principal: Principal, id: string): Promise<PaymentRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<PaymentRow[]>(`select ${COLUMNS} from ${FROM} where p.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

export interface PaymentFilter {
  statuses?: PaymentStatus[];
  orderReference?: string;
  createdFrom?: Date;
  createdTo?: Date;
}

/** A merchant's payments (the operator's: all), newest first; keyset on (created_at, id). */
export async function listPaymentsFor(em: EntityManager, principal: Principal, filter: PaymentFilter, page: { after?: { createdAt: string; id: string }; limit: number }): Promise<PaymentRow[]> {
  if (principal.kind === 'CARDHOLDER_APP') return [];
  const where = visibility(principal);
  if (!where) return [];
  const clauses = [`(${where.sql})`];
  const params: unknown[] = [...where.params];
  if (filter.statuses?.length) {
    clauses.push('p.status in (?)');
    params.push(filter.statuses);
  }
  if (filter.orderReference) {
    clauses.push('p.order_reference = ?');
    params.push(filter.orderReference);
  }
  if (filter.createdFrom) {
    clauses.push('p.created_at >= ?');
    params.push(filter.createdFrom);
  }
  if (filter.createdTo) {
    clauses.push('p.created_at < ?');
    params.push(filter.createdTo);
  }
  if (page.after) {
    clauses.push('(p.created_at, p.id) < (?::timestamptz, ?::uuid)');
    params.push(page.after.createdAt, page.after.id);
  }
  return em.execute<PaymentRow[]>(`select ${COLUMNS} from ${FROM} where ${clauses.join(' and ')} order by p.created_at desc, p.id desc limit ?`, [...params, page.limit]);
}

export function refundsOf(em: EntityManager, paymentId: string): Promise<RefundRow[]> {
  return em.execute<RefundRow[]>(`select id, payment_id, amount::text as amount, reason, top_up_id, created_by_client, created_at from payment_refund where payment_id = ? order by created_at, id`, [paymentId]);
}

/** The ledger entries of a payment (the purchase, its refunds), oldest first: found by the payment id in their metadata. */
export function ledgerEntriesOf(em: EntityManager, paymentId: string) {
  return em.execute<{ id: string; entry_key: string; description: string; posted_at: Date; kind: string | null; amount: string; currency: string }[]>(
    `select e.id, e.entry_key, e.description, e.posted_at, e.metadata->>'kind' as kind,
            (select sum(p.amount) from posting p where p.entry_id = e.id and p.posted_at = e.posted_at and p.amount > 0)::text as amount,
            (select min(p.currency) from posting p where p.entry_id = e.id and p.posted_at = e.posted_at) as currency
       from journal_entry e where e.metadata->>'payment' = ? order by e.posted_at, e.id`,
    [paymentId],
  );
}

// ——— creating ———

export interface CreatePaymentInput {
  amount: bigint;
  currency: string;
  orderReference: string;
  description?: string | null;
  metadata?: Record<string, string> | null;
  expiresAt?: Date | null;
}

function validate(input: CreatePaymentInput, now: Date): void {
  if (input.amount <= 0n || input.amount > MAX_PAYMENT) throw new PaymentError('INVALID_INPUT', `a payment is 1 to ${MAX_PAYMENT} minor units`, 'amount');
  if (!input.orderReference.trim() || input.orderReference.length > 200) throw new PaymentError('INVALID_INPUT', 'an order reference is 1 to 200 characters', 'orderReference');
  if (input.description != null && input.description.length > 500) throw new PaymentError('INVALID_INPUT', 'a description is at most 500 characters', 'description');
  const metadata = input.metadata ?? {};
  const entries = Object.entries(metadata);
  if (entries.length > 20 || entries.some(([k, v]) => typeof v !== 'string' || k.length === 0 || k.length > 40 || v.length > 500)) {
    throw new PaymentError('INVALID_INPUT', 'metadata is at most 20 string values, keys of 1 to 40 and values of at most 500 characters', 'metadata');
  }
  if (input.expiresAt) {
    const seconds = (+input.expiresAt - +now) / 1000;
    if (seconds < 60 || seconds > MAX_EXPIRY_SECONDS) throw new PaymentError('INVALID_INPUT', `a payment expires 1 minute to ${MAX_EXPIRY_SECONDS / 3600} hours from now`, 'expiresAt');
  }
}

/** A merchant asks for a payment: it waits for the holder's card (REQUIRES_CARD) until it expires. */
export async function createPayment(em: EntityManager, principal: Principal, input: CreatePaymentInput, now = new Date()): Promise<PaymentRow> {
  validate(input, now);
  const merchant = principal.tenantId ? await findMerchant(em, principal.tenantId) : null;
  if (!merchant) throw new PaymentError('FORBIDDEN_OPERATION', 'payments are created by a merchant');
  if (merchant.status !== TenantStatus.ACTIVE) throw new PaymentError('FORBIDDEN_OPERATION', 'the merchant does not take payments now');
  if (input.currency !== merchant.currency) throw new PaymentError('CURRENCY_MISMATCH', `the merchant takes ${merchant.currency}`, 'currency');
  const expiresAt = input.expiresAt ?? new Date(+now + DEFAULT_EXPIRY_SECONDS * 1000);
  // One statement, the row read back with its merchant as paymentById reads it: no transaction or
  // savepoint of its own (in an idempotent mutation's, a refusal has written nothing).
  const [row] = await em.execute<PaymentRow[]>(
    `with p as (
       insert into payment (id, merchant_id, created_by_client, amount, currency, order_reference, description, metadata, status, expires_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, 'REQUIRES_CARD', ?) on conflict do nothing returning *)
     select ${COLUMNS} from p join merchant m on m.id = p.merchant_id`,
    [randomUUID(), merchant.id, principal.clientId, input.amount.toString(), input.currency, input.orderReference, input.description ?? null, JSON.stringify(input.metadata ?? {}), expiresAt],
  );
  if (!row) throw new PaymentError('DUPLICATE_ORDER', `order ${input.orderReference} already has a payment that is not canceled or failed`, 'orderReference');
  return row;
}

// ——— moving ———

const EVENT_OF: Partial<Record<PaymentStatus, string>> = { SUCCEEDED: 'payment.succeeded', FAILED: 'payment.failed', CANCELED: 'payment.canceled' };

export function paymentEventPayload(p: PaymentRow, extra: Record<string, unknown> = {}) {
  return {
    payment: paymentGlobalId(p.id),
    status: p.status,
    amount: Number(p.amount),
    currency: p.currency,
    orderReference: p.order_reference,
    metadata: p.metadata,
    refundedAmount: Number(p.refunded_amount),
    ...(p.failure_code ? { failureCode: p.failure_code } : {}),
    ...(p.cancel_reason ? { cancelReason: p.cancel_reason } : {}),
    ...extra,
  };
}

/** The payment lifecycle (lifecycle/machine.ts): PAYMENT_TRANSITIONS, and the merchant's event on a final state. */
export const paymentMachine = defineMachine<PaymentStatus, PaymentRow>({
  name: 'payment',
  table: 'payment',
  initial: ['REQUIRES_CARD'],
  transitions: PAYMENT_TRANSITIONS,
  refuse: (from, to) => new PaymentError('INVALID_STATE', `a ${from} payment cannot become ${to}`),
  reload: async (em, id) => (await paymentById(em, id))!,
  // A single move answers the row as paymentById reads it, without reading it back.
  view: { columns: COLUMNS, from: 'p join merchant m on m.id = p.merchant_id' },
  onEnter: Object.fromEntries(
    Object.entries(EVENT_OF).map(([state, type]) => [
      state,
      (em: EntityManager, moved: PaymentRow) => recordEvent(em, { type: type!, ownerKind: 'MERCHANT', ownerId: moved.merchant_id, subjectId: paymentGlobalId(moved.id), payload: paymentEventPayload(moved) }),
    ]),
  ),
});

/** What a payment's move writes beside its status. */
type PaymentMoveSet = {
  cancelReason?: 'MERCHANT' | 'EXPIRED';
  failureCode?: string | null;
  cardSessionId?: string | null;
  claim?: PaymentClaim | null;
  cardId?: string | null;
  cardAsn?: string | null;
  /** The card that paid, by its ASN: card_id becomes the registry's card of that ASN, if it has one (looked up in the move's own statement). */
  cardOfAsn?: string;
};

function paymentPatch(to: PaymentStatus, set: PaymentMoveSet): Patch {
  const cardId = set.cardOfAsn !== undefined ? sql('(select c.id from card c where c.asn = ?)', set.cardOfAsn) : sql('?::uuid', set.cardId ?? null);
  const patch: Patch = {
    updated_at: NOW,
    cancel_reason: sql('coalesce(?, cancel_reason)', set.cancelReason ?? null),
    failure_code: sql('coalesce(?, failure_code)', set.failureCode ?? null),
    card_id: sql(`coalesce(${cardId.text}, card_id)`, ...cardId.params),
  };
  if (to === 'CANCELED') patch.canceled_at = NOW;
  if (set.cardSessionId !== undefined) patch.card_session_id = set.cardSessionId;
  if (set.claim !== undefined) patch.card_claim = sql('?::jsonb', set.claim ? JSON.stringify(set.claim) : null);
  if (to === 'SUCCEEDED') {
    patch.succeeded_at = NOW;
    // The card that paid, and its holder then (a card registered to someone else later does not
    // make them the payer): written when the payment succeeds, never at a claim.
    patch.card_asn = sql('coalesce(?, card_asn)', set.cardAsn ?? null);
    patch.payer_holder_id = sql(`(select c.holder_id from card c where c.id = coalesce(${cardId.text}, payment.card_id))`, ...cardId.params);
  }
  return patch;
}

/** Moves a payment (locked in the caller's transaction) along PAYMENT_TRANSITIONS, with its event. */
export async function movePayment(em: EntityManager, payment: PaymentRow, to: PaymentStatus, set: PaymentMoveSet = {}): Promise<PaymentRow> {
  return transition(em, paymentMachine, payment, to, paymentPatch(to, set));
}

/**
 * A card session claims a payment (locked in the caller's transaction) before MAC1 leaves the host:
 * REQUIRES_CARD or PROCESSING → PROCESSING with the session and the card's claim, its history row,
 * and no event; the row is not read back, as nobody uses it after the claim.
 */
export async function claimPayment(em: EntityManager, payment: PaymentRow, set: { cardSessionId: string; claim: PaymentClaim }): Promise<void> {
  const moved = await transitionWhere(em, paymentMachine, { from: [payment.status], to: 'PROCESSING', where: 't.id = ?', params: [payment.id], patch: paymentPatch('PROCESSING', set) });
  if (moved.length !== 1) throw refusal(paymentMachine, payment.status, 'PROCESSING');
}

/**
 * The merchant cancels a payment that has not been paid. One a card session is paying right now is
 * refused (PAYMENT_IN_PROGRESS); a paid one is refunded instead.
 */
export async function cancelPayment(em: EntityManager, principal: Principal, paymentId: string, now = new Date()): Promise<PaymentRow> {
  return em.transactional(async (tx) => {
    const seen = await findPaymentFor(tx, principal, paymentId);
    if (!seen || principal.kind !== 'MERCHANT') throw new PaymentError('NOT_FOUND', `no payment ${paymentId}`, 'payment');
    const payment = (await paymentById(tx, seen.id, true))!;
    if (payment.status === 'SUCCEEDED') throw new PaymentError('INVALID_STATE', 'the payment succeeded: refund it instead', 'payment');
    if (payment.status !== 'REQUIRES_CARD' && payment.status !== 'PROCESSING') throw new PaymentError('INVALID_STATE', `the payment is ${payment.status}`, 'payment');
    if (payment.status === 'PROCESSING' && (await sessionIsLive(tx, payment.card_session_id, now))) throw new PaymentError('PAYMENT_IN_PROGRESS', 'a card is paying it right now; try again in a moment', 'payment');
    // A card may have paid it (the answer was lost): until it expires, the holder's next tap settles it.
    if (payment.status === 'PROCESSING' && payment.card_claim) throw new PaymentError('PAYMENT_IN_PROGRESS', 'a card may have paid it (its answer was lost); the holder’s next tap settles it, or it expires', 'payment');
    return movePayment(tx, payment, 'CANCELED', { cancelReason: 'MERCHANT' });
  });
}

/**
 * Refunds part or all of a succeeded payment: several partial refunds up to what was paid. The
 * money goes back to the card that paid, as a pending load its next tap writes onto the chip
 * (merchant payable → the card company's pending loads). Concurrent refunds are serialized on the
 * payment row, so their sum never passes the amount.
 */
export async function refundPayment(em: EntityManager, principal: Principal, paymentId: string, input: { amount?: bigint | null; reason?: string | null; idempotencyKey?: string }): Promise<{ payment: PaymentRow; refund: RefundRow }> {
  if (input.reason != null && input.reason.length > 500) throw new PaymentError('INVALID_INPUT', 'a reason is at most 500 characters', 'reason');
  // In the caller's transaction when it has one (an idempotent mutation's): no savepoint of its own.
  return inTransaction(em, async (tx) => {
    const { payment, paidWith, again } = (await paymentToRefund(tx, principal, paymentId, input.idempotencyKey)) ?? {};
    if (!payment || principal.kind !== 'MERCHANT') throw new PaymentError('NOT_FOUND', `no payment ${paymentId}`, 'payment');
    if (payment.status !== 'SUCCEEDED') throw new PaymentError('INVALID_STATE', `a ${payment.status} payment cannot be refunded`, 'payment');
    if (!payment.card_id) throw new PaymentError('INVALID_STATE', 'the card that paid is not in the card registry: its card company refunds it', 'payment');
    // A CPU card takes the refund by MAC2, an M1 card by a host-signed write script (issue 21).
    if (!paidWith) throw new PaymentError('INVALID_STATE', 'the card that paid is not in the card registry: its card company refunds it', 'payment');
    // The same client and key refund once, whatever happens to the answer (idempotency underneath the API's layer).
    if (again) return { payment, refund: again };
    const left = BigInt(payment.amount) - BigInt(payment.refunded_amount);
    if (left === 0n) throw new PaymentError('INVALID_STATE', 'the payment is fully refunded', 'payment');
    const amount = input.amount ?? left;
    if (amount <= 0n) throw new PaymentError('INVALID_INPUT', 'a refund is at least 1 minor unit', 'amount');
    if (amount > left) throw new PaymentError('REFUND_EXCEEDS_PAYMENT', `at most ${left} is left to refund`, 'amount');
    const id = randomUUID();
    const entryKey = `payment-refund:${payment.id}:${id}`;
    // The ledger entry moves the merchant's payable and the card company's pending loads, rows every
    // refund of theirs locks until it commits: it comes last, so that they are held for the fewest statements.
    const [after] = await tx.execute<PaymentRow[]>(`update payment p set refunded_amount = p.refunded_amount + ?, updated_at = now() from merchant m where p.id = ? and m.id = p.merchant_id returning ${COLUMNS}`, [amount.toString(), payment.id]);
    await recordClearingItem(tx, { kind: 'REFUND', participant: { kind: 'MERCHANT', id: payment.merchant_id }, cardCompanyId: paidWith.card_company_id, amount, currency: payment.currency, entryKey, reference: id });
    const payable = await merchantPayableAccount(tx, payment.merchant_id, payment.currency);
    const { topUpId } = await recordPendingLoad(tx, {
      origin: 'REFUND',
      cardId: payment.card_id!,
      key: entryKey,
      amount,
      currency: payment.currency,
      fromAccountId: payable.id,
      description: `refund of payment ${payment.id} (order ${payment.order_reference}) to the card`,
      metadata: { kind: 'REFUND', payment: payment.id, refund: id, merchant: payment.merchant_id },
      cause: `refund of payment ${payment.id}`,
    });
    // The refund's row and its payment.refunded event: one statement.
    const event = eventInsert({ type: 'payment.refunded', ownerKind: 'MERCHANT', ownerId: after!.merchant_id, subjectId: paymentGlobalId(after!.id), payload: paymentEventPayload(after!, { refund: { id: toGlobalId('PaymentRefund', id), amount: Number(amount) } }) });
    const [made] = await tx.execute<{ created_at: Date }[]>(`with event as (${event.sql}) insert into payment_refund (id, payment_id, amount, reason, top_up_id, created_by_client, idempotency_key) values (?, ?, ?, ?, ?, ?, ?) returning created_at`, [
      ...event.params,
      id,
      payment.id,
      amount.toString(),
      input.reason ?? null,
      topUpId,
      principal.clientId,
      input.idempotencyKey ?? null,
    ]);
    const refund: RefundRow = { id, payment_id: payment.id, amount: amount.toString(), reason: input.reason ?? null, top_up_id: topUpId, created_by_client: principal.clientId, created_at: made!.created_at };
    return { payment: after!, refund };
  });
}

/**
 * What a refund reads, in one statement: the payment as its caller sees it (ownership in the query),
 * locked, so that concurrent refunds serialize on it; the card that paid; and this client's refund
 * made with this key before, if any.
 */
async function paymentToRefund(
  em: EntityManager,
  principal: Principal,
  paymentId: string,
  key: string | undefined,
): Promise<{ payment: PaymentRow; paidWith: { card_type: string; card_company_id: string } | null; again: RefundRow | null } | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(paymentId)) return null;
  const [row] = await em.execute<(PaymentRow & { paid_card_type: string | null; paid_card_company_id: string | null; again: RefundRow | null })[]>(
    `select ${COLUMNS}, c.card_type as paid_card_type, c.card_company_id as paid_card_company_id,
            (select json_build_object('id', r.id, 'payment_id', r.payment_id, 'amount', r.amount::text, 'reason', r.reason, 'top_up_id', r.top_up_id, 'created_by_client', r.created_by_client, 'created_at', r.created_at)
               from payment_refund r where r.payment_id = p.id and r.created_by_client = ? and r.idempotency_key = ?) as again
       from ${FROM} left join card c on c.id = p.card_id
      where p.id = ? and (${where.sql}) for update of p`,
    [principal.clientId, key ?? null, paymentId, ...where.params],
  );
  if (!row) return null;
  const { paid_card_type, paid_card_company_id, again, ...payment } = row;
  return {
    payment: payment as PaymentRow,
    paidWith: paid_card_type === null ? null : { card_type: paid_card_type, card_company_id: paid_card_company_id! },
    again: again ? { ...again, created_at: new Date(again.created_at) } : null,
  };
}

/**
 * The expiry job: payments still waiting for a card past their expiry are CANCELED (EXPIRED),
 * unless a card session is paying right now. One a card may have paid with its answer lost is
 * canceled too, marked CARD_ANSWER_LOST: had the card paid, its chip now holds less than its
 * ledger shadow, which the card's next session records as a balance discrepancy for the card
 * company to settle. Skip-locked, so several processes may run it.
 */
export async function expirePayments(em: EntityManager, now = new Date()): Promise<number> {
  let expired = 0;
  for (;;) {
    const done = await em.transactional(async (tx) => {
      // A card may have paid one with a claim (MAC1 left the host, no answer came back): the holder
      // has a day past the expiry to tap again and settle it from the card, before it is given up.
      // Left out in the query, not skipped after it: a batch of 50 of them would stop the job there.
      const rows = await tx.execute<{ id: string }[]>(
        `select id from payment where status in ('REQUIRES_CARD','PROCESSING') and expires_at <= ?
            and (card_claim is null or expires_at + make_interval(secs => ?) <= ?)
          order by expires_at limit 50 for update skip locked`,
        [now, CLAIM_GRACE_SECONDS, now],
      );
      let moved = 0;
      for (const { id } of rows) {
        const payment = (await paymentById(tx, id))!;
        if (payment.status === 'PROCESSING' && (await sessionIsLive(tx, payment.card_session_id, now))) continue;
        await movePayment(tx, payment, 'CANCELED', { cancelReason: 'EXPIRED', failureCode: payment.card_claim ? 'CARD_ANSWER_LOST' : null });
        moved++;
      }
      return { seen: rows.length, moved };
    });
    expired += done.moved;
    if (done.seen < 50 || done.moved === 0) return expired;
  }
}
