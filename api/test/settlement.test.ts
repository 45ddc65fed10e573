/**
 * Settlement end to end (issue 8): money moved by the real flows over HTTP — merchant payments
 * paid by virtual cards on a till, a partial refund, a direct purchase, bills paid by card and from
 * a top-up, a top-up paid at the sandbox gateway, a visiting city's cards, offline transit batches
 * signed by a terminal — then the cut-off, clearing and payouts, checked against the ledger.
 *
 * Each describe has cities of its own, so its windows hold only its own money. The cities' time
 * zone is one where it is mid-day now, so "today" is one business day whenever the file runs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { type BatchRow, clearWindow } from '../src/settlement/clearing.js';
import { sendDuePayouts } from '../src/settlement/payouts.js';
import { closeDueWindows, closeWindow, type WindowRow, windowById, windowOf } from '../src/settlement/windows.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { feeFor } from '../src/tenancy/fee.js';
import { createBiller, createFeePlan, createMerchant } from '../src/tenancy/tenancy.service.js';
import { GatewayClient } from '../src/topups/gateway/gateway-client.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { apiClient, issueCard, newReader, OPEN, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import {
  balanceOf,
  eventually,
  type GatewayFront,
  holderApp,
  holdLock,
  localDay,
  localInstant,
  lockWaiters,
  nextDay,
  offlineRide,
  postingsOf,
  type SettlementCity,
  settlementCity,
  startGatewayFront,
  uploadRides,
} from './support/settlement.js';

const SECRET = 'sk_test_settlement';
const WEBHOOK_SECRET = 'whsec_settlement_0123456789';
let sandbox: SandboxGateway;
let front: GatewayFront;
/** The platform's payouts go through the front, which can lose an answer or make a bank refuse. */
let gateway: GatewayClient;
/** The same, giving up on an answer after 300 ms (for the answer the front loses). */
let impatientGateway: GatewayClient;
/** Straight to the sandbox: what the gateway's own books say. */
let gatewayBooks: GatewayClient;

beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, payoutDelayMs: 50, webhookRetryDelaysMs: [50, 100, 200] });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });
beforeAll(async () => {
  front = await startGatewayFront({ gatewayUrl: sandbox.url, webhookTarget: () => `${world.server.url}/webhooks/gateway` });
  sandbox.setWebhookUrl(front.webhookUrl);
  gateway = new GatewayClient({ url: front.url, secretKey: SECRET, retries: 0 });
  impatientGateway = new GatewayClient({ url: front.url, secretKey: SECRET, timeoutMs: 300, retries: 0 });
  gatewayBooks = new GatewayClient({ url: sandbox.url, secretKey: SECRET });
  // The operator's float at the gateway: what payouts are paid from beyond the day's top-ups.
  await gatewayBooks.createPaymentIntent({ amount: 10_000_000n, currency: 'CNY', metadata: { purpose: 'operator float' }, paymentMethod: 'pm_card_visa', confirm: true }, 'operator-float');
});
// A test that stopped half-way leaves the gateway as it found it for the next one.
afterEach(async () => {
  front.bankRefuses.clear();
  front.loseAnswersOf.clear();
  await front.release();
});
afterAll(async () => {
  await front?.close();
  await sandbox?.close();
});

const em = () => world.db.orm.em.fork();
const CUTOFF = '02:00';
const FEE_REVENUE = 'operator.fee-revenue.CNY';
const IN_TRANSIT = 'settlement.in-transit.CNY';
const GATEWAY_CLEARING = 'gateway.clearing.CNY';
const PAYABLE = {
  MERCHANT: (id: string) => `merchant.${id}.payable.CNY`,
  BILLER: (id: string) => `biller.${id}.payable.CNY`,
  CARD_COMPANY: (id: string) => `card-company.${id}.transit-revenue.CNY`,
};

// ——— reading what settlement wrote ———

interface Line {
  id: string;
  participant_kind: keyof typeof PAYABLE;
  participant_id: string;
  participant_name: string;
  sales_count: number;
  refund_count: number;
  gross: number;
  refunds: number;
  fees: number;
  net: number;
  carried_in: number;
  due: number;
  payout_amount: number;
  status: string;
  top_up_count: number;
  top_ups: number;
  carried_into: string | null;
}

async function linesOf(batchId: string): Promise<Line[]> {
  const rows = await em().execute<Record<string, unknown>[]>(
    `select id, participant_kind, participant_id, participant_name, sales_count::int, refund_count::int, gross::int, refunds::int, fees::int, net::int, carried_in::int, due::int,
            payout_amount::int, status, top_up_count::int, top_ups::int, carried_into
       from settlement_line where batch_id = ? order by participant_kind, participant_id`,
    [batchId],
  );
  return rows as unknown as Line[];
}

/** The participant's line in a batch. */
async function lineOf(batchId: string, participantId: string): Promise<Line | undefined> {
  return (await linesOf(batchId)).find((l) => l.participant_id === participantId);
}

async function payoutOfLine(lineId: string) {
  const [row] = await em().execute<{ id: string; amount: number; status: string; gateway_payout_id: string | null; failure_code: string | null; attempts: number }[]>(
    `select id, amount::int, status, gateway_payout_id, failure_code, attempts from settlement_payout where line_id = ?`,
    [lineId],
  );
  return row;
}

async function windowStatus(windowId: string) {
  const [row] = await em().execute<{ window: string; batch: string | null }[]>(`select w.status as window, b.status as batch from settlement_window w left join settlement_batch b on b.window_id = w.id where w.id = ?`, [windowId]);
  return row!;
}

/** The window each of a city's clearing items is in, by the item's reference, with its business day. */
async function itemsOfCity(cityId: string) {
  return em().execute<{ reference: string; kind: string; amount: number; business_day: string; window_id: string | null }[]>(
    `select reference, kind, amount::int, business_day::text, window_id from clearing_item where city_id = ? order by id`,
    [cityId],
  );
}

const rideRef = (ride: { asn: string; offlineCounter: number }) => `${ride.asn}:${ride.offlineCounter}`;

/** Every payout the gateway's books hold, by id (its balance transactions of type payout). */
async function gatewayPayoutTransactions(): Promise<{ source: string; amount: number }[]> {
  const all: { source: string; amount: number; type: string }[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await gatewayBooks.listBalanceTransactions({ limit: 100, startingAfter: after });
    all.push(...page.data);
    if (!page.has_more) break;
    after = page.data.at(-1)!.id;
  }
  // A failed payout gives its money back with a second transaction of the same source: count the payouts themselves.
  return all.filter((t) => t.type === 'payout' && t.amount < 0);
}

// ——— making money move ———

interface Counter {
  issuer: OneCardClient;
  reader: TestReader;
}

/** A card of the city, registered with its card company (to a holder when named), loaded at the counter. */
async function cardOf(city: SettlementCity, counter: Counter, loaded: number, holderId?: string): Promise<{ chip: VirtualCpuCard; id: string }> {
  const chip = issueCard({ city, keys: city.keys });
  const row = await registerCard(em(), city.cardCompanyId, { cardNumber: testCardNumber(`62${city.cardCode}000000`), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const desk = sessionsOf(counter.issuer, () => counter.reader);
  expect((await desk.agent(chip).run(await desk.open('LOAD', loaded))).state).toBe('COMPLETED');
  return { chip, id: toGlobalId('Card', row.id) };
}

type Errors = { code: string; message: string }[];
const CREATE_PAYMENT = `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const REFUND_PAYMENT = `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { payment { refundedAmount { amount } } userErrors { code message } } }`;
const PAY_BILL = `mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id status } userErrors { code message } } }`;
const CREATE_TOP_UP = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }`;

type Caller = { request<T>(query: string, variables?: Record<string, unknown>): Promise<T> };

/** Opens a purchase session for a payment or bill payment and lets the card pay it on the reader. */
async function payWithCard(by: Caller, reader: TestReader, chip: VirtualCpuCard, purpose: { payment: string } | { billPayment: string }) {
  const opened = await by.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: Errors } }>(OPEN, { input: { reader: reader.id, operation: 'PURCHASE', ...purpose } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  expect((await sessionsOf(by, () => reader).agent(chip, reader).run(opened.openCardSession.session!)).state).toBe('COMPLETED');
}

/** A published bill of the biller (straight into its table: publishing has its own tests). */
async function publishBill(billerId: string, amountDue: number): Promise<string> {
  const id = randomUUID();
  await em().execute(
    `insert into bill (id, biller_id, currency, account_number, period, amount_due, due_date, late_fee, allow_partial, biller_reference, source) values (?, ?, 'CNY', ?, '2026-11', ?, '2099-12-31', '{"kind":"NONE"}', false, ?, 'PUBLISHED')`,
    [id, billerId, `ACC-${id.slice(0, 8)}`, amountDue, `ref-${id}`],
  );
  return toGlobalId('Bill', id);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

// ————————————————————————————————————————————————————————————————————————————————————————

describe('one business day of a city, cleared', () => {
  let A: SettlementCity;
  let B: SettlementCity;
  let today: string;
  let window: WindowRow;
  const ids = { shop: '', water: '' };
  const plans = { shop: { basisPoints: 60, fixedFee: 0n, minimumFee: 10n }, water: { basisPoints: 0, fixedFee: 100n, minimumFee: 0n }, transit: { basisPoints: 100, fixedFee: 0n, minimumFee: 5n } };
  // What the flows below move, per participant.
  const made = { shopSales: [1_280, 2_000, 300], shopRefunds: [500], waterSales: [3_450, 2_600], rides: [200, 150, 250], topUps: [2_600] };
  const before = { feeRevenue: 0n, inTransit: 0n };

  beforeAll(async () => {
    A = await settlementCity(world, { code: 'SA', name: 'Settle A', cardCompanyName: 'A Tong', cardCode: '5911' });
    B = await settlementCity(world, { code: 'SB', name: 'Settle B', cardCompanyName: 'B Tong', cardCode: '5912' });
    // B's cards are taken in A (and so make interchange between the two card companies).
    await em().execute(`insert into city_interoperation (card_city_id, reader_city_id) values (?, ?)`, [B.cityId, A.cityId]);
    const shopPlan = await createFeePlan(em(), { name: 'shops 0.6% min 0.10', ...plans.shop, currency: 'CNY' });
    const waterPlan = await createFeePlan(em(), { name: 'billers 1.00 a bill', ...plans.water, currency: 'CNY' });
    const transitPlan = await createFeePlan(em(), { name: 'transit 1% min 0.05', ...plans.transit, currency: 'CNY' });
    ids.shop = (await createMerchant(em(), { cityId: A.cityId, name: 'Tea House', feePlanId: shopPlan.id })).id;
    ids.water = (await createBiller(em(), { cityId: A.cityId, name: 'A Water', kind: BillerKind.WATER, feePlanId: waterPlan.id })).id;
    await em().execute(`update card_company set fee_plan_id = ? where id = ?`, [transitPlan.id, A.cardCompanyId]);

    const merchant = await apiClient(world, 'MERCHANT', ids.shop, ['payments:write', 'payments:read', 'refunds:write']);
    const till = await newReader(world, 'SA-TEA-TILL', A, { kind: 'MERCHANT', id: ids.shop });
    const gate = await newReader(world, 'SA-METRO-GATE', A);
    const counterA = { issuer: await apiClient(world, 'ISSUER', A.cardCompanyId, ['topups:write', 'cards:read']), reader: await newReader(world, 'SA-COUNTER', A) };
    const counterB = { issuer: await apiClient(world, 'ISSUER', B.cardCompanyId, ['topups:write', 'cards:read']), reader: await newReader(world, 'SB-COUNTER', B) };
    const holder = await holderApp(world, A.cardCompanyId);
    const home = await newReader(world, 'SA-HOME', A, { kind: 'CARDHOLDER', id: holder.id });
    today = await localDay(em(), A.cityId);

    const mine = await cardOf(A, counterA, 20_000, holder.id);
    const visitor = await cardOf(B, counterB, 5_000);
    const commuter = await cardOf(A, counterA, 1_000);
    const visitingCommuter = await cardOf(B, counterB, 1_000);

    // The tea house: a payment by an A card, one by a B card (partly refunded), a purchase at the till.
    const pay = async (amount: number, chip: VirtualCpuCard) => {
      const created = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: Errors } }>(CREATE_PAYMENT, { input: { amount, currency: 'CNY', orderReference: `order-${randomUUID()}`, idempotencyKey: randomUUID() } });
      expect(created.createPayment.userErrors).toEqual([]);
      await payWithCard(merchant, till, chip, { payment: created.createPayment.payment.id });
      return created.createPayment.payment.id;
    };
    await pay(1_280, mine.chip);
    const visitorsPayment = await pay(2_000, visitor.chip);
    const refunded = await merchant.request<{ refundPayment: { payment: { refundedAmount: { amount: number } }; userErrors: Errors } }>(REFUND_PAYMENT, { input: { payment: visitorsPayment, amount: 500, reason: 'one cup returned', idempotencyKey: randomUUID() } });
    expect(refunded.refundPayment.userErrors).toEqual([]);
    const desk = sessionsOf(merchant, () => till);
    expect((await desk.agent(mine.chip).run(await desk.open('PURCHASE', 300))).state).toBe('COMPLETED');

    // The water company: a bill paid with the card at home, another from a top-up paid at the gateway.
    const billPayment = await holder.app.request<{ payBill: { billPayment: { id: string }; userErrors: Errors } }>(PAY_BILL, { input: { bill: await publishBill(ids.water, 3_450), idempotencyKey: randomUUID() } });
    expect(billPayment.payBill.userErrors).toEqual([]);
    await payWithCard(holder.app, home, mine.chip, { billPayment: billPayment.payBill.billPayment.id });
    const topUp = await holder.app.request<{ createTopUp: { topUp: { id: string; status: string }; userErrors: Errors } }>(CREATE_TOP_UP, { input: { card: mine.id, amount: 2_600, idempotencyKey: randomUUID(), paymentMethod: 'pm_card_visa' } });
    expect(topUp.createTopUp).toMatchObject({ userErrors: [], topUp: { status: 'PAID' } });
    const fromTopUp = await holder.app.request<{ payBill: { billPayment: { status: string }; userErrors: Errors } }>(PAY_BILL, { input: { bill: await publishBill(ids.water, 2_600), fromTopUp: topUp.createTopUp.topUp.id, idempotencyKey: randomUUID() } });
    expect(fromTopUp.payBill).toMatchObject({ userErrors: [], billPayment: { status: 'SUCCEEDED' } });

    // The metro: the gate's offline batch, two rides of an A card and one of a B card, dated today.
    const rides = [
      await offlineRide(commuter.chip, gate, 200, A.keys.purchase, today, '073000'),
      await offlineRide(commuter.chip, gate, 150, A.keys.purchase, today, '181500'),
      await offlineRide(visitingCommuter.chip, gate, 250, B.keys.purchase, today, '090000'),
    ];
    expect(await uploadRides(counterA.issuer, gate, 'sa-gate-0001', rides)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED']);

    // The ledger holds the day in each payable before clearing.
    expect(await balanceOf(em(), PAYABLE.MERCHANT(ids.shop))).toBe(BigInt(sum(made.shopSales) - sum(made.shopRefunds)));
    expect(await balanceOf(em(), PAYABLE.BILLER(ids.water))).toBe(BigInt(sum(made.waterSales)));
    expect(await balanceOf(em(), PAYABLE.CARD_COMPANY(A.cardCompanyId))).toBe(BigInt(sum(made.rides)));

    // The cut-off job, run by two processes at once, at 02:00 the next local day (not a minute before).
    const cutoffAt = await localInstant(em(), A.cityId, nextDay(today), CUTOFF);
    const inA = (ws: WindowRow[]) => ws.filter((w) => w.city_id === A.cityId);
    expect(inA(await closeDueWindows(em(), { cutoff: CUTOFF, now: new Date(cutoffAt.getTime() - 60_000) }))).toEqual([]);
    const closed = (await Promise.all([closeDueWindows(em(), { cutoff: CUTOFF, now: cutoffAt }), closeDueWindows(em(), { cutoff: CUTOFF, now: cutoffAt })])).flatMap(inA);
    expect(new Set(closed.map((w) => w.id)).size).toBe(1);
    window = closed[0]!;
    expect(window).toMatchObject({ business_day: today, status: 'CLOSED', closed_by: 'cut-off' });
    before.feeRevenue = await balanceOf(em(), FEE_REVENUE);
    before.inTransit = await balanceOf(em(), IN_TRANSIT);
  });

  let clearing: Promise<BatchRow[]> | undefined;
  /** The window cleared by two processes at once (once per file run). */
  const clearedAtOnce = () => (clearing ??= Promise.all([clearWindow(em(), window.id), clearWindow(em(), window.id)]));

  it('takes every item of the day into the window, and the batch, its lines and the interchange equal the flows and the ledger', async () => {
    const items = await itemsOfCity(A.cityId);
    expect(items.map((i) => i.window_id)).toEqual(items.map(() => window.id));
    expect(items.map((i) => i.business_day)).toEqual(items.map(() => today));
    expect(items.map((i) => i.kind).sort()).toEqual(['BILL_PAYMENT', 'BILL_PAYMENT', 'PAYMENT', 'PAYMENT', 'PURCHASE', 'REFUND', 'TOP_UP', 'TRANSIT', 'TRANSIT', 'TRANSIT']);

    const [batch, again] = await clearedAtOnce();
    expect(again).toEqual(batch);
    const fees = {
      shop: sum(made.shopSales.map((a) => Number(feeFor(plans.shop, BigInt(a))))),
      water: sum(made.waterSales.map((a) => Number(feeFor(plans.water, BigInt(a))))),
      transit: sum(made.rides.map((a) => Number(feeFor(plans.transit, BigInt(a))))),
    };
    const net = {
      shop: sum(made.shopSales) - sum(made.shopRefunds) - fees.shop,
      water: sum(made.waterSales) - fees.water,
      transit: sum(made.rides) - fees.transit,
    };
    const lines = await linesOf(batch!.id);
    const zero = { carried_in: 0, carried_into: null, status: 'PAYING' };
    expect(lines.find((l) => l.participant_id === ids.shop)).toMatchObject({
      participant_kind: 'MERCHANT', participant_name: 'Tea House', sales_count: 3, refund_count: 1, gross: sum(made.shopSales), refunds: 500, fees: fees.shop,
      net: net.shop, due: net.shop, payout_amount: net.shop, top_up_count: 0, top_ups: 0, ...zero,
    });
    expect(lines.find((l) => l.participant_id === ids.water)).toMatchObject({
      participant_kind: 'BILLER', participant_name: 'A Water', sales_count: 2, refund_count: 0, gross: sum(made.waterSales), refunds: 0, fees: fees.water,
      net: net.water, due: net.water, payout_amount: net.water, ...zero,
    });
    expect(lines.find((l) => l.participant_id === A.cardCompanyId)).toMatchObject({
      participant_kind: 'CARD_COMPANY', participant_name: 'A Tong', sales_count: 3, refund_count: 0, gross: sum(made.rides), refunds: 0, fees: fees.transit,
      net: net.transit, due: net.transit, payout_amount: net.transit, top_up_count: 1, top_ups: 2_600, ...zero,
    });
    expect(lines).toHaveLength(3);

    const gross = sum([...made.shopSales, ...made.waterSales, ...made.rides]);
    const allFees = fees.shop + fees.water + fees.transit;
    expect(batch).toMatchObject({
      window_id: window.id, currency: 'CNY', status: 'PAYING', item_count: '10', gross: String(gross), refunds: '500', fees: String(allFees),
      net: String(gross - 500 - allFees), payout_total: String(gross - 500 - allFees), top_ups: '2600', top_up_refunds: '0',
    });
    expect(await windowStatus(window.id)).toEqual({ window: 'CLEARED', batch: 'PAYING' });

    // Each item mirrors its own ledger entry, on the participant's payable (a top-up: on its card company's pending loads).
    const mirrored = await em().execute<{ kind: string; items: number; amount: number; postings: number; credited: number }[]>(
      `select i.kind, count(*)::int as items, sum(i.amount)::int as amount, count(p.id)::int as postings, coalesce(sum(-p.amount), 0)::int as credited
         from clearing_item i
         left join journal_entry e on e.entry_key = i.entry_key
         left join ledger_account a on a.code = case when i.kind like 'TOP_UP%' then 'card-company.' || i.participant_id || '.pending-loads.' || btrim(i.currency)
                                                     when i.participant_kind = 'MERCHANT' then 'merchant.' || i.participant_id || '.payable.' || btrim(i.currency)
                                                     when i.participant_kind = 'BILLER' then 'biller.' || i.participant_id || '.payable.' || btrim(i.currency)
                                                     else 'card-company.' || i.participant_id || '.transit-revenue.' || btrim(i.currency) end
         left join posting p on p.entry_id = e.id and p.account_id = a.id
        where i.window_id = ? group by i.kind order by i.kind`,
      [window.id],
    );
    for (const m of mirrored) expect(m.postings, `${m.kind} items with their entry's posting`).toBe(m.items);
    const credited = Object.fromEntries(mirrored.map((m) => [m.kind, m.credited]));
    expect(credited).toEqual({ BILL_PAYMENT: 6_050, PAYMENT: 3_280, PURCHASE: 300, REFUND: -500, TOP_UP: 2_600, TRANSIT: 600 });
    expect(String(credited.PAYMENT! + credited.PURCHASE! + credited.BILL_PAYMENT! + credited.TRANSIT!)).toBe(batch!.gross);
    expect(String(-credited.REFUND!)).toBe(batch!.refunds);
    expect(String(credited.TOP_UP)).toBe(batch!.top_ups);

    // The clearing entry: each payable gives its fees to the operator and its payout to settlement in transit.
    const payableOf = (l: Line) => PAYABLE[l.participant_kind](l.participant_id);
    expect(await postingsOf(em(), `settlement:${window.id}:clearing`)).toEqual({
      ...Object.fromEntries(lines.map((l) => [payableOf(l), BigInt(l.fees + l.payout_amount)])),
      [FEE_REVENUE]: -BigInt(batch!.fees),
      [IN_TRANSIT]: -BigInt(batch!.payout_total),
    });
    for (const l of lines) expect(await balanceOf(em(), payableOf(l)), `${l.participant_name}'s payable after clearing`).toBe(0n);
    expect((await balanceOf(em(), FEE_REVENUE)) - before.feeRevenue).toBe(BigInt(batch!.fees));
    expect((await balanceOf(em(), IN_TRANSIT)) - before.inTransit).toBe(BigInt(batch!.payout_total));

    // B's cards used in A: B (issuer) owes A (acquirer) for the payment less its refund, and the ride.
    const interchange = await em().execute<Record<string, unknown>[]>(`select issuer_id, acquirer_id, count::int, gross::int, refunds::int, net::int from interchange_position where batch_id = ?`, [batch!.id]);
    expect(interchange).toEqual([{ issuer_id: B.cardCompanyId, acquirer_id: A.cardCompanyId, count: 3, gross: 2_250, refunds: 500, net: 1_750 }]);

    // A payout instruction per line, waiting to be sent; each participant hears its statement is ready.
    const payouts = await Promise.all(lines.map((l) => payoutOfLine(l.id)));
    expect(payouts.map((p) => [p!.amount, p!.status])).toEqual(lines.map((l) => [l.payout_amount, 'PENDING']));
    const ready = await em().execute<{ owner_id: string; payload: { net: number; payout: number; status: string } }[]>(`select owner_id, payload from event_outbox where type = 'settlement.ready' and owner_id in (?)`, [
      [ids.shop, ids.water, A.cardCompanyId],
    ]);
    expect(ready.map((e) => [e.owner_id, e.payload.payout]).sort()).toEqual(lines.map((l) => [l.participant_id, l.payout_amount]).sort());
    expect(await checkLedger(em())).toEqual([]);
  });

  it('clearing the window again, or twice at once, changes nothing: one batch, the same lines, one entry, the same payouts', async () => {
    const [batch] = await clearedAtOnce();
    const state = async () => ({
      batches: await em().execute(`select * from settlement_batch where window_id = ?`, [window.id]),
      lines: await em().execute(`select * from settlement_line where batch_id = ? order by id`, [batch!.id]),
      interchange: await em().execute(`select * from interchange_position where batch_id = ?`, [batch!.id]),
      entries: await em().execute(`select id, entry_key from journal_entry where entry_key like ? order by id`, [`settlement:${window.id}:%`]),
      payouts: await em().execute(`select p.* from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ? order by p.id`, [batch!.id]),
      items: await em().execute(`select id, window_id from clearing_item where city_id = ? order by id`, [A.cityId]),
      events: await em().execute(`select count(*)::int as n from event_outbox where type = 'settlement.ready'`),
    });
    const first = await state();
    expect(first.batches).toHaveLength(1);
    expect(first.entries).toHaveLength(1);
    expect(first.payouts).toHaveLength(3);
    expect(await clearWindow(em(), window.id)).toEqual(batch);
    expect(await Promise.all([clearWindow(em(), window.id), clearWindow(em(), window.id)])).toEqual([batch, batch]);
    // Closing it again answers it as it is, and takes nothing.
    expect(await closeWindow(em(), { cityId: A.cityId, businessDay: today, closedBy: 'operator', cutoff: CUTOFF })).toMatchObject({ id: window.id, status: 'CLEARED', closed_by: 'cut-off' });
    expect(await state()).toEqual(first);
    expect(await checkLedger(em())).toEqual([]);
  });
});

// ————————————————————————————————————————————————————————————————————————————————————————

describe('late transactions', () => {
  let L: SettlementCity;
  let gate: TestReader;
  let operator: OneCardClient;
  let card: VirtualCpuCard;
  const days = { d2: '', d1: '', d0: '' };
  let batches = 0;
  const upload = async (...rides: Awaited<ReturnType<typeof offlineRide>>[]) => uploadRides(operator, gate, `sl-gate-${++batches}`, rides);
  const ride = (amount: number, day: string, time = '120000') => offlineRide(card, gate, amount, L.keys.purchase, day, time);

  beforeAll(async () => {
    L = await settlementCity(world, { code: 'SL', name: 'Settle L', cardCompanyName: 'L Tong', cardCode: '5913' });
    gate = await newReader(world, 'SL-METRO-GATE', L);
    operator = await apiClient(world, 'ISSUER', L.cardCompanyId, ['topups:write']);
    card = (await cardOf(L, { issuer: operator, reader: await newReader(world, 'SL-COUNTER', L) }, 50_000)).chip;
    days.d2 = await localDay(em(), L.cityId, -2);
    days.d1 = await localDay(em(), L.cityId, -1);
    days.d0 = await localDay(em(), L.cityId, 0);
  });

  /** The cut-off job at 02:00 after `day`, as far as L is concerned. */
  const cutOffAfter = async (day: string) => (await closeDueWindows(em(), { cutoff: CUTOFF, now: await localInstant(em(), L.cityId, nextDay(day), CUTOFF) })).filter((w) => w.city_id === L.cityId);

  it('a ride uploaded after its day’s window closed goes into the next window to close, never into two, and the closed batch does not change', async () => {
    const r1 = await ride(100, days.d2, '080000');
    expect(await upload(r1)).toEqual(['ACCEPTED']);
    const [w2] = await cutOffAfter(days.d2);
    expect(w2).toMatchObject({ business_day: days.d2, status: 'CLOSED' });
    const b2 = await clearWindow(em(), w2!.id);
    expect(b2).toMatchObject({ item_count: '1', gross: '100' });

    // The terminal was offline for a day: a ride of d-2 (late) and one of d-1 arrive together.
    const r2 = await ride(40, days.d2, '230000');
    const r3 = await ride(60, days.d1, '070000');
    expect(await upload(r2, r3)).toEqual(['ACCEPTED', 'ACCEPTED']);
    // d-2's window stays as it was: closing or clearing it again takes nothing new.
    expect(await closeWindow(em(), { cityId: L.cityId, businessDay: days.d2, closedBy: 'operator', cutoff: CUTOFF })).toMatchObject({ id: w2!.id, status: 'CLEARED' });
    expect(await clearWindow(em(), w2!.id)).toEqual(b2);
    // The late ride went straight into the next open window: d-1's, with d-1's own ride.
    const d1Window = await windowOf(em(), L.cityId, days.d1);
    expect(d1Window).toMatchObject({ status: 'OPEN' });
    expect((await itemsOfCity(L.cityId)).find((i) => i.reference === rideRef(r2))).toMatchObject({ business_day: days.d2, window_id: d1Window!.id });

    const [w1] = await cutOffAfter(days.d1);
    expect(w1).toMatchObject({ business_day: days.d1, status: 'CLOSED' });
    const b1 = await clearWindow(em(), w1!.id);
    expect(b1).toMatchObject({ item_count: '2', gross: '100' });
    const items = await itemsOfCity(L.cityId);
    expect(items.map((i) => [i.reference, i.business_day, i.window_id])).toEqual([
      [rideRef(r1), days.d2, w2!.id],
      [rideRef(r2), days.d2, w1!.id],
      [rideRef(r3), days.d1, w1!.id],
    ]);
    expect(await clearWindow(em(), w2!.id)).toEqual(b2);
    // Each ride counted once: the lines of both batches add up to what the transit revenue received.
    const lines = [...(await linesOf(b2.id)), ...(await linesOf(b1.id))];
    expect(lines.map((l) => [l.sales_count, l.gross])).toEqual([
      [1, 100],
      [2, 100],
    ]);
    const [credited] = await em().execute<{ total: number }[]>(
      `select -sum(p.amount)::int as total from posting p join ledger_account a on a.id = p.account_id join journal_entry e on e.id = p.entry_id where a.code = ? and e.entry_key like 'offline-purchase:%'`,
      [PAYABLE.CARD_COMPANY(L.cardCompanyId)],
    );
    expect(credited!.total).toBe(200);
    expect(await checkLedger(em())).toEqual([]);
  });

  it('a ride committed while the window closes ends in exactly one window: the closing one when it was in flight, the next one when it came after', async () => {
    const warm = await ride(5, days.d0, '080000');
    expect(await upload(warm)).toEqual(['ACCEPTED']);
    // In flight: the upload has recorded its item and is held (by a lock on the card's counter row) when the close begins.
    const early = await ride(11, days.d0, '090000');
    const counterRow = await holdLock(em(), `select asn from card_counter where asn = ? for update`, [early.asn]);
    const inFlight = upload(early);
    await lockWaiters(em(), 1);
    const closing = closeWindow(em(), { cityId: L.cityId, businessDay: days.d0, closedBy: 'operator', cutoff: CUTOFF });
    await lockWaiters(em(), 2);
    await counterRow.release();
    expect(await inFlight).toEqual(['ACCEPTED']);
    const w0 = await closing;
    expect(w0).toMatchObject({ business_day: days.d0, status: 'CLOSED' });

    // Late: a ride of d0 after d0 closed goes into the next day's window. Then a ride recorded while
    // that window is being closed (its row held by the closing transaction) waits, finds it closed,
    // and goes into the window after.
    const late = await ride(22, days.d0, '100000');
    expect(await upload(late)).toEqual(['ACCEPTED']);
    const tomorrow = nextDay(days.d0);
    const afterTomorrow = nextDay(tomorrow);
    const tomorrowWindow = (await windowOf(em(), L.cityId, tomorrow))!;
    const closingTomorrow = await holdLock(em(), `update settlement_window set status = 'CLOSED', closed_at = now(), closed_by = 'operator' where id = ? returning id`, [tomorrowWindow.id]);
    const during = await ride(33, days.d0, '110000');
    const racing = upload(during);
    await lockWaiters(em(), 1);
    await closingTomorrow.release();
    expect(await racing).toEqual(['ACCEPTED']);
    const w1 = (await windowById(em(), tomorrowWindow.id))!;
    expect(w1.status).toBe('CLOSED');
    const w2 = await closeWindow(em(), { cityId: L.cityId, businessDay: afterTomorrow, closedBy: 'operator', cutoff: CUTOFF, now: await localInstant(em(), L.cityId, afterTomorrow, '12:00') });

    const byRef = new Map((await itemsOfCity(L.cityId)).map((i) => [i.reference, i]));
    expect([warm, early, late, during].map((r) => byRef.get(rideRef(r))!.window_id)).toEqual([w0.id, w0.id, w1.id, w2.id]);
    expect([...byRef.values()].filter((i) => i.window_id === null)).toEqual([]);
    const cleared = await Promise.all([w0, w1, w2].map((w) => clearWindow(em(), w.id)));
    expect(cleared.map((b) => [b.item_count, b.gross])).toEqual([
      ['2', '16'],
      ['1', '22'],
      ['1', '33'],
    ]);
    expect(await checkLedger(em())).toEqual([]);
  });
});

// ————————————————————————————————————————————————————————————————————————————————————————

describe('payouts through the gateway', () => {
  let P: SettlementCity;
  let busCo: string;
  let bus: TestReader;
  let gate: TestReader;
  let busOperator: OneCardClient;
  let metro: OneCardClient;
  let card: VirtualCpuCard;
  let batches = 0;

  beforeAll(async () => {
    P = await settlementCity(world, { code: 'SP', name: 'Settle P', cardCompanyName: 'P Tong', cardCode: '5914' });
    busCo = (await createMerchant(em(), { cityId: P.cityId, name: 'P Bus Co' })).id;
    bus = await newReader(world, 'SP-BUS-7', P, { kind: 'MERCHANT', id: busCo });
    gate = await newReader(world, 'SP-METRO-GATE', P);
    busOperator = await apiClient(world, 'MERCHANT', busCo, ['payments:write']);
    metro = await apiClient(world, 'ISSUER', P.cardCompanyId, ['topups:write']);
    card = (await cardOf(P, { issuer: metro, reader: await newReader(world, 'SP-COUNTER', P) }, 50_000)).chip;
  });

  const rides = async (terminal: TestReader, owner: OneCardClient, day: string, ...amounts: number[]) => {
    const made = [];
    for (const a of amounts) made.push(await offlineRide(card, terminal, a, P.keys.purchase, day));
    expect(await uploadRides(owner, terminal, `sp-${++batches}`, made)).toEqual(made.map(() => 'ACCEPTED'));
  };
  const closeAndClear = async (day: string) => {
    const w = await closeWindow(em(), { cityId: P.cityId, businessDay: day, closedBy: 'operator', cutoff: CUTOFF });
    return { window: w, batch: await clearWindow(em(), w.id) };
  };
  const settled = (payoutId: string) => eventually(`payout ${payoutId} settled by the gateway's webhook`, async () => {
    const [p] = await em().execute<{ status: string }[]>(`select status from settlement_payout where id = ?`, [payoutId]);
    return p!.status === 'PAID' || p!.status === 'FAILED' ? p!.status : undefined;
  });

  it('pays each line; a payout the bank refuses goes back to the payable and is paid with the next line; a payout retried after a time-out is made once', async () => {
    const d2 = await localDay(em(), P.cityId, -2);
    const d1 = await localDay(em(), P.cityId, -1);
    const busKey = `MERCHANT:${busCo}`;
    await rides(bus, busOperator, d2, 1_000);
    await rides(gate, metro, d2, 400);
    const first = await closeAndClear(d2);
    const busLine = (await lineOf(first.batch.id, busCo))!;
    const metroLine = (await lineOf(first.batch.id, P.cardCompanyId))!;
    expect([busLine.payout_amount, metroLine.payout_amount]).toEqual([1_000, 400]);
    const busPayout = (await payoutOfLine(busLine.id))!;
    const metroPayout = (await payoutOfLine(metroLine.id))!;

    // The bus company's bank account is closed. Two processes send the due payouts at once: each is asked for once.
    front.bankRefuses.set(busKey, 'account_closed');
    await Promise.all([sendDuePayouts(em(), gateway), sendDuePayouts(em(), gateway)]);
    for (const p of [busPayout, metroPayout]) expect(front.payoutRequests.filter((r) => r.idempotencyKey === `settlement-payout:${p.id}`)).toHaveLength(1);
    expect(await settled(metroPayout.id)).toBe('PAID');
    expect(await settled(busPayout.id)).toBe('FAILED');
    front.bankRefuses.clear();
    expect(await payoutOfLine(metroLine.id)).toMatchObject({ status: 'PAID', failure_code: null, attempts: 1, gateway_payout_id: expect.stringMatching(/^po_/) });
    expect(await payoutOfLine(busLine.id)).toMatchObject({ status: 'FAILED', failure_code: 'account_closed' });
    expect((await lineOf(first.batch.id, P.cardCompanyId))!.status).toBe('PAID');
    expect((await lineOf(first.batch.id, busCo))!.status).toBe('PAYOUT_FAILED');
    // Nothing is left paying: the batch and its window are settled.
    expect(await windowStatus(first.window.id)).toEqual({ window: 'SETTLED', batch: 'SETTLED' });
    // Paid: settlement in transit → the gateway's clearing. Failed: back to the bus company's payable.
    expect(await postingsOf(em(), `settlement-payout:${metroPayout.id}:paid`)).toEqual({ [IN_TRANSIT]: 400n, [GATEWAY_CLEARING]: -400n });
    expect(await postingsOf(em(), `settlement-payout:${busPayout.id}:failed`)).toEqual({ [IN_TRANSIT]: 1_000n, [PAYABLE.MERCHANT(busCo)]: -1_000n });
    expect(await balanceOf(em(), PAYABLE.MERCHANT(busCo))).toBe(1_000n);
    const heard = await em().execute<{ type: string; owner_id: string; payload: { status: string } }[]>(`select type, owner_id, payload from event_outbox where type in ('settlement.paid', 'settlement.payout_failed') and owner_id in (?) order by id`, [[busCo, P.cardCompanyId]]);
    expect(heard.map((e) => [e.type, e.owner_id]).sort()).toEqual([
      ['settlement.paid', P.cardCompanyId],
      ['settlement.payout_failed', busCo],
    ]);

    // The next day: the failed payout is carried into the bus company's next line and paid with it.
    await rides(bus, busOperator, d1, 500);
    const second = await closeAndClear(d1);
    const carried = (await lineOf(second.batch.id, busCo))!;
    expect(carried).toMatchObject({ net: 500, carried_in: 1_000, due: 1_500, payout_amount: 1_500, status: 'PAYING' });
    expect((await lineOf(first.batch.id, busCo))!.carried_into).toBe(carried.id);
    expect(await lineOf(second.batch.id, P.cardCompanyId)).toBeUndefined();
    expect(await balanceOf(em(), PAYABLE.MERCHANT(busCo))).toBe(0n);

    // Its payout reaches the gateway but the answer is lost (the client times out): still due, tried again later.
    const nextPayout = (await payoutOfLine(carried.id))!;
    const key = `settlement-payout:${nextPayout.id}`;
    front.loseAnswersOf.add(busKey);
    front.holdWebhooks = true;
    await sendDuePayouts(em(), impatientGateway);
    expect(await payoutOfLine(carried.id)).toMatchObject({ status: 'PENDING', attempts: 1, gateway_payout_id: null });
    front.loseAnswersOf.clear();
    // Not before its retry time; then sent again with the same key: the gateway answers with the payout it made.
    await sendDuePayouts(em(), gateway);
    expect(front.payoutRequests.filter((r) => r.idempotencyKey === key)).toHaveLength(1);
    await sendDuePayouts(em(), gateway, new Date(Date.now() + 10 * 60_000));
    expect(front.payoutRequests.filter((r) => r.idempotencyKey === key)).toHaveLength(2);
    const sent = (await payoutOfLine(carried.id))!;
    expect(sent).toMatchObject({ status: 'SENT', attempts: 2, gateway_payout_id: expect.stringMatching(/^po_/) });
    const atGateway = (await gatewayPayoutTransactions()).filter((t) => t.source === sent.gateway_payout_id);
    expect(atGateway).toEqual([expect.objectContaining({ source: sent.gateway_payout_id, amount: -1_500 })]);
    // The gateway's payout.paid webhook arrives.
    await front.release();
    expect(await settled(nextPayout.id)).toBe('PAID');
    expect((await lineOf(second.batch.id, busCo))!.status).toBe('PAID');
    expect(await windowStatus(second.window.id)).toEqual({ window: 'SETTLED', batch: 'SETTLED' });
    expect(await postingsOf(em(), `settlement-payout:${nextPayout.id}:paid`)).toEqual({ [IN_TRANSIT]: 1_500n, [GATEWAY_CLEARING]: -1_500n });
    // Settlement in transit: what both clearings put in, the payouts took out.
    const moved = await em().execute<{ total: number }[]>(
      `select coalesce(sum(p.amount), 0)::int as total from posting p join ledger_account a on a.id = p.account_id join journal_entry e on e.id = p.entry_id
        where a.code = ? and e.entry_key in (?)`,
      [IN_TRANSIT, [`settlement:${first.window.id}:clearing`, `settlement:${second.window.id}:clearing`, ...[metroPayout, busPayout].map((p) => `settlement-payout:${p.id}:${p === busPayout ? 'failed' : 'paid'}`), `${key}:paid`]],
    );
    expect(moved[0]!.total).toBe(0);
    expect(await checkLedger(em())).toEqual([]);
  });

  it('a payout paid after a retry carries no failure: its statement and the settlement.paid webhook say paid, nothing else', async () => {
    const [row] = await em().execute<{ id: string; line_id: string }[]>(
      `select p.id, p.line_id from settlement_payout p join settlement_line l on l.id = p.line_id where l.participant_id = ? and p.status = 'PAID' and p.attempts = 2`,
      [busCo],
    );
    expect(row, 'the retried payout of the test above').toBeDefined();
    expect(await payoutOfLine(row!.line_id)).toMatchObject({ status: 'PAID', failure_code: null });
    const [event] = await em().execute<{ payload: { status: string; failureCode: string | null } }[]>(`select payload from event_outbox where type = 'settlement.paid' and subject_id = ?`, [toGlobalId('SettlementLine', row!.line_id)]);
    expect(event!.payload).toMatchObject({ status: 'PAID', failureCode: null });
  });
});

// ————————————————————————————————————————————————————————————————————————————————————————

describe('clearing while payouts fail', () => {
  /** A city with a transit merchant (on a fee plan or not), its terminal and a loaded card. */
  async function transitCity(code: string, cardCode: string, feePlan: boolean) {
    const city = await settlementCity(world, { code, name: `Settle ${code}`, cardCompanyName: `${code} Tong`, cardCode });
    const plan = feePlan ? await createFeePlan(em(), { name: `${code} plan`, basisPoints: 0, fixedFee: 0n, minimumFee: 0n, currency: 'CNY' }) : null;
    const merchantId = (await createMerchant(em(), { cityId: city.cityId, name: `${code} Ferry`, feePlanId: plan?.id })).id;
    const terminal = await newReader(world, `${code}-FERRY-1`, city, { kind: 'MERCHANT', id: merchantId });
    const owner = await apiClient(world, 'MERCHANT', merchantId, ['payments:write']);
    const issuer = await apiClient(world, 'ISSUER', city.cardCompanyId, ['topups:write']);
    const chip = (await cardOf(city, { issuer, reader: await newReader(world, `${code}-COUNTER`, city) }, 50_000)).chip;
    let n = 0;
    const ride = async (amount: number, day: string) => expect(await uploadRides(owner, terminal, `${code}-${++n}`, [await offlineRide(chip, terminal, amount, city.keys.purchase, day)])).toEqual(['ACCEPTED']);
    const close = (day: string) => closeWindow(em(), { cityId: city.cityId, businessDay: day, closedBy: 'operator', cutoff: CUTOFF });
    return { city, merchantId, planId: plan?.id, ride, close, key: `MERCHANT:${merchantId}` };
  }

  /** Sends what is due and waits until the gateway has settled every payout: a test's own payouts are then the only ones moving. */
async function settleAllPayouts() {
  await sendDuePayouts(em(), gateway);
  await eventually('every payout settled', async () => {
    const [row] = await em().execute<{ n: number }[]>(`select count(*)::int as n from settlement_payout where status in ('PENDING','SENT')`);
    return row!.n === 0 ? true : undefined;
  });
}

/** Every line of the merchant, oldest window first. */
  const linesOfMerchant = (merchantId: string) =>
    em().execute<{ id: string; business_day: string; net: number; carried_in: number; payout_amount: number; status: string; carried_into: string | null }[]>(
      `select l.id, w.business_day::text, l.net::int, l.carried_in::int, l.payout_amount::int, l.status, l.carried_into from settlement_line l
         join settlement_batch b on b.id = l.batch_id join settlement_window w on w.id = b.window_id where l.participant_id = ? order by w.business_day`,
      [merchantId],
    );

  it('two windows of a city cleared at once carry an earlier failed payout once', async () => {
    await settleAllPayouts();
    const q = await transitCity('SQ', '5915', false);
    const [d3, d2, d1] = [await localDay(em(), q.city.cityId, -3), await localDay(em(), q.city.cityId, -2), await localDay(em(), q.city.cityId, -1)];
    await q.ride(700, d3);
    const failing = await clearWindow(em(), (await q.close(d3)).id);
    const line = (await lineOf(failing.id, q.merchantId))!;
    front.bankRefuses.set(q.key, 'account_closed');
    await sendDuePayouts(em(), gateway);
    await eventually('the refused payout', async () => ((await payoutOfLine(line.id))!.status === 'FAILED' ? true : undefined));
    front.bankRefuses.delete(q.key);
    await q.ride(100, d2);
    await q.ride(200, d1);
    // Closing d-1 closes d-2 first: two closed windows, cleared by two processes at once.
    const w1 = await q.close(d1);
    const w2 = (await windowOf(em(), q.city.cityId, d2))!;
    expect([w2.status, w1.status]).toEqual(['CLOSED', 'CLOSED']);
    const inTransit = await holdLock(em(), `select id from ledger_account where code = ? for update`, [IN_TRANSIT]);
    const a = clearWindow(em(), w2.id);
    await lockWaiters(em(), 1);
    const b = clearWindow(em(), w1.id);
    await lockWaiters(em(), 2);
    await inTransit.release();
    await Promise.all([a, b]);

    const lines = await linesOfMerchant(q.merchantId);
    expect(lines.map((l) => [l.business_day, l.net])).toEqual([
      [d3, 700],
      [d2, 100],
      [d1, 200],
    ]);
    // The 7.00 that came back is carried into exactly one of the two lines, and paid once.
    expect(lines[1]!.carried_in + lines[2]!.carried_in).toBe(700);
    expect(lines[1]!.payout_amount + lines[2]!.payout_amount).toBe(1_000);
    expect(await balanceOf(em(), PAYABLE.MERCHANT(q.merchantId))).toBe(0n);
    expect(await checkLedger(em())).toEqual([]);
  });

  it('a payout that fails while the next window is being cleared is carried into a later line, never dropped', async () => {
    await settleAllPayouts();
    const r = await transitCity('SR', '5916', true);
    const [d2, d1, d0] = [await localDay(em(), r.city.cityId, -2), await localDay(em(), r.city.cityId, -1), await localDay(em(), r.city.cityId, 0)];
    await r.ride(900, d2);
    const first = await clearWindow(em(), (await r.close(d2)).id);
    const line = (await lineOf(first.id, r.merchantId))!;
    // The bank refuses the payout; the gateway's payout.failed webhook is on its way (held).
    front.bankRefuses.set(r.key, 'account_closed');
    front.holdWebhooks = true;
    await sendDuePayouts(em(), gateway);
    const sent = (await payoutOfLine(line.id))!;
    expect(sent.status).toBe('SENT');
    await eventually('the gateway to fail the payout', async () => ((await gatewayBooks.retrievePayout(sent.gateway_payout_id!)).status === 'failed' ? true : undefined));
    front.bankRefuses.delete(r.key);
    await r.ride(300, d1);
    const w1 = await r.close(d1);
    // Clearing d-1 has read the lines to carry when the webhook is applied (it waits on the merchant's fee plan row meanwhile).
    const plan = await holdLock(em(), `select id from fee_plan where id = ? for update`, [r.planId]);
    const clearing = clearWindow(em(), w1.id);
    await lockWaiters(em(), 1);
    const delivered = front.release();
    // The webhook is applied meanwhile (or, should failing a payout wait for clearing, it is waiting now).
    await eventually('the payout.failed webhook applied or waiting', async () => {
      if ((await payoutOfLine(line.id))!.status === 'FAILED') return true;
      const [row] = await em().execute<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
      return row!.n >= 2 ? true : undefined;
    });
    await plan.release();
    await clearing;
    await delivered;
    await eventually('the payout.failed webhook applied', async () => ((await payoutOfLine(line.id))!.status === 'FAILED' ? true : undefined));
    // And the day after, whatever d-1 carried or not.
    await clearWindow(em(), (await r.close(d0)).id);

    const lines = await linesOfMerchant(r.merchantId);
    expect(lines[0]).toMatchObject({ business_day: d2, status: 'PAYOUT_FAILED', carried_into: expect.any(String) });
    const into = lines.find((l) => l.id === lines[0]!.carried_into)!;
    expect(into.carried_in, 'the line the failed payout was carried into carries it').toBe(900);
    // Everything the merchant earned left its payable for a payout.
    expect(await balanceOf(em(), PAYABLE.MERCHANT(r.merchantId))).toBe(0n);
    expect(await checkLedger(em())).toEqual([]);
  });
});
