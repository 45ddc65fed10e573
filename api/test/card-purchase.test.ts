/**
 * Purchases (消费) through card sessions, over HTTP with the merchant's OAuth client: the card is
 * loaded at the card company's counter first (so its value went through the ledger), then pays on
 * the merchant's own certified reader; the host plays the PSAM (MAC1 out, MAC2 and TAC checked).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type CardTransport, type OneCardClient, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import {
  addCity,
  addMasterKeys,
  apiClient,
  auditOf,
  balanceOnCard,
  expectRefused,
  expireSession,
  lastMessageLost,
  issueCard,
  type MasterKeys,
  newReader,
  purseBalance,
  sessionsOf,
  sessionUuid,
  type TestCity,
  type TestReader,
  useCardSessionWorld,
} from './support/card-sessions.js';

const world = useCardSessionWorld();
/** A third city whose card company issues SM4 cards; its cards are accepted on GZ readers. */
let fs: TestCity;
let fsMasterKeys: MasterKeys;
let gzCounter: TestReader;
let fsCounter: TestReader;
let shop: TestReader;
let otherShop: TestReader;
let merchantId: string;
let gzIssuer: OneCardClient;
let fsIssuer: OneCardClient;
let merchant: OneCardClient;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  fs = await addCity(world, { code: 'FS', name: 'Foshan', cardCompanyName: 'Foshan Tong', cardCode: '5820' });
  fsMasterKeys = await addMasterKeys(world, fs, 'SM4');
  await em.execute(`insert into city_interoperation (card_city_id, reader_city_id) values (?, ?)`, [fs.cityId, world.gz.cityId]);
  const shopA = await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' });
  const shopB = await createMerchant(em, { cityId: world.gz.cityId, name: 'Noodle Bar' });
  merchantId = shopA.id;
  gzCounter = await newReader(world, 'GZ-COUNTER-1', world.gz);
  fsCounter = await newReader(world, 'FS-COUNTER-1', fs);
  shop = await newReader(world, 'GZ-SHOP-A1', world.gz, { kind: 'MERCHANT', id: shopA.id });
  otherShop = await newReader(world, 'GZ-SHOP-B1', world.gz, { kind: 'MERCHANT', id: shopB.id });
  gzIssuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  fsIssuer = await apiClient(world, 'ISSUER', fs.cardCompanyId, ['topups:write']);
  merchant = await apiClient(world, 'MERCHANT', shopA.id, ['payments:write']);
});

const counter = () => sessionsOf(gzIssuer, () => gzCounter);
const till = () => sessionsOf(merchant, () => shop);

/** A GZ card with `loaded` put on it at the counter, so the ledger's purse shadow holds it too. */
async function loadedCard(loaded: number, opts: { city?: TestCity; keys?: MasterKeys; algorithm?: '3DES' | 'SM4' } = {}) {
  const city = opts.city ?? world.gz;
  const c = issueCard({ city, keys: opts.keys ?? world.gzMasterKeys, algorithm: opts.algorithm });
  const desk = city === fs ? sessionsOf(fsIssuer, () => fsCounter) : counter();
  const done = await desk.agent(c).run(await desk.open('LOAD', loaded));
  expect(done.state).toBe('COMPLETED');
  return c;
}

async function payableBalance(): Promise<bigint> {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`merchant.${merchantId}.payable.CNY`]);
  return row ? BigInt(row.balance) : 0n;
}

async function refusalDetail(sessionId: string): Promise<Record<string, unknown>> {
  const [row] = await world.db.orm.em.fork().execute<{ detail: Record<string, unknown> }[]>(`select detail from card_session_audit where session_id = ? and outcome = 'REFUSED'`, [sessionUuid(sessionId)]);
  return row!.detail;
}

/** A reader (or card) that does something around DEBIT FOR PURCHASE (INS 54): acts before it, or alters its answer. */
function aroundDebit(c: VirtualCpuCard, hooks: { before?: () => Promise<void>; answer?: (response: Uint8Array) => Uint8Array }): CardTransport {
  const card = new VirtualCardTransport(c);
  return {
    async transmit(apdu) {
      const isDebit = apdu[0] === 0x80 && apdu[1] === 0x54;
      if (isDebit) await hooks.before?.();
      const response = await card.transmit(apdu);
      return isDebit && hooks.answer ? hooks.answer(response) : response;
    },
  };
}

const flipByte = (at: number) => (response: Uint8Array) => {
  const out = Uint8Array.from(response);
  out[at]! ^= 0xff;
  return out;
};

describe('a merchant takes a purchase on its own reader', () => {
  it('debits the card, verifies MAC2 and the TAC, and moves the purse to the merchant payable', async () => {
    const c = await loadedCard(5000);
    const payableBefore = await payableBalance();
    const session = await till().open('PURCHASE', 1200);
    const done = await till().agent(c).run(session);
    expect(done.state).toBe('COMPLETED');
    expect(done.result).toMatchObject({ asn: c.asn, oldBalance: 5000, newBalance: 3800, amount: 1200, offlineCounter: 1 });
    expect(await balanceOnCard(c)).toBe(3800);
    expect(await purseBalance(world, c.asn)).toBe(3800n);
    expect(await payableBalance()).toBe(payableBefore + 1200n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
    expect((await auditOf(world, session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'debitAnswer']);

    // The next purchase on the same reader carries the next terminal serial and the next offline counter.
    const again = await till().agent(c).run(await till().open('PURCHASE', 300));
    expect(again.result).toMatchObject({ newBalance: 3500, offlineCounter: 2, terminalSerial: (done.result!.terminalSerial as number) + 1 });
    expect(await purseBalance(world, c.asn)).toBe(3500n);
  });

  it('takes a purchase from an SM4 card of another city that accepts GZ readers', async () => {
    const c = await loadedCard(2000, { city: fs, keys: fsMasterKeys, algorithm: 'SM4' });
    const payableBefore = await payableBalance();
    const session = await till().open('PURCHASE', 750);
    const done = await till().agent(c).run(session);
    expect(done).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, oldBalance: 2000, newBalance: 1250, amount: 750 } });
    // The card said SM4 (algorithm id 04) and the host computed MAC1, MAC2 and the TAC with SM4.
    const [row] = await world.db.orm.em.fork().execute<{ algorithm: number }[]>(`select (context->'purchase'->>'algorithmId')::int as algorithm from card_session where id = ?`, [sessionUuid(session.id)]);
    expect(row!.algorithm).toBe(0x04);
    expect(await balanceOnCard(c)).toBe(1250);
    expect(await purseBalance(world, c.asn)).toBe(1250n);
    expect(await payableBalance()).toBe(payableBefore + 750n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('who may open a purchase', () => {
  it('not a merchant on a reader it does not own: NOT_FOUND', async () => {
    const data = await till().openRaw('PURCHASE', 100, otherShop);
    expect(data.openCardSession.session).toBeNull();
    expect(data.openCardSession.userErrors[0]?.code).toBe('NOT_FOUND');
  });

  it('not the card company, even on a reader of its city it can see', async () => {
    const data = await counter().openRaw('PURCHASE', 100, shop);
    expect(data.openCardSession.userErrors[0]?.code).toBe('FORBIDDEN_OPERATION');
  });

  it('not without an amount, or above the limit', async () => {
    expect((await till().openRaw('PURCHASE', undefined)).openCardSession.userErrors[0]?.code).toBe('INVALID_INPUT');
    expect((await till().openRaw('PURCHASE', 100_001)).openCardSession.userErrors[0]?.code).toBe('INVALID_INPUT');
  });

  it('a merchant may not load a card', async () => {
    expect((await till().openRaw('LOAD', 100)).openCardSession.userErrors[0]?.code).toBe('FORBIDDEN_OPERATION');
  });
});

describe('each refused purchase ends the session, books nothing, and leaves an audit row', () => {
  it('a card whose balance is below the amount (9401)', async () => {
    const c = await loadedCard(500);
    const payableBefore = await payableBalance();
    const m = await till().manual(c, 'PURCHASE', shop, 800);
    const first = await m.hello();
    await expectRefused(world, await m.message(1, { responses: await m.answer(1, first) }), 'INSUFFICIENT_BALANCE', m.session.id);
    expect(await balanceOnCard(c)).toBe(500);
    expect(await purseBalance(world, c.asn)).toBe(500n);
    expect(await payableBalance()).toBe(payableBefore);
  });

  it('a wrong MAC2 in the card’s answer', async () => {
    const c = await loadedCard(1000);
    const payableBefore = await payableBalance();
    const session = await till().open('PURCHASE', 400);
    const done = await till().agent(c, shop, aroundDebit(c, { answer: flipByte(4) })).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'WRONG_MAC2' });
    expect((await auditOf(world, session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'WRONG_MAC2' });
    expect(await purseBalance(world, c.asn)).toBe(1000n);
    expect(await payableBalance()).toBe(payableBefore);
    // The card did debit: the audit keeps what it answered, for the card company to reconcile.
    expect(await balanceOnCard(c)).toBe(600);
    expect(await refusalDetail(session.id)).toMatchObject({ asn: c.asn, amount: 400, offlineCounter: 0 });
  });

  it('a wrong TAC in the card’s answer', async () => {
    const c = await loadedCard(1000);
    const session = await till().open('PURCHASE', 400);
    const done = await till().agent(c, shop, aroundDebit(c, { answer: flipByte(0) })).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'WRONG_TAC' });
    expect(await purseBalance(world, c.asn)).toBe(1000n);
  });

  it('a card whose offline counter went backwards (a restored copy of an earlier state)', async () => {
    const c = await loadedCard(2000);
    const before = c.toJSON();
    expect((await till().agent(c).run(await till().open('PURCHASE', 500))).state).toBe('COMPLETED');
    const clone = VirtualCpuCard.fromJSON(before);
    const m = await till().manual(clone, 'PURCHASE', shop, 500);
    const first = await m.hello();
    await expectRefused(world, await m.message(1, { responses: await m.answer(1, first) }), 'COUNTER_ROLLBACK', m.session.id);
    expect(await balanceOnCard(clone)).toBe(2000);
    expect(await purseBalance(world, c.asn)).toBe(1500n);
  });

  it('a merchant suspended after it opened the session: its purpose refuses before the card pays', async () => {
    const c = await loadedCard(1000);
    const session = await till().open('PURCHASE', 100);
    const em = world.db.orm.em.fork();
    await em.execute(`update merchant set status = 'SUSPENDED' where id = ?`, [merchantId]);
    try {
      expect(await till().agent(c).run(session)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    } finally {
      await em.execute(`update merchant set status = 'ACTIVE' where id = ?`, [merchantId]);
    }
    expect(await balanceOnCard(c)).toBe(1000);
    expect(await purseBalance(world, c.asn)).toBe(1000n);
  });

  it('a card holding value that never went through the ledger: refused before the card pays', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 5000 });
    const m = await till().manual(c, 'PURCHASE', shop, 100);
    const first = await m.hello();
    await expectRefused(world, await m.message(1, { responses: await m.answer(1, first) }), 'PURSE_MISMATCH', m.session.id);
    expect(await balanceOnCard(c)).toBe(5000);
    expect(await purseBalance(world, c.asn)).toBeUndefined();
  });

  it('a purse shadow drained while the card pays: PURSE_MISMATCH, nothing is booked, the TAC and the counter are kept', async () => {
    const c = await loadedCard(1000);
    const payableBefore = await payableBalance();
    // Between MAC1 and the card's answer, the shadow loses its value (as a concurrent session could).
    const drain = async () => {
      const em = world.db.orm.em.fork();
      const elsewhere = await openAccount(em, { code: `test.drain.${c.asn}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const [purse] = await em.execute<{ id: string }[]>(`select id from ledger_account where code = ?`, [`card.${c.asn}.purse.CNY`]);
      await post(em, { key: `test-drain-${c.asn}`, description: 'drain the purse shadow', lines: [debit(purse!.id, 1000n), credit(elsewhere.id, 1000n)] });
    };
    const session = await till().open('PURCHASE', 300);
    const done = await till().agent(c, shop, aroundDebit(c, { before: drain })).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'PURSE_MISMATCH' });
    expect(await purseBalance(world, c.asn)).toBe(0n);
    expect(await payableBalance()).toBe(payableBefore);
    expect(await refusalDetail(session.id)).toMatchObject({ asn: c.asn, amount: 300, offlineCounter: 1, tac: expect.stringMatching(/^[0-9A-F]{8}$/) });
    // The step rolled back, but the counter the card proved it reached is recorded with the refusal.
    const [seen] = await world.db.orm.em.fork().execute<{ offline_counter: number }[]>(`select offline_counter from card_counter where asn = ?`, [c.asn]);
    expect(seen?.offline_counter).toBe(1);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

/** How the purchase's last message (seq 2: DEBIT FOR PURCHASE's TAC || MAC2) fails after the card has debited. */
const LOST_ANSWERS = lastMessageLost(world, 16);

describe('a purchase whose last answer was lost is settled from the card’s proof at its next session (issue 17)', () => {
  for (const how of Object.keys(LOST_ANSWERS)) {
    it(`a direct purchase, ${how}: the next balance read proves it (GET TRANSACTION PROVE) and pays the merchant once`, async () => {
      const c = await loadedCard(1_000);
      const payableBefore = await payableBalance();
      const session = await till().open('PURCHASE', 350);
      await sessionsOf(LOST_ANSWERS[how]!(merchant), () => shop).agent(c, shop).run(session).catch(() => undefined);
      await expireSession(world, session.id);
      expect(await balanceOnCard(c)).toBe(650);
      expect(await purseBalance(world, c.asn)).toBe(1_000n);

      const read = await counter().agent(c).run(await counter().open('BALANCE'));
      expect(read).toMatchObject({ state: 'COMPLETED' });
      expect(await purseBalance(world, c.asn)).toBe(650n);
      expect(await payableBalance()).toBe(payableBefore + 350n);
      expect((await auditOf(world, session.id)).at(-1)).toMatchObject({ step: 'proved', outcome: 'ACCEPTED' });

      // Again, and twice at once (the card and a copy): nothing more is booked; a purchase after it goes through.
      expect((await counter().agent(c).run(await counter().open('BALANCE'))).state).toBe('COMPLETED');
      const copy = VirtualCpuCard.fromJSON(c.toJSON());
      const [a, b] = await Promise.all([counter().open('BALANCE'), counter().open('BALANCE')]);
      expect((await Promise.all([counter().agent(c).run(a), counter().agent(copy).run(b)])).map((r) => r.state)).toEqual(['COMPLETED', 'COMPLETED']);
      expect((await till().agent(c).run(await till().open('PURCHASE', 50))).state).toBe('COMPLETED');
      expect(await purseBalance(world, c.asn)).toBe(600n);
      expect(await balanceOnCard(c)).toBe(600);
      expect(await payableBalance()).toBe(payableBefore + 400n);
      expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
    });
  }

  it('the next session is another purchase: it proves the lost one first, then takes its own', async () => {
    const c = await loadedCard(1_000);
    const payableBefore = await payableBalance();
    const session = await till().open('PURCHASE', 200);
    await sessionsOf(LOST_ANSWERS['the app dies after the card answered']!(merchant), () => shop).agent(c, shop).run(session).catch(() => undefined);
    await expireSession(world, session.id);
    const next = await till().agent(c).run(await till().open('PURCHASE', 300));
    expect(next.state).toBe('COMPLETED');
    expect(await balanceOnCard(c)).toBe(500);
    expect(await purseBalance(world, c.asn)).toBe(500n);
    expect(await payableBalance()).toBe(payableBefore + 500n);
    expect((await auditOf(world, next.id)).map((r) => r.step)).toEqual(['open', 'hello', 'firstAnswers', 'proofAnswer', 'firstAnswers', 'debitAnswer']);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
