/**
 * Every reader → host message of every kind of card session carries the reader's signature, and a
 * message whose signature does not verify is refused, whatever step it is: BAD_SIGNATURE, an audit
 * row, the session FAILED, and no money moved (ledger and purse shadow as before). One test body,
 * a table of cases: message × operation (purpose) × card type × how the signature was tampered.
 * Sessions run through the SDK's ReaderAgent over real HTTP; only the relay between the reader and
 * the host is touched, so this holds whatever the engine looks like inside.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, type CardSessionView, type OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { apiClient, auditOf, cardholderApp, issueCard, kek, newReader, OPEN, purseBalance, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const GATEWAY_SECRET = 'sk_test_signatures';
const WEBHOOK_SECRET = 'whsec_signatures_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: GATEWAY_SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
afterAll(async () => {
  await sandbox?.close();
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: GATEWAY_SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });

type Requester = Pick<OneCardClient, 'request'>;
let issuer: Requester;
let merchant: Requester;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let billerId: string;
let counter: TestReader;
let till: TestReader;
let home: TestReader;
/** Another certified reader of the same city: its key makes a well-formed signature that is not this reader's. */
let stranger: ReaderAgent;
let m1Master: Buffer;

beforeAll(async () => {
  sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Signature Shop' });
  billerId = (await createBiller(em, { cityId: world.gz.cityId, name: 'Signature Water', kind: BillerKind.WATER })).id;
  m1Master = await storeM1MasterKey(em, kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
  ({ id: holderId, app } = await cardholderApp(world, 'sig-holder', ['card:read', 'card:topup']));
  counter = await newReader(world, 'SIG-COUNTER', world.gz);
  till = await newReader(world, 'SIG-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  home = await newReader(world, 'SIG-HOME', world.gz, { kind: 'CARDHOLDER', id: holderId });
  const other = await newReader(world, 'SIG-STRANGER', world.gz);
  stranger = new ReaderAgent({ deviceKey: other.deviceKeyPem, nationalCertificatePem: other.nationalPem, cityCertificatePem: other.cityPem, trustedCertificatesPem: other.trustedCertificatesPem, nationalKey: other.nationalKeyPem, encryptionKey: other.encryptionKeyPem, encryptionCertificatePem: other.encryptionPem, send: async () => ({}) as SessionReply });
});

// ——— cards ———

type Card = { kind: 'CPU'; chip: VirtualCpuCard; asn: string } | { kind: 'M1'; chip: VirtualM1Card; asn: string };
let m1Uids = 0;

/** A card registered to the holder, loaded at the counter with `balance` by a clean session (chip and shadow agree). */
async function newCard(type: 'CPU' | 'M1', balance: number): Promise<Card> {
  let card: Card;
  if (type === 'CPU') {
    const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623155000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
    card = { kind: 'CPU', chip, asn: chip.asn };
  } else {
    const uid = `5160${String(++m1Uids).padStart(4, '0')}`;
    const chip = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(m1Master, Buffer.from(u), sector) }) });
    chip.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(m1Master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
    formatM1Purse(chip, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 }, 0);
    chip.halt();
    card = { kind: 'M1', chip, asn: uid.toUpperCase() };
  }
  if (balance > 0) {
    const loaded = await runSession(card, await open(issuer, { reader: counter.id, operation: 'LOAD', amount: balance, cardType: type }), counter, issuer);
    expect(loaded.view.state).toBe('COMPLETED');
  }
  return card;
}

// ——— what a session pays or loads ———

let orders = 0;
async function newPayment(amount: number): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, { input: { amount, currency: 'CNY', orderReference: `sig-order-${++orders}`, idempotencyKey: `sig-create-${orders}` } });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

/** A bill payment the holder's app made (the bill itself straight into its table: publishing has its own tests). */
async function newBillPayment(amount: number): Promise<string> {
  const id = randomUUID();
  await world.db.orm.em.fork().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, 'CNY', ?, '2026-10', ?, '2099-12-31', '{"kind":"NONE"}', false, ?, 'PUBLISHED')`,
    [id, billerId, `SIG-${id.slice(0, 8)}`, amount, `sig-ref-${id}`],
  );
  const made = await app.request<{ payBill: { billPayment: { id: string }; userErrors: unknown[] } }>(`mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }`, { input: { bill: toGlobalId('Bill', id), idempotencyKey: `sig-bill-${id}` } });
  expect(made.payBill.userErrors).toEqual([]);
  return made.payBill.billPayment.id;
}

/** A top-up of the card paid at the (sandbox) gateway: a pending load waiting for the card. */
async function paidTopUp(card: Card, amount: number): Promise<string> {
  const [row] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from card where asn = ?`, [card.asn]);
  const made = await app.request<{ createTopUp: { topUp: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id } userErrors { code message } } }`, { input: { card: toGlobalId('Card', row!.id), amount, idempotencyKey: `sig-topup-${randomUUID()}`, paymentMethod: 'pm_card_visa' } });
  expect(made.createTopUp.userErrors).toEqual([]);
  const id = made.createTopUp.topUp.id;
  for (let i = 0; i < 200; i++) {
    const { topUp } = await app.request<{ topUp: { status: string } }>(`query($id: ID!) { topUp(id: $id) { status } }`, { id });
    if (topUp.status === 'PAID') return id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`top-up ${id} never became PAID`);
}

// ——— sessions ———

type Session = { id: string; challenge: string };
async function open(by: Requester, input: Record<string, unknown>): Promise<Session> {
  const opened = await by.request<{ openCardSession: { session: Session | null; userErrors: unknown[] } }>(OPEN, { input });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

type Tamper = 'one bit flipped' | 'signed by another reader' | 'signature of another message';

function tampered(how: Tamper, input: { session: string; seq: number; body: string; signature: string }, agent: ReaderAgent): string {
  switch (how) {
    case 'one bit flipped': {
      const bytes = Buffer.from(input.signature, 'base64');
      bytes[bytes.length - 1]! ^= 1;
      return bytes.toString('base64');
    }
    case 'signed by another reader':
      return stranger.sign(input.session, input.seq, input.body);
    case 'signature of another message':
      // The reader's own key, over the same body at the next step: a signature lifted from elsewhere.
      return agent.sign(input.session, input.seq + 1, input.body);
  }
}

interface Run {
  view: CardSessionView;
  /** Every seq the relay passed on, and the host's answer to the tampered one. */
  sent: number[];
  refusedReply?: SessionReply;
}

/** Runs a session through the SDK's reader agent; with `tamper`, the relay alters the signature of message `at`. */
async function runSession(card: Card, session: Session, reader: TestReader, by: Requester, tamper?: { at: number; how: Tamper }): Promise<Run> {
  const run: Partial<Run> & { sent: number[] } = { sent: [] };
  let agent: ReaderAgent;
  const send = async (input: { session: string; seq: number; body: string; signature: string }) => {
    run.sent.push(input.seq);
    const message = tamper?.at === input.seq ? { ...input, signature: tampered(tamper.how, input, agent) } : input;
    const reply = (await by.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage;
    if (tamper?.at === input.seq) run.refusedReply = reply;
    return reply;
  };
  agent = new ReaderAgent({
    deviceKey: reader.deviceKeyPem,
    nationalCertificatePem: reader.nationalPem,
    cityCertificatePem: reader.cityPem,
    trustedCertificatesPem: reader.trustedCertificatesPem, nationalKey: reader.nationalKeyPem, encryptionKey: reader.encryptionKeyPem, encryptionCertificatePem: reader.encryptionPem,
    ...(card.kind === 'CPU' ? { transport: new VirtualCardTransport(card.chip) } : { m1: card.chip }),
    send,
  });
  run.view = await agent.run(session);
  return run as Run;
}

// ——— the table ———

type CardType = 'CPU' | 'M1';
interface Kind {
  name: string;
  /** What the reader says, message by message (seq = index). */
  messages: string[];
  /** The card's balance before the session (value to pay with). */
  balance: number;
  /** Opens the session for a fresh card: the input, the relaying client and the reader. */
  open: (card: Card, type: CardType) => Promise<{ session: Session; by: Requester; reader: TestReader; state: () => Promise<unknown> }>;
}

const CPU_HELLO = 'hello (certificates and challenge)';
const KINDS: Record<CardType, Kind[]> = {
  CPU: [],
  M1: [],
};

const cpuMessages = (last: string) => [CPU_HELLO, 'first answers (SELECT, READ BINARY, log, INITIALIZE)', last];
const m1Messages = (last: string) => ['hello (certificates and challenge)', 'the card’s UID', 'the purse read (script results)', last];

const statusOf = async (query: string, id: string) => JSON.stringify(await app.request(query, { id }));

for (const type of ['CPU', 'M1'] as const) {
  const messages = (last: string) => (type === 'CPU' ? cpuMessages(last) : m1Messages(last));
  KINDS[type].push(
    {
      name: 'balance read',
      messages: type === 'CPU' ? [CPU_HELLO, 'the card’s answers (SELECT, READ BINARY, GET BALANCE)'] : m1Messages('the purse read (script results)').slice(0, 3),
      balance: 0,
      open: async (_card, t) => ({ session: await open(issuer, { reader: counter.id, operation: 'BALANCE', cardType: t }), by: issuer, reader: counter, state: async () => null }),
    },
    {
      name: 'counter load (cash at the card company’s counter)',
      messages: messages(type === 'CPU' ? 'CREDIT FOR LOAD answer (TAC)' : 'the write script’s results'),
      balance: 0,
      open: async (_card, t) => ({ session: await open(issuer, { reader: counter.id, operation: 'LOAD', amount: 700, cardType: t }), by: issuer, reader: counter, state: async () => null }),
    },
    {
      name: 'till purchase (the merchant’s own amount)',
      messages: messages(type === 'CPU' ? 'DEBIT FOR PURCHASE answer (TAC, MAC2)' : 'the write script’s results'),
      balance: 2_000,
      open: async (_card, t) => ({ session: await open(merchant, { reader: till.id, operation: 'PURCHASE', amount: 600, cardType: t }), by: merchant, reader: till, state: async () => null }),
    },
    {
      name: 'merchant payment',
      messages: messages(type === 'CPU' ? 'DEBIT FOR PURCHASE answer (TAC, MAC2)' : 'the write script’s results'),
      balance: 2_000,
      open: async (_card, t) => {
        const payment = await newPayment(450);
        return { session: await open(app, { reader: home.id, operation: 'PURCHASE', payment, cardType: t }), by: app, reader: home, state: () => statusOf(`query($id: ID!) { payment(id: $id) { status } }`, payment) };
      },
    },
    {
      name: 'bill payment',
      messages: messages(type === 'CPU' ? 'DEBIT FOR PURCHASE answer (TAC, MAC2)' : 'the write script’s results'),
      balance: 2_000,
      open: async (_card, t) => {
        const billPayment = await newBillPayment(380);
        return { session: await open(app, { reader: home.id, operation: 'PURCHASE', billPayment, cardType: t }), by: app, reader: home, state: () => statusOf(`query($id: ID!) { billPayment(id: $id) { status } }`, billPayment) };
      },
    },
  );
}
// 补登 (a paid top-up written onto the card) is for CPU cards only.
KINDS.CPU.push({
  name: 'pending load (补登 of a paid top-up)',
  messages: cpuMessages('CREDIT FOR LOAD answer (TAC)'),
  balance: 0,
  open: async (card) => {
    const topUp = await paidTopUp(card, 300);
    return { session: await open(app, { reader: home.id, operation: 'LOAD', topUp }), by: app, reader: home, state: () => statusOf(`query($id: ID!) { topUp(id: $id) { status } }`, topUp) };
  },
});

/** Every message gets a flipped bit and another reader's signature; the last (where money moves) also a signature lifted from another step. */
const tampersFor = (seq: number, messages: string[]): Tamper[] => (seq === messages.length - 1 ? ['one bit flipped', 'signed by another reader', 'signature of another message'] : ['one bit flipped', 'signed by another reader']);
const CASES = (['CPU', 'M1'] as const).flatMap((type) =>
  KINDS[type].flatMap((kind) => kind.messages.flatMap((message, seq) => tampersFor(seq, kind.messages).map((how) => ({ type, kind: kind.name, message, seq, how })))),
);

/** Everything money: every account's balance, the number of journal entries, and the card counters. */
async function money(asn: string) {
  const em = world.db.orm.em.fork();
  const accounts = await em.execute<{ code: string; balance: string }[]>(`select code, balance::text as balance from ledger_account order by code`);
  const [{ entries }] = await em.execute<{ entries: number }[]>(`select count(*)::int as entries from journal_entry`);
  const counters = await em.execute(`select * from card_counter where asn = ?`, [asn]);
  return { accounts, entries, counters, purse: await purseBalance(world, asn) };
}

describe('a tampered reader signature is refused on every message of every session', () => {
  it('covers every kind of session the engine runs, each with its complete list of messages (checked by running it clean)', async () => {
    for (const type of ['CPU', 'M1'] as const) {
      for (const kind of KINDS[type]) {
        const card = await newCard(type, kind.balance);
        const { session, by, reader } = await kind.open(card, type);
        const clean = await runSession(card, session, reader, by);
        expect(clean.view.state, `${type} ${kind.name}`).toBe('COMPLETED');
        // The table names every message the reader sends, no more and no fewer.
        expect(clean.sent, `${type} ${kind.name}`).toEqual(kind.messages.map((_m, seq) => seq));
      }
    }
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it.each(CASES)('$type $kind, message $seq ($message), $how: BAD_SIGNATURE, audited, nothing booked', async ({ type, kind: name, seq, how }) => {
    const kind = KINDS[type].find((k) => k.name === name)!;
    const card = await newCard(type, kind.balance);
    const { session, by, reader, state } = await kind.open(card, type);
    const before = await money(card.asn);
    const purposeBefore = await state();

    const run = await runSession(card, session, reader, by, { at: seq, how });

    expect(run.view).toMatchObject({ state: 'FAILED', refusal: 'BAD_SIGNATURE' });
    // The reader stopped at the refused message; the host told it why.
    expect(run.sent).toEqual(Array.from({ length: seq + 1 }, (_v, i) => i));
    expect(run.refusedReply!.userErrors[0]).toMatchObject({ code: 'CARD_SESSION_REFUSED', message: expect.stringMatching(/^BAD_SIGNATURE/) });
    expect(run.refusedReply!.commands).toEqual([]);
    const audit = await auditOf(world, session.id);
    expect(audit.at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'BAD_SIGNATURE' });
    // The opening and each message before the tampered one were accepted, and nothing after it.
    expect(audit.map((a) => a.outcome)).toEqual(['ACCEPTED', ...Array.from({ length: seq }, () => 'ACCEPTED'), 'REFUSED']);
    expect(audit[0]!.step).toBe('open');
    // No money moved: every ledger balance, the journal and the card's counters are as they were.
    expect(await money(card.asn)).toEqual(before);
    // What the session was for is not done (a payment may count the refused attempt; it is not paid).
    const purposeAfter = await state();
    if (purposeBefore) expect(purposeAfter).not.toMatch(/SUCCEEDED|LOADED/);
  });

  it('leaves the ledger consistent after all of them', async () => {
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
