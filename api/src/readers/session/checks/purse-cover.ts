import type { EntityManager } from '@mikro-orm/postgresql';
import type { CardIdentity } from '../session.model.js';
import { SessionError } from '../session.errors.js';
import { cardPurseBalance } from '../../../ledger/accounts.js';

/**
 * Every value on a card went through our ledger (a load credits the purse shadow), so the shadow
 * must cover the purchase. If it does not, the card holds value we never issued (or spent offline
 * what we have not heard of yet): refuse before the card pays, rather than debit it and book nothing.
 */
export async function checkPurseCover(em: EntityManager, card: Pick<CardIdentity, 'asn' | 'currency'>, amount: number, cardBalance: number): Promise<void> {
  const shadow = await cardPurseBalance(em, card.asn, card.currency);
  if (shadow < BigInt(amount)) {
    throw new SessionError('PURSE_MISMATCH', `the ledger's purse of card ${card.asn} holds ${shadow}, less than ${amount}`, { asn: card.asn, shadow: shadow.toString(), cardBalance, amount }).at('purse-cover');
  }
}
