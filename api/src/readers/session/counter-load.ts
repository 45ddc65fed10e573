import type { CardEntryKind } from '../../cards/card-history.service.js';
import { credit, debit, openAccount, post } from '../../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../../ledger/ledger-account.entity.js';
import { cardPurseAccount } from './card-purse.js';
import { completionHandlers, creditGuards } from './card-session.service.js';
import { SessionError } from './session.errors.js';

export { cardPurseAccount } from './card-purse.js';

/** A card company loading value onto a card at its counter, against cash it took in. */
export const COUNTER_LOAD = 'counter-load';

/**
 * Before MAC2 leaves the host: the cash taken at this counter is in its city's currency, and one
 * ledger entry is one currency, so a card of a city with another currency cannot be loaded here.
 */
creditGuards.set(COUNTER_LOAD, async (em, pending) => {
  const counterCompany = String(pending.session.context.purposeData?.cardCompanyId ?? pending.card.cardCompanyId);
  const [company] = await em.execute<{ currency: string }[]>(`select btrim(ci.currency) as currency from card_company cc join city ci on ci.id = cc.city_id where cc.id = ?`, [counterCompany]);
  if (company?.currency !== pending.card.currency) throw new SessionError('PURPOSE_REFUSED', `this counter takes ${company?.currency ?? 'no'} cash; the card's purse is in ${pending.card.currency}`);
});

completionHandlers.set(COUNTER_LOAD, async (em, done) => {
  // The cash is at the counter of the card company that opened the session (for a card of another
  // city, interoperation settles between the two companies later), not necessarily the card's issuer.
  const counterCompany = String(done.session.context.purposeData?.cardCompanyId ?? done.cardCompanyId);
  const amount = BigInt(done.result.amount as number);
  const cash = await openAccount(em, {
    code: `issuer.${counterCompany}.counter-cash.${done.currency}`,
    type: AccountType.ASSET,
    ownerKind: AccountOwnerKind.ISSUER,
    ownerId: counterCompany,
    currency: done.currency,
  });
  const purse = await cardPurseAccount(em, done.asn, done.currency);
  await post(em, {
    key: `card-session:${done.session.id}`,
    description: `counter load onto card ${done.asn}`,
    lines: [debit(cash.id, amount), credit(purse.id, amount)],
    metadata: { kind: 'COUNTER_LOAD' satisfies CardEntryKind, cardSession: done.session.id, reader: done.reader.serial, tac: done.result.tac },
  });
});
