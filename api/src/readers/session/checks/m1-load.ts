import type { EntityManager } from '@mikro-orm/postgresql';
import { cardPurseBalance } from '../../../ledger/accounts.js';
import type { CardIdentity } from '../session.model.js';
import { SessionError } from '../session.errors.js';

/**
 * Before a write script that loads an M1 card leaves the host. An M1 card proves nothing with a
 * cryptogram: a lost answer is settled from its value alone (m1-writes.ts), and anyone holding its
 * sector keys can write the same bytes. So what one load puts at risk is bounded by the card
 * company's limit per M1 load (`card_company.m1_load_max`), and a card whose value is above what
 * the ledger booked, after a write the host took as not made, takes no more value until the card
 * company has looked into it (docs/cards.md, "What an M1 card proves").
 */
export async function checkM1Load(em: EntityManager, card: Pick<CardIdentity, 'asn' | 'currency' | 'cardCompanyId'>, amount: number, cardValue: number): Promise<void> {
  const [company] = await em.execute<{ m1_load_max: string }[]>(`select m1_load_max::text from card_company where id = ?`, [card.cardCompanyId]);
  const limit = BigInt(company?.m1_load_max ?? 0);
  if (BigInt(amount) > limit) {
    throw new SessionError('M1_LOAD_LIMIT', `an M1 card takes at most ${limit} in one load (its card company's limit); this load is ${amount}: it stays pending`, { amount, limit: limit.toString() }).at('m1-load');
  }
  const shadow = await cardPurseBalance(em, card.asn, card.currency);
  if (BigInt(cardValue) > shadow) {
    // Only where the host once took a write as not made (or could not tell): the excess may be that
    // write, run after all (a script kept and run late, a reader's report that lied). Value from before
    // OneCard knew the card is another matter: its balance differences are recorded, as for any card.
    const [unclean] = await em.execute<{ session_id: string; outcome: string }[]>(`select session_id, outcome from card_m1_write where uid = ? and outcome in ('NOT_WRITTEN', 'UNRESOLVED') order by created_at desc limit 1`, [card.asn]);
    if (unclean) {
      throw new SessionError('PURSE_MISMATCH', `card ${card.asn} holds ${cardValue}, more than the ${shadow} the ledger booked, and a write onto it was once taken as not made (or could not be told): no value is written onto it until its card company has looked into it`, { asn: card.asn, shadow: shadow.toString(), cardValue, write: unclean }).at('m1-load');
    }
  }
}
