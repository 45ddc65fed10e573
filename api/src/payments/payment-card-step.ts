import type { EntityManager } from '@mikro-orm/postgresql';
import { fromGlobalId } from '../graphql/global-id.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { balanceAfterEntry, credit, debit, post } from '../ledger/ledger.service.js';
import { cardPaidObligation, type PayingCard } from '../readers/session/card-paid-obligation.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { TenantStatus } from '../tenancy/merchant.entity.js';
import { claimPayment, findPaymentFor, MAX_ATTEMPTS, movePayment, paymentById, type PaymentRow } from './payments.service.js';
import { cardPurseAccount, merchantPayableAccount } from '../ledger/accounts.js';

/**
 * Paying a merchant's payment with the card at a certified reader: a card purchase with this
 * purpose. purposeData: `{ paymentId }`. The guard claims the payment for one session before MAC1
 * leaves the host; the TAC proves the card paid; only then does the ledger move card purse →
 * merchant payable and the payment succeed.
 */
export const PAYMENT = 'payment';

/**
 * The card paid: card purse → merchant payable, the payment SUCCEEDED (once: keyed by the payment).
 * Returns the purse shadow right after the entry, when this call posted it.
 */
async function settle(em: EntityManager, payment: PaymentRow, sessionId: string, paidBy: PayingCard, proof: string, tac?: string): Promise<bigint | undefined> {
  if (payment.status === 'SUCCEEDED') return undefined;
  // A CANCELED or FAILED one is over: a late proof does not pay it (its value goes back to the holder, transaction-proofs.ts).
  if (payment.status !== 'PROCESSING' && payment.status !== 'REQUIRES_CARD') throw new SessionError('PURPOSE_REFUSED', `the payment is ${payment.status}`);
  const { asn, currency } = paidBy;
  const amount = BigInt(payment.amount);
  const purse = await cardPurseAccount(em, asn, currency);
  const payable = await merchantPayableAccount(em, payment.merchant_id, currency);
  const entry = await post(em, {
    key: `payment:${payment.id}`,
    description: `card payment of order ${payment.order_reference} to merchant ${payment.merchant_name}`,
    lines: [debit(purse.id, amount), credit(payable.id, amount)],
    metadata: { kind: 'PAYMENT', payment: payment.id, merchant: payment.merchant_id, cardSession: sessionId, proof, ...(tac ? { tac } : {}) },
  });
  await recordClearingItem(em, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: payment.merchant_id }, cardCompanyId: paidBy.cardCompanyId, amount, currency, entryKey: `payment:${payment.id}`, reference: payment.id });
  // card_asn: the card that paid, the only link to a card the registry does not know (card_id null).
  await movePayment(em, payment, 'SUCCEEDED', { cardSessionId: sessionId, cardOfAsn: asn, cardAsn: asn });
  return balanceAfterEntry(entry, purse.id);
}

export const merchantPayment: CardSessionPurpose = {
  name: PAYMENT,
  opens: { operation: 'PURCHASE', by: 'payment' },

  /**
   * The holder's app on its own reader (scope card:topup), or the merchant on a reader it owns
   * (scope payments:write). The amount is the payment's.
   */
  async open(ctx, reader, input) {
    const principal = ctx.principal!;
    const payment = await findPaymentFor(ctx.em, principal, fromGlobalId(input.payment!, 'Payment').id);
    const mayPay =
      (principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup')) ||
      (principal.kind === 'MERCHANT' && principal.scopes.includes('payments:write') && reader.owner_kind === 'MERCHANT' && reader.owner_id === principal.tenantId);
    if (!payment || !mayPay) return openRefusal(UserErrorCode.NOT_FOUND, `no payment ${input.payment} you may pay on this reader`, 'payment');
    if (input.amount != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'a payment’s session takes its amount from the payment', 'amount');
    if (payment.status !== 'REQUIRES_CARD' && payment.status !== 'PROCESSING') return openRefusal(UserErrorCode.INVALID_INPUT, `the payment is ${payment.status}`, 'payment');
    if (payment.status === 'REQUIRES_CARD' && new Date(payment.expires_at) <= new Date()) return openRefusal(UserErrorCode.INVALID_INPUT, 'the payment has expired', 'payment');
    return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: BigInt(payment.amount), clientId: principal.clientId, charge: ctx.costCharge, purpose: PAYMENT, purposeData: { paymentId: payment.id } });
  },

  ...cardPaidObligation<PaymentRow>({
    noun: 'payment',
    earlier: { what: 'this payment', refKey: 'payment' },
    currencyOf: 'the payment',
    idOf: (purposeData) => String(purposeData?.paymentId),
    byId: paymentById,
    async check(_em, payment) {
      if (payment.merchant_status !== TenantStatus.ACTIVE) throw new SessionError('PURPOSE_REFUSED', 'the merchant does not take payments now');
    },
    async claim(em, payment, pending, claim) {
      // Not card_asn: that is the card that paid, written when the payment succeeds (settle).
      await claimPayment(em, payment, { cardSessionId: pending.session.id, claim });
    },
    settle,
    async countFailedAttempt(em, payment, refusal) {
      await em.execute(`update payment set attempts = attempts + 1, failure_code = ?, updated_at = now() where id = ?`, [refusal, payment.id]);
      if (payment.attempts + 1 >= MAX_ATTEMPTS) await movePayment(em, (await paymentById(em, payment.id))!, 'FAILED', { failureCode: refusal });
    },
  }),
};
