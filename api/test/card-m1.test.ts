import { describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, ReaderAgent, type SessionReply } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import { apiClient, auditOf, kek, newReader, OPEN, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let uidCounter = 0;

/** An M1 card as the GZ card company personalises it: purse sector keyed from its UID. */
async function m1Card(master: Buffer, balance: number) {
  const uid = `C0DE${String(++uidCounter).padStart(4, '0')}`;
  const card = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
  card.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
  formatM1Purse(card, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 }, balance);
  card.halt();
  return card;
}

async function runSession(client: Awaited<ReturnType<typeof apiClient>>, reader: TestReader, card: VirtualM1Card, operation: 'BALANCE' | 'LOAD' | 'PURCHASE', amount?: number): Promise<CardSessionView> {
  const opened = await client.request<any>(OPEN, { input: { reader: reader.id, operation, amount, cardType: 'M1' } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  const agent = new ReaderAgent({
    deviceKey: reader.deviceKeyPem,
    nationalCertificatePem: reader.nationalPem,
    cityCertificatePem: reader.cityPem,
    trustedCertificatesPem: reader.trustedCertificatesPem, nationalKey: reader.nationalKeyPem, encryptionKey: reader.encryptionKeyPem, encryptionCertificatePem: reader.encryptionPem,
    m1: card,
    send: async (input) => (await client.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
  });
  return agent.run(opened.openCardSession.session);
}

describe('M1 cards through sealed scripts', () => {
  it('reads, loads at the counter, and pays a merchant; the ledger follows the card', async () => {
    const master = await storeM1MasterKey(world.db.orm.em.fork(), kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
    const counter = await newReader(world, 'GZ-M1-COUNTER', world.gz);
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
    const card = await m1Card(master, 0);

    expect(await runSession(issuer, counter, card, 'BALANCE')).toMatchObject({ state: 'COMPLETED', result: { asn: card.uid.toUpperCase(), balance: 0 } });
    const loaded = await runSession(issuer, counter, card, 'LOAD', 2500);
    expect(loaded).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 0, newBalance: 2500 } });
    expect(await purseBalance(world, card.uid.toUpperCase())).toBe(2500n);

    // The sector key never crossed the wire in clear: the audit trail holds no key material either.
    const audit = await world.db.orm.em.fork().execute<{ detail: unknown }[]>(`select detail from card_session_audit`);
    expect(JSON.stringify(audit)).not.toContain(m1SectorKeyB(master, Buffer.from(card.uid, 'hex'), M1_PURSE.sector).toString('hex').toUpperCase());

    const { createMerchant } = await import('../src/tenancy/tenancy.service.js');
    const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'M1 shop' });
    const till = await newReader(world, 'GZ-M1-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
    const merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write']);
    expect(await runSession(merchant, till, card, 'PURCHASE', 900)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 2500, newBalance: 1600 } });
    expect(await purseBalance(world, card.uid.toUpperCase())).toBe(1600n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);

    // More than the card holds: refused before the card is touched.
    const refused = await runSession(merchant, till, card, 'PURCHASE', 5000);
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'INSUFFICIENT_BALANCE' });
    expect((await auditOf(world, refused.id)).at(-1)).toMatchObject({ outcome: 'REFUSED', refusal: 'INSUFFICIENT_BALANCE' });
    expect(await purseBalance(world, card.uid.toUpperCase())).toBe(1600n);
  });

  it('a card keyed by another master key fails at authentication and changes nothing', async () => {
    const counter = await newReader(world, 'GZ-M1-COUNTER-2', world.gz);
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
    const stranger = await m1Card(Buffer.alloc(16, 7), 300);
    const done = await runSession(issuer, counter, stranger, 'LOAD', 100);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });
    expect(await purseBalance(world, stranger.uid.toUpperCase())).toBeUndefined();
  });
});
