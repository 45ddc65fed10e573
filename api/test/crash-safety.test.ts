/**
 * Crash safety of every @Idempotent mutation (issue 19; docs/api-conventions.md#idempotency): the
 * API "dies" at the worst moment — its effect committed, its answer not yet with the client (or, for
 * the gateway mutations, half-way: the top-up recorded or the refund started, the gateway not yet
 * asked) — and the client retries with the same key once the API is back. The retry must answer
 * the original success, at once, with exactly one effect: never a second effect, never a refusal of
 * its own earlier success, never a 409 for a claim whose process is gone.
 *
 * The death is played in-process: a crash hook throws `SimulatedCrash` at the named crash point,
 * which the idempotency layer lets through untouched (nothing is released or stored, as in a dead
 * process), and `stopLiveness()` ends this process's liveness lock as the death of its connection
 * would; the next call comes from a "new process" with a new one. The chaos test does it for real.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { type CrashPoint, SimulatedCrash, setCrashHook } from '../src/graphql/crash-point.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { requestHash } from '../src/graphql/idempotency.js';
import { stopLiveness } from '../src/graphql/process-liveness.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createMerchant } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { apiClient, cardholderApp, issueCard, newReader, OPEN, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const GATEWAY_SECRET = 'sk_test_crash';
const WEBHOOK_SECRET = 'whsec_crash_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: GATEWAY_SECRET, webhookSecret: WEBHOOK_SECRET });
});
afterAll(async () => {
  setCrashHook(null);
  await stopLiveness();
  await sandbox?.close();
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: GATEWAY_SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });

type Requester = { request<T>(query: string, variables?: Record<string, unknown>, options?: { retry?: false }): Promise<T> };

let merchant: OneCardClient;
let issuer: OneCardClient;
let operator: OneCardClient;
let app: ReturnType<typeof bearerClient>;
let holderId: string;
let home: TestReader;
let counter: TestReader;
let waterId: string;
let shopId: string;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Crash Café' });
  shopId = shop.id;
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['tenants:manage', 'ledger:read', 'ledger:write']);
  counter = await newReader(world, 'GZ-COUNTER-CRASH', world.gz);
  ({ id: holderId, app } = await cardholderApp(world, 'crash-li'));
  home = await newReader(world, 'HOME-crash-li', world.gz, { kind: 'CARDHOLDER', id: holderId });
  waterId = (await createBiller(em, { cityId: world.gz.cityId, name: 'Crash Water', kind: BillerKind.WATER })).id;
});
afterEach(() => setCrashHook(null));

// ——— the death and the new process ———

/** The next time `operation` reaches `point`, the process "dies" there. */
function crashAt(operation: string, point: CrashPoint) {
  let armed = true;
  setCrashHook((at, op) => {
    if (armed && at === point && op === operation) {
      armed = false;
      throw new SimulatedCrash(at, op);
    }
  });
}

/**
 * The API is back: the dead process's liveness lock went with its connection, and the seconds a
 * restart takes have passed. A resumable mutation's claim (createTopUp, refundTopUp) is taken over
 * only once its lease has also gone 10 s unrenewed (a live process whose liveness session alone died
 * keeps it: idempotency.ts); that time is played by ageing the leases.
 */
async function restart() {
  setCrashHook(null);
  await stopLiveness();
  await world.db.orm.em.fork().execute(`update idempotency_record set locked_until = locked_until - interval '10 seconds' where state = 'IN_FLIGHT'`);
}

/** One call, no SDK retries: what a client that lost the answer saw (an error), or the payload. */
async function call(by: Requester, query: string, input: Record<string, unknown>): Promise<{ payload?: any; error?: string }> {
  try {
    const data = await by.request<Record<string, any>>(query, { input }, { retry: false });
    return { payload: Object.values(data)[0] };
  } catch (err) {
    return { error: String(err) };
  }
}

// ——— fixtures ———

/** A registered card of the holder, loaded at the counter with `balance` (chip and shadow agree). */
async function loadedCard(balance: number): Promise<{ chip: VirtualCpuCard; id: string; uuid: string }> {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623177900000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  if (balance > 0) {
    const s = sessionsOf(issuer, () => counter);
    expect((await s.agent(chip).run(await s.open('LOAD', balance))).state).toBe('COMPLETED');
  }
  return { chip, id: toGlobalId('Card', row.id), uuid: row.id };
}

const PAYMENT = `payment { id status amount { amount } orderReference refundedAmount { amount } }`;
const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { ${PAYMENT} userErrors { code message } } }`;
const CANCEL_PAYMENT = `mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { ${PAYMENT} userErrors { code message } } }`;
const REFUND_PAYMENT = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { ${PAYMENT} refund { id amount { amount } } userErrors { code message } } }`;
const PAY_BILL = `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id status amount { amount } receiptNumber } userErrors { code message } } }`;
const TOP_UP = `topUp { id status amount { amount } }`;
const CREATE_TOP_UP = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { ${TOP_UP} userErrors { code message } } }`;
const REFUND_TOP_UP = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { ${TOP_UP} userErrors { code message } } }`;
const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { ${TOP_UP} userErrors { code message } } }`;
const POST_ENTRY = `mutation($input: PostJournalEntryInput!) { postJournalEntry(input: $input) { entry { id key } userErrors { code message } } }`;
const REVERSE_ENTRY = `mutation($input: ReverseJournalEntryInput!) { reverseJournalEntry(input: $input) { entry { id key } userErrors { code message } } }`;

let orders = 0;
async function newPayment(amount: number): Promise<{ id: string }> {
  const made = await call(merchant, CREATE_PAYMENT, { amount, currency: 'CNY', orderReference: `crash-order-${++orders}`, idempotencyKey: randomUUID() });
  expect(made.payload.userErrors).toEqual([]);
  return made.payload.payment;
}

/** A payment the holder's card paid on the holder's reader. */
async function paidPayment(amount: number): Promise<{ id: string }> {
  const card = await loadedCard(amount * 2);
  const payment = await newPayment(amount);
  const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: payment.id } });
  expect((await sessionsOf(app, () => home).agent(card.chip, home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
  return payment;
}

async function newBill(amountDue: number): Promise<string> {
  const id = randomUUID();
  await world.db.orm.em.fork().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, 'CNY', ?, '2026-11', ?, '2099-12-31', '{"kind":"NONE"}', false, ?, 'PUBLISHED')`,
    [id, waterId, `ACC-${id.slice(0, 8)}`, amountDue, `ref-${id}`],
  );
  return toGlobalId('Bill', id);
}

/** A top-up of the holder's card, paid at once with a saved card at the sandbox gateway. */
async function paidTopUp(amount: number): Promise<{ id: string; cardUuid: string }> {
  const card = await loadedCard(0);
  const made = await call(app, CREATE_TOP_UP, { card: card.id, amount, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' });
  expect(made.payload).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
  return { id: made.payload.topUp.id, cardUuid: card.uuid };
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const [row] = await world.db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from ${sql}`, params);
  return row!.n;
}

/** One number for "one top-up, booked PAID once" of a card: 10 × top-ups + PAID entries − 10 (1 when right). */
async function topUpsAndPaidEntries(cardUuid: string): Promise<number> {
  const topUps = await count(`top_up where card_id = ?`, [cardUuid]);
  const paid = await count(`journal_entry where entry_key like 'top-up:%:paid' and metadata->>'topUp' in (select id::text from top_up where card_id = ?)`, [cardUuid]);
  return topUps * 10 + paid - 10;
}

const CREATE_WALLET_TOP_UP = `mutation($input: CreateWalletTopUpInput!) { createWalletTopUp(input: $input) { ${TOP_UP} userErrors { code message } } }`;
const REFUND_WALLET_TOP_UP = `mutation($input: RefundWalletTopUpInput!) { refundWalletTopUp(input: $input) { ${TOP_UP} userErrors { code message } } }`;

/** The holder's transit wallet with the GZ card company (one per holder: the same each time). */
async function wallet(): Promise<{ id: string; uuid: string }> {
  const opened = await app.request<{ openTransitWallet: { wallet: { id: string } } }>(`mutation($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { id } } }`, { input: { cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId) } });
  return { id: opened.openTransitWallet.wallet.id, uuid: uuidOf(opened.openTransitWallet.wallet.id) };
}

/** One number for "one wallet top-up of this amount, booked PAID once": 10 × top-ups + PAID entries − 10 (1 when right). */
async function walletTopUpsAndPaidEntries(walletUuid: string, amount: number): Promise<number> {
  const topUps = await count(`top_up where wallet_id = ? and amount = ?`, [walletUuid, amount]);
  const paid = await count(`journal_entry where entry_key like 'top-up:%:paid' and metadata->>'topUp' in (select id::text from top_up where wallet_id = ? and amount = ?)`, [walletUuid, amount]);
  return topUps * 10 + paid - 10;
}

/** A wallet top-up, paid at once with a saved card at the sandbox gateway. */
async function paidWalletTopUp(amount: number): Promise<{ id: string }> {
  const made = await call(app, CREATE_WALLET_TOP_UP, { wallet: (await wallet()).id, amount, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' });
  expect(made.payload).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
  return made.payload.topUp;
}

const uuidOf = (globalId: string) => fromGlobalId(globalId, Buffer.from(globalId, 'base64url').toString().split(':')[0]!).id;

// ——— every @Idempotent mutation ———

interface CrashCase {
  name: string;
  operation: string;
  point: CrashPoint;
  /** Makes what the mutation needs; returns the caller, the mutation, its input (with the key) and what must hold after. */
  prepare(): Promise<{ by: Requester; query: string; input: Record<string, unknown>; success: Record<string, unknown>; effects(payload: any): Promise<number> }>;
}

const cases: CrashCase[] = [
  {
    name: 'createPayment: the retry answers its own payment, not DUPLICATE_ORDER',
    operation: 'createPayment',
    point: 'answer',
    async prepare() {
      const orderReference = `crash-order-${++orders}`;
      return {
        by: merchant,
        query: CREATE_PAYMENT,
        input: { amount: 1_200, currency: 'CNY', orderReference, idempotencyKey: randomUUID() },
        success: { payment: { status: 'REQUIRES_CARD', orderReference } },
        effects: () => count(`payment where order_reference = ?`, [orderReference]),
      };
    },
  },
  {
    name: 'cancelPayment: the retry answers the cancel, not "the payment is CANCELED"',
    operation: 'cancelPayment',
    point: 'answer',
    async prepare() {
      const payment = await newPayment(800);
      return {
        by: merchant,
        query: CANCEL_PAYMENT,
        input: { payment: payment.id, idempotencyKey: randomUUID() },
        success: { payment: { id: payment.id, status: 'CANCELED' } },
        effects: () => count(`event_outbox where subject_id = ? and type = 'payment.canceled'`, [payment.id]),
      };
    },
  },
  {
    name: 'refundPayment: one refund',
    operation: 'refundPayment',
    point: 'answer',
    async prepare() {
      const payment = await paidPayment(900);
      return {
        by: merchant,
        query: REFUND_PAYMENT,
        input: { payment: payment.id, amount: 300, idempotencyKey: randomUUID() },
        success: { payment: { id: payment.id, refundedAmount: { amount: 300 } }, refund: { amount: { amount: 300 } } },
        effects: () => count(`payment_refund where payment_id = ?`, [uuidOf(payment.id)]),
      };
    },
  },
  {
    name: 'payBill: one bill payment, the first is not SUPERSEDED by a second',
    operation: 'payBill',
    point: 'answer',
    async prepare() {
      const bill = await newBill(2_000);
      return {
        by: app,
        query: PAY_BILL,
        input: { bill, idempotencyKey: randomUUID() },
        success: { billPayment: { status: 'REQUIRES_CARD', amount: { amount: 2_000 } } },
        effects: () => count(`bill_payment where bill_id = ?`, [uuidOf(bill)]),
      };
    },
  },
  {
    name: 'payBill(fromTopUp): the retry answers the payment, not "a SPENT top-up cannot be spent"',
    operation: 'payBill',
    point: 'answer',
    async prepare() {
      const topUp = await paidTopUp(1_500);
      const bill = await newBill(1_500);
      return {
        by: app,
        query: PAY_BILL,
        input: { bill, fromTopUp: topUp.id, idempotencyKey: randomUUID() },
        success: { billPayment: { status: 'SUCCEEDED', amount: { amount: 1_500 } } },
        effects: () => count(`bill_payment where bill_id = ?`, [uuidOf(bill)]),
      };
    },
  },
  {
    name: 'createTopUp, dead after its answer was made: one top-up, one charge',
    operation: 'createTopUp',
    point: 'answer',
    async prepare() {
      const card = await loadedCard(0);
      return {
        by: app,
        query: CREATE_TOP_UP,
        input: { card: card.id, amount: 2_500, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' },
        success: { topUp: { status: 'PAID', amount: { amount: 2_500 } } },
        effects: () => topUpsAndPaidEntries(card.uuid),
      };
    },
  },
  {
    name: 'createTopUp, dead before the gateway was asked: the retry resumes it',
    operation: 'createTopUp',
    point: 'top-up-recorded',
    async prepare() {
      const card = await loadedCard(0);
      return {
        by: app,
        query: CREATE_TOP_UP,
        input: { card: card.id, amount: 2_600, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' },
        success: { topUp: { status: 'PAID', amount: { amount: 2_600 } } },
        effects: () => topUpsAndPaidEntries(card.uuid),
      };
    },
  },
  {
    name: 'refundTopUp, dead before the gateway was asked: the retry resumes the refund, not "a REFUNDING top-up cannot be refunded"',
    operation: 'refundTopUp',
    point: 'refund-started',
    async prepare() {
      const topUp = await paidTopUp(700);
      return {
        by: issuer,
        query: REFUND_TOP_UP,
        input: { topUp: topUp.id, idempotencyKey: randomUUID() },
        success: { topUp: { id: topUp.id, status: 'REFUNDED' } },
        effects: () => count(`journal_entry where entry_key like ?`, [`top-up:${uuidOf(topUp.id)}:refund:%`]),
      };
    },
  },
  {
    name: 'refundTopUp, dead after the refund: the retry answers it, not "a REFUNDED top-up cannot be refunded"',
    operation: 'refundTopUp',
    point: 'answer',
    async prepare() {
      const topUp = await paidTopUp(600);
      return {
        by: issuer,
        query: REFUND_TOP_UP,
        input: { topUp: topUp.id, idempotencyKey: randomUUID() },
        success: { topUp: { id: topUp.id, status: 'REFUNDED' } },
        effects: () => count(`journal_entry where entry_key like ?`, [`top-up:${uuidOf(topUp.id)}:refund:%`]),
      };
    },
  },
  ...(['answer', 'top-up-recorded'] as const).map(
    (point, i): CrashCase => ({
      name: `createWalletTopUp, dead ${point === 'answer' ? 'after its answer was made: one top-up, one charge' : 'before the gateway was asked: the retry resumes it'}`,
      operation: 'createWalletTopUp',
      point,
      async prepare() {
        const w = await wallet();
        const amount = 2_710 + i;
        return {
          by: app,
          query: CREATE_WALLET_TOP_UP,
          input: { wallet: w.id, amount, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' },
          success: { topUp: { status: 'PAID', amount: { amount } } },
          effects: () => walletTopUpsAndPaidEntries(w.uuid, amount),
        };
      },
    }),
  ),
  ...(['refund-started', 'answer'] as const).map(
    (point, i): CrashCase => ({
      name: `refundWalletTopUp, dead ${point === 'answer' ? 'after the refund: the retry answers it' : 'before the gateway was asked: the retry resumes the refund'}`,
      operation: 'refundWalletTopUp',
      point,
      async prepare() {
        const topUp = await paidWalletTopUp(810 + i);
        return {
          by: app,
          query: REFUND_WALLET_TOP_UP,
          input: { topUp: topUp.id, idempotencyKey: randomUUID() },
          success: { topUp: { id: topUp.id, status: 'REFUNDED' } },
          effects: () => count(`journal_entry where entry_key like ?`, [`top-up:${uuidOf(topUp.id)}:refund:%`]),
        };
      },
    }),
  ),
  {
    name: 'resolvePendingLoad: the retry answers the settlement, not "only a PAID top-up whose write was started needs settling"',
    operation: 'resolvePendingLoad',
    point: 'answer',
    async prepare() {
      const topUp = await paidTopUp(500);
      // A write onto the card that was started (MAC2 issued) in a session that ended unanswered.
      const em = world.db.orm.em.fork();
      const session = randomUUID();
      const [reader] = await em.execute<{ id: string }[]>(`select id from reader where serial = 'GZ-COUNTER-CRASH'`);
      await em.execute(
        `insert into card_session (id, reader_id, operation, amount, state, challenge, expires_at, opened_by_client) values (?, ?, 'LOAD', 500, 'AWAITING_TAC', 'x', now() - interval '1 minute', 'crash-test')`,
        [session, reader!.id],
      );
      await em.execute(`update top_up set load_session_id = ? where id = ?`, [session, uuidOf(topUp.id)]);
      return {
        by: issuer,
        query: RESOLVE,
        input: { topUp: topUp.id, loaded: false, note: 'the chip never took it', idempotencyKey: randomUUID() },
        success: { topUp: { id: topUp.id, status: 'PAID' } },
        effects: () => count(`top_up_history where top_up_id = ? and cause like '%never took it%'`, [uuidOf(topUp.id)]),
      };
    },
  },
  {
    name: 'postJournalEntry: one entry',
    operation: 'postJournalEntry',
    point: 'answer',
    async prepare() {
      const em = world.db.orm.em.fork();
      const a = await openAccount(em, { code: `crash.a.${randomUUID()}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const b = await openAccount(em, { code: `crash.b.${randomUUID()}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const key = randomUUID();
      return {
        by: operator,
        query: POST_ENTRY,
        input: { idempotencyKey: key, description: 'adjustment', lines: [{ account: toGlobalId('LedgerAccount', a.id), debit: 700 }, { account: toGlobalId('LedgerAccount', b.id), credit: 700 }] },
        success: { entry: { key: `manual:${key}` } },
        effects: () => count(`journal_entry where entry_key = ?`, [`manual:${key}`]),
      };
    },
  },
  {
    name: 'reverseJournalEntry: one reversal',
    operation: 'reverseJournalEntry',
    point: 'answer',
    async prepare() {
      const em = world.db.orm.em.fork();
      const a = await openAccount(em, { code: `crash.c.${randomUUID()}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const b = await openAccount(em, { code: `crash.d.${randomUUID()}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      const posted = await call(operator, POST_ENTRY, { idempotencyKey: randomUUID(), description: 'to reverse', lines: [{ account: toGlobalId('LedgerAccount', a.id), debit: 300 }, { account: toGlobalId('LedgerAccount', b.id), credit: 300 }] });
      const key = randomUUID();
      return {
        by: operator,
        query: REVERSE_ENTRY,
        input: { entry: posted.payload.entry.id, reason: 'typo', idempotencyKey: key },
        success: { entry: { key: `manual:${key}` } },
        effects: () => count(`journal_entry where reverses_id = ?`, [uuidOf(posted.payload.entry.id)]),
      };
    },
  },
];

describe('a crash between the effect and its answer', () => {
  it.each(cases)('$name', async (c) => {
    const { by, query, input, success, effects } = await c.prepare();
    crashAt(c.operation, c.point);
    const cut = await call(by, query, input);
    expect(cut.error).toBeDefined(); // the client never got the answer
    await restart();

    const retried = await call(by, query, input);
    expect(retried.error).toBeUndefined(); // once the API is back: no 409 for the dead process's claim
    expect(retried.payload).toMatchObject({ ...success, userErrors: [] });
    expect(await effects(retried.payload)).toBe(1);
    // The answer is stored: the same again, with no second effect.
    expect((await call(by, query, input)).payload).toEqual(retried.payload);
    expect(await effects(retried.payload)).toBe(1);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('every @Idempotent mutation is in the table above', async () => {
    const { apiSchema } = await import('../src/schema.js');
    const { getMetadataStorage } = await import('type-graphql');
    const { isIdempotencyMiddleware } = await import('../src/graphql/idempotency.js');
    await apiSchema();
    const idempotent = getMetadataStorage()
      .mutations.filter((m) => m.middlewares?.some((fn) => isIdempotencyMiddleware(fn)))
      .map((m) => m.schemaName)
      .sort();
    expect([...new Set(cases.map((c) => c.operation))].sort()).toEqual(idempotent);
  });
});

describe('a claim whose process is gone', () => {
  /** A claim as another API process makes it: IN_FLIGHT, under that process's liveness lock. */
  async function claimOfAnotherProcess(key: string, input: Record<string, unknown>, lock: string) {
    const [client] = await world.db.orm.em.fork().execute<{ client_id: string }[]>(`select client_id from oauth_client where kind = 'MERCHANT' and tenant_id = ?`, [shopId]);
    await world.db.orm.em.fork().execute(
      `insert into idempotency_record (client_id, holder_id, key, operation, request_hash, state, owner, owner_lock, locked_until, expires_at)
       values (?, '', ?, 'createPayment', ?, 'IN_FLIGHT', 'other-host:4242:claim', ?::bigint, now() + interval '60 seconds', now() + interval '48 hours')`,
      [client!.client_id, key, requestHash('createPayment', { input: { ...input, amount: BigInt(input.amount as number) } }), lock],
    );
  }

  it('is a conflict while that process lives, and taken over at once when it dies: no waiting out a lease', async () => {
    const other = new pg.Client({ connectionString: world.db.url });
    await other.connect();
    const lock = '4611686018427387001';
    await other.query('select pg_advisory_lock($1::bigint)', [lock]);
    const key = randomUUID();
    const input = { amount: 450, currency: 'CNY', orderReference: `crash-order-${++orders}`, idempotencyKey: key };
    await claimOfAnotherProcess(key, input, lock);

    await expect(merchant.request(CREATE_PAYMENT, { input }, { retry: false })).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: 409 });
    expect(await count(`payment where order_reference = ?`, [input.orderReference])).toBe(0);

    await other.end(); // the other process dies: its connection, and the lock with it
    const taken = await call(merchant, CREATE_PAYMENT, input);
    expect(taken.payload).toMatchObject({ payment: { status: 'REQUIRES_CARD' }, userErrors: [] });
    expect(await count(`payment where order_reference = ?`, [input.orderReference])).toBe(1);
  });

  it('a concurrent duplicate of a call this live process is running still gets IDEMPOTENCY_CONFLICT', async () => {
    const card = await loadedCard(0);
    const input = { card: card.id, amount: 1_100, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' };
    // The first call waits at a crash point (its top-up recorded, the gateway not yet asked): it runs, its process lives.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atPoint = new Promise<void>((r) => (reached = r));
    setCrashHook((point, op) => {
      if (point !== 'top-up-recorded' || op !== 'createTopUp') return;
      reached();
      return held;
    });
    const first = call(app, CREATE_TOP_UP, input);
    await atPoint;
    const duplicate = await call(app, CREATE_TOP_UP, input);
    expect(duplicate.error).toMatch(/still running/);
    release();
    expect((await first).payload).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
    expect(await count(`top_up where card_id = ?`, [card.uuid])).toBe(1);
  });
});

describe('card sessions cut by a crash', () => {
  it('are ended by the background jobs (FAILED, SESSION_EXPIRED) with an audit row; a live one is left alone', async () => {
    const { startBackgroundJobs } = await import('../src/jobs/background-jobs.js');
    const { pino } = await import('pino');
    const s = sessionsOf(issuer, () => counter);
    const cut = await s.open('LOAD', 500); // the app, the reader or the API died right after this
    const live = await s.open('LOAD', 500);
    await world.db.orm.em.fork().execute(`update card_session set expires_at = now() - interval '2 minutes' where id = ?`, [uuidOf(cut.id)]);

    const jobs = startBackgroundJobs({ orm: world.db.orm, gateway: null, log: pino({ level: 'silent' }), intervalMs: 0, settlementCutoff: '02:00' });
    await jobs.runOnce();
    await jobs.stop();

    const state = async (id: string) => (await world.db.orm.em.fork().execute<{ state: string; refusal: string | null; finished: boolean }[]>(`select state, refusal, finished_at is not null as finished from card_session where id = ?`, [uuidOf(id)]))[0];
    expect(await state(cut.id)).toMatchObject({ state: 'FAILED', refusal: 'SESSION_EXPIRED', finished: true });
    const audit = await world.db.orm.em.fork().execute<{ step: string; outcome: string; refusal: string; detail: { state: string } }[]>(`select step, outcome, refusal, detail from card_session_audit where session_id = ? order by id`, [uuidOf(cut.id)]);
    expect(audit.at(-1)).toEqual({ step: 'expired', outcome: 'REFUSED', refusal: 'SESSION_EXPIRED', detail: { state: 'OPEN', by: 'expiry job' } });
    expect(await state(live.id)).toMatchObject({ state: 'OPEN', refusal: null });
  });
});

describe('payment.card_asn', () => {
  it('names the card that paid', async () => {
    const card = await loadedCard(2_000);
    const payment = await newPayment(700);
    const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: payment.id } });
    expect((await sessionsOf(app, () => home).agent(card.chip, home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
    const [row] = await world.db.orm.em.fork().execute<{ status: string; card_asn: string | null }[]>(`select status, card_asn from payment where id = ?`, [uuidOf(payment.id)]);
    expect(row).toEqual({ status: 'SUCCEEDED', card_asn: card.chip.asn });
  });
});

describe('a refusal inside the transaction', () => {
  it('writes nothing but its answer, even when the database refused a statement half-way (a non-negative account)', async () => {
    const em = world.db.orm.em.fork();
    const purse = await openAccount(em, { code: `crash.purse.${randomUUID()}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: true });
    const other = await openAccount(em, { code: `crash.other.${randomUUID()}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const key = randomUUID();
    // Debiting an empty non-negative liability: PostgreSQL's CHECK refuses the update after the entry row was written.
    const input = { idempotencyKey: key, description: 'overdraw', lines: [{ account: toGlobalId('LedgerAccount', purse.id), debit: 100 }, { account: toGlobalId('LedgerAccount', other.id), credit: 100 }] };
    const refused = await call(operator, POST_ENTRY, input);
    expect(refused.payload).toMatchObject({ entry: null, userErrors: [{ code: 'INSUFFICIENT_FUNDS' }] });
    expect(await count(`journal_entry where entry_key = ?`, [`manual:${key}`])).toBe(0);
    expect((await call(operator, POST_ENTRY, input)).payload).toEqual(refused.payload); // stored, replayed
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});
