/**
 * How an M1 card's writes are settled when their answers go astray (issue 21, docs/cards.md "What an
 * M1 card proves"): at most one open write per card, so a lost write is never settled from a value
 * another write produced (loads, purchases, two readers racing); a write script held past its
 * session's expiry is refused by the reader, and a late signed report is recorded, never dropped;
 * a write torn between the value block and its backup is settled from the value block and the
 * backup repaired. Real HTTP, the SDK's reader agent, virtual M1 cards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, type OneCardClient, ReaderAgent, type SessionReply } from '../../sdk-js/src/index.js';
import { type M1Card, runM1Script } from '../../sdk-js/src/reader/reader-agent.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_SETTLE_AFTER_EXPIRY_SECONDS, recordM1Write } from '../src/readers/session/m1-writes.js';
import type { SessionRow } from '../src/readers/session/session.model.js';
import { SESSION_TTL_SECONDS } from '../src/readers/session/session.model.js';
import { M1_PURSE, m1SectorKeyB, purseValue, readPurseScript } from '../src/readers/m1/m1-script.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { apiClient, cardholderApp, expireSession, expireSessionPastSettleWait, kek, sessionUuid, newReader, OPEN, purseBalance, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';

const SECRET = 'sk_test_m1';
const WEBHOOK_SECRET = 'whsec_m1_0123456789abcdef';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });
afterAll(async () => {
  await sandbox?.close();
});

type Requester = Pick<OneCardClient, 'request'>;
type Session = { id: string; challenge: string };
let master: Buffer;
let app: Requester;
let holderId: string;
let home: TestReader;
let second: TestReader;
let counter: TestReader;
let issuer: Requester;
let merchant: Requester;

beforeAll(async () => {
  sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
  const em = world.db.orm.em.fork();
  master = await storeM1MasterKey(em, kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
  ({ id: holderId, app } = await cardholderApp(world, 'm1-holder', ['card:read', 'card:topup', 'card:manage']));
  home = await newReader(world, 'M1-HOME', world.gz, { kind: 'CARDHOLDER', id: holderId });
  second = await newReader(world, 'M1-HOME-2', world.gz, { kind: 'CARDHOLDER', id: holderId });
  counter = await newReader(world, 'M1-COUNTER', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read', 'cards:write']);
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'M1 Tea Shop' });
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
});

// ——— helpers ———

let uids = 0;
const keyOf = (uid: string) => m1SectorKeyB(master, Buffer.from(uid, 'hex'), M1_PURSE.sector);
const LAYOUT = { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 };

/** An M1 chip as the card company personalises it, empty; registered to the holder. */
async function m1Card(): Promise<{ chip: VirtualM1Card; uid: string; id: string }> {
  const uid = `5A1E${String(++uids).padStart(4, '0')}`;
  const chip = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
  chip.authenticate(M1_PURSE.valueBlock, 'B', keyOf(uid));
  formatM1Purse(chip, LAYOUT, 0);
  chip.halt();
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623177000000'), asn: uid, cardType: 'M1', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  return { chip, uid, id: Buffer.from(`Card:${row.id}`).toString('base64url') };
}

/** What the chip holds, read with its sector key (value and backup must agree). */
async function valueOn(chip: VirtualM1Card): Promise<number> {
  const [, value, backup] = await runM1Script(chip, readPurseScript(keyOf(chip.uid)));
  chip.halt();
  return purseValue(value, backup);
}

async function openSession(by: Requester, input: Record<string, unknown>): Promise<Session> {
  const opened = await by.request<{ openCardSession: { session: Session | null; userErrors: unknown[] } }>(OPEN, { input });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

/** Runs a session through the SDK's reader agent; `relay` may lose or alter what passes, `replies` keeps what came back. */
async function run(by: Requester, reader: TestReader, session: Session, card: M1Card, relay: (by: Requester) => Requester = (r) => r, replies: SessionReply[] = [], clock?: () => number): Promise<CardSessionView> {
  const through = relay(by);
  const agent = new ReaderAgent({
    deviceKey: reader.deviceKeyPem,
    nationalCertificatePem: reader.nationalPem,
    cityCertificatePem: reader.cityPem,
    trustedCertificatesPem: reader.trustedCertificatesPem,
    nationalKey: reader.nationalKeyPem,
    encryptionKey: reader.encryptionKeyPem,
    encryptionCertificatePem: reader.encryptionPem,
    m1: card,
    ...(clock ? { clock } : {}),
    send: async (input) => {
      const reply = (await through.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage;
      replies.push(reply);
      return reply;
    },
  });
  return agent.run(session);
}

/**
 * The relay breaks at message `seq`: `'request'` — it never reaches the host; `'answer'` — the host
 * handles it, its answer never comes back. For an M1 write: message 2 is the purse read (the host's
 * answer carries the write script), message 3 the reader's signed results.
 */
const broken = (seq: number, lost: 'request' | 'answer') => (by: Requester): Requester => ({
  async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const at = (variables as { input?: { seq?: number } } | undefined)?.input?.seq;
    if (at === seq && lost === 'request') throw new Error('connection lost');
    const reply = await by.request<T>(query, variables);
    if (at === seq) throw new Error('connection lost');
    return reply;
  },
});

const TOP_UP = `id status amount { amount } history { to cause }`;
type TopUp = { id: string; status: string; history: { to: string; cause: string }[] };

async function topUpOf(id: string): Promise<TopUp> {
  return (await app.request<{ topUp: TopUp }>(`query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`, { id })).topUp;
}

async function waitFor(id: string, status: string): Promise<TopUp> {
  for (let i = 0; i < 100; i++) {
    const t = await topUpOf(id);
    if (t.status === status) return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`top-up ${id} never became ${status}`);
}

/** A top-up of the M1 card, paid on the sandbox gateway's page as a person pays it: a pending load. */
async function paidTopUp(card: { id: string }, amount: number): Promise<string> {
  const made = await app.request<{ createTopUp: { topUp: { id: string; paymentUrl: string } | null; userErrors: unknown[] } }>(
    `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id paymentUrl } userErrors { code message } } }`,
    { input: { card: card.id, amount, idempotencyKey: `m1-${Math.random()}` } },
  );
  expect(made.createTopUp.userErrors).toEqual([]);
  const res = await fetch(made.createTopUp.topUp!.paymentUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payment_method=pm_card_visa' });
  expect(res.status).toBe(200);
  await waitFor(made.createTopUp.topUp!.id, 'PAID');
  return made.createTopUp.topUp!.id;
}

/** Value written at the counter (cash), so the chip and the ledger start from the same balance. */
async function counterLoad(chip: VirtualM1Card, amount: number): Promise<void> {
  expect(await run(issuer, counter, await openSession(issuer, { reader: counter.id, operation: 'LOAD', amount, cardType: 'M1' }), chip)).toMatchObject({ state: 'COMPLETED' });
}

let orders = 0;
async function newPayment(amount: number): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
    input: { amount, currency: 'CNY', orderReference: `m1-order-${++orders}`, idempotencyKey: `m1-create-${orders}` },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}
const paymentStatus = async (id: string) => (await merchant.request<{ payment: { status: string } }>(`query($id: ID!) { payment(id: $id) { status } }`, { id })).payment.status;

async function ledgerOk(cards: { chip: VirtualM1Card; uid: string }[]): Promise<void> {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  // The card is the truth for value: every chip holds what the ledger's shadow of its purse holds.
  for (const c of cards) expect({ uid: c.uid, value: await valueOn(c.chip) }).toEqual({ uid: c.uid, value: Number((await purseBalance(world, c.uid)) ?? 0n) });
}

const loadSession = (pendingLoad: string, reader = home) => openSession(app, { reader: reader.id, operation: 'LOAD', topUp: pendingLoad });

// ——— the settlement of M1 writes ———

describe('one open write per M1 card: a lost write is never settled from a value another write produced', () => {
  it('a load whose script never reached the card, then another load of the same amount: refused LOAD_IN_PROGRESS while the first write is open, the first not booked from a value it did not produce', async () => {
    const card = await m1Card();
    const first = await paidTopUp(card, 500);
    const secondLoad = await paidTopUp(card, 500);
    // Load 1: the host records the write 0 → 500 and claims the top-up; the answer carrying the script is lost.
    const a = await loadSession(first);
    await expect(run(app, home, a, card.chip, broken(2, 'answer'))).rejects.toThrow('connection lost');
    expect(await valueOn(card.chip)).toBe(0);
    // While session A is still live, the holder loads the other top-up: 0 → 500, written and booked.
    // (Today it is written and booked; a fix may refuse it while session A's write is open. Either way the end must agree.)
    const b = await run(app, second, await loadSession(secondLoad, second), card.chip);
    expect(b).toMatchObject({ state: 'FAILED', refusal: 'LOAD_IN_PROGRESS' });
    expect(await valueOn(card.chip)).toBe(b.state === 'COMPLETED' ? 500 : 0);
    await expireSessionPastSettleWait(world, a.id);
    // Any next session reads 500: that is session A's new_value, so A is booked as WRITTEN.
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED' });
    // Session A's script never reached the card: the first top-up must still be owed; the ledger books exactly what the chip took.
    expect((await topUpOf(first)).status).toBe('PAID');
    const loaded = [(await topUpOf(first)).status, (await topUpOf(secondLoad)).status].filter((st) => st === 'LOADED').length;
    expect(loaded * 500).toBe(await valueOn(card.chip));
    await ledgerOk([card]);
  });

  it('a purchase whose script never reached the card, then another purchase of the same amount: refused PAYMENT_IN_PROGRESS while the first write is open, the first payment not settled from a value it did not produce', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 1_000);
    const p1 = await newPayment(400);
    const p2 = await newPayment(400);
    const a = await openSession(app, { reader: home.id, operation: 'PURCHASE', payment: p1, cardType: 'M1' });
    await expect(run(app, home, a, card.chip, broken(2, 'answer'))).rejects.toThrow('connection lost');
    // Today it pays (1000 → 600); a fix may refuse it while session A's write is open. Either way the end must agree.
    expect(await run(app, second, await openSession(app, { reader: second.id, operation: 'PURCHASE', payment: p2, cardType: 'M1' }), card.chip)).toMatchObject({ state: 'FAILED', refusal: 'PAYMENT_IN_PROGRESS' });
    await expireSessionPastSettleWait(world, a.id);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED' });
    // p1's script never reached the card: p1 must not be SUCCEEDED; the payments that succeeded are exactly what the chip paid.
    expect(await paymentStatus(p1)).not.toBe('SUCCEEDED');
    const paid = [await paymentStatus(p1), await paymentStatus(p2)].filter((st) => st === 'SUCCEEDED').length;
    expect(1_000 - paid * 400).toBe(await valueOn(card.chip));
    await ledgerOk([card]);
  });

  it('two readers racing two equal loads of one card: one writes, the other is refused LOAD_IN_PROGRESS before its script leaves, and the next session books one load', async () => {
    const card = await m1Card();
    const t1 = await paidTopUp(card, 300);
    const t2 = await paidTopUp(card, 300);
    // Both sessions send the card's value (0) at once, and each waits for the other's answer before going on: whichever
    // the host answers first gets the write script, the other is refused; the winner's report may be lost (session 2's is).
    const [s1, s2] = await Promise.all([loadSession(t1, home), loadSession(t2, second)]);
    let s2Read!: () => void;
    const s2HasRead = new Promise<void>((r) => (s2Read = r));
    const seqOf = (v?: Record<string, unknown>) => (v as { input?: { seq?: number } } | undefined)?.input?.seq;
    const relay1 = (by: Requester): Requester => ({
      async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
        const reply = await by.request<T>(query, variables);
        if (seqOf(variables) === 2) await s2HasRead;
        return reply;
      },
    });
    const firstDone = run(app, home, s1, card.chip, relay1);
    const relay2 = (by: Requester): Requester => ({
      async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
        if (seqOf(variables) === 3) throw new Error('connection lost');
        const reply = await by.request<T>(query, variables);
        if (seqOf(variables) === 2) {
          s2Read();
          await firstDone;
        }
        return reply;
      },
    });
    const secondDone = await run(app, second, s2, card.chip, relay2).catch(() => null);
    const first = await firstDone;
    // One wrote; the other was refused before its script left (LOAD_IN_PROGRESS), never INTERNAL_SERVER_ERROR.
    expect(first.state === 'COMPLETED' ? secondDone : first).toMatchObject({ state: 'FAILED', refusal: 'LOAD_IN_PROGRESS' });
    expect(await valueOn(card.chip)).toBe(300);
    await expireSessionPastSettleWait(world, s1.id);
    await expireSessionPastSettleWait(world, s2.id);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 300 } });
    // The chip took one 3.00 load: one top-up is loaded, the other still owed.
    expect([(await topUpOf(t1)).status, (await topUpOf(t2)).status].sort()).toEqual(['LOADED', 'PAID']);
    await ledgerOk([card]);
  });
});

describe('the open-write index', () => {
  it('two writes of one card recorded at once (the race the step check cannot see): the second is the in-progress refusal, never a database error', async () => {
    const card = await m1Card();
    const [t1, t2] = [await paidTopUp(card, 100), await paidTopUp(card, 100)];
    const [s1, s2] = [await loadSession(t1), await loadSession(t2, second)];
    const row = (session: Session) => ({ id: sessionUuid(session.id), operation: 'LOAD' }) as SessionRow;
    await world.db.orm.em.fork().transactional(async (tx) => {
      await recordM1Write(tx, row(s1), card.uid, { oldValue: 0, newValue: 100 });
      // Both steps have passed refuseWhileM1WriteOpen before either wrote: only the index tells them apart.
      await expect(recordM1Write(tx, row(s2), card.uid, { oldValue: 0, newValue: 100 })).rejects.toMatchObject({ refusal: 'LOAD_IN_PROGRESS' });
      // A purchase racing a write of the same card is refused as its own purpose's in-progress.
      await expect(recordM1Write(tx, { ...row(s2), operation: 'PURCHASE' }, card.uid, { oldValue: 0, newValue: 0 })).rejects.toMatchObject({ refusal: 'PAYMENT_IN_PROGRESS' });
      throw new Error('rolled back');
    }).catch((err: Error) => expect(err.message).toBe('rolled back'));
  });
});

describe('a write script delivered after its session expired', () => {
  it('the app holds the write script just past the session’s expiry while a balance read elsewhere reads the card: the write stays open through the minute after expiry, and the late signed report books what the chip took', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 800);
    const a = await loadSession(topUp);
    // The holder's own app relays: it keeps the host's answer carrying the script until the host has given up on it.
    const holdScript = (by: Requester): Requester => ({
      async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
        const reply = await by.request<T>(query, variables);
        if ((variables as { input?: { seq?: number } }).input?.seq === 2) {
          await expireSession(world, a.id);
          // Another tap (a balance read on another reader) reads 0: the write is settled NOT_WRITTEN and the claim freed.
          expect(await run(app, second, await openSession(app, { reader: second.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
        }
        return reply;
      },
    });
    await run(app, home, a, card.chip, holdScript).catch(() => undefined);
    // Either the reader refuses the late script (chip 0, load still owed) or the host books what the chip took: chip and ledger agree.
    await ledgerOk([card]);
  });

  /** The app relays the host's answer carrying the script (message 2) only after `meanwhile` ran. */
  const holdingScript = (session: Session, meanwhile: () => Promise<void>) => (by: Requester): Requester => ({
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const reply = await by.request<T>(query, variables);
      if ((variables as { input?: { seq?: number } }).input?.seq === 2) await meanwhile();
      return reply;
    },
  });

  it('the held script reaches a reader whose clock is past the session expiry signed into the host message: the reader runs none of it, the load stays owed and is written once later', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 800);
    const a = await loadSession(topUp);
    let readerTime = Date.now;
    const held = holdingScript(a, async () => {
      // Time passes for everyone: the session's limit and the minute after it; a balance read elsewhere settles the write as not made.
      await expireSessionPastSettleWait(world, a.id);
      readerTime = () => Date.now() + (SESSION_TTL_SECONDS + M1_SETTLE_AFTER_EXPIRY_SECONDS) * 1_000;
      expect(await run(app, second, await openSession(app, { reader: second.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
    });
    await expect(run(app, home, a, card.chip, held, [], () => readerTime())).rejects.toThrow(/^EXPIRED/);
    expect(await valueOn(card.chip)).toBe(0);
    expect((await topUpOf(topUp)).status).toBe('PAID');
    await ledgerOk([card]);
    expect(await run(app, home, await loadSession(topUp), card.chip)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 0, newBalance: 800 } });
    expect((await topUpOf(topUp)).status).toBe('LOADED');
    await ledgerOk([card]);
  });

  it('a reader whose clock is wrong runs the held script after the write was taken as not made: its signed late report is recorded (unresolved, the difference on record), and the load is not written again', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 800);
    const a = await loadSession(topUp);
    const held = holdingScript(a, async () => {
      await expireSessionPastSettleWait(world, a.id);
      expect(await run(app, second, await openSession(app, { reader: second.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
    });
    // The reader's clock still says the session is live: it runs the script, and its report comes after the session's end.
    expect(await run(app, home, a, card.chip, held)).toMatchObject({ state: 'FAILED', refusal: 'SESSION_EXPIRED' });
    expect(await valueOn(card.chip)).toBe(800);
    const em = world.db.orm.em.fork();
    expect(await em.execute(`select outcome from card_m1_write where session_id = ?`, [sessionUuid(a.id)])).toEqual([{ outcome: 'UNRESOLVED' }]);
    expect(await em.execute(`select card_balance::int as card, shadow_balance::int as shadow from card_balance_discrepancy where card_asn = ? and session_id = ?`, [card.uid, sessionUuid(a.id)])).toEqual([{ card: 800, shadow: 0 }]);
    // The top-up's write is unresolved now: loading it again is refused until the card company settles it.
    expect(await run(app, home, await loadSession(topUp), card.chip)).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect(await valueOn(card.chip)).toBe(800);
    expect((await topUpOf(topUp)).status).toBe('PAID');
  });
});

/** A card pulled out of the field right after the value block was transferred, before its backup was written. */
class TornField implements M1Card {
  constructor(private readonly card: VirtualM1Card) {}
  get uid() {
    return this.card.uid;
  }
  authenticate(block: number, keyType: 'A' | 'B', key: Uint8Array) {
    this.card.authenticate(block, keyType, key);
  }
  read(block: number) {
    return this.card.read(block);
  }
  write(block: number, data: Uint8Array) {
    if (block === M1_PURSE.backupBlock) throw new Error('card removed');
    this.card.write(block, data);
  }
  increment(block: number, value: number) {
    this.card.increment(block, value);
  }
  decrement(block: number, value: number) {
    this.card.decrement(block, value);
  }
  transfer(block: number) {
    this.card.transfer(block);
  }
  halt() {
    this.card.halt();
  }
}

describe('a write torn between the value block and its backup', () => {
  it('the card is pulled out after the value block moved, before the backup: the next session settles the write from the value block (and the card stays usable)', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 400);
    const a = await loadSession(topUp);
    expect(await run(app, home, a, new TornField(card.chip))).toMatchObject({ state: 'FAILED' });
    await expireSessionPastSettleWait(world, a.id);
    // The holder taps again: the value block holds 400 (the write's new value), the backup still 0.
    const next = await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip);
    expect(next).toMatchObject({ state: 'COMPLETED', result: { balance: 400 } });
    expect((await topUpOf(topUp)).status).toBe('LOADED');
    // The backup was rewritten: both blocks agree again (valueOn refuses a pair that disagrees), and the chip and the ledger agree.
    expect(await valueOn(card.chip)).toBe(400);
    await ledgerOk([card]);
    // The card stays usable: a purchase pays from it.
    const payment = await newPayment(100);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 300 } });
    await ledgerOk([card]);
  });

  it('a load onto a card whose last write was torn: the torn write is settled from the value block and the load’s own script rewrites the backup', async () => {
    const card = await m1Card();
    const [first, second] = [await paidTopUp(card, 400), await paidTopUp(card, 250)];
    const a = await loadSession(first);
    expect(await run(app, home, a, new TornField(card.chip))).toMatchObject({ state: 'FAILED' });
    await expireSessionPastSettleWait(world, a.id);
    expect(await run(app, home, await loadSession(second), card.chip)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 400, newBalance: 650 } });
    expect([(await topUpOf(first)).status, (await topUpOf(second)).status]).toEqual(['LOADED', 'LOADED']);
    expect(await valueOn(card.chip)).toBe(650);
    await ledgerOk([card]);
  });

  it('value block and backup disagree with no open write to explain them: still a card error, nothing settled or repaired', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 500);
    // Someone with the sector key moves the value block alone (the host wrote nothing onto this card).
    card.chip.authenticate(M1_PURSE.valueBlock, 'B', keyOf(card.uid));
    card.chip.increment(M1_PURSE.valueBlock, 300);
    card.chip.transfer(M1_PURSE.valueBlock);
    card.chip.halt();
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });
    await expect(valueOn(card.chip)).rejects.toThrow(/disagree/);
  });
});
