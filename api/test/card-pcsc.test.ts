/**
 * A load and a purchase through a real PC/SC stack, as on a counter with a desk reader: the reader
 * agent's transport is the SDK's PcscCard, pcscd relays to vsmartcard's vpcd reader, and the card in
 * it is the SDK's virtual card speaking vpcd's socket protocol. The card answers the way a contact
 * card on T=0 does (61xx, its answers in pieces): the host sees whole answers only because the
 * transport gathers them. Needs pcscd and vsmartcard-vpcd (.ci/run installs them; the test says what
 * is missing elsewhere).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { M1_1K_ATR, VirtualM1Reader } from '../../sdk-js/src/cards/m1-pseudo-apdu.js';
import { CARD_SESSION_MESSAGE, type OneCardClient, PcscReaders, ReaderAgent, type SessionReply, T0_ATR, T0Card, VirtualM1Card, VpcdCard, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { PcscM1Card } from '../../sdk-js/src/reader/pcsc-m1.js';
import { startPcscd, type TestPcscd } from '../../sdk-js/src/reader/pcscd.test-support.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, balanceOnCard, issueCard, kek, newReader, OPEN, purseBalance, sessionsOf, type TestReader, useCardSessionWorld, readerAgentOptions } from './support/card-sessions.js';

const world = useCardSessionWorld();
let pcscd: TestPcscd;
let readers: PcscReaders;
let counter: TestReader;
let shop: TestReader;
let issuer: OneCardClient;
let merchant: OneCardClient;

beforeAll(async () => {
  pcscd = await startPcscd();
  readers = await PcscReaders.open();
  const shopA = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Tea House' });
  counter = await newReader(world, 'GZ-PCSC-COUNTER', world.gz);
  shop = await newReader(world, 'GZ-PCSC-SHOP', world.gz, { kind: 'MERCHANT', id: shopA.id });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  merchant = await apiClient(world, 'MERCHANT', shopA.id, ['payments:write']);
});

afterAll(async () => {
  readers?.close();
  await pcscd?.stop();
});

/** Puts the card in the vpcd reader as a T=0 card handing out its answers 8 bytes at a time; runs `use` on the PC/SC side. */
async function onDeskReader<T>(c: VirtualCpuCard, use: (card: Awaited<ReturnType<PcscReaders['waitForCard']>>) => Promise<T>): Promise<{ result: T; wire: string[] }> {
  const wire: string[] = [];
  const inserted = await VpcdCard.insert({
    port: pcscd.port,
    atr: T0_ATR,
    card: new T0Card(c, { chunk: 8 }),
    onExchange: (apdu, response) => wire.push(`${Buffer.from(apdu).toString('hex')}>${Buffer.from(response).toString('hex')}`.toUpperCase()),
  });
  try {
    const card = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
    try {
      return { result: await use(card), wire };
    } finally {
      card.disconnect();
    }
  } finally {
    await inserted.remove();
  }
}

describe('a card on a PC/SC reader (pcscd + vpcd)', () => {
  it('is loaded at the counter, then pays at a merchant, with the same MACs, TACs and books as over the virtual transport', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const desk = sessionsOf(issuer, () => counter);
    const load = await onDeskReader(c, async (card) => desk.agent(c, counter, card).run(await desk.open('LOAD', 5000)));
    expect(load.result).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, newBalance: 5000 } });
    // INITIALIZE FOR LOAD went over the wire as a T=0 card answers it: 61 08, then GET RESPONSEs.
    const init = load.wire.findIndex((x) => x.startsWith('80500002'));
    expect(load.wire[init]).toMatch(/>6108$/);
    expect(load.wire[init + 1]).toMatch(/^00C0000008>/);

    const till = sessionsOf(merchant, () => shop);
    const purchase = await onDeskReader(c, async (card) => till.agent(c, shop, card).run(await till.open('PURCHASE', 1200)));
    expect(purchase.result).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, oldBalance: 5000, newBalance: 3800, amount: 1200 } });

    expect(await balanceOnCard(c)).toBe(3800);
    expect(await purseBalance(world, c.asn)).toBe(3800n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('an M1 card on a contactless PC/SC reader (pseudo-APDUs through pcscd)', () => {
  it('is loaded and pays through the reader’s FF 82 / FF 86 / FF B0 / FF D6 / FF D7; its purse and the books agree', async () => {
    const master = await storeM1MasterKey(world.db.orm.em.fork(), kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
    const uid = 'C0DE5C01';
    const m1 = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
    m1.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
    formatM1Purse(m1, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 }, 0);
    m1.halt();

    const firmware = new VirtualM1Reader(m1);
    const wire: string[] = [];
    const inserted = await VpcdCard.insert({
      port: pcscd.port,
      atr: M1_1K_ATR,
      card: firmware,
      onPowerCycle: () => firmware.powerCycle(),
      onExchange: (apdu) => wire.push(Buffer.from(apdu).toString('hex').toUpperCase().slice(0, 4)),
    });
    try {
      const onReader = await readers.waitForCard({ reader: pcscd.readerName, timeoutMs: 30_000 });
      const card = await PcscM1Card.open(onReader);
      expect(card.uid).toBe(uid);
      const run = async (client: OneCardClient, reader: TestReader, operation: 'LOAD' | 'PURCHASE', amount: number) => {
        const opened = await client.request<any>(OPEN, { input: { reader: reader.id, operation, amount, cardType: 'M1' } });
        expect(opened.openCardSession.userErrors).toEqual([]);
        const agent = new ReaderAgent({
          ...readerAgentOptions(reader),
          m1: card,
          send: async (input) => (await client.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
        });
        return agent.run(opened.openCardSession.session);
      };
      expect(await run(issuer, counter, 'LOAD', 2500)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 0, newBalance: 2500 } });
      expect(await run(merchant, shop, 'PURCHASE', 900)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 2500, newBalance: 1600 } });
      onReader.disconnect();
    } finally {
      await inserted.remove();
    }
    // Every step went as a PC/SC pseudo-APDU: UID, key loaded into the reader, authenticate, read, value operation, write.
    expect(new Set(wire)).toEqual(new Set(['FFCA', 'FF82', 'FF86', 'FFB0', 'FFD7', 'FFD6']));
    expect(await purseBalance(world, uid)).toBe(1600n);
    m1.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
    expect(Buffer.from(m1.read(M1_PURSE.valueBlock)).readInt32LE(0)).toBe(1600);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
