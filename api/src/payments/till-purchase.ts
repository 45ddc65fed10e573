import type { CardEntryKind } from '../cards/card-history.service.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { findMerchant } from '../tenancy/tenancy.service.js';
import { TenantStatus } from '../tenancy/merchant.entity.js';
import { cardPurseAccount, merchantPayableAccount } from '../ledger/accounts.js';

/**
 * A merchant taking a card purchase on its own reader (its till), with no payment object behind
 * it (a Payment, with its order reference and refunds, is `merchantPayment`). purposeData: `{ merchantId }`.
 */
export const DIRECT_PURCHASE = 'direct-purchase';

/** The largest purchase a merchant may take from a card in one session (1,000.00 CNY), as for counter loads. */
const MAX_DIRECT_PURCHASE = 100_000n;

const merchantIdOf = (purposeData: Record<string, unknown> | undefined) => String(purposeData?.merchantId);

export const tillPurchase: CardSessionPurpose = {
  name: DIRECT_PURCHASE,
  opens: { operation: 'PURCHASE', by: null },

  /** Opened by the merchant that owns the reader (scope payments:write), while it is ACTIVE. */
  async open(ctx, reader, input) {
    const principal = ctx.principal!;
    const ownsReader = principal.kind === 'MERCHANT' && principal.tenantId !== null && reader.owner_kind === 'MERCHANT' && reader.owner_id === principal.tenantId;
    if (!ownsReader || !principal.scopes.includes('payments:write')) {
      return openRefusal(UserErrorCode.FORBIDDEN_OPERATION, 'a purchase is opened by the merchant that owns the reader (scope payments:write)', 'operation');
    }
    const merchant = await findMerchant(ctx.em, principal.tenantId!);
    if (!merchant || merchant.status !== TenantStatus.ACTIVE) return openRefusal(UserErrorCode.FORBIDDEN_OPERATION, 'the merchant does not take payments now', 'operation');
    if (input.amount == null || input.amount <= 0n || input.amount > MAX_DIRECT_PURCHASE) return openRefusal(UserErrorCode.INVALID_INPUT, `a purchase is 1 to ${MAX_DIRECT_PURCHASE} minor units`, 'amount');
    return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: input.amount, clientId: principal.clientId, charge: ctx.costCharge, purpose: DIRECT_PURCHASE, purposeData: { merchantId: merchant.id } });
  },

  /** Before the card pays: the merchant still takes payments, in the card's currency (one entry is one currency). */
  async debitGuard(em, pending) {
    const merchant = await findMerchant(em, merchantIdOf(pending.session.context.purposeData));
    if (!merchant || merchant.status !== TenantStatus.ACTIVE) throw new SessionError('PURPOSE_REFUSED', 'the merchant does not take payments now');
    if (merchant.currency !== pending.currency) throw new SessionError('PURPOSE_REFUSED', `the card's purse is in ${pending.currency}, the merchant takes ${merchant.currency}`);
  },

  /** The card paid: its purse shadow goes down and what the operator owes the merchant goes up. */
  async complete(em, done) {
    const merchantId = merchantIdOf(done.session.context.purposeData);
    const amount = BigInt(done.result.amount as number);
    const purse = await cardPurseAccount(em, done.asn, done.currency);
    const payable = await merchantPayableAccount(em, merchantId, done.currency);
    await post(em, {
      key: `card-session:${done.session.id}`,
      description: `card purchase by card ${done.asn} at merchant ${merchantId}`,
      lines: [debit(purse.id, amount), credit(payable.id, amount)],
      metadata: { kind: 'PURCHASE' satisfies CardEntryKind, cardSession: done.session.id, reader: done.reader.serial, merchant: merchantId, terminalSerial: done.result.terminalSerial, tac: done.result.tac },
    });
    await recordClearingItem(em, { kind: 'PURCHASE', participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId: done.cardCompanyId, amount, currency: done.currency, entryKey: `card-session:${done.session.id}`, reference: done.session.id });
  },
};
