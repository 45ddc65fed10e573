import type { CardEntryKind } from '../../cards/card-history.service.js';
import { credit, debit, openAccount, post } from '../../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../../ledger/ledger-account.entity.js';
import { recordClearingItem } from '../../settlement/clearing-items.js';
import { findMerchant } from '../../tenancy/tenancy.service.js';
import { TenantStatus } from '../../tenancy/merchant.entity.js';
import { cardPurseAccount } from './card-purse.js';
import { completionHandlers, debitGuards } from './card-session.service.js';
import { SessionError } from './session.errors.js';

/**
 * A merchant taking a card purchase on its own reader, with no payment object behind it (the
 * payments context plugs in its own purpose for payments with order references and refunds).
 * purposeData: `{ merchantId }`.
 */
export const DIRECT_PURCHASE = 'direct-purchase';

const merchantIdOf = (purposeData: Record<string, unknown> | undefined) => String(purposeData?.merchantId);

export function merchantPayableAccount(em: Parameters<typeof openAccount>[0], merchantId: string, currency: string) {
  return openAccount(em, { code: `merchant.${merchantId}.payable.${currency}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.MERCHANT_PAYABLE, ownerId: merchantId, currency });
}

/** Before the card pays: the merchant still takes payments, in the card's currency (one entry is one currency). */
debitGuards.set(DIRECT_PURCHASE, async (em, pending) => {
  const merchant = await findMerchant(em, merchantIdOf(pending.session.context.purposeData));
  if (!merchant || merchant.status !== TenantStatus.ACTIVE) throw new SessionError('PURPOSE_REFUSED', 'the merchant does not take payments now');
  if (merchant.currency !== pending.currency) throw new SessionError('PURPOSE_REFUSED', `the card's purse is in ${pending.currency}, the merchant takes ${merchant.currency}`);
});

/** The card paid: its purse shadow goes down and what the operator owes the merchant goes up. */
completionHandlers.set(DIRECT_PURCHASE, async (em, done) => {
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
});
