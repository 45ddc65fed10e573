import type { EntityManager } from '@mikro-orm/postgresql';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { findCardByAsn } from '../cards/cards.service.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { CARD_REFUSALS, settleEarlierClaim } from '../payments/payment-session.js';
import { cardPurseAccount } from '../readers/session/card-purse.js';
import { completionHandlers, debitGuards, type PendingDebit, refusalHandlers } from '../readers/session/card-session.service.js';
import { SessionError } from '../readers/session/session.errors.js';
import { BillPaymentError } from './bill-payments.errors.js';
import { type BillPaymentClaim, billPaymentById, type BillPaymentRow, billerPayableAccount, checkAmount, moveBillPayment, receiptNumberFor, recordBillPaid } from './bill-payments.service.js';
import { billAmounts, billById, billerRow, moveBill } from './bills.service.js';

/**
 * Paying a bill with the card at a certified reader: the purchase flow with this purpose.
 * purposeData: `{ billPaymentId }`. Like a merchant payment (payments/payment-session.ts): the
 * guard claims the bill payment, and checks the bill still takes it, before MAC1 leaves the host;
 * the TAC proves the card paid; then card purse → biller payable, a receipt, and the bill paid.
 */
export const BILL_PAYMENT = 'bill-payment';

const idOf = (purposeData: Record<string, unknown> | undefined) => String(purposeData?.billPaymentId);

debitGuards.set(BILL_PAYMENT, async (em, pending) => {
  const payment = await billPaymentById(em, idOf(pending.session.context.purposeData), true);
  if (!payment) throw new SessionError('PURPOSE_REFUSED', 'no such bill payment');
  if (payment.status === 'SUCCEEDED') throw new SessionError('ALREADY_PAID', 'the bill payment is already paid');
  if (payment.status === 'CANCELED' || payment.status === 'FAILED') throw new SessionError('PURPOSE_REFUSED', `the bill payment is ${payment.status}`);
  if (BigInt(payment.amount) !== BigInt(pending.amount)) throw new SessionError('PURPOSE_REFUSED', 'the session’s amount is not the bill payment’s');
  if (payment.status === 'PROCESSING' && payment.card_session_id !== pending.session.id) {
    // As for merchant payments: a dead earlier attempt is settled from the card, or this one waits or is refused.
    await settleEarlierClaim(em, { what: 'this bill', ref: { billPayment: payment.id }, sessionId: payment.card_session_id, claim: payment.card_claim }, pending, async (tx) =>
      settle(tx, (await billPaymentById(tx, payment.id, true))!, payment.card_session_id!, pending, 'card transaction log'),
    );
  }
  if (new Date(payment.expires_at) <= pending.now) throw new SessionError('PURPOSE_REFUSED', 'the bill payment has expired');
  // The bill must still take this amount (it may have been amended, withdrawn or paid meanwhile).
  const bill = (await billById(em, payment.bill_id, true))!;
  if (bill.status !== 'OPEN') throw new SessionError('PURPOSE_REFUSED', `the bill is ${bill.status}`);
  try {
    checkAmount(bill, BigInt(payment.amount));
  } catch (err) {
    if (err instanceof BillPaymentError) throw new SessionError('PURPOSE_REFUSED', err.message);
    throw err;
  }
  const biller = await billerRow(em, payment.biller_id);
  if (!biller || biller.status !== 'ACTIVE') throw new SessionError('PURPOSE_REFUSED', 'the biller does not take payments now');
  if (payment.currency !== pending.currency) throw new SessionError('PURPOSE_REFUSED', `the card's purse is in ${pending.currency}, the bill in ${payment.currency}`);
  const claim: BillPaymentClaim = { cardAsn: pending.asn, offlineCounter: pending.offlineCounter, terminal: pending.terminal, date: pending.date, time: pending.time, cardBalance: pending.cardBalance, remaining: billAmounts(bill).remaining.toString() };
  await em.execute(`update bill_payment set status = 'PROCESSING', card_session_id = ?, card_claim = ?, card_asn = ?, updated_at = now() where id = ?`, [pending.session.id, JSON.stringify(claim), pending.asn, payment.id]);
});

/** The card that paid, as the session identified it. */
type PayingCard = Pick<PendingDebit, 'asn' | 'currency' | 'cardCompanyId'>;

/** The card paid: card purse → biller payable, a receipt, the bill paid (in full or in part), a bill.paid event. */
async function settle(em: EntityManager, payment: BillPaymentRow, sessionId: string, paidBy: PayingCard, proof: string, tac?: string): Promise<void> {
  if (payment.status === 'SUCCEEDED') return;
  const { asn, currency } = paidBy;
  const amount = BigInt(payment.amount);
  const purse = await cardPurseAccount(em, asn, currency);
  const payable = await billerPayableAccount(em, payment.biller_id, currency);
  await post(em, {
    key: `bill-payment:${payment.id}`,
    description: `bill ${payment.period} of account ${payment.account_number} paid to ${payment.biller_name}`,
    lines: [debit(purse.id, amount), credit(payable.id, amount)],
    metadata: { kind: 'BILL_PAYMENT', billPayment: payment.id, bill: payment.bill_id, biller: payment.biller_id, cardSession: sessionId, proof, ...(tac ? { tac } : {}) },
  });
  await recordClearingItem(em, { kind: 'BILL_PAYMENT', participant: { kind: 'BILLER', id: payment.biller_id }, cardCompanyId: paidBy.cardCompanyId, amount, currency, entryKey: `bill-payment:${payment.id}`, reference: payment.id });
  const bill = (await billById(em, payment.bill_id, true))!;
  await em.execute(`update bill set amount_paid = amount_paid + ?, updated_at = now() where id = ?`, [amount.toString(), bill.id]);
  const after = (await billById(em, bill.id))!;
  // Paid in full as the card step counted it: a late fee that grew since (past midnight) is not owed.
  const coveredAtClaim = payment.card_claim?.remaining !== undefined && amount >= BigInt(payment.card_claim.remaining);
  const settled = after.status === 'OPEN' && (billAmounts(after).remaining === 0n || coveredAtClaim) ? await moveBill(em, after, 'PAID') : after;
  const card = await findCardByAsn(em, asn);
  const paid = await moveBillPayment(em, payment.id, 'SUCCEEDED', { receipt: { number: receiptNumberFor(bill.today, payment.id), businessDay: bill.today }, cardId: card?.id ?? null, cardSessionId: sessionId });
  await recordBillPaid(em, paid, settled);
}

completionHandlers.set(BILL_PAYMENT, async (em, done) => {
  const payment = await billPaymentById(em, idOf(done.session.context.purposeData), true);
  if (!payment || payment.card_session_id !== done.session.id) throw new Error(`bill payment ${idOf(done.session.context.purposeData)} is not claimed by card session ${done.session.id}`);
  await settle(em, payment, done.session.id, done, 'TAC', typeof done.result.tac === 'string' ? done.result.tac : undefined);
});

/** Refusals about the holder's card count as attempts (as for payments); after three, FAILED. */
refusalHandlers.set(BILL_PAYMENT, async (em, session, refusal) => {
  if (!CARD_REFUSALS.has(refusal)) return;
  const payment = await billPaymentById(em, idOf(session.context.purposeData), true);
  if (!payment || payment.status !== 'REQUIRES_CARD') return;
  const [row] = await em.execute<{ attempts: number }[]>(`update bill_payment set attempts = attempts + 1, failure_code = ?, updated_at = now() where id = ? returning attempts`, [refusal, payment.id]);
  if (row!.attempts >= 3) await moveBillPayment(em, payment.id, 'FAILED', { failureCode: refusal });
});
