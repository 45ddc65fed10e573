import type { SeedStep } from '../demo/seed.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { issueCard, luhnValid } from './cards.service.js';

/** The demo card's number: 16 digits, the last one its Luhn check digit. */
function demoCardNumber(): string {
  const body = '623158100000001';
  for (let check = 0; check <= 9; check++) if (luhnValid(`${body}${check}`)) return `${body}${check}`;
  throw new Error('no Luhn check digit');
}

/**
 * The demo virtual card (readers-demo wrote its chip file) in the Guangzhou card company's
 * registry, registered (记名) to the demo cardholder `lin`: so it can be topped up online, reported
 * lost and replaced.
 */
export const cardsDemo: SeedStep = {
  name: 'cards-demo',
  async run(em, { earlier }) {
    const tenants = earlier.tenants as { cardCompanies: Record<string, string> };
    const chip = (earlier.cards as { gz: { asn: string } }).gz;
    const [lin] = await em.execute<{ id: string }[]>(`select id from cardholder where username = 'lin'`);
    const card = await issueCard(em, fromGlobalId(tenants.cardCompanies.GZ!, 'CardCompany').id, {
      cardNumber: demoCardNumber(),
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
