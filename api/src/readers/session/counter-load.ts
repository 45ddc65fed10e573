import { credit, debit, openAccount, post } from '../../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../../ledger/ledger-account.entity.js';
import { completionHandlers } from './card-session.service.js';

/** A card company loading value onto a card at its counter, against cash it took in. */
export const COUNTER_LOAD = 'counter-load';

/**
 * The host's shadow of a card's purse (DESIGN.md §3): a non-negative liability per card, keyed by
 * the card's ASN until the cards context gives cards ids of their own.
 */
export function cardPurseAccount(em: Parameters<typeof openAccount>[0], asn: string, currency = 'CNY') {
  return openAccount(em, { code: `card.${asn}.purse.${currency}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency, nonNegative: true });
}

completionHandlers.set(COUNTER_LOAD, async (em, done) => {
  const amount = BigInt(done.result.amount as number);
  const cash = await openAccount(em, {
    code: `issuer.${done.cardCompanyId}.counter-cash.CNY`,
    type: AccountType.ASSET,
    ownerKind: AccountOwnerKind.ISSUER,
    ownerId: done.cardCompanyId,
    currency: 'CNY',
  });
  const purse = await cardPurseAccount(em, done.asn);
  await post(em, {
    key: `card-session:${done.session.id}`,
    description: `counter load onto card ${done.asn}`,
    lines: [debit(cash.id, amount), credit(purse.id, amount)],
    metadata: { cardSession: done.session.id, reader: done.reader.serial, tac: done.result.tac },
  });
});
