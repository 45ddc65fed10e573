/**
 * The checks that stand between a card and the ledger, each proved on a second path of its own
 * (card-sessions.test.ts and card-purchase.test.ts prove the first): a load's MAC1, a purchase's
 * TAC, the offline counter a purchase records, and a payment's expiry in its debit guard. Every
 * refusal ends the session with nothing booked. Real HTTP, the SDK's reader agent, virtual cards.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, type CardTransport, type OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createMerchant } from '../src/tenancy/tenancy.service.js';
import { recordPendingLoad } from '../src/topups/topups.service.js';
import { apiClient, auditOf, balanceOnCard, cardholderApp, issueCard, kek, newReader, OPEN, purseBalance, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

type Requester = Pick<OneCardClient, 'request'>;
let issuer: Requester;
let merchant: Requester;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let billerId: string;
let counter: TestReader;
let till: TestReader;
let home: TestReader;
let m1Master: Buffer;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Guard Shop' });
  billerId = (await createBiller(em, { cityId: world.gz.cityId, name: 'Guard Water', kind: BillerKind.WATER })).id;
  m1Master = await storeM1MasterKey(em, kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
  ({ id: holderId, app } = await cardholderApp(world, 'guard-holder', ['card:read', 'card:topup']));
  counter = await newReader(world, 'GUARD-COUNTER', world.gz);
  till = await newReader(world, 'GUARD-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  home = await newReader(world, 'GUARD-HOME', world.gz, { kind: 'CARDHOLDER', id: holderId });
});

// ——— helpers ———

type Session = { id: string; challenge: string };
async function open(by: Requester, input: Record<string, unknown>): Promise<Session> {
  const opened = await by.request<{ openCardSession: { session: Session | null; userErrors: unknown[] } }>(OPEN, { input });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

/** Runs a session through the SDK's reader agent; every reply is kept, to see which commands the host sent. */
async function run(by: Requester, reader: TestReader, session: Session, card: { transport: CardTransport } | { m1: VirtualM1Card }): Promise<{ view: CardSessionView; replies: SessionReply[] }> {
  const replies: SessionReply[] = [];
  const agent = new ReaderAgent({
    deviceKey: reader.deviceKeyPem,
    nationalCertificatePem: reader.nationalPem,
    cityCertificatePem: reader.cityPem,
    trustedCertificatesPem: reader.trustedCertificatesPem, nationalKey: reader.nationalKeyPem, encryptionKey: reader.encryptionKeyPem, encryptionCertificatePem: reader.encryptionPem,
    ...card,
    send: async (input) => {
      const reply = (await by.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input })).cardSessionMessage;
      replies.push(reply);
      return reply;
    },
  });
  return { view: await agent.run(session), replies };
}

/** A card's transport that alters one answer of the card (INS byte `ins`) on its way to the reader. */
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
  out[at]! ^= 0x01;
  return out;
};
const INITIALIZE = 0x50;
const DEBIT_FOR_PURCHASE = 0x54;

/** A CPU card registered to the holder, loaded at the counter with `balance` (chip and purse shadow agree). */
async function cpuCard(balance: number): Promise<VirtualCpuCard> {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623166000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  if (balance > 0) expect((await run(issuer, counter, await open(issuer, { reader: counter.id, operation: 'LOAD', amount: balance }), { transport: new VirtualCardTransport(chip) })).view.state).toBe('COMPLETED');
  return chip;
}

let m1Uids = 0;
async function m1Card(balance: number): Promise<VirtualM1Card> {
  const uid = `6A70${String(++m1Uids).padStart(4, '0')}`;
  const chip = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(m1Master, Buffer.from(u), sector) }) });
  chip.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(m1Master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
  formatM1Purse(chip, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 }, 0);
  chip.halt();
  expect((await run(issuer, counter, await open(issuer, { reader: counter.id, operation: 'LOAD', amount: balance, cardType: 'M1' }), { m1: chip })).view.state).toBe('COMPLETED');
  return chip;
}

let orders = 0;
async function newPayment(amount: number): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, { input: { amount, currency: 'CNY', orderReference: `guard-order-${++orders}`, idempotencyKey: `guard-create-${orders}` } });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

async function newBillPayment(amount: number): Promise<string> {
  const id = randomUUID();
  // The bill straight into its table: publishing has its own tests.
  await world.db.orm.em.fork().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, 'CNY', ?, '2026-10', ?, '2099-12-31', '{"kind":"NONE"}', false, ?, 'PUBLISHED')`,
    [id, billerId, `GUARD-${id.slice(0, 8)}`, amount, `guard-ref-${id}`],
  );
  const made = await app.request<{ payBill: { billPayment: { id: string }; userErrors: unknown[] } }>(`mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }`, { input: { bill: toGlobalId('Bill', id), idempotencyKey: `guard-bill-${id}` } });
  expect(made.payBill.userErrors).toEqual([]);
  return made.payBill.billPayment.id;
}

const paymentStatus = async (id: string) => (await merchant.request<{ payment: { status: string } }>(`query($id: ID!) { payment(id: $id) { status } }`, { id })).payment.status;
const billPaymentStatus = async (id: string) => (await app.request<{ billPayment: { status: string } }>(`query($id: ID!) { billPayment(id: $id) { status } }`, { id })).billPayment.status;

/** Every balance and the journal's size: what "nothing booked" compares. */
async function ledger() {
  const em = world.db.orm.em.fork();
  const accounts = await em.execute<{ code: string; balance: string }[]>(`select code, balance::text as balance from ledger_account order by code`);
  const [{ entries }] = await em.execute<{ entries: number }[]>(`select count(*)::int as entries from journal_entry`);
  return { accounts, entries };
}

/** The refusal is the session's end: FAILED with that code, audited, the last reply carrying no command. */
async function expectRefusal(result: { view: CardSessionView; replies: SessionReply[] }, refusal: string) {
  expect(result.view).toMatchObject({ state: 'FAILED', refusal });
  expect(result.replies.at(-1)!.commands).toEqual([]);
  expect((await auditOf(world, result.view.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal });
}

// ——— the guards ———

describe('a load whose MAC1 was altered between the card and the host', () => {
  it.each(['counter load', 'pending load (补登)'] as const)('%s: WRONG_MAC1, no CREDIT FOR LOAD leaves the host, nothing booked', async (kind) => {
    const chip = await cpuCard(0);
    let input: Record<string, unknown> = { reader: counter.id, operation: 'LOAD', amount: 800 };
    let by: Requester = issuer;
    let reader = counter;
    if (kind === 'pending load (补登)') {
      // A pending load owed to the card (a merchant's refund is one; no gateway needed).
      const [card] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from card where asn = ?`, [chip.asn]);
      const em = world.db.orm.em.fork();
      const from = await openAccount(em, { code: 'test.guard.refunds.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const { topUpId } = await em.transactional((tx) => recordPendingLoad(tx, { origin: 'REFUND', cardId: card!.id, key: `guard-refund-${chip.asn}`, amount: 800n, currency: 'CNY', fromAccountId: from.id, description: 'guard test refund', metadata: {}, cause: 'test' }));
      input = { reader: home.id, operation: 'LOAD', topUp: toGlobalId('TopUp', topUpId) };
      by = app;
      reader = home;
    }
    const before = await ledger();
    const result = await run(by, reader, await open(by, input), { transport: alteringAnswer(chip, INITIALIZE, flipByte(12)) });
    await expectRefusal(result, 'WRONG_MAC1');
    // The host never sealed a CREDIT FOR LOAD: the card holds what it held, the ledger did not move.
    expect(result.replies.flatMap((r) => r.commands).some((c) => c.sealed)).toBe(false);
    expect(await balanceOnCard(chip)).toBe(0);
    expect(await ledger()).toEqual(before);
    expect(await purseBalance(world, chip.asn)).toBeUndefined();
    // The same card, answering truly, loads: the refusal was the MAC1's.
    const again = await run(by, reader, await open(by, input), { transport: new VirtualCardTransport(chip) });
    expect(again.view.state).toBe('COMPLETED');
    expect(await purseBalance(world, chip.asn)).toBe(800n);
  });
});

describe('a purchase whose TAC does not verify', () => {
  it.each(['merchant payment', 'bill payment'] as const)('%s: WRONG_TAC, not paid, nothing booked', async (kind) => {
    const chip = await cpuCard(2_000);
    const purpose: { payment: string } | { billPayment: string } = kind === 'merchant payment' ? { payment: await newPayment(700) } : { billPayment: await newBillPayment(700) };
    const status = () => ('payment' in purpose ? paymentStatus(purpose.payment) : billPaymentStatus(purpose.billPayment));
    const before = await ledger();
    const result = await run(app, home, await open(app, { reader: home.id, operation: 'PURCHASE', ...purpose }), { transport: alteringAnswer(chip, DEBIT_FOR_PURCHASE, flipByte(0)) });
    await expectRefusal(result, 'WRONG_TAC');
    expect(await ledger()).toEqual(before);
    expect(await purseBalance(world, chip.asn)).toBe(2_000n);
    expect(await status()).not.toBe('SUCCEEDED');
  });
});

describe('the offline counter a purchase records', () => {
  it.each(['merchant payment', 'bill payment'] as const)('%s: a copy of the card from before it is refused (COUNTER_ROLLBACK) at the next purchase', async (kind) => {
    const chip = await cpuCard(3_000);
    const before = chip.toJSON();
    const purpose = async () => (kind === 'merchant payment' ? { payment: await newPayment(500) } : { billPayment: await newBillPayment(500) });
    const paid = await run(app, home, await open(app, { reader: home.id, operation: 'PURCHASE', ...(await purpose()) }), { transport: new VirtualCardTransport(chip) });
    expect(paid.view.state).toBe('COMPLETED');
    const ledgerAfterPurchase = await ledger();

    // The card as it was before that purchase: the same offline counter the purchase used.
    const copy = VirtualCpuCard.fromJSON(before);
    const refused = await run(app, home, await open(app, { reader: home.id, operation: 'PURCHASE', ...(await purpose()) }), { transport: new VirtualCardTransport(copy) });
    await expectRefusal(refused, 'COUNTER_ROLLBACK');
    expect(await balanceOnCard(copy)).toBe(3_000);
    expect(await ledger()).toEqual(ledgerAfterPurchase);
    // The real card, a counter further on, pays again.
    expect((await run(app, home, await open(app, { reader: home.id, operation: 'PURCHASE', ...(await purpose()) }), { transport: new VirtualCardTransport(chip) })).view.state).toBe('COMPLETED');
  });
});

describe('a payment that expires after its session opened', () => {
  it.each(['CPU card at the merchant’s till', 'M1 card on the holder’s reader'] as const)('%s: refused before the card pays (PURPOSE_REFUSED), nothing booked', async (kind) => {
    const payment = await newPayment(400);
    const cpu = kind.startsWith('CPU') ? await cpuCard(1_000) : null;
    const m1 = cpu ? null : await m1Card(1_000);
    const [by, reader] = cpu ? [merchant, till] : [app, home];
    const session = await open(by, { reader: reader.id, operation: 'PURCHASE', payment, cardType: cpu ? 'CPU' : 'M1' });
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(payment).id]);
    const before = await ledger();
    const result = await run(by, reader, session, cpu ? { transport: new VirtualCardTransport(cpu) } : { m1: m1! });
    await expectRefusal(result, 'PURPOSE_REFUSED');
    const [{ detail }] = await world.db.orm.em.fork().execute<{ detail: { message: string } }[]>(`select detail from card_session_audit where session_id = ? and outcome = 'REFUSED'`, [fromGlobalId(result.view.id).id]);
    expect(detail.message).toMatch(/expired/);
    // No debit ever reached the card: no sealed DEBIT FOR PURCHASE (CPU), no write script after the purse read (M1).
    const commands = result.replies.flatMap((r) => r.commands);
    if (cpu) expect(commands.filter((c) => c.sealed)).toEqual([]);
    else expect(commands.filter((c) => c.sealedScript)).toHaveLength(1);
    if (cpu) expect(await balanceOnCard(cpu)).toBe(1_000);
    expect(await ledger()).toEqual(before);
    expect(await paymentStatus(payment)).not.toBe('SUCCEEDED');
  });
});

it('leaves the ledger consistent', async () => {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
});
