/**
 * What a refused card session tells the reader's developer and the card company: the refusal's
 * exact message (the userError a till or a counter shows), the check that refused (the audit row's
 * `refusedBy`) and the evidence kept with it, for every check between a card and the ledger: the
 * envelope, the signature, the card's answers, its counters, MAC1, MAC2 and the TAC, and the purse
 * shadow's cover (with its limit: a purchase of exactly the shadow goes through). Found by mutation
 * testing of the `readers-session` unit (docs/testing.md): each of these could change without a
 * test failing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type CardTransport, type OneCardClient, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { recordPendingLoad } from '../src/topups/topups.service.js';
import { apiClient, auditOf, balanceOnCard, brokenRelay, expireSession, issueCard, lastMessageLost, newReader, OPEN, purseBalance, sessionsOf, sessionUuid, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let counterReader: TestReader;
let shop: TestReader;
let issuer: OneCardClient;
let merchant: OneCardClient;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const tea = await createMerchant(em, { cityId: world.gz.cityId, name: 'Refusal Tea House' });
  counterReader = await newReader(world, 'GZ-REFUSALS-COUNTER', world.gz);
  shop = await newReader(world, 'GZ-REFUSALS-SHOP', world.gz, { kind: 'MERCHANT', id: tea.id });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  merchant = await apiClient(world, 'MERCHANT', tea.id, ['payments:write']);
});

const counter = () => sessionsOf(issuer, () => counterReader);
const till = () => sessionsOf(merchant, () => shop);

/** A GZ card with `loaded` put on it at the counter (the purse shadow holds it), and `offLedger` more the ledger never issued. */
async function loadedCard(loaded: number, offLedger = 0): Promise<VirtualCpuCard> {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: offLedger });
  expect((await counter().agent(c).run(await counter().open('LOAD', loaded))).state).toBe('COMPLETED');
  return c;
}

/** The refusal's audit row: its code, and its detail (the message, the check that refused, the evidence). */
async function refusalOf(sessionGlobalId: string): Promise<{ refusal: string; detail: Record<string, unknown> }> {
  const [row] = await world.db.orm.em.fork().execute<{ refusal: string; detail: Record<string, unknown> }[]>(
    `select refusal, detail from card_session_audit where session_id = ? and outcome = 'REFUSED' order by id desc limit 1`,
    [sessionUuid(sessionGlobalId)],
  );
  return row!;
}

/** The card's transport, with the answer to one command (its INS byte) altered on its way to the reader. */
function alteringAnswer(c: VirtualCpuCard, ins: number, alter: (response: Uint8Array) => Uint8Array): CardTransport {
  const card = new VirtualCardTransport(c);
  return {
    async transmit(apdu) {
      const response = await card.transmit(apdu);
      return apdu[0] === 0x80 && apdu[1] === ins ? alter(response) : response;
    },
  };
}
const flipByte = (at: number) => (response: Uint8Array) => {
  const out = Uint8Array.from(response);
  out[at]! ^= 0xff;
  return out;
};
const CREDIT_FOR_LOAD = 0x52;
const DEBIT_FOR_PURCHASE = 0x54;

describe('the envelope: a message the session does not take', () => {
  it('out of order: "expected message 0, got 1", by sequence', async () => {
    const m = await counter().manual(issueCard({ city: world.gz, keys: world.gzMasterKeys }), 'BALANCE');
    const reply = await m.message(1, { responses: [] });
    expect(reply.userErrors[0]?.message).toBe('OUT_OF_ORDER: expected message 0, got 1');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'OUT_OF_ORDER', detail: { refusedBy: 'sequence' } });
  });

  it('after the session expired, by expiry', async () => {
    const m = await counter().manual(issueCard({ city: world.gz, keys: world.gzMasterKeys }), 'BALANCE');
    await expireSession(world, m.session.id);
    const reply = await m.hello();
    expect(reply.userErrors[0]?.message).toBe('SESSION_EXPIRED: the session has expired');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'SESSION_EXPIRED', detail: { refusedBy: 'expiry' } });
  });

  it('to a completed session: SESSION_FINISHED by the envelope, before its body is looked at', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 300 });
    const m = await counter().manual(c, 'BALANCE');
    const first = await m.hello();
    expect((await m.message(1, { responses: await m.answer(1, first) })).session?.state).toBe('COMPLETED');
    const again = await m.message(2, null);
    expect(again.userErrors[0]?.message).toBe('SESSION_FINISHED: the session is COMPLETED');
    expect(again.session?.state).toBe('COMPLETED');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'SESSION_FINISHED', detail: { refusedBy: 'envelope' } });
  });

  it('to a failed session: SESSION_FINISHED by the envelope, even with the next sequence number', async () => {
    const m = await counter().manual(issueCard({ city: world.gz, keys: world.gzMasterKeys }), 'BALANCE');
    // Refused out of order: the session FAILED and still expects message 0.
    expect((await m.message(1, { responses: [] })).session?.state).toBe('FAILED');
    const again = await m.message(0, null);
    expect(again.userErrors[0]?.message).toBe('SESSION_FINISHED: the session is FAILED');
    expect(again.session?.state).toBe('FAILED');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'SESSION_FINISHED', detail: { refusedBy: 'envelope' } });
  });
});

describe('a load at the counter', () => {
  it('a tampered message after the hello: BAD_SIGNATURE, by signature', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const m = await counter().manual(c, 'LOAD');
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) }, (t) => t.replace('9000', '9001'));
    expect(reply.userErrors[0]?.message).toBe('BAD_SIGNATURE: the reader signature does not verify');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'BAD_SIGNATURE', detail: { refusedBy: 'signature' } });
    expect(await purseBalance(world, c.asn)).toBeUndefined();
  });

  it('a card whose MAC1 does not verify: WRONG_MAC1, by cryptograms', async () => {
    const c = issueCard({ city: world.gz, keys: world.szMasterKeys });
    const m = await counter().manual(c, 'LOAD');
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) });
    expect(reply.userErrors[0]?.message).toBe('WRONG_MAC1: MAC1 does not verify with the card’s load key');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'WRONG_MAC1', detail: { refusedBy: 'cryptograms' } });
  });

  it('a TAC that does not prove the load: WRONG_TAC, by cryptograms, nothing booked', async () => {
    const c = await loadedCard(200);
    const session = await counter().open('LOAD', 300);
    const done = await counter().agent(c, counterReader, alteringAnswer(c, CREDIT_FOR_LOAD, flipByte(0))).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'WRONG_TAC' });
    expect(await refusalOf(session.id)).toMatchObject({ refusal: 'WRONG_TAC', detail: { message: 'the TAC does not prove this load', refusedBy: 'cryptograms' } });
    expect(await purseBalance(world, c.asn)).toBe(200n);
  });

  it('a card whose online counter went back: "went back from 1 to 0", by counters', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const before = c.toJSON();
    expect((await counter().agent(c).run(await counter().open('LOAD', 300))).state).toBe('COMPLETED');
    const m = await counter().manual(VirtualCpuCard.fromJSON(before), 'LOAD');
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) });
    expect(reply.userErrors[0]?.message).toBe('COUNTER_ROLLBACK: the card\'s online counter went back from 1 to 0');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'COUNTER_ROLLBACK', detail: { refusedBy: 'counters' } });
  });

  it('a card whose transaction log cannot be read (not an empty log): CARD_ERROR, by card-answers, nothing booked', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const m = await counter().manual(c, 'LOAD');
    const first = await m.hello();
    const [select, publicData, , initialize] = await m.answer(1, first);
    const reply = await m.message(1, { responses: [select, publicData, '6F00', initialize] });
    expect(reply.userErrors[0]?.message).toBe('CARD_ERROR: READ RECORD: the card answered 6F00');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'CARD_ERROR', detail: { refusedBy: 'card-answers' } });
    expect(await purseBalance(world, c.asn)).toBeUndefined();
  });
});

describe('a purchase at the till', () => {
  it('a wrong MAC2: WRONG_MAC2, by cryptograms, with what the card answered', async () => {
    const c = await loadedCard(1000);
    const session = await till().open('PURCHASE', 400);
    const done = await till().agent(c, shop, alteringAnswer(c, DEBIT_FOR_PURCHASE, flipByte(4))).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'WRONG_MAC2' });
    const { detail } = await refusalOf(session.id);
    expect(detail).toEqual({
      message: 'MAC2 does not verify with this session’s purchase key',
      refusedBy: 'cryptograms',
      asn: c.asn,
      amount: 400,
      offlineCounter: 0,
      terminalSerial: expect.any(Number),
      date: expect.stringMatching(/^\d{8}$/),
      time: expect.stringMatching(/^\d{6}$/),
      response: expect.stringMatching(/^[0-9a-fA-F]{16}9000$/),
    });
    expect(await purseBalance(world, c.asn)).toBe(1000n);
  });

  it('a wrong TAC: WRONG_TAC, by cryptograms, with what the card answered', async () => {
    const c = await loadedCard(1000);
    const session = await till().open('PURCHASE', 400);
    const done = await till().agent(c, shop, alteringAnswer(c, DEBIT_FOR_PURCHASE, flipByte(0))).run(session);
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'WRONG_TAC' });
    expect((await refusalOf(session.id)).detail).toMatchObject({ message: 'the TAC does not prove this purchase', refusedBy: 'cryptograms', asn: c.asn, amount: 400, offlineCounter: 0 });
    expect(await purseBalance(world, c.asn)).toBe(1000n);
  });

  it('a card whose offline counter went back: "went back from 1 to 0", by counters', async () => {
    const c = await loadedCard(2000);
    const before = c.toJSON();
    expect((await till().agent(c).run(await till().open('PURCHASE', 500))).state).toBe('COMPLETED');
    const m = await till().manual(VirtualCpuCard.fromJSON(before), 'PURCHASE', shop, 500);
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) });
    expect(reply.userErrors[0]?.message).toBe('COUNTER_ROLLBACK: the card\'s offline counter went back from 1 to 0');
    expect(await refusalOf(m.session.id)).toMatchObject({ refusal: 'COUNTER_ROLLBACK', detail: { refusedBy: 'counters' } });
  });

  it('one fen more than the purse shadow holds: PURSE_MISMATCH, by purse-cover, with the shadow, the card and the amount', async () => {
    // The card holds 600, of which the ledger issued 500.
    const c = await loadedCard(500, 100);
    const m = await till().manual(c, 'PURCHASE', shop, 501);
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) });
    expect(reply.userErrors[0]?.message).toBe(`PURSE_MISMATCH: the ledger's purse of card ${c.asn} holds 500, less than 501`);
    expect(await refusalOf(m.session.id)).toEqual({
      refusal: 'PURSE_MISMATCH',
      detail: { message: `the ledger's purse of card ${c.asn} holds 500, less than 501`, refusedBy: 'purse-cover', asn: c.asn, shadow: '500', cardBalance: 600, amount: 501 },
    });
    expect(await balanceOnCard(c)).toBe(600);
    expect(await purseBalance(world, c.asn)).toBe(500n);
  });

  it('exactly what the purse shadow holds goes through, and empties it', async () => {
    const c = await loadedCard(500, 100);
    const done = await till().agent(c).run(await till().open('PURCHASE', 500));
    expect(done).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 600, newBalance: 100, amount: 500, offlineCounter: 1 } });
    expect(await purseBalance(world, c.asn)).toBe(0n);
    expect(await balanceOnCard(c)).toBe(100);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('an operation whose last answer was lost is proved at the card’s next session', () => {
  it('a load: the next load asks the card to prove it first, books it, then loads', async () => {
    const c = await loadedCard(100);
    const lost = await counter().open('LOAD', 300);
    await sessionsOf(lastMessageLost(world, 8)['the app dies after the card answered']!(issuer), () => counterReader).agent(c).run(lost).catch(() => undefined);
    await expireSession(world, lost.id);
    expect(await balanceOnCard(c)).toBe(400);
    expect(await purseBalance(world, c.asn)).toBe(100n);

    const next = await counter().agent(c).run(await counter().open('LOAD', 200));
    expect(next).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 400, newBalance: 600, amount: 200, onlineCounter: 3 } });
    expect((await auditOf(world, next.id)).map((r) => r.step)).toEqual(['open', 'hello', 'firstAnswers', 'proofAnswer', 'firstAnswers', 'tacAnswer']);
    expect(await purseBalance(world, c.asn)).toBe(600n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a balance read completes with the proof’s answer: no second round', async () => {
    const c = await loadedCard(1000);
    const lost = await till().open('PURCHASE', 350);
    await sessionsOf(lastMessageLost(world, 16)['the app dies after the card answered']!(merchant), () => shop).agent(c).run(lost).catch(() => undefined);
    await expireSession(world, lost.id);
    const read = await counter().agent(c).run(await counter().open('BALANCE'));
    expect(read).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, balance: 650 } });
    expect((await auditOf(world, read.id)).map((r) => r.step)).toEqual(['open', 'hello', 'firstAnswers', 'proofAnswer']);
    expect(await purseBalance(world, c.asn)).toBe(650n);
    // The proof round's audit row names the card, the counter asked about and what it settled (what the card company reconciles from).
    const [proofRow] = await world.db.orm.em.fork().execute<{ detail: Record<string, unknown> }[]>(`select detail from card_session_audit where session_id = ? and step = 'proofAnswer'`, [sessionUuid(read.id)]);
    expect(proofRow!.detail).toEqual({ asn: c.asn, purchase: { counter: 0, settled: sessionUuid(lost.id), answered: expect.stringMatching(/^[0-9A-F]{8}$/) } });
  });
});

describe('a purchase whose INITIALIZE FOR PURCHASE fails while a proof is owed', () => {
  it('another status word than 94 01 (not the lost purchase’s work): CARD_ERROR at once, no proof round; the next honest tap proves it', async () => {
    const c = await loadedCard(1000);
    const lost = await till().open('PURCHASE', 350);
    await sessionsOf(lastMessageLost(world, 16)['the app dies after the card answered']!(merchant), () => shop).agent(c).run(lost).catch(() => undefined);
    await expireSession(world, lost.id);
    const next = await till().open('PURCHASE', 100);
    // INITIALIZE FOR PURCHASE (80 50) answered 6A 81 (function not supported) on its way to the reader.
    expect(await till().agent(c, shop, alteringAnswer(c, 0x50, () => Uint8Array.from([0x6a, 0x81]))).run(next)).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });
    expect((await auditOf(world, next.id)).map((r) => r.step)).toEqual(['open', 'hello', 'refused']);
    expect(await purseBalance(world, c.asn)).toBe(1000n);
    const read = await counter().agent(c).run(await counter().open('BALANCE'));
    expect(read).toMatchObject({ state: 'COMPLETED', result: { balance: 650 } });
    expect(await purseBalance(world, c.asn)).toBe(650n);
  });
});

describe('a load while the card has passed an earlier load it did not prove', () => {
  it('the proof answer dropped (94 06): LOAD_UNRESOLVED by transaction-proof, naming the lost session, before MAC2; nothing booked', async () => {
    const c = await loadedCard(100);
    const lost = await counter().open('LOAD', 300);
    await sessionsOf(brokenRelay(issuer, 2, 'request'), () => counterReader).agent(c).run(lost).catch(() => undefined);
    await expireSession(world, lost.id);
    // A relay that answers 94 06 to GET TRANSACTION PROVE (80 5A) in the card's place.
    const real = new VirtualCardTransport(c);
    const dropsProofs: CardTransport = { transmit: async (apdu) => (apdu[1] === 0x5a ? Uint8Array.from([0x94, 0x06]) : real.transmit(apdu)) };
    const next = await counter().open('LOAD', 200);
    expect(await counter().agent(c, counterReader, dropsProofs).run(next)).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect(await refusalOf(next.id)).toEqual({
      refusal: 'LOAD_UNRESOLVED',
      detail: {
        message: 'the card took an earlier load whose answer was lost and has not proved it; the card company settles it before the card loads again',
        refusedBy: 'transaction-proof',
        cardCounter: 2,
        unprovedSessions: [{ session: sessionUuid(lost.id), counter: 1 }],
      },
    });
    expect(await balanceOnCard(c)).toBe(400);
    expect(await purseBalance(world, c.asn)).toBe(100n);
  });

  it('a load whose MAC2 never reached the card does not hold up the next one at the same counter', async () => {
    const c = await loadedCard(100);
    const unsent = await counter().open('LOAD', 300);
    await sessionsOf(brokenRelay(issuer, 1, 'answer'), () => counterReader).agent(c).run(unsent).catch(() => undefined);
    await expireSession(world, unsent.id);
    expect(await balanceOnCard(c)).toBe(100);
    const next = await counter().agent(c).run(await counter().open('LOAD', 200));
    expect(next).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 100, newBalance: 300, onlineCounter: 2 } });
    expect((await auditOf(world, next.id)).map((r) => r.step)).toEqual(['open', 'hello', 'firstAnswers', 'tacAnswer']);
    expect(await purseBalance(world, c.asn)).toBe(300n);
  });

  it('pending loads the card took whose answers were lost, settled ALREADY_LOADED by its counter without a proof, do not hold up its next loads; a lost counter load among them still does', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const em = world.db.orm.em.fork();
    await registerCard(em, world.gz.cardCompanyId, { cardNumber: testCardNumber('623177000000'), asn: c.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' });
    const [card] = await em.execute<{ id: string }[]>(`select id from card where asn = ?`, [c.asn]);
    const from = await openAccount(em, { code: `test.exemption.refunds.${c.asn}.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    // A pending load owed to the card (a merchant's refund is one; no gateway needed).
    const owed = async (amount: number) => toGlobalId('TopUp', (await em.fork().transactional((tx) => recordPendingLoad(tx, { origin: 'REFUND', cardId: card!.id, key: `exemption-${c.asn}-${amount}`, amount: BigInt(amount), currency: 'CNY', fromAccountId: from.id, description: 'exemption test refund', metadata: {}, cause: 'test' }))).topUpId);
    // The card company at its counter, with the scope to see the card's top-ups (and so load them).
    const loader = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const desk = sessionsOf(loader, () => counterReader);
    const openLoad = async (topUp: string) => {
      const { openCardSession } = await loader.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: unknown[] } }>(OPEN, { input: { reader: counterReader.id, operation: 'LOAD', topUp } });
      expect(openCardSession.userErrors).toEqual([]);
      return openCardSession.session;
    };
    const statusOf = async (topUp: string) => (await em.fork().execute<{ status: string }[]>(`select status from top_up where id = ?`, [fromGlobalId(topUp, 'TopUp').id]))[0]!.status;
    // Every GET TRANSACTION PROVE (80 5A) answered 94 06 in the card's place: no lost load is ever proved.
    const real = new VirtualCardTransport(c);
    const dropsProofs: CardTransport = { transmit: async (apdu) => (apdu[1] === 0x5a ? Uint8Array.from([0x94, 0x06]) : real.transmit(apdu)) };
    // The message carrying the card's TAC never reaches the host: message 2, or 4 after a proof round (its answer, then the load's first answers again).
    const lossy = (tacSeq: number) => sessionsOf(brokenRelay(loader, tacSeq, 'request'), () => counterReader);
    /** The card takes the pending load, its TAC never reaches the host; the next tap for it is settled by the online counter. */
    async function takenThenSettled(topUp: string, tacSeq: number) {
      const lost = await openLoad(topUp);
      await expect(lossy(tacSeq).agent(c, counterReader, dropsProofs).run(lost)).rejects.toThrow('connection lost');
      await expireSession(world, lost.id);
      expect(await desk.agent(c, counterReader, dropsProofs).run(await openLoad(topUp))).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_LOADED' });
      expect(await statusOf(topUp)).toBe('LOADED');
    }
    const first = await owed(500);
    await takenThenSettled(first, 2);
    expect(await balanceOnCard(c)).toBe(500);
    // The first load's session is still unproved, yet its top-up is booked: the second is written (MAC2 leaves the host).
    await takenThenSettled(await owed(300), 4);
    expect(await balanceOnCard(c)).toBe(800);
    expect(await purseBalance(world, c.asn)).toBe(800n);
    // Two such sessions behind the card's counter now, both booked: a counter load is written too, and its TAC lost.
    const counterLoad = await desk.open('LOAD', 100);
    await expect(lossy(4).agent(c, counterReader, dropsProofs).run(counterLoad)).rejects.toThrow('connection lost');
    await expireSession(world, counterLoad.id);
    expect(await balanceOnCard(c)).toBe(900);
    // That one has no top-up to book it: the next load is refused, naming it alone among the three behind the counter.
    const refused = await desk.open('LOAD', 50);
    expect(await desk.agent(c, counterReader, dropsProofs).run(refused)).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect((await refusalOf(refused.id)).detail).toMatchObject({ refusedBy: 'transaction-proof', cardCounter: 3, unprovedSessions: [{ session: sessionUuid(counterLoad.id), counter: 2 }] });
    expect(await balanceOnCard(c)).toBe(900);
    expect(await purseBalance(world, c.asn)).toBe(800n);
    // The honest next tap proves the counter load, and loads: the two top-ups settled without proof stay booked once.
    const next = await desk.agent(c).run(await desk.open('LOAD', 200));
    expect(next).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 900, newBalance: 1_100, amount: 200, onlineCounter: 4 } });
    expect(await purseBalance(world, c.asn)).toBe(1_100n);
    expect(await statusOf(first)).toBe('LOADED');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('the audit trail of an accepted load and purchase (what the card company reconciles from)', () => {
  async function acceptedDetails(sessionGlobalId: string) {
    const rows = await world.db.orm.em.fork().execute<{ step: string; detail: Record<string, unknown> }[]>(
      `select step, detail from card_session_audit where session_id = ? and outcome = 'ACCEPTED' and step in ('firstAnswers', 'tacAnswer', 'debitAnswer') order by id`,
      [sessionUuid(sessionGlobalId)],
    );
    return Object.fromEntries(rows.map((r) => [r.step, r.detail]));
  }

  it('a load: the card, its balance and counter before, then what it took and its TAC', async () => {
    const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 40 });
    const done = await counter().agent(c).run(await counter().open('LOAD', 300));
    expect(await acceptedDetails(done.id)).toEqual({
      firstAnswers: { asn: c.asn, oldBalance: 40, onlineCounter: 0 },
      tacAnswer: { asn: c.asn, oldBalance: 40, newBalance: 340, amount: 300, onlineCounter: 1, tac: expect.stringMatching(/^[0-9A-F]{8}$/) },
    });
  });

  it('a purchase: the card, its balance, counter and the terminal serial, then what it paid and its TAC', async () => {
    const c = await loadedCard(900);
    const done = await till().agent(c).run(await till().open('PURCHASE', 250));
    const serial = done.result!.terminalSerial as number;
    expect(await acceptedDetails(done.id)).toEqual({
      firstAnswers: { asn: c.asn, balance: 900, offlineCounter: 0, terminalSerial: serial },
      debitAnswer: { asn: c.asn, oldBalance: 900, newBalance: 650, amount: 250, offlineCounter: 1, terminalSerial: serial, tac: expect.stringMatching(/^[0-9A-F]{8}$/) },
    });
  });
});
