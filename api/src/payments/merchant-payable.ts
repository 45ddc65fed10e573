import type { EntityManager } from '@mikro-orm/postgresql';
import { openAccount } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';

/** What the operator owes a merchant until clearing pays it out. */
export function merchantPayableAccount(em: EntityManager, merchantId: string, currency: string) {
  return openAccount(em, { code: `merchant.${merchantId}.payable.${currency}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.MERCHANT_PAYABLE, ownerId: merchantId, currency });
}
