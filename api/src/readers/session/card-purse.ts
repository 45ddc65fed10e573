import type { EntityManager } from '@mikro-orm/postgresql';
import { openAccount } from '../../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../../ledger/ledger-account.entity.js';

/** The ledger code of a card's purse shadow; one place, so the session and the handlers agree. */
export const cardPurseCode = (asn: string, currency: string) => `card.${asn}.purse.${currency}`;

/**
 * The host's shadow of a card's purse (DESIGN.md §3): a non-negative liability per card, keyed by
 * the card's ASN until the cards context gives cards ids of their own.
 */
export function cardPurseAccount(em: EntityManager, asn: string, currency = 'CNY') {
  return openAccount(em, { code: cardPurseCode(asn, currency), type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency, nonNegative: true });
}

/** What the shadow holds for a card (0 when the card never went through our ledger); reads, opens nothing. */
export async function cardPurseBalance(em: EntityManager, asn: string, currency: string): Promise<bigint> {
  const [row] = await em.execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [cardPurseCode(asn, currency)]);
  return row ? BigInt(row.balance) : 0n;
}
