import type { EntityManager } from '@mikro-orm/postgresql';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { findCardByAsn } from '../cards/cards.service.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import type { TransactionRecord } from '../readers/session/apdu.js';
import { cardPurseAccount } from '../readers/session/card-purse.js';
import { completionHandlers, debitGuards, type PendingDebit, refusalHandlers } from '../readers/session/card-session.service.js';
import { merchantPayableAccount } from '../readers/session/direct-purchase.js';
import { SessionError, type SessionRefusal } from '../readers/session/session.errors.js';
import { findMerchant } from '../tenancy/tenancy.service.js';
import { TenantStatus } from '../tenancy/merchant.entity.js';
import { MAX_ATTEMPTS, movePayment, type PaymentClaim, paymentById, type PaymentRow, sessionIsLive } from './payments.service.js';

/**
 * Paying a merchant's payment with the card at a certified reader: the purchase flow of the
 * readers issue with this purpose. purposeData: `{ paymentId }`. The guard claims the payment for
 * one session before MAC1 leaves the host; the TAC proves the card paid; only then does the ledger
 * move card purse → merchant payable and the payment succeed.
 */
export const PAYMENT = 'payment';

/** Type 06: an e-purse purchase in the card's transaction log. */
const LOG_TYPE_PURSE_PURCHASE = 0x06;

const paymentIdOf = (purposeData: Record<string, unknown> | undefined) => String(purposeData?.paymentId);

/** Did the card pay the attempt that `claim` issued MAC1 for? Its log (CPU) or its balance (M1) says. */
export function cardPaidClaim(claim: PaymentClaim, pending: PendingDebit, record: TransactionRecord | null): 'paid' | 'not-paid' | 'unknown' {
  if (claim.offlineCounter === null || pending.offlineCounter === null) {
    // An M1 card has no counter and no log: an unchanged balance means it did not pay; a lower one
    // may be any other purchase of the same amount, so it proves nothing.
    return pending.cardBalance === claim.cardBalance ? 'not-paid' : 'unknown';
  }
  if (pending.offlineCounter === claim.offlineCounter) return 'not-paid';
  // Exactly one purchase since, this one: the next counter, the balance down by the amount, and the
  // newest log record naming the claim's amount, terminal, date and time.
  const logged = !!record && record.type === LOG_TYPE_PURSE_PURCHASE && record.counter === claim.offlineCounter && record.amount === pending.amount && record.terminal === claim.terminal && record.date === claim.date && record.time === claim.time;
  return logged && pending.offlineCounter === claim.offlineCounter + 1 && pending.cardBalance === claim.cardBalance - pending.amount ? 'paid' : 'unknown';
}

debitGuards.set(PAYMENT, async (em, pending) => {
  const payment = await paymentById(em, paymentIdOf(pending.session.context.purposeData), true);
  if (!payment) throw new SessionError('PURPOSE_REFUSED', 'no such payment');
  if (payment.status === 'SUCCEEDED') throw new SessionError('ALREADY_PAID', 'the payment is already paid');
  if (payment.status === 'CANCELED' || payment.status === 'FAILED') throw new SessionError('PURPOSE_REFUSED', `the payment is ${payment.status}`);
  if (BigInt(payment.amount) !== BigInt(pending.amount)) throw new SessionError('PURPOSE_REFUSED', 'the session’s amount is not the payment’s');
  if (payment.status === 'PROCESSING' && payment.card_session_id !== pending.session.id) {
    await settleEarlierClaim(em, { what: 'this payment', ref: { payment: payment.id }, sessionId: payment.card_session_id, claim: payment.card_claim }, pending, async (tx) =>
      settle(tx, (await paymentById(tx, payment.id, true))!, payment.card_session_id!, pending, 'card transaction log'),
    );
  }
  if (new Date(payment.expires_at) <= pending.now) throw new SessionError('PURPOSE_REFUSED', 'the payment has expired');
  const merchant = await findMerchant(em, payment.merchant_id);
  if (!merchant || merchant.status !== TenantStatus.ACTIVE) throw new SessionError('PURPOSE_REFUSED', 'the merchant does not take payments now');
  if (payment.currency !== pending.currency) throw new SessionError('PURPOSE_REFUSED', `the card's purse is in ${pending.currency}, the payment in ${payment.currency}`);
  const claim: PaymentClaim = { cardAsn: pending.asn, offlineCounter: pending.offlineCounter, terminal: pending.terminal, date: pending.date, time: pending.time, cardBalance: pending.cardBalance };
  // card_asn: the card asked to pay, the only link to a card the registry does not know (card_id null).
  await em.execute(`update payment set status = 'PROCESSING', card_session_id = ?, card_claim = ?, card_asn = ?, updated_at = now() where id = ?`, [pending.session.id, JSON.stringify(claim), pending.asn, payment.id]);
});

/**
 * Another session took a payment (a merchant's, or a bill's) to PROCESSING. If it may still make a
 * card pay, this one waits. If it ended, and it had issued MAC1 (a claim), the card tells whether it
 * paid: not paid → this session goes ahead; paid (its log shows exactly that purchase) → the payment
 * is settled now by `settleFromLog` (kept although this session is refused ALREADY_PAID);
 * otherwise, or another card, unresolved.
 */
export async function settleEarlierClaim(
  em: EntityManager,
  attempt: { what: string; ref: Record<string, string>; sessionId: string | null; claim: PaymentClaim | null },
  pending: PendingDebit,
  settleFromLog: (tx: EntityManager) => Promise<void>,
): Promise<void> {
  if (await sessionIsLive(em, attempt.sessionId, pending.now)) throw new SessionError('PAYMENT_IN_PROGRESS', `another reader is paying ${attempt.what}; try again when it has finished`);
  const claim = attempt.claim;
  if (!claim) return;
  if (claim.cardAsn !== pending.asn) throw new SessionError('PAYMENT_UNRESOLVED', `another card may have paid ${attempt.what} (its answer was lost): present that card`, attempt.ref);
  const paid = cardPaidClaim(claim, pending, pending.lastRecord);
  if (paid === 'not-paid') return;
  if (paid === 'paid') {
    const error = new SessionError('ALREADY_PAID', `the card paid ${attempt.what} in an earlier session whose answer was lost; it is settled now`, { ...attempt.ref, settledFrom: attempt.sessionId });
    // Stands although this session is refused: the card paid, so the payee is owed.
    error.keep = settleFromLog;
    throw error;
  }
  throw new SessionError('PAYMENT_UNRESOLVED', 'the card moved on since an unanswered attempt to pay and its log does not show it', { ...attempt.ref, claim, lastRecord: pending.lastRecord });
}

/** The card that paid, as the session identified it. */
type PayingCard = Pick<PendingDebit, 'asn' | 'currency' | 'cardCompanyId'>;

/** The card paid: card purse → merchant payable, the payment SUCCEEDED (once: keyed by the payment). */
async function settle(em: EntityManager, payment: PaymentRow, sessionId: string, paidBy: PayingCard, proof: string, tac?: string): Promise<void> {
  if (payment.status === 'SUCCEEDED') return;
  const { asn, currency } = paidBy;
  const amount = BigInt(payment.amount);
  const purse = await cardPurseAccount(em, asn, currency);
  const payable = await merchantPayableAccount(em, payment.merchant_id, currency);
  await post(em, {
    key: `payment:${payment.id}`,
    description: `card payment of order ${payment.order_reference} to merchant ${payment.merchant_name}`,
    lines: [debit(purse.id, amount), credit(payable.id, amount)],
    metadata: { kind: 'PAYMENT', payment: payment.id, merchant: payment.merchant_id, cardSession: sessionId, proof, ...(tac ? { tac } : {}) },
  });
  await recordClearingItem(em, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: payment.merchant_id }, cardCompanyId: paidBy.cardCompanyId, amount, currency, entryKey: `payment:${payment.id}`, reference: payment.id });
  const card = await findCardByAsn(em, asn);
  await movePayment(em, payment, 'SUCCEEDED', { cardSessionId: sessionId, cardId: card?.id ?? null });
}

completionHandlers.set(PAYMENT, async (em, done) => {
  const payment = await paymentById(em, paymentIdOf(done.session.context.purposeData), true);
  // The claim was this session's when MAC1 left the host, and nothing takes a live claim over.
  if (!payment || payment.card_session_id !== done.session.id) throw new Error(`payment ${paymentIdOf(done.session.context.purposeData)} is not claimed by card session ${done.session.id}`);
  await settle(em, payment, done.session.id, done, 'TAC', typeof done.result.tac === 'string' ? done.result.tac : undefined);
});

/**
 * Refusals about the holder's card: they count as attempts. Others (a malformed or unsigned
 * message, an expired session, certificates) say nothing about the card, so a stranger who knows
 * the payment's id cannot make it fail by sending junk.
 */
export const CARD_REFUSALS: ReadonlySet<SessionRefusal> = new Set(['INSUFFICIENT_BALANCE', 'CARD_NOT_USABLE', 'PURSE_MISMATCH', 'CROSS_CITY_NOT_ALLOWED', 'UNKNOWN_CARD_ISSUER', 'UNKNOWN_CARD_KEY', 'COUNTER_ROLLBACK']);

refusalHandlers.set(PAYMENT, async (em, session, refusal) => {
  if (!CARD_REFUSALS.has(refusal)) return;
  const payment = await paymentById(em, paymentIdOf(session.context.purposeData), true);
  if (!payment || payment.status !== 'REQUIRES_CARD') return;
  await em.execute(`update payment set attempts = attempts + 1, failure_code = ?, updated_at = now() where id = ?`, [refusal, payment.id]);
  if (payment.attempts + 1 >= MAX_ATTEMPTS) await movePayment(em, (await paymentById(em, payment.id))!, 'FAILED', { failureCode: refusal });
});
