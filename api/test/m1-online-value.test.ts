/**
 * Issue 21: M1 (MIFARE Classic) cards get online value, the seed's own worked example. Pending
 * loads (a top-up paid at the sandbox gateway, a merchant's refund, a replaced card's balance) are
 * written onto an M1 card by a host-signed write script bound to the card's UID and to the value the
 * reader read; at most once with two readers racing; a lost answer is settled from the card's value
 * at its next session (proved iff the value moved by exactly the write), for loads and purchases
 * alike. How the writes are settled when answers go astray: at most one open write per card, so a
 * lost write is never settled from a value another write produced; a write script held past its
 * session's expiry is refused by the reader, and a late signed report is recorded, never dropped; a
 * write torn between the value block and its backup is settled from the value block and the backup
 * repaired. Real HTTP, the SDK's reader agent, virtual M1 cards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, HostMessageRefusedError, type OneCardClient, ReaderAgent, type SessionReply } from '../../sdk-js/src/index.js';
import { type M1Card, runM1Script, type M1ScriptOp } from '../../sdk-js/src/reader/reader-agent.js';
import { issueCard as registerCard, runDueBalanceTransfers } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB, purseValue, readPurseScript } from '../src/readers/m1/m1-script.js';
import { M1_SETTLE_AFTER_EXPIRY_SECONDS, recordM1Write } from '../src/readers/session/m1-writes.js';
import { SESSION_TTL_SECONDS, type SessionRow } from '../src/readers/session/session.model.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { apiClient, auditOf, cardholderApp, expireSession, expireSessionPastSettleWait, kek, newReader, OPEN, purseBalance, sessionUuid, type TestReader, testCardNumber, useCardSessionWorld, readerAgentOptions } from './support/card-sessions.js';
import { constants, createDecipheriv, privateDecrypt } from 'node:crypto';

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

/** Spent offline (a bus fare at a terminal that holds the sector keys): the chip moves, the host hears nothing yet. */
async function spendOffline(chip: VirtualM1Card, amount: number): Promise<void> {
  const now = await valueOn(chip);
  chip.authenticate(M1_PURSE.valueBlock, 'B', keyOf(chip.uid));
  await runM1Script(chip, [
    { op: 'decrement', block: M1_PURSE.valueBlock, value: amount },
    { op: 'transfer', block: M1_PURSE.valueBlock },
    { op: 'write', block: M1_PURSE.backupBlock, data: valueBlockHex(now - amount) },
  ]);
  chip.halt();
}
const valueBlockHex = (value: number) => {
  const b = Buffer.alloc(16);
  b.writeInt32LE(value, 0);
  b.writeInt32LE(~value, 4);
  b.writeInt32LE(value, 8);
  b.set([M1_PURSE.valueBlock, ~M1_PURSE.valueBlock & 0xff, M1_PURSE.valueBlock, ~M1_PURSE.valueBlock & 0xff], 12);
  return b.toString('hex').toUpperCase();
};

async function openSession(by: Requester, input: Record<string, unknown>): Promise<Session> {
  const opened = await by.request<{ openCardSession: { session: Session | null; userErrors: unknown[] } }>(OPEN, { input });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

/** Runs a session through the SDK's reader agent; `relay` may lose or alter what passes, `replies` keeps what came back, `clock` is the reader's. */
async function run(by: Requester, reader: TestReader, session: Session, card: M1Card, relay: (by: Requester) => Requester = (r) => r, replies: SessionReply[] = [], clock?: () => number): Promise<CardSessionView> {
  const through = relay(by);
  const agent = new ReaderAgent({
    ...readerAgentOptions(reader),
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

/** Two ways the reader's report of a write (message 3) is lost after the card was written. */
const REPORT_LOST: Record<string, (by: Requester) => Requester> = {
  'the app dies after the card was written': broken(3, 'request'),
  'the relay corrupts the report': (by) => ({
    request: <T>(query: string, variables?: Record<string, unknown>) => {
      const input = (variables as { input?: { seq?: number; body?: string } } | undefined)?.input;
      if (input?.seq !== 3) return by.request<T>(query, variables);
      return by.request<T>(query, { input: { ...input, body: input.body!.replace('true', 'false') } });
    },
  }),
};

/** The reader's signed report of a write (message 3) reaches the host after the session's limit. */
const reportAfterTheLimit = (by: Requester): Requester => ({
  request: async <T>(query: string, variables?: Record<string, unknown>) => {
    const input = (variables as { input?: { seq?: number; session?: string } } | undefined)?.input;
    if (input?.seq === 3) await expireSession(world, input.session!);
    return by.request<T>(query, variables);
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

/** A merchant's refund of a payment the M1 card made: a REFUND pending load for the card. */
async function refundLoad(card: { chip: VirtualM1Card }, amount: number): Promise<string> {
  await counterLoad(card.chip, amount);
  const payment = await newPayment(amount);
  expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED' });
  const refunded = await merchant.request<{ refundPayment: { refund: { pendingLoad: string }; userErrors: unknown[] } }>(
    `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { pendingLoad } userErrors { code message } } }`,
    { input: { payment, amount, reason: 'returned', idempotencyKey: `m1-refund-${payment}` } },
  );
  expect(refunded.refundPayment.userErrors).toEqual([]);
  return refunded.refundPayment.refund.pendingLoad;
}

/** A replaced M1 card's balance, moved by the transfer job to the replacement: a TRANSFER pending load on the new card. */
async function transferLoad(amount: number): Promise<{ card: Awaited<ReturnType<typeof m1Card>>; pendingLoad: string }> {
  const old = await m1Card();
  await counterLoad(old.chip, amount);
  const uid = `5A1E${String(++uids).padStart(4, '0')}`;
  const replaced = await issuer.request<{ replaceCard: { card: { id: string }; userErrors: unknown[] } }>(
    `mutation($input: ReplaceCardInput!) { replaceCard(input: $input) { card { id } userErrors { code message } } }`,
    { input: { card: old.id, newCard: { cardNumber: testCardNumber('623177000000'), asn: uid, cardType: 'M1', keyVersion: 1, issuedOn: '2026-02-01', expiresOn: '2031-02-01' }, reason: 'damaged' } },
  );
  expect(replaced.replaceCard.userErrors).toEqual([]);
  expect(await runDueBalanceTransfers(world.db.orm.em.fork(), new Date(Date.now() + 365 * 24 * 3600_000))).toBeGreaterThanOrEqual(1);
  const chip = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(master, Buffer.from(u), sector) }) });
  chip.authenticate(M1_PURSE.valueBlock, 'B', keyOf(uid));
  formatM1Purse(chip, LAYOUT, 0);
  chip.halt();
  const view = await app.request<{ node: { pendingLoads: { topUp: { id: string }; source: string }[] } }>(`query($id: ID!) { node(id: $id) { ... on Card { pendingLoads { topUp { id } source } } } }`, { id: replaced.replaceCard.card.id });
  expect(view.node.pendingLoads.map((l) => l.source)).toEqual(['TRANSFER']);
  return { card: { chip, uid, id: replaced.replaceCard.card.id }, pendingLoad: view.node.pendingLoads[0]!.topUp.id };
}

async function ledgerOk(cards: { chip: VirtualM1Card; uid: string }[]): Promise<void> {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  // The card is the truth for value: every chip holds what the ledger's shadow of its purse holds.
  for (const c of cards) expect({ uid: c.uid, value: await valueOn(c.chip) }).toEqual({ uid: c.uid, value: Number((await purseBalance(world, c.uid)) ?? 0n) });
}

const loadSession = (pendingLoad: string, reader = home) => openSession(app, { reader: reader.id, operation: 'LOAD', topUp: pendingLoad });

// ——— the tests ———

describe('pending loads written onto M1 cards by host-signed scripts', () => {
  it('a top-up paid at the sandbox gateway is written onto the M1 card (补登): LOADED, the chip and the ledger agree', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 1_500);
    const done = await run(app, home, await loadSession(topUp), card.chip);
    expect(done).toMatchObject({ state: 'COMPLETED', result: { asn: card.uid, oldBalance: 0, newBalance: 1_500, amount: 1_500 } });
    expect(await valueOn(card.chip)).toBe(1_500);
    const loaded = await topUpOf(topUp);
    expect(loaded.status).toBe('LOADED');
    expect(loaded.history.at(-1)!.cause).toMatch(/signed read-back/);
    await ledgerOk([card]);
  });

  const ORIGINS: Record<string, () => Promise<{ card: Awaited<ReturnType<typeof m1Card>>; pendingLoad: string; before: number }>> = {
    'a top-up': async () => {
      const card = await m1Card();
      return { card, pendingLoad: await paidTopUp(card, 2_000), before: 0 };
    },
    'a merchant’s refund': async () => {
      const card = await m1Card();
      return { card, pendingLoad: await refundLoad(card, 800), before: 0 };
    },
    'a replaced card’s balance': async () => ({ ...(await transferLoad(1_200)), before: 0 }),
  };

  for (const [origin, make] of Object.entries(ORIGINS)) {
    it(`${origin}: two readers write it at once (the card and a copy, one in each field): written once, booked once`, async () => {
      const { card, pendingLoad, before } = await make();
      const amount = (await app.request<{ topUp: { status: string; amount: { amount: number } } }>(`query($id: ID!) { topUp(id: $id) { status amount { amount } } }`, { id: pendingLoad })).topUp.amount.amount;
      const copy = VirtualM1Card.fromJSON(card.chip.toJSON());
      const [s1, s2] = await Promise.all([loadSession(pendingLoad, home), loadSession(pendingLoad, second)]);
      const results = await Promise.all([run(app, home, s1, card.chip), run(app, second, s2, copy)]);
      expect(results.map((r) => r.state).sort()).toEqual(['COMPLETED', 'FAILED']);
      expect(results.find((r) => r.state === 'FAILED')!.refusal).toMatch(/^(LOAD_IN_PROGRESS|ALREADY_LOADED)$/);
      // Exactly one of the two chips took the value, and the ledger moved it once.
      expect(await valueOn(card.chip) + await valueOn(copy)).toBe(2 * before + amount);
      expect(await purseBalance(world, card.uid)).toBe(BigInt(before + amount));
      expect((await topUpOf(pendingLoad)).status).toBe('LOADED');
      const winner = results[0]!.state === 'COMPLETED' ? card : { ...card, chip: copy };
      await ledgerOk([winner]);
    });
  }

  for (const [how, relay] of Object.entries(REPORT_LOST)) {
    it(`the card took the write, ${how}: the next session settles it from the card's value, LOADED once, not written twice`, async () => {
      const card = await m1Card();
      const topUp = await paidTopUp(card, 1_000);
      const first = await loadSession(topUp);
      await run(app, home, first, card.chip, relay).catch(() => undefined);
      expect(await valueOn(card.chip)).toBe(1_000);
      expect((await topUpOf(topUp)).status).toBe('PAID');
      await expireSessionPastSettleWait(world, first.id);
      // The holder taps again to load it: the card's value shows the write, so nothing more is written.
      const retried = await run(app, home, await loadSession(topUp), card.chip);
      expect(retried).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_LOADED' });
      expect(await valueOn(card.chip)).toBe(1_000);
      const loaded = await topUpOf(topUp);
      expect(loaded.status).toBe('LOADED');
      expect(loaded.history.at(-1)!.cause).toMatch(/the card's value at card session/);
      expect((await auditOf(world, first.id)).at(-1)).toMatchObject({ step: 'settled', outcome: 'ACCEPTED' });
      await ledgerOk([card]);
    });
  }

  it('the card took the write, its signed report came after the session limit: refused SESSION_EXPIRED but not dropped, the read-back books it, LOADED once, not written twice', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 1_000);
    const first = await loadSession(topUp);
    expect(await run(app, home, first, card.chip, reportAfterTheLimit)).toMatchObject({ state: 'FAILED', refusal: 'SESSION_EXPIRED' });
    expect(await valueOn(card.chip)).toBe(1_000);
    const loaded = await topUpOf(topUp);
    expect(loaded.status).toBe('LOADED');
    expect((await auditOf(world, first.id)).map((a) => a.step)).toContain('late read-back');
    // Loading it again is refused before the card is touched.
    const again = await app.request<{ openCardSession: { userErrors: { code: string; message: string }[] } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp } });
    expect(again.openCardSession.userErrors[0]).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await valueOn(card.chip)).toBe(1_000);
    await ledgerOk([card]);
  });

  it('the script never reached the card (the answer carrying it was lost): a balance read settles it as not written, and the next load writes it once', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 700);
    const first = await loadSession(topUp);
    await expect(run(app, home, first, card.chip, broken(2, 'answer'))).rejects.toThrow('connection lost');
    await expireSessionPastSettleWait(world, first.id);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
    expect((await auditOf(world, first.id)).at(-1)).toMatchObject({ step: 'settled', outcome: 'ACCEPTED' });
    expect(await run(app, home, await loadSession(topUp), card.chip)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 0, newBalance: 700 } });
    expect(await valueOn(card.chip)).toBe(700);
    expect((await topUpOf(topUp)).status).toBe('LOADED');
    await ledgerOk([card]);
  });

  it('the value moved by something else since the lost write (spent offline): unresolved, nothing booked, the card company settles it', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 500);
    const topUp = await paidTopUp(card, 1_000);
    const first = await loadSession(topUp);
    await run(app, home, first, card.chip, broken(3, 'request')).catch(() => undefined);
    expect(await valueOn(card.chip)).toBe(1_500);
    await expireSessionPastSettleWait(world, first.id);
    await spendOffline(card.chip, 200);
    const retried = await run(app, home, await loadSession(topUp), card.chip);
    expect(retried).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect(await valueOn(card.chip)).toBe(1_300);
    expect((await topUpOf(topUp)).status).toBe('PAID');
    expect(await purseBalance(world, card.uid)).toBe(500n);
    expect((await auditOf(world, first.id)).at(-1)).toMatchObject({ step: 'settled', outcome: 'REFUSED' });
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
    // The card company looks at the chip (13.00 = 5.00 + 10.00 − a 2.00 fare) and settles it as loaded.
    const resolved = await issuer.request<{ resolvePendingLoad: { topUp: { status: string }; userErrors: unknown[] } }>(
      `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code message } } }`,
      { input: { topUp, loaded: true, note: 'chip 13.00: the 10.00 arrived, a 2.00 fare followed', idempotencyKey: `m1-resolve-${topUp}` } },
    );
    expect(resolved.resolvePendingLoad).toEqual({ topUp: { status: 'LOADED' }, userErrors: [] });
    expect(await purseBalance(world, card.uid)).toBe(1_500n);
  });
});

/** The write script the host sent in a session, opened with the reader's encryption key (what an attacker holding the reader could replay). */
function writeScriptOf(replies: SessionReply[], reader: TestReader, sessionId: string): M1ScriptOp[] {
  const signed = JSON.parse(replies.find((r) => r.hostMessage && JSON.parse(r.hostMessage.payload).state === 'AWAITING_WRITE')!.hostMessage!.payload) as { seq: number; commands: { sealedScript: { wrappedKey: string; iv: string; ciphertext: string; tag: string } }[] };
  const sealed = signed.commands[0]!.sealedScript;
  const aesKey = privateDecrypt({ key: reader.encryptionKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.wrappedKey, 'base64'));
  const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(sealed.iv, 'base64')).setAAD(Buffer.from(`${sessionId}:${signed.seq + 1}`));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return JSON.parse(Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8')) as M1ScriptOp[];
}

/**
 * The reader's field: the card the reader drives, and what happens once its first script (the purse
 * read) has run and before the write script comes: the card swapped for another, or its value moved.
 */
class ReaderField implements M1Card {
  private scripts = 0;
  constructor(
    private card: VirtualM1Card,
    private readonly betweenScripts: () => VirtualM1Card | void | Promise<VirtualM1Card | void>,
  ) {}
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
  async halt() {
    this.card.halt();
    if (++this.scripts === 1) this.card = (await this.betweenScripts()) ?? this.card;
  }
}

describe('a write script is bound to one card and one value', () => {
  it('replayed onto another card, or onto the same card after its value changed, the script stops before writing', async () => {
    const card = await m1Card();
    const other = await m1Card();
    const topUp = await paidTopUp(card, 600);
    const replies: SessionReply[] = [];
    const session = await loadSession(topUp);
    expect(await run(app, home, session, card.chip, undefined, replies)).toMatchObject({ state: 'COMPLETED' });
    const script = writeScriptOf(replies, home, session.id);
    // The script names the card and the value it was written for, before anything it writes.
    expect(script.slice(0, 3).map((op) => op.op)).toEqual(['uid', 'auth', 'compare']);
    // The same card again (its value moved by the load): stops at the compare; it keeps 6.00.
    expect((await runM1Script(card.chip, script)).at(-1)).toEqual({ ok: false, error: 'VALUE_MISMATCH' });
    card.chip.halt();
    expect(await valueOn(card.chip)).toBe(600);
    // Another card: stops at the UID; it keeps 0.
    expect(await runM1Script(other.chip, script)).toEqual([{ ok: false, error: 'UID_MISMATCH' }]);
    other.chip.halt();
    expect(await valueOn(other.chip)).toBe(0);
    // And a host message replayed into another session is refused by the reader before the card sees it.
    const later = await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' });
    const agent = new ReaderAgent({ deviceKey: home.deviceKeyPem, nationalCertificatePem: home.nationalPem, cityCertificatePem: home.cityPem, trustedCertificatesPem: home.trustedCertificatesPem, encryptionKey: home.encryptionKeyPem, m1: card.chip, send: async () => replies[1]! });
    await expect(agent.run(later)).rejects.toThrow(HostMessageRefusedError);
    await ledgerOk([card, other]);
  });

  it('the card is swapped for another between the purse read and the write: the reader refuses the script, the host records nothing written, and the load is written once later', async () => {
    const card = await m1Card();
    const other = await m1Card();
    const topUp = await paidTopUp(card, 900);
    const first = await loadSession(topUp);
    const refused = await run(app, home, first, new ReaderField(card.chip, () => other.chip));
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });
    expect(await valueOn(card.chip)).toBe(0);
    expect(await valueOn(other.chip)).toBe(0);
    const [write] = await world.db.orm.em.fork().execute<{ outcome: string; settled_from: string }[]>(`select outcome, settled_from from card_m1_write where session_id = ?`, [sessionUuid(first.id)]);
    expect(write).toMatchObject({ outcome: 'NOT_WRITTEN', settled_from: expect.stringMatching(/UID_MISMATCH/) });
    expect(await run(app, home, await loadSession(topUp), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 900 } });
    expect((await topUpOf(topUp)).status).toBe('LOADED');
    await ledgerOk([card, other]);
  });

  it('the card’s value moves between the purse read and the write: the reader refuses the script, nothing is written, the load stays pending', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 400);
    const topUp = await paidTopUp(card, 300);
    const first = await loadSession(topUp);
    // A fare taken off the chip (another terminal) between message 2 and the script.
    const refused = await run(app, home, first, new ReaderField(card.chip, () => spendOffline(card.chip, 100)));
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'CARD_ERROR' });
    expect(await valueOn(card.chip)).toBe(300);
    expect((await topUpOf(topUp)).status).toBe('PAID');
    const [write] = await world.db.orm.em.fork().execute<{ outcome: string; settled_from: string }[]>(`select outcome, settled_from from card_m1_write where session_id = ?`, [sessionUuid(first.id)]);
    expect(write).toMatchObject({ outcome: 'NOT_WRITTEN', settled_from: expect.stringMatching(/VALUE_MISMATCH/) });
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('M1 purchases settled from the next session’s value', () => {
  it('the card paid and the answer was lost: the next tap (a balance read) settles the payment SUCCEEDED, once', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 2_000);
    const payment = await newPayment(650);
    const first = await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' });
    await run(app, home, first, card.chip, broken(3, 'request')).catch(() => undefined);
    expect(await valueOn(card.chip)).toBe(1_350);
    expect(await paymentStatus(payment)).toBe('PROCESSING');
    await expireSessionPastSettleWait(world, first.id);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 1_350 } });
    expect(await paymentStatus(payment)).toBe('SUCCEEDED');
    expect(await purseBalance(world, card.uid)).toBe(1_350n);
    // Paying it again is refused before the card is touched.
    const again = await app.request<{ openCardSession: { userErrors: { code: string; message: string }[] } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' } });
    expect(again.openCardSession.userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/SUCCEEDED/) });
    expect(await valueOn(card.chip)).toBe(1_350);
    await ledgerOk([card]);
  });

  it('the card did not pay (the script never reached it): the retry of the payment settles the lost attempt as not paid and pays once', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 1_000);
    const payment = await newPayment(400);
    const first = await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' });
    await expect(run(app, home, first, card.chip, broken(2, 'answer'))).rejects.toThrow('connection lost');
    await expireSessionPastSettleWait(world, first.id);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 1_000, newBalance: 600 } });
    expect(await paymentStatus(payment)).toBe('SUCCEEDED');
    expect(await valueOn(card.chip)).toBe(600);
    await ledgerOk([card]);
  });

  it('the card paid and the answer was lost, then it paid something else offline: unresolved, the payment is not settled from a value that cannot tell', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 1_000);
    const payment = await newPayment(300);
    const first = await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' });
    await run(app, home, first, card.chip, broken(3, 'request')).catch(() => undefined);
    await expireSessionPastSettleWait(world, first.id);
    await spendOffline(card.chip, 50);
    const retried = await run(app, home, await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' }), card.chip);
    expect(retried).toMatchObject({ state: 'FAILED', refusal: 'PAYMENT_UNRESOLVED' });
    expect(await paymentStatus(payment)).toBe('PROCESSING');
    expect(await valueOn(card.chip)).toBe(650);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('an M1 purchase its payment no longer takes', () => {
  it('the card paid, the answer was lost and the payment was canceled since (CARD_ANSWER_LOST): the value comes back as a pending load, written back once', async () => {
    const card = await m1Card();
    await counterLoad(card.chip, 1_000);
    const payment = await newPayment(250);
    const first = await openSession(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: 'M1' });
    await run(app, home, first, card.chip, broken(3, 'request')).catch(() => undefined);
    await expireSessionPastSettleWait(world, first.id);
    // What the expiry job does a day later when nobody tapped again.
    await world.db.orm.em.fork().execute(`update payment set status = 'CANCELED', cancel_reason = 'EXPIRED', failure_code = 'CARD_ANSWER_LOST', canceled_at = now() where id = ?`, [sessionUuid(payment)]);
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 750 } });
    expect(await paymentStatus(payment)).toBe('CANCELED');
    expect(await purseBalance(world, card.uid)).toBe(750n);
    const pending = await app.request<{ node: { pendingLoads: { topUp: { id: string }; source: string; amount: { amount: number } }[] } }>(`query($id: ID!) { node(id: $id) { ... on Card { pendingLoads { topUp { id } source amount { amount } } } } }`, { id: card.id });
    expect(pending.node.pendingLoads.map((l) => [l.source, l.amount.amount])).toEqual([['REFUND', 250]]);
    // The next tap returns nothing twice; the load session writes it back.
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED' });
    expect(await run(app, home, await loadSession(pending.node.pendingLoads[0]!.topUp.id), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 1_000 } });
    await ledgerOk([card]);
  });
});

describe('the limit per M1 load (a card company setting)', () => {
  const UPDATE = `mutation($input: UpdateCityInput!) { updateCity(input: $input) { city { id } userErrors { code field } } }`;
  const limitNow = async () => (await issuer.request<{ cardCompany: { m1LoadLimit: { amount: number; currency: string } } }>(`query($id: ID!) { cardCompany(id: $id) { m1LoadLimit { amount currency } } }`, { id: Buffer.from(`CardCompany:${world.gz.cardCompanyId}`).toString('base64url') })).cardCompany.m1LoadLimit;

  it('the operator sets it for the city’s card company (updateCity); the card company reads it; a value no M1 block can hold is refused', async () => {
    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['tenants:manage']);
    const city = Buffer.from(`City:${world.gz.cityId}`).toString('base64url');
    expect(await limitNow()).toEqual({ amount: 20_000, currency: 'CNY' });
    for (const bad of [0, 2_147_483_648]) {
      expect((await operator.request<{ updateCity: { userErrors: unknown[] } }>(UPDATE, { input: { city, m1LoadLimit: bad } })).updateCity.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'm1LoadLimit'] }]);
    }
    expect((await operator.request<{ updateCity: { userErrors: unknown[] } }>(UPDATE, { input: { city, m1LoadLimit: 1_000 } })).updateCity.userErrors).toEqual([]);
    expect(await limitNow()).toEqual({ amount: 1_000, currency: 'CNY' });
    // Only the operator: the card company itself cannot raise it.
    await expect(issuer.request(UPDATE, { input: { city, m1LoadLimit: 50_000 } })).rejects.toThrow();
    expect((await operator.request<{ updateCity: { userErrors: unknown[] } }>(UPDATE, { input: { city, m1LoadLimit: 20_000 } })).updateCity.userErrors).toEqual([]);
  });

  it('a pickup of several pending loads whose sum passes it is refused when it is opened (one M1 write takes them all), not at every tap; each alone is written', async () => {
    const card = await m1Card();
    const [a, b] = [await paidTopUp(card, 600), await paidTopUp(card, 600)];
    await world.db.orm.em.fork().execute(`update card_company set m1_load_max = 1000 where id = ?`, [world.gz.cardCompanyId]);
    try {
      const opened = await app.request<{ openCardSession: { session: unknown; userErrors: { code: string; field: string[]; message: string }[] } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', pendingLoads: [a, b] } });
      expect(opened.openCardSession.session).toBeNull();
      expect(opened.openCardSession.userErrors).toEqual([{ code: 'INVALID_INPUT', message: expect.stringMatching(/limit per M1 load/) }]);
      expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'LOAD', pendingLoads: [a] }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 600 } });
      expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'LOAD', pendingLoads: [b] }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 1_200 } });
    } finally {
      await world.db.orm.em.fork().execute(`update card_company set m1_load_max = default where id = ?`, [world.gz.cardCompanyId]);
    }
    expect(await valueOn(card.chip)).toBe(1_200);
    await ledgerOk([card]);
  });

  it('a top-up above it is refused for an M1 card; a counter load above it is refused before the script leaves, and nothing is written', async () => {
    const card = await m1Card();
    await world.db.orm.em.fork().execute(`update card_company set m1_load_max = 1000 where id = ?`, [world.gz.cardCompanyId]);
    try {
      const made = await app.request<{ createTopUp: { userErrors: { code: string; field: string[] }[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { userErrors { code field } } }`, { input: { card: card.id, amount: 1_001, idempotencyKey: 'm1-over-limit' } });
      expect(made.createTopUp.userErrors).toEqual([{ code: 'TOP_UP_AMOUNT_OUT_OF_RANGE', field: ['input', 'amount'] }]);
      const refused = await run(issuer, counter, await openSession(issuer, { reader: counter.id, operation: 'LOAD', amount: 1_001, cardType: 'M1' }), card.chip);
      expect(refused).toMatchObject({ state: 'FAILED', refusal: 'M1_LOAD_LIMIT' });
      expect(await valueOn(card.chip)).toBe(0);
      await counterLoad(card.chip, 1_000);
      expect(await valueOn(card.chip)).toBe(1_000);
    } finally {
      await world.db.orm.em.fork().execute(`update card_company set m1_load_max = default where id = ?`, [world.gz.cardCompanyId]);
    }
    await ledgerOk([card]);
  });

  it('a write script run late, after the host settled its write as not made, is not followed by a second write of the load', async () => {
    const card = await m1Card();
    const topUp = await paidTopUp(card, 800);
    const first = await loadSession(topUp);
    // The host's answer carrying the write script is kept by whoever holds the reader, and never reaches the card now.
    const kept: SessionReply[] = [];
    const keeping = (by: Requester): Requester => ({
      async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
        const reply = await by.request<T>(query, variables);
        if ((variables as { input?: { seq?: number } }).input?.seq === 2) {
          kept.push((reply as { cardSessionMessage: SessionReply }).cardSessionMessage);
          throw new Error('connection lost');
        }
        return reply;
      },
    });
    await expect(run(app, home, first, card.chip, keeping)).rejects.toThrow('connection lost');
    await expireSessionPastSettleWait(world, first.id);
    // A balance read: the value is unchanged, so the write is settled as not made.
    expect(await run(app, home, await openSession(app, { reader: home.id, operation: 'BALANCE', cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
    // Then the kept script is run on the card after all.
    const script = writeScriptOf(kept, home, first.id);
    expect((await runM1Script(card.chip, script)).every((r) => r.ok)).toBe(true);
    card.chip.halt();
    expect(await valueOn(card.chip)).toBe(800);
    // The holder loads the top-up again: the card holds more than the ledger booked after a write taken as not made: refused.
    const refused = await run(app, home, await loadSession(topUp), card.chip);
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'PURSE_MISMATCH' });
    expect(await valueOn(card.chip)).toBe(800);
    expect((await topUpOf(topUp)).status).toBe('PAID');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card whose value came from before OneCard knew it (nothing ever taken as not made) is still loaded, and the difference is recorded', async () => {
    const card = await m1Card();
    await chipCredit(card.chip, 5_000);
    expect(await run(issuer, counter, await openSession(issuer, { reader: counter.id, operation: 'LOAD', amount: 100, cardType: 'M1' }), card.chip)).toMatchObject({ state: 'COMPLETED', result: { newBalance: 5_100 } });
    const [discrepancy] = await world.db.orm.em.fork().execute<{ card_balance: string; shadow_balance: string }[]>(`select card_balance::text, shadow_balance::text from card_balance_discrepancy where card_asn = ? order by id desc limit 1`, [card.uid]);
    expect(discrepancy).toEqual({ card_balance: '5100', shadow_balance: '100' });
  });
});

async function chipCredit(chip: VirtualM1Card, amount: number): Promise<void> {
  const now = await valueOn(chip);
  chip.authenticate(M1_PURSE.valueBlock, 'B', keyOf(chip.uid));
  await runM1Script(chip, [
    { op: 'increment', block: M1_PURSE.valueBlock, value: amount },
    { op: 'transfer', block: M1_PURSE.valueBlock },
    { op: 'write', block: M1_PURSE.backupBlock, data: valueBlockHex(now + amount) },
  ]);
  chip.halt();
}

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
