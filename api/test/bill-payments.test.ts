/**
 * Paying utility bills from the card purse over real HTTP: the holder's app (PKCE) pays a bill with
 * a virtual card on the holder's reader; the biller reads receipts and its day's reconciliation.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { payBill as payBillInService } from '../src/bills/bill-payments.service.js';
import { addCity, apiClient, balanceOnCard, brokenRelay, cardholderApp, expireSession, issueCard, newReader, OPEN, purseBalance, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import { bearerClient, clientCredentialsToken, discover } from './support/oauth.js';

const GATEWAY_SECRET = 'sk_test_bills';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: GATEWAY_SECRET, webhookSecret: 'whsec_bills_0123456789' });
});
afterAll(async () => {
  await sandbox?.close();
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: GATEWAY_SECRET, GATEWAY_WEBHOOK_SECRET: 'whsec_bills_0123456789' }) });

let water: OneCardClient;
let waterCredentials: { id: string; secret: string };
let otherBiller: OneCardClient;
let waterId: string;
let issuer: OneCardClient;
let counter: TestReader;
let app: ReturnType<typeof bearerClient>;
let otherApp: ReturnType<typeof bearerClient>;
let home: TestReader;
let holderId: string;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const w = await createBiller(em, { cityId: world.gz.cityId, name: 'Guangzhou Water', kind: BillerKind.WATER });
  const g = await createBiller(em, { cityId: world.gz.cityId, name: 'Guangzhou Gas', kind: BillerKind.GAS });
  waterId = w.id;
  const made = await createClient(em, { kind: 'BILLER', tenantId: w.id, name: 'water back office', scopes: ['bills:read', 'bills:write'] });
  waterCredentials = { id: made.client.client_id, secret: made.clientSecret! };
  water = new OneCardClient({ baseUrl: world.server.url, clientId: waterCredentials.id, clientSecret: waterCredentials.secret, scope: 'bills:read bills:write' });
  otherBiller = await apiClient(world, 'BILLER', g.id, ['bills:read', 'bills:write']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  counter = await newReader(world, 'GZ-COUNTER-BILLS', world.gz);
  ({ id: holderId, app } = await cardholderApp(world, 'zhao'));
  otherApp = (await cardholderApp(world, 'qian')).app;
  home = await newReader(world, 'HOME-zhao', world.gz, { kind: 'CARDHOLDER', id: holderId });
});

/** A registered card loaded at the counter. */
async function loadedCard(balance: number) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623188000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const s = sessionsOf(issuer, () => counter);
  expect((await s.agent(chip).run(await s.open('LOAD', balance))).state).toBe('COMPLETED');
  return chip;
}

/** A published bill of the water company (straight into its table: publishing has its own tests). */
async function bill(amountDue: number, opts: { allowPartial?: boolean; dueDate?: string; lateFee?: Record<string, unknown>; biller?: { id: string; currency: string } } = {}) {
  const id = randomUUID();
  await world.db.orm.em.fork().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, ?, ?, '2026-10', ?, ?, ?, ?, ?, 'PUBLISHED')`,
    [id, opts.biller?.id ?? waterId, opts.biller?.currency ?? 'CNY', `ACC-${id.slice(0, 8)}`, amountDue, opts.dueDate ?? '2099-12-31', JSON.stringify(opts.lateFee ?? { kind: 'NONE' }), opts.allowPartial ?? false, `ref-${id}`],
  );
  return toGlobalId('Bill', id);
}

const BP = `id status amount { amount } receiptNumber businessDay cardNumber billerName accountNumber period failureCode`;
const PAY = `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { ${BP} } userErrors { code message field } } }`;
type BillPayment = { id: string; status: string; amount: { amount: number }; receiptNumber: string | null; businessDay: string | null; cardNumber: string | null };
type Errors = { code: string; message: string; field?: string[] | null }[];
let keys = 0;

const payBill = (billId: string, amount?: number, by = app) => by.request<{ payBill: { billPayment: BillPayment | null; userErrors: Errors } }>(PAY, { input: { bill: billId, amount, idempotencyKey: `pay-${++keys}` } });

async function payWithCard(billPaymentId: string, chip: ReturnType<typeof issueCard>) {
  const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', billPayment: billPaymentId } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return sessionsOf(app, () => home).agent(chip).run(opened.openCardSession.session!);
}

const billStatus = async (billId: string) => {
  const [row] = await world.db.orm.em.fork().execute<{ status: string; amount_paid: string }[]>(`select status, amount_paid::text from bill where id = ?`, [Buffer.from(billId, 'base64url').toString().split(':')[1]]);
  return row!;
};

describe('paying a bill with a virtual card', () => {
  it('the holder pays a water bill at home: card purse → biller payable, a receipt, the bill PAID, a bill.paid event', async () => {
    const chip = await loadedCard(10_000);
    const billId = await bill(3_450);
    const made = await payBill(billId);
    expect(made.payBill.userErrors).toEqual([]);
    expect(made.payBill.billPayment).toMatchObject({ status: 'REQUIRES_CARD', amount: { amount: 3450 }, billerName: 'Guangzhou Water', period: '2026-10' });
    const done = await payWithCard(made.payBill.billPayment!.id, chip);
    expect(done.state).toBe('COMPLETED');
    expect(await balanceOnCard(chip)).toBe(6_550);
    expect(await purseBalance(world, chip.asn)).toBe(6_550n);
    const receipt = (await app.request<{ billPayment: BillPayment }>(`query($id: ID!) { billPayment(id: $id) { ${BP} } }`, { id: made.payBill.billPayment!.id })).billPayment;
    expect(receipt).toMatchObject({ status: 'SUCCEEDED', receiptNumber: expect.stringMatching(/^R\d{8}-[0-9A-F]{16}$/), cardNumber: expect.stringMatching(/^\*{4} \*{4} \*{4} \d{4}$/) });
    // The biller reads the same receipt; another holder and another biller do not.
    expect((await water.request<{ billPayment: BillPayment }>(`query($id: ID!) { billPayment(id: $id) { receiptNumber } }`, { id: receipt.id })).billPayment.receiptNumber).toBe(receipt.receiptNumber);
    expect((await otherApp.request<{ billPayment: unknown }>(`query($id: ID!) { billPayment(id: $id) { id } }`, { id: receipt.id })).billPayment).toBeNull();
    expect((await otherBiller.request<{ billPayment: unknown }>(`query($id: ID!) { billPayment(id: $id) { id } }`, { id: receipt.id })).billPayment).toBeNull();
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '3450' });
    const events = await world.db.orm.em.fork().execute<{ type: string; owner_id: string; payload: { receiptNumber: string } }[]>(`select type, owner_id, payload from event_outbox where subject_id = ?`, [receipt.id]);
    expect(events).toEqual([{ type: 'bill.paid', owner_id: waterId, payload: expect.objectContaining({ receiptNumber: receipt.receiptNumber }) }]);
    // Paid: nothing more to pay.
    expect((await payBill(billId)).payBill.userErrors.map((e) => e.code)).toEqual(['BILL_NOT_PAYABLE']);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('partial payment only where the biller allows it, overpayment never', async () => {
    const chip = await loadedCard(10_000);
    const whole = await bill(1_000);
    expect((await payBill(whole, 400)).payBill.userErrors.map((e) => e.code)).toEqual(['PARTIAL_PAYMENT_NOT_ALLOWED']);
    expect((await payBill(whole, 1_001)).payBill.userErrors.map((e) => e.code)).toEqual(['OVERPAYMENT']);
    const parts = await bill(1_000, { allowPartial: true });
    const first = (await payBill(parts, 300)).payBill.billPayment!;
    expect((await payWithCard(first.id, chip)).state).toBe('COMPLETED');
    expect(await billStatus(parts)).toEqual({ status: 'OPEN', amount_paid: '300' });
    expect((await payBill(parts, 701)).payBill.userErrors.map((e) => e.code)).toEqual(['OVERPAYMENT']);
    const rest = (await payBill(parts)).payBill.billPayment!;
    expect(rest.amount.amount).toBe(700);
    expect((await payWithCard(rest.id, chip)).state).toBe('COMPLETED');
    expect(await billStatus(parts)).toEqual({ status: 'PAID', amount_paid: '1000' });
  });

  it('a payment of nothing is refused on the amount, and on a paid bill as not payable; no payment is written', async () => {
    const parts = await bill(1_000, { allowPartial: true });
    const zero = (await payBill(parts, 0)).payBill;
    expect(zero.billPayment).toBeNull();
    expect(zero.userErrors).toEqual([{ code: 'INVALID_INPUT', message: 'a payment is at least 1 minor unit', field: ['input', 'amount'] }]);
    const [{ n }] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from bill_payment where bill_id = ?`, [Buffer.from(parts, 'base64url').toString().split(':')[1]]);
    expect(n).toBe('0');
    const chip = await loadedCard(2_000);
    const all = (await payBill(parts)).payBill.billPayment!;
    expect((await payWithCard(all.id, chip)).state).toBe('COMPLETED');
    expect((await payBill(parts, 0)).payBill.userErrors).toEqual([{ code: 'BILL_NOT_PAYABLE', message: 'the bill is PAID', field: ['input', 'bill'] }]);
    expect(await billStatus(parts)).toEqual({ status: 'PAID', amount_paid: '1000' });
  });

  it('a bill nobody published is refused as not found, on the bill, and no payment is written', async () => {
    const unknown = randomUUID();
    const refused = (await payBill(toGlobalId('Bill', unknown), 100)).payBill;
    expect(refused).toEqual({ billPayment: null, userErrors: [{ code: 'NOT_FOUND', message: `no bill ${unknown} you may pay`, field: ['input', 'bill'] }] });
    const [{ n }] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from bill_payment where bill_id = ?`, [unknown]);
    expect(n).toBe('0');
  });

  it('an overdue bill is owed with its late fee', async () => {
    const chip = await loadedCard(10_000);
    const late = await bill(2_000, { dueDate: '2026-01-31', lateFee: { kind: 'FIXED', amount: 150 } });
    const made = (await payBill(late)).payBill.billPayment!;
    expect(made.amount.amount).toBe(2_150);
    expect((await payWithCard(made.id, chip)).state).toBe('COMPLETED');
    expect(await billStatus(late)).toEqual({ status: 'PAID', amount_paid: '2150' });
  });
});

describe('paying from a paid top-up', () => {
  it('a PAID top-up pays a bill at once, without the card: pending loads → biller payable, the top-up SPENT, a receipt', async () => {
    const chip = await loadedCard(1_000);
    const [card] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from card where asn = ?`, [chip.asn]);
    const topUp = await app.request<{ createTopUp: { topUp: { id: string; status: string }; userErrors: Errors } }>(
      `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }`,
      { input: { card: toGlobalId('Card', card!.id), amount: 2_600, idempotencyKey: 'bill-top-up', paymentMethod: 'pm_card_visa' } },
    );
    expect(topUp.createTopUp.topUp.status).toBe('PAID');
    const billId = await bill(2_600);
    const payFrom = (fromTopUp: string, key: string, by = app) => by.request<{ payBill: { billPayment: BillPayment | null; userErrors: Errors } }>(PAY, { input: { bill: billId, fromTopUp, idempotencyKey: key } });
    const topUpRowId = Buffer.from(topUp.createTopUp.topUp.id, 'base64url').toString().split(':')[1]!;
    // Another holder cannot spend it: to them it does not exist.
    expect((await payFrom(topUp.createTopUp.topUp.id, 'spend-0', otherApp)).payBill.userErrors).toEqual([{ code: 'NOT_FOUND', message: `no top-up ${topUpRowId} of yours`, field: ['input', 'fromTopUp'] }]);
    const paid = await payFrom(topUp.createTopUp.topUp.id, 'spend-1');
    expect(paid.payBill.userErrors).toEqual([]);
    expect(paid.payBill.billPayment).toMatchObject({ status: 'SUCCEEDED', amount: { amount: 2600 }, receiptNumber: expect.stringMatching(/^R\d{8}-/) });
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '2600' });
    const paymentRowId = Buffer.from(paid.payBill.billPayment!.id, 'base64url').toString().split(':')[1]!;
    const [spent] = await world.db.orm.em.fork().execute<{ status: string; spent_on: string }[]>(`select status, spent_on from top_up where id = ?`, [topUpRowId]);
    // The top-up says what it paid (its history and the card company's support read it).
    expect(spent).toEqual({ status: 'SPENT', spent_on: `bill payment ${paymentRowId}` });
    // The ledger entry names the payment, the bill, the biller and the top-up (what reconciliation follows).
    const [entry] = await world.db.orm.em.fork().execute<{ metadata: Record<string, string> }[]>(`select metadata from journal_entry where entry_key = ?`, [`bill-payment:${paymentRowId}`]);
    expect(entry!.metadata).toEqual({ kind: 'BILL_PAYMENT', billPayment: paymentRowId, bill: Buffer.from(billId, 'base64url').toString().split(':')[1], biller: waterId, topUp: topUpRowId });
    // The card did not change; the value never reached it.
    expect(await balanceOnCard(chip)).toBe(1_000);
    expect(await purseBalance(world, chip.asn)).toBe(1_000n);
    // Spent once.
    expect((await payFrom(topUp.createTopUp.topUp.id, 'spend-2')).payBill.userErrors.map((e) => e.code)).toEqual(['BILL_NOT_PAYABLE']);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });
});

describe('paying from a top-up: what does not fit is refused, and nothing moves', () => {
  const PAY_FROM = `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { ${BP} } userErrors { code message field } } }`;
  type Refusal = { code: string; message: string; field: string[] | null };
  const rowId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
  const payFrom = (billId: string, topUpId: string, amount?: number) =>
    app.request<{ payBill: { billPayment: BillPayment | null; userErrors: Refusal[] } }>(PAY_FROM, { input: { bill: billId, fromTopUp: topUpId, amount, idempotencyKey: `pay-from-${++keys}` } });

  /** A PAID top-up of the holder's card (the sandbox pays it at once). */
  async function paidTopUp(amount: number) {
    const chip = await loadedCard(100);
    const [card] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from card where asn = ?`, [chip.asn]);
    const made = await app.request<{ createTopUp: { topUp: { id: string; status: string } } }>(
      `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }`,
      { input: { card: toGlobalId('Card', card!.id), amount, idempotencyKey: `top-up-${randomUUID()}`, paymentMethod: 'pm_card_visa' } },
    );
    expect(made.createTopUp.topUp.status).toBe('PAID');
    return made.createTopUp.topUp.id;
  }
  const topUpStatus = async (topUpId: string) => (await world.db.orm.em.fork().execute<{ status: string }[]>(`select status from top_up where id = ?`, [rowId(topUpId)]))[0]!.status;
  /** What a bill's payments left behind: their rows, ledger entries and clearing items. */
  const traces = async (billId: string) => {
    const em = world.db.orm.em.fork();
    const payments = await em.execute<{ id: string; status: string }[]>(`select id, status from bill_payment where bill_id = ?`, [rowId(billId)]);
    const keysOf = `(select 'bill-payment:' || id::text from bill_payment where bill_id = ?)`;
    const [entries] = await em.execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key in ${keysOf}`, [rowId(billId)]);
    const [items] = await em.execute<{ n: number }[]>(`select count(*)::int as n from clearing_item where entry_key in ${keysOf}`, [rowId(billId)]);
    return { succeeded: payments.filter((p) => p.status === 'SUCCEEDED').length, entries: entries!.n, clearingItems: items!.n, bill: await billStatus(billId) };
  };
  const untouched = { succeeded: 0, entries: 0, clearingItems: 0, bill: { status: 'OPEN', amount_paid: '0' } };

  it('a top-up larger than the bill, smaller than a whole-only bill, or named with another amount is refused with its reason; the top-up stays PAID and can pay a bill it fits', async () => {
    const topUp = await paidTopUp(2_000);
    const small = await bill(1_500);
    const large = await bill(3_000);
    const exact = await bill(2_000);
    expect((await payFrom(small, topUp)).payBill).toEqual({
      billPayment: null,
      userErrors: [{ code: 'OVERPAYMENT', message: '1500 remains to pay; a bill is never overpaid', field: ['input', 'amount'] }],
    });
    expect((await payFrom(large, topUp)).payBill.userErrors).toEqual([{ code: 'PARTIAL_PAYMENT_NOT_ALLOWED', message: 'the biller takes this bill only in full (3000)', field: ['input', 'amount'] }]);
    expect((await payFrom(exact, topUp, 1_999)).payBill.userErrors).toEqual([{ code: 'INVALID_INPUT', message: 'a top-up is spent whole: 2000', field: ['input', 'amount'] }]);
    for (const b of [small, large, exact]) expect(await traces(b)).toEqual(untouched);
    expect(await topUpStatus(topUp)).toBe('PAID');

    // Its own amount, named, is the whole top-up: accepted.
    const paid = await payFrom(exact, topUp, 2_000);
    expect(paid.payBill.userErrors).toEqual([]);
    expect(paid.payBill.billPayment).toMatchObject({ status: 'SUCCEEDED', amount: { amount: 2000 } });
    expect(await traces(exact)).toEqual({ succeeded: 1, entries: 1, clearingItems: 1, bill: { status: 'PAID', amount_paid: '2000' } });
    expect(await topUpStatus(topUp)).toBe('SPENT');

    // Spent: another open bill it would fit refuses it, and nothing is written.
    const another = await bill(2_000);
    const again = await payFrom(another, topUp);
    expect(again.payBill.userErrors.map((e) => [e.code, e.field])).toEqual([['INVALID_INPUT', ['input', 'fromTopUp']]]);
    expect(await traces(another)).toEqual(untouched);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card paying the bill holds it against a top-up too: refused, and nothing is written', async () => {
    const topUp = await paidTopUp(900);
    const billId = await bill(900);
    const carding = (await payBill(billId)).payBill.billPayment!;
    await world.db.orm.em.fork().execute(`update bill_payment set status = 'PROCESSING' where id = ?`, [rowId(carding.id)]);
    expect((await payFrom(billId, topUp)).payBill.userErrors).toEqual([{ code: 'BILL_PAYMENT_IN_PROGRESS', message: 'a card is paying this bill right now; try again when it has finished', field: ['input', 'bill'] }]);
    expect(await traces(billId)).toEqual(untouched);
    expect(await topUpStatus(topUp)).toBe('PAID');
    const [{ status }] = await world.db.orm.em.fork().execute<{ status: string }[]>(`select status from bill_payment where id = ?`, [rowId(carding.id)]);
    expect(status).toBe('PROCESSING');
  });

  it('a top-up in another currency than the bill is refused on the top-up, and nothing moves', async () => {
    const hk = await addCity(world, { code: 'HK', name: 'Hong Kong', cardCompanyName: 'Octopus', cardCode: '8520', currency: 'HKD' });
    const hkWater = await createBiller(world.db.orm.em.fork(), { cityId: hk.cityId, name: 'Hong Kong Water', kind: BillerKind.WATER });
    const billId = await bill(1_200, { biller: { id: hkWater.id, currency: 'HKD' } });
    const topUp = await paidTopUp(1_200);
    expect((await payFrom(billId, topUp)).payBill.userErrors).toEqual([{ code: 'INVALID_INPUT', message: 'the top-up is in CNY, the bill in HKD', field: ['input', 'fromTopUp'] }]);
    expect(await traces(billId)).toEqual(untouched);
    expect(await topUpStatus(topUp)).toBe('PAID');
  });

  /** Another transaction holds a row (`lockSql`) until `release()`: how the race tests stop a payment halfway. */
  function holdRow(lockSql: string, params: unknown[]) {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let isHeld!: () => void;
    const held = new Promise<void>((r) => (isHeld = r));
    const done = world.db.orm.em.fork().transactional(async (tx) => {
      await tx.execute(lockSql, params);
      isHeld();
      await released;
    });
    return { held, release, done };
  }
  /** Until `n` statements of this database wait for a lock, or `settled` has settled. */
  async function untilWaiting(n: number, settled?: Promise<unknown>) {
    let over = false;
    void settled?.then(() => (over = true), () => (over = true));
    for (let i = 0; i < 1_200 && !over; i++) {
      const [row] = await world.db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
      if (row!.n >= n) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!over) throw new Error(`${n} statements never waited for a lock`);
  }

  it('two top-ups paying one bill at once never overpay it: the second sees what the first paid', async () => {
    const billId = await bill(5_000, { allowPartial: true });
    const [first, second] = [await paidTopUp(3_000), await paidTopUp(3_000)];
    // The first payment stops after taking the bill, waiting for its top-up…
    const holder = holdRow(`select id from top_up where id = ? for update`, [rowId(first)]);
    await holder.held;
    const firstPaying = payFrom(billId, first);
    await untilWaiting(1);
    // …while the second pays the same bill (it waits for the bill, which the first holds).
    const secondPaying = payFrom(billId, second);
    await untilWaiting(2, secondPaying);
    holder.release();
    await holder.done;
    expect((await firstPaying).payBill.billPayment).toMatchObject({ status: 'SUCCEEDED', amount: { amount: 3000 } });
    expect((await secondPaying).payBill.userErrors).toEqual([{ code: 'OVERPAYMENT', message: '2000 remains to pay; a bill is never overpaid', field: ['input', 'amount'] }]);
    expect(await traces(billId)).toEqual({ succeeded: 1, entries: 1, clearingItems: 1, bill: { status: 'OPEN', amount_paid: '3000' } });
    expect(await topUpStatus(second)).toBe('PAID');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('one top-up paying two bills at once is spent once: the other is refused as spent, and nothing is booked twice', async () => {
    const topUp = await paidTopUp(700);
    const [a, b] = [await bill(700), await bill(700)];
    // The card company's pending loads are held, so both payments are under way before either can book.
    const holder = holdRow(`select id from ledger_account where code = ? for update`, [`card-company.${world.gz.cardCompanyId}.pending-loads.CNY`]);
    await holder.held;
    const paying = [payFrom(a, topUp), payFrom(b, topUp)];
    await untilWaiting(2, Promise.all(paying));
    holder.release();
    await holder.done;
    const answers = (await Promise.all(paying)).map((r) => r.payBill);
    expect(answers.filter((r) => r.billPayment?.status === 'SUCCEEDED')).toHaveLength(1);
    expect(answers.flatMap((r) => r.userErrors)).toEqual([{ code: 'INVALID_INPUT', message: 'a SPENT top-up cannot be spent', field: ['input', 'fromTopUp'] }]);
    const both = [await traces(a), await traces(b)];
    expect(both.map((t) => t.entries).sort()).toEqual([0, 1]);
    expect(both.map((t) => t.bill.status).sort()).toEqual(['OPEN', 'PAID']);
    expect(await topUpStatus(topUp)).toBe('SPENT');
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a top-up pays part of a bill that allows parts: the bill stays OPEN until the rest, a payment waiting for the card gives way, the ledger, clearing and bill.paid say each amount', async () => {
    const billId = await bill(5_000, { allowPartial: true });
    const waiting = (await payBill(billId)).payBill.billPayment!;
    const first = await paidTopUp(2_000);
    const part = (await payFrom(billId, first)).payBill.billPayment!;
    expect(part).toMatchObject({ status: 'SUCCEEDED', amount: { amount: 2000 } });
    expect(await billStatus(billId)).toEqual({ status: 'OPEN', amount_paid: '2000' });
    const [superseded] = await world.db.orm.em.fork().execute<{ status: string; failure_code: string }[]>(`select status, failure_code from bill_payment where id = ?`, [rowId(waiting.id)]);
    expect(superseded).toEqual({ status: 'CANCELED', failure_code: 'SUPERSEDED' });

    const rest = (await payFrom(billId, await paidTopUp(3_000))).payBill.billPayment!;
    expect(rest).toMatchObject({ status: 'SUCCEEDED', amount: { amount: 3000 } });
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '5000' });

    const em = world.db.orm.em.fork();
    for (const [payment, amount, billStatusThen] of [[part, 2_000, 'OPEN'], [rest, 3_000, 'PAID']] as const) {
      const key = `bill-payment:${rowId(payment.id)}`;
      const [payable] = await em.execute<{ total: string }[]>(
        `select sum(po.amount)::text as total from posting po join journal_entry e on e.id = po.entry_id join ledger_account a on a.id = po.account_id
          where e.entry_key = ? and a.owner_kind = 'BILLER_PAYABLE' and a.owner_id = ?`,
        [key, waterId],
      );
      expect(payable!.total, 'credited to the water company’s payable').toBe(String(-amount));
      const items = await em.execute<Record<string, unknown>[]>(`select kind, participant_kind, participant_id::text, card_company_id::text, amount::int, btrim(currency) as currency from clearing_item where entry_key = ?`, [key]);
      expect(items).toEqual([{ kind: 'BILL_PAYMENT', participant_kind: 'BILLER', participant_id: waterId, card_company_id: world.gz.cardCompanyId, amount, currency: 'CNY' }]);
      const events = await em.execute<{ type: string; owner_id: string; payload: { amount: number; billStatus: string } }[]>(`select type, owner_id, payload from event_outbox where subject_id = ?`, [payment.id]);
      expect(events.map((e) => [e.type, e.owner_id, e.payload.amount, e.payload.billStatus])).toEqual([['bill.paid', waterId, amount, billStatusThen]]);
    }
    expect(await checkLedger(em)).toEqual([]);
  });
});

describe('who may pay a bill, in the service (the resolver lets only a holder’s app with card:topup through)', () => {
  const principal = (kind: PrincipalKind, fields: Partial<Principal>): Principal => ({ kind, clientId: 'test', tenantId: null, holderId: null, scopes: [], ...fields });
  const cases: { who: string; principal: () => Principal }[] = [
    { who: 'a holder’s app with card:read only', principal: () => principal('CARDHOLDER_APP', { tenantId: world.gz.cardCompanyId, holderId, scopes: ['card:read'] }) },
    { who: 'a holder’s app with no holder', principal: () => principal('CARDHOLDER_APP', { tenantId: world.gz.cardCompanyId, scopes: ['card:topup'] }) },
    { who: 'the biller of the bill, holding card:topup and a holder id', principal: () => principal('BILLER', { tenantId: waterId, holderId, scopes: ['bills:read', 'bills:write', 'card:topup'] }) },
  ];
  it.each(cases)('$who is refused as if the bill did not exist, and no payment is written', async ({ principal: make }) => {
    const billId = Buffer.from(await bill(400), 'base64url').toString().split(':')[1]!;
    await expect(payBillInService(world.db.orm.em.fork(), make(), { billId })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no bill ${billId} you may pay`, field: 'bill' });
    const [{ n }] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from bill_payment where bill_id = ?`, [billId]);
    expect(n).toBe('0');
  });
});

describe('one bill, two payments at once', () => {
  it('never both succeed: a newer payment replaces one still waiting, one a card is paying holds the bill, and the card pays once', async () => {
    const chip = await loadedCard(10_000);
    const billId = await bill(800);
    const first = (await payBill(billId)).payBill.billPayment!;
    const firstSession = (await app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', billPayment: first.id } })).openCardSession.session;
    const second = (await payBill(billId)).payBill.billPayment!;
    // Both sessions run at once, on the card and a copy of it: only the live payment can take a card.
    const copy = VirtualCpuCard.fromJSON(chip.toJSON());
    const [a, b] = await Promise.all([sessionsOf(app, () => home).agent(copy).run(firstSession), payWithCard(second.id, chip)]);
    expect(a).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(b.state).toBe('COMPLETED');
    expect(await balanceOnCard(copy)).toBe(10_000);
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '800' });
    expect((await payBill(billId)).payBill.userErrors.map((e) => e.code)).toEqual(['BILL_NOT_PAYABLE']);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card that proves it paid a bill payment canceled since (CARD_ANSWER_LOST), after the bill was paid another way, does not pay the bill twice', async () => {
    const chip = await loadedCard(2_000);
    const billId = await bill(500);
    const lost = (await payBill(billId)).payBill.billPayment!;
    const opened = (await app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', billPayment: lost.id } })).openCardSession.session;
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(chip).run(opened)).rejects.toThrow('connection lost');
    await expireSession(world, opened.id);
    // What the expiry job does a day later when nobody tapped again; then the holder pays with another card.
    await world.db.orm.em.fork().execute(`update bill_payment set status = 'CANCELED', failure_code = 'CARD_ANSWER_LOST', canceled_at = now() where id = ?`, [Buffer.from(lost.id, 'base64url').toString().split(':')[1]]);
    const other = await loadedCard(2_000);
    expect((await payWithCard((await payBill(billId)).payBill.billPayment!.id, other)).state).toBe('COMPLETED');
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '500' });
    // The first card taps for a balance read: it proves the lost purchase, which must not pay the bill again.
    const reader = sessionsOf(app, () => home);
    expect((await reader.agent(chip).run(await reader.open('BALANCE'))).state).toBe('COMPLETED');
    expect(await billStatus(billId)).toEqual({ status: 'PAID', amount_paid: '500' });
    const [row] = await world.db.orm.em.fork().execute<{ status: string }[]>(`select status from bill_payment where id = ?`, [Buffer.from(lost.id, 'base64url').toString().split(':')[1]]);
    expect(row!.status).toBe('CANCELED');
    // Nobody was paid by that purchase: its value goes back to the holder as a pending load.
    expect(await balanceOnCard(chip)).toBe(1_500);
    expect(await purseBalance(world, chip.asn)).toBe(1_500n);
    const events = await world.db.orm.em.fork().execute<{ type: string }[]>(`select type from event_outbox where subject_id = ?`, [Buffer.from(lost.id, 'base64url').toString().split(':')[1]]);
    expect(events.filter((e) => e.type === 'bill.paid')).toHaveLength(0);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('a card that is paying holds the bill: another payment is refused meanwhile; a withdrawn bill is refused before the card pays', async () => {
    const chip = await loadedCard(10_000);
    const billId = await bill(900);
    const made = (await payBill(billId)).payBill.billPayment!;
    await world.db.orm.em.fork().execute(`update bill_payment set status = 'PROCESSING' where id = ?`, [Buffer.from(made.id, 'base64url').toString().split(':')[1]]);
    expect((await payBill(billId)).payBill.userErrors).toEqual([{ code: 'BILL_PAYMENT_IN_PROGRESS', message: 'a card is paying this bill right now; try again when it has finished', field: ['input', 'bill'] }]);
    await world.db.orm.em.fork().execute(`update bill_payment set status = 'REQUIRES_CARD' where id = ?`, [Buffer.from(made.id, 'base64url').toString().split(':')[1]]);
    const withdrawn = await water.request<{ withdrawBill: { userErrors: Errors } }>(`mutation($input: WithdrawBillInput!) { withdrawBill(input: $input) { userErrors { code } } }`, { input: { bill: billId } });
    expect(withdrawn.withdrawBill.userErrors).toEqual([]);
    const refused = await payWithCard(made.id, chip);
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(chip)).toBe(10_000);
    expect((await payBill(billId)).payBill.userErrors.map((e) => e.code)).toEqual(['BILL_NOT_PAYABLE']);
  });
});

describe('holding a bill', () => {
  it('a payment merely waiting for a card does not hold the bill: another payment takes its place, and the biller may still amend it', async () => {
    const billId = await bill(500);
    const idle = (await payBill(billId, undefined, otherApp)).payBill.billPayment!;
    const mine = await payBill(billId);
    expect(mine.payBill.userErrors).toEqual([]);
    const [{ status, failure_code }] = await world.db.orm.em.fork().execute<{ status: string; failure_code: string }[]>(`select status, failure_code from bill_payment where id = ?`, [Buffer.from(idle.id, 'base64url').toString().split(':')[1]]);
    expect({ status, failure_code }).toEqual({ status: 'CANCELED', failure_code: 'SUPERSEDED' });
    const amend = await water.request<{ amendBill: { userErrors: Errors } }>(`mutation($input: AmendBillInput!) { amendBill(input: $input) { userErrors { code message } } }`, { input: { bill: billId, amountDue: 600 } });
    expect(amend.amendBill.userErrors).toEqual([]);
  });

  it('an amendment that would leave a partly paid bill owing nothing is refused', async () => {
    const chip = await loadedCard(5_000);
    const billId = await bill(1_000, { allowPartial: true, dueDate: '2026-01-31', lateFee: { kind: 'FIXED', amount: 500 } });
    const part = (await payBill(billId, 1_200)).payBill.billPayment!;
    expect((await payWithCard(part.id, chip)).state).toBe('COMPLETED');
    const later = await water.request<{ amendBill: { userErrors: Errors } }>(`mutation($input: AmendBillInput!) { amendBill(input: $input) { userErrors { code } } }`, { input: { bill: billId, dueDate: '2099-12-31' } });
    expect(later.amendBill.userErrors.map((e) => e.code)).toEqual(['AMOUNT_DUE_BELOW_PAID']);
    expect(await billStatus(billId)).toEqual({ status: 'OPEN', amount_paid: '1200' });
  });
});

describe('the biller’s daily reconciliation', () => {
  it('lists the day’s payments with totals equal to the ledger, as GraphQL and as a CSV download', async () => {
    const RECON = `query($day: String!) { billerReconciliation(businessDay: $day) { businessDay count total { amount } ledgerTotal { amount } payments { receiptNumber amount { amount } } csv } }`;
    const chip = await loadedCard(20_000);
    for (const amount of [1_100, 2_200]) {
      const made = (await payBill(await bill(amount))).payBill.billPayment!;
      expect((await payWithCard(made.id, chip)).state).toBe('COMPLETED');
    }
    // The day of the last payment (not "today": the test may run across midnight in Shanghai).
    const [{ day }] = await world.db.orm.em.fork().execute<{ day: string }[]>(`select business_day::text as day from bill_payment where biller_id = ? and status = 'SUCCEEDED' order by paid_at desc limit 1`, [waterId]);
    const recon = (await water.request<{ billerReconciliation: { businessDay: string; count: number; total: { amount: number }; ledgerTotal: { amount: number }; payments: { receiptNumber: string }[]; csv: string } }>(RECON, { day })).billerReconciliation;
    expect(recon.count).toBeGreaterThanOrEqual(1);
    expect(recon.total.amount).toBe(recon.ledgerTotal.amount);
    // Across all its days, the biller's payable holds exactly what its reconciliations add up to
    // (payments near midnight in Shanghai fall on either side of it).
    const days = await world.db.orm.em.fork().execute<{ day: string }[]>(`select distinct business_day::text as day from bill_payment where biller_id = ? and status = 'SUCCEEDED'`, [waterId]);
    let all = 0n;
    for (const d of days) all += BigInt((await water.request<{ billerReconciliation: { total: { amount: number } } }>(RECON, { day: d.day })).billerReconciliation.total.amount);
    const [ledger] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`biller.${waterId}.payable.CNY`]);
    expect(BigInt(ledger!.balance)).toBe(all);
    expect(recon.csv.split('\r\n')[0]).toBe('receipt_number,paid_at,account_number,period,biller_reference,amount,currency,card');
    expect(recon.csv.trim().split('\r\n')).toHaveLength(recon.count + 1);
    // The same file over HTTP with the biller's token; the other biller's day is its own (empty).
    const token = await clientCredentialsToken(await discover(world.server.url), waterCredentials.id, waterCredentials.secret, 'bills:read');
    const res = await fetch(`${world.server.url}/billers/reconciliation.csv?day=${day}`, { headers: { authorization: `Bearer ${token.access_token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await res.text()).toBe(recon.csv);
    expect((await otherBiller.request<{ billerReconciliation: { count: number } }>(RECON, { day })).billerReconciliation.count).toBe(0);
    const noToken = await fetch(`${world.server.url}/billers/reconciliation.csv?day=${day}`);
    expect(noToken.status).toBe(401);
  });
});
