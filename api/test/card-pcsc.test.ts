/**
 * A load and a purchase through a real PC/SC stack, as on a counter with a desk reader: the reader
 * agent's transport is the SDK's PcscCard, pcscd relays to vsmartcard's vpcd reader, and the card in
 * it is the SDK's virtual card speaking vpcd's socket protocol. The card answers the way a contact
 * card on T=0 does (61xx, its answers in pieces): the host sees whole answers only because the
 * transport gathers them. Needs pcscd and vsmartcard-vpcd (.ci/run installs them; the test says what
 * is missing elsewhere).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, PcscReaders, T0_ATR, T0Card, VpcdCard, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { startPcscd, type TestPcscd } from '../../sdk-js/src/reader/pcscd.test-support.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, balanceOnCard, issueCard, newReader, purseBalance, sessionsOf, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

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
