import fs from 'node:fs/promises';
import path from 'node:path';
import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { SoftwareKeyStore } from '../readers/key-store.js';
import { M1_PURSE } from '../readers/m1/m1-script.js';
import { issueCard, withLuhnCheckDigit } from './cards.service.js';

/** The demo M1 card's UID (4 bytes): its card number in the registry, and the factor of its sector keys. */
const DEMO_M1_UID = 'C1D2E3F4';

/**
 * A demo M1 (MIFARE Classic) card of the Guangzhou card company, registered (记名) to `lin`, for the
 * seed's own worked example (issue 21): `reader-simulator -- m1 topup 1500` pays a top-up at the
 * sandbox gateway and writes it onto this card. The chip file holds what the card company puts on
 * the chip at personalisation: its UID, and its purse sector's keys (key B derived from the card
 * company's M1 master key and the UID), as the SDK's VirtualM1Card takes them.
 */
export const m1CardDemo: SeedStep = {
  name: 'm1-card-demo',
  async run(em, { earlier, config, kek }) {
    const tenants = earlier.tenants as { cardCompanies: Record<string, string> };
    const cardCompanyId = fromGlobalId(tenants.cardCompanies.GZ!, 'CardCompany').id;
    const keyB = await new SoftwareKeyStore(em, kek).m1SectorKey({ cardCompanyId, keyVersion: 1, uid: Buffer.from(DEMO_M1_UID, 'hex'), sector: M1_PURSE.sector });
    const [lin] = await em.execute<{ id: string }[]>(`select id from cardholder where username = 'lin'`);
    const card = await issueCard(em, cardCompanyId, {
      cardNumber: withLuhnCheckDigit('623158190000001'),
      asn: DEMO_M1_UID,
      cardType: 'M1',
      keyVersion: 1,
      issuedOn: '2026-01-01',
      expiresOn: '2031-12-31',
      holderId: lin?.id ?? null,
    });
    const personalisation = {
      uid: DEMO_M1_UID,
      // The purse's blocks within its sector (the host's M1_PURSE: blocks 4 and 5 of sector 1).
      purse: { sector: M1_PURSE.sector, valueBlock: M1_PURSE.valueBlock % 4, backupBlock: M1_PURSE.backupBlock % 4 },
      sectorKeys: { [M1_PURSE.sector]: { keyA: 'A0A1A2A3A4A5', keyB: keyB.toString('hex').toUpperCase() } },
    };
    const file = path.join(config.dataDir, 'demo-m1-card.json');
    await fs.writeFile(file, `${JSON.stringify(personalisation, null, 2)}\n`, { mode: 0o600 });
    return { m1Cards: { gz: { id: toGlobalId('Card', card.id), uid: DEMO_M1_UID, number: card.card_number, holder: 'lin', file } } };
  },
};
