import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { seedDefaultProfile } from '../readers/session/card-profile.service.js';
import { issueCard, withLuhnCheckDigit } from './cards.service.js';


/**
 * The demo virtual card (readers-demo wrote its chip file) in the Guangzhou card company's
 * registry, registered (记名) to the demo cardholder `lin`: so it can be topped up online, reported
 * lost and replaced. Each demo card company gets its card profile as today's behaviour (docs/cards.md).
 */
export const cardsDemo: SeedStep = {
  name: 'cards-demo',
  async run(em, { earlier }) {
    const tenants = earlier.tenants as { cardCompanies: Record<string, string> };
    const chip = (earlier.cards as { gz: { asn: string } }).gz;
    for (const company of Object.values(tenants.cardCompanies)) await seedDefaultProfile(em, fromGlobalId(company, 'CardCompany').id);
    const [lin] = await em.execute<{ id: string }[]>(`select id from cardholder where username = 'lin'`);
    const card = await issueCard(em, fromGlobalId(tenants.cardCompanies.GZ!, 'CardCompany').id, {
      cardNumber: withLuhnCheckDigit('623158100000001'),
      asn: chip.asn,
      cardType: 'CPU',
      keyVersion: 1,
      issuedOn: '2026-01-01',
      expiresOn: '2031-12-31',
      holderId: lin?.id ?? null,
    });
    return { registeredCards: { gz: { id: toGlobalId('Card', card.id), number: card.card_number, holder: 'lin' } } };
  },
};
