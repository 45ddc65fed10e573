import type { EntityManager } from '@mikro-orm/postgresql';
import { findCardByAsn } from '../cards/cards.service.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { balanceAfterEntry, credit, debit, post } from '../ledger/ledger.service.js';
import { cardPaidObligation, type PayingCard } from '../readers/session/card-paid-obligation.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { BillPaymentError } from './bill-payments.errors.js';
import { billPaymentById, type BillPaymentClaim, type BillPaymentRow, checkAmount, findBillPaymentFor, moveBillPayment, receiptNumberFor, recordBillPaid } from './bill-payments.service.js';
import { billAmounts, billById, billerRow, type BillRow, moveBill } from './bills.service.js';
import { billerPayableAccount, cardPurseAccount } from '../ledger/accounts.js';

/**
 * Paying a bill with the card at a certified reader: a card purchase with this purpose.
 * purposeData: `{ billPaymentId }`. Like a merchant payment (payments/payment-card-step.ts, the
 * same card-paid obligation): the guard claims the bill payment, and checks the bill still takes
 * it, before MAC1 leaves the host; the TAC proves the card paid; then card purse → biller payable,
 * a receipt, and the bill paid.
 */
export const BILL_PAYMENT = 'bill-payment';

/** Refused card attempts before a bill payment is FAILED. */
const MAX_ATTEMPTS = 3;

/** The card paid: card purse → biller payable, a receipt, the bill paid (in full or in part), a bill.paid event. */
async function settle(em: EntityManager, payment: BillPaymentRow, sessionId: string, paidBy: PayingCard, proof: string, tac?: string): Promise<bigint | undefined> {
  if (payment.status === 'SUCCEEDED') return undefined;
  // A CANCELED or FAILED one is over (the bill may have been paid another way since): a late proof must not pay the bill again.
  if (payment.status !== 'PROCESSING' && payment.status !== 'REQUIRES_CARD') throw new SessionError('PURPOSE_REFUSED', `the bill payment is ${payment.status}`);
  const { asn, currency } = paidBy;
  const amount = BigInt(payment.amount);
  const purse = await cardPurseAccount(em, asn, currency);
  const payable = await billerPayableAccount(em, payment.biller_id, currency);
  const entry = await post(em, {
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
  // The purse shadow right after the entry (the engine compares the card's balance with it).
  return balanceAfterEntry(entry, purse.id);
}

export const billPayment: CardSessionPurpose = {
  name: BILL_PAYMENT,
  opens: { operation: 'PURCHASE', by: 'billPayment' },

  /** The holder's app that made the bill payment (payBill), on the holder's own reader (scope card:topup). */
  async open(ctx, reader, input) {
    const principal = ctx.principal!;
    const payment = principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') ? await findBillPaymentFor(ctx.em, principal, fromGlobalId(input.billPayment!, 'BillPayment').id) : null;
    if (!payment) return openRefusal(UserErrorCode.NOT_FOUND, `no bill payment ${input.billPayment} you may pay`, 'billPayment');
    if (input.amount != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'a bill payment’s session takes its amount from the bill payment', 'amount');
    if (payment.status !== 'REQUIRES_CARD' && payment.status !== 'PROCESSING') return openRefusal(UserErrorCode.INVALID_INPUT, `the bill payment is ${payment.status}`, 'billPayment');
    if (new Date(payment.expires_at) <= new Date()) return openRefusal(UserErrorCode.INVALID_INPUT, 'the bill payment has expired', 'billPayment');
    return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: BigInt(payment.amount), clientId: principal.clientId, charge: ctx.costCharge, purpose: BILL_PAYMENT, purposeData: { billPaymentId: payment.id } });
  },

  ...cardPaidObligation<BillPaymentRow, BillRow>({
    noun: 'bill payment',
    earlier: { what: 'this bill', refKey: 'billPayment' },
    currencyOf: 'the bill',
    idOf: (purposeData) => String(purposeData?.billPaymentId),
    byId: billPaymentById,
    /** The bill must still take this amount (it may have been amended, withdrawn or paid meanwhile), from an active biller. */
    async check(em, payment) {
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
      return bill;
    },
    async claim(em, payment, pending, card, bill) {
      const claim: BillPaymentClaim = { ...card, remaining: billAmounts(bill).remaining.toString() };
      await moveBillPayment(em, payment.id, 'PROCESSING', { cardSessionId: pending.session.id, claim, cardAsn: pending.asn });
    },
    settle,
    async countFailedAttempt(em, payment, refusal) {
      const [row] = await em.execute<{ attempts: number }[]>(`update bill_payment set attempts = attempts + 1, failure_code = ?, updated_at = now() where id = ? returning attempts`, [refusal, payment.id]);
      if (row!.attempts >= MAX_ATTEMPTS) await moveBillPayment(em, payment.id, 'FAILED', { failureCode: refusal });
    },
  }),
};
