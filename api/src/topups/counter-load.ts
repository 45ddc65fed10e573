import type { CardEntryKind } from '../cards/card-history.service.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import { findCardCompany } from '../tenancy/tenancy.service.js';
import { cardPurseAccount, counterCashAccount } from '../ledger/accounts.js';

/** A card company loading value onto a card at its counter, against cash it took in. purposeData: `{ cardCompanyId }`. */
export const COUNTER_LOAD = 'counter-load';

/** The largest load a card company may put on a card at its counter in one session (1,000.00 CNY). */
const MAX_COUNTER_LOAD = 100_000n;

export const counterLoad: CardSessionPurpose = {
  name: COUNTER_LOAD,
  opens: { operation: 'LOAD', by: null },

  /** Opened by the card company of the reader's city (scope topups:write): the cash it took in becomes value on the card. */
  async open(ctx, reader, input) {
    const principal = ctx.principal!;
    const company = principal.kind === 'ISSUER' && principal.tenantId ? await findCardCompany(ctx.em, principal.tenantId) : null;
    if (!company || company.city.id !== reader.city_id || !principal.scopes.includes('topups:write')) {
      return openRefusal(UserErrorCode.FORBIDDEN_OPERATION, 'a load is opened by the card company of the reader’s city (scope topups:write)', 'operation');
    }
    if (input.amount == null || input.amount <= 0n || input.amount > MAX_COUNTER_LOAD) return openRefusal(UserErrorCode.INVALID_INPUT, `a load is 1 to ${MAX_COUNTER_LOAD} minor units`, 'amount');
    return openSession(ctx.em, { reader, operation: 'LOAD', cardType: input.cardType ?? 'CPU', amount: input.amount, clientId: principal.clientId, charge: ctx.costCharge, purpose: COUNTER_LOAD, purposeData: { cardCompanyId: company.id } });
  },

  /**
   * Before MAC2 leaves the host: the cash taken at this counter is in its city's currency, and one
   * ledger entry is one currency, so a card of a city with another currency cannot be loaded here.
   */
  async creditGuard(em, pending) {
    const counterCompany = String(pending.session.context.purposeData?.cardCompanyId ?? pending.card.cardCompanyId);
    const [company] = await em.execute<{ currency: string }[]>(`select btrim(ci.currency) as currency from card_company cc join city ci on ci.id = cc.city_id where cc.id = ?`, [counterCompany]);
    if (company?.currency !== pending.card.currency) throw new SessionError('PURPOSE_REFUSED', `this counter takes ${company?.currency ?? 'no'} cash; the card's purse is in ${pending.card.currency}`);
  },

  async complete(em, done) {
    // The cash is at the counter of the card company that opened the session (for a card of another
    // city, interoperation settles between the two companies later), not necessarily the card's issuer.
    const counterCompany = String(done.session.context.purposeData?.cardCompanyId ?? done.cardCompanyId);
    const amount = BigInt(done.result.amount as number);
    const cash = await counterCashAccount(em, counterCompany, done.currency);
    const purse = await cardPurseAccount(em, done.asn, done.currency);
    await post(em, {
      key: `card-session:${done.session.id}`,
      description: `counter load onto card ${done.asn}`,
      lines: [debit(cash.id, amount), credit(purse.id, amount)],
      metadata: { kind: 'COUNTER_LOAD' satisfies CardEntryKind, cardSession: done.session.id, reader: done.reader.serial, tac: done.result.tac },
    });
  },
};
