/**
 * Picking up every pending load of a card in one load session (补登, issue 22 item 4), over real
 * HTTP: the holder's app lists the card's pending loads (a top-up paid at the sandbox gateway and a
 * merchant's refund), the holder confirms, and one session writes them all onto a virtual CPU card.
 * At most once under concurrency and lost answers; never past the purse maximum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, balanceOnCard, brokenRelay, cardholderApp, expireSession, issueCard, newReader, OPEN, purseBalance, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const SECRET = 'sk_test_pickup';
const WEBHOOK_SECRET = 'whsec_pickup_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
// A purse maximum of 200.00, so that a test can reach it.
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET, TOPUP_PURSE_MAX: '20000', TOPUP_DAILY_MAX: '150000' }) });
afterAll(async () => {
  await sandbox?.close();
});

type App = ReturnType<typeof bearerClient>;
type Errors = { code: string; field?: string[]; message: string }[];
type Session = { id: string; challenge: string };
type Listed = { topUp: { id: string; status: string }; source: string; amount: { amount: number }; writable: boolean; heldBack: string | null };

let app: App;
let home: TestReader;
let merchant: OneCardClient;

beforeAll(async () => {
  sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
  const alice = await cardholderApp(world, 'alice', ['card:read', 'card:topup']);
  app = alice.app;
  home = await newReader(world, 'HOME-alice', world.gz, { kind: 'CARDHOLDER', id: alice.id });
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Tea House' });
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
  aliceId = alice.id;
});
let aliceId: string;

/** A virtual card in alice's hand, registered to her. */
async function aliceCard(chipBalance = 0) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: chipBalance });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623100000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: aliceId });
  return { chip, id: Buffer.from(`Card:${row.id}`).toString('base64url') };
}

async function topUpStatus(id: string): Promise<string> {
  return (await app.request<{ topUp: { status: string } }>('query($id: ID!) { topUp(id: $id) { status } }', { id })).topUp.status;
}

/** A top-up of the card, paid at once with the sandbox's test card: a pending load. */
async function paidTopUp(card: { id: string }, amount: number): Promise<string> {
  const made = await app.request<{ createTopUp: { topUp: { id: string }; userErrors: Errors } }>('mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id } userErrors { code message } } }', {
    input: { card: card.id, amount, idempotencyKey: `pickup-${Math.random()}`, paymentMethod: 'pm_card_visa' },
  });
  expect(made.createTopUp.userErrors).toEqual([]);
  for (let i = 0; i < 100 && (await topUpStatus(made.createTopUp.topUp.id)) !== 'PAID'; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await topUpStatus(made.createTopUp.topUp.id)).toBe('PAID');
  return made.createTopUp.topUp.id;
}

let orders = 0;
/** The card pays the merchant `amount` on alice's reader. */
async function purchase(card: { chip: VirtualCpuCard }, amount: number): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: Errors } }>('mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }', {
    input: { amount, currency: 'CNY', orderReference: `pickup-order-${++orders}`, idempotencyKey: `pickup-create-${orders}` },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  const opened = await app.request<{ openCardSession: { session: Session; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: made.createPayment.payment.id } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  expect((await sessionsOf(app, () => home).agent(card.chip).run(opened.openCardSession.session)).state).toBe('COMPLETED');
  return made.createPayment.payment.id;
}

/** The merchant refunds `amount` of a payment: a REFUND pending load. */
async function refund(payment: string, amount: number): Promise<string> {
  const refunded = await merchant.request<{ refundPayment: { refund: { pendingLoad: string }; userErrors: Errors } }>('mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { pendingLoad } userErrors { code message } } }', {
    input: { payment, amount, reason: 'returned', idempotencyKey: `pickup-refund-${payment}-${amount}` },
  });
  expect(refunded.refundPayment.userErrors).toEqual([]);
  return refunded.refundPayment.refund.pendingLoad;
}

/** What the holder's app shows before the holder confirms. */
async function pendingLoads(card: { id: string }): Promise<Listed[]> {
  const data = await app.request<{ node: { pendingLoads: Listed[] } }>('query($id: ID!) { node(id: $id) { ... on Card { pendingLoads { topUp { id status } source amount { amount } writable heldBack } } } }', { id: card.id });
  return data.node.pendingLoads;
}

const openPickup = async (ids: string[], reader: TestReader = home) =>
  (await app.request<{ openCardSession: { session: (Session & { amount: number }) | null; userErrors: Errors } }>(
    'mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge amount } userErrors { code field message } } }',
    { input: { reader: reader.id, operation: 'LOAD', pendingLoads: ids } },
  )).openCardSession;

async function ledgerOk() {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
}

describe('a pickup writes every pending load the holder confirmed, in one load session', () => {
  it('a card with a top-up and a refund pending gets both in one pickup session; chip = shadow; the ledger is clean', async () => {
    const card = await aliceCard();
    const topUp = await paidTopUp(card, 8_000);
    // Load the top-up alone first, so the card has value to pay with; then a new top-up and a refund wait.
    const first = await openPickup([topUp]);
    expect(first.userErrors).toEqual([]);
    expect((await sessionsOf(app, () => home).agent(card.chip).run(first.session!)).state).toBe('COMPLETED');
    const refunded = await refund(await purchase(card, 3_000), 1_200);
    const second = await paidTopUp(card, 2_500);
    expect(await balanceOnCard(card.chip)).toBe(5_000);

    const listed = await pendingLoads(card);
    expect(listed.map((l) => ({ id: l.topUp.id, source: l.source, amount: l.amount.amount, writable: l.writable, heldBack: l.heldBack }))).toEqual([
      { id: refunded, source: 'REFUND', amount: 1_200, writable: true, heldBack: null },
      { id: second, source: 'APP', amount: 2_500, writable: true, heldBack: null },
    ]);

    const pickup = await openPickup(listed.map((l) => l.topUp.id));
    expect(pickup.userErrors).toEqual([]);
    expect(pickup.session!.amount).toBe(3_700);
    const done = await sessionsOf(app, () => home).agent(card.chip).run(pickup.session!);
    expect(done).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 5_000, newBalance: 8_700, amount: 3_700 } });
    expect(await balanceOnCard(card.chip)).toBe(8_700);
    expect(await purseBalance(world, card.chip.asn)).toBe(8_700n);
    expect([await topUpStatus(refunded), await topUpStatus(second)]).toEqual(['LOADED', 'LOADED']);
    expect(await pendingLoads(card)).toEqual([]);
    await ledgerOk();
  });

  it('two pickups of the same loads at once (the card and a copy on two readers): one writes them, the other nothing; once more writes nothing', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 1_000), await paidTopUp(card, 700)];
    const second = await newReader(world, 'HOME-alice-2', world.gz, { kind: 'CARDHOLDER', id: aliceId });
    const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
    const [a, b] = await Promise.all([openPickup(loads), openPickup(loads, second)]);
    expect([a.userErrors, b.userErrors]).toEqual([[], []]);
    const sessions = sessionsOf(app, () => home);
    const results = await Promise.all([sessions.agent(card.chip, home).run(a.session!), sessions.agent(copy, second).run(b.session!)]);
    expect(results.map((r) => r.state).sort()).toEqual(['COMPLETED', 'FAILED']);
    expect(results.find((r) => r.state === 'FAILED')!.refusal).toMatch(/^(LOAD_IN_PROGRESS|ALREADY_LOADED)$/);
    // One chip took the 17.00 once; the ledger moved it once.
    expect((await balanceOnCard(card.chip)) + (await balanceOnCard(copy))).toBe(1_700);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_700n);
    // A third pickup of the same loads is refused before any MAC2: they are not pending any more.
    expect((await openPickup(loads)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    await ledgerOk();
  });

  it('a pickup whose TAC was lost is proved at the next tap (GET TRANSACTION PROVE): every load of it booked once, none written again', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 600), await paidTopUp(card, 400)];
    const opened = await openPickup(loads);
    // The card takes the load, but the reader's last message (the TAC) never reaches the host.
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(opened.session!)).rejects.toThrow('connection lost');
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    await expireSession(world, opened.session!.id);
    // The holder taps again and confirms the same list: the card proves the lost load first, so nothing is written twice.
    const again = await openPickup(loads);
    expect(again.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(again.session!)).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_LOADED' });
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_000n);
    expect([await topUpStatus(loads[0]!), await topUpStatus(loads[1]!)]).toEqual(['LOADED', 'LOADED']);
    await ledgerOk();
  });

  it('a pickup whose TAC was lost, then a counter load at the card company: the counter’s session proves the pickup first, so each load is booked once and cannot be written alone', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 350), await paidTopUp(card, 450)];
    const opened = await openPickup(loads);
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(opened.session!)).rejects.toThrow('connection lost');
    await expireSession(world, opened.session!.id);
    expect(await balanceOnCard(card.chip)).toBe(800);
    // The holder goes to the counter and pays 10.00 in cash.
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const counter = await newReader(world, 'COUNTER-pickup', world.gz);
    const counterSessions = sessionsOf(issuer, () => counter);
    expect(await counterSessions.agent(card.chip).run(await counterSessions.open('LOAD', 1_000))).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 800, newBalance: 1_800 } });
    expect([await topUpStatus(loads[0]!), await topUpStatus(loads[1]!)]).toEqual(['LOADED', 'LOADED']);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_800n);
    // Neither load can be written again, alone or in a pickup.
    const alone = await app.request<{ openCardSession: { userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp: loads[0] } });
    expect(alone.openCardSession.userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect((await openPickup(loads)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect(await pendingLoads(card)).toEqual([]);
    expect(await balanceOnCard(card.chip)).toBe(1_800);
    await ledgerOk();
  });

  it('a write that never reached the card is picked up again, once, by the next pickup', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 300), await paidTopUp(card, 200)];
    const opened = await openPickup(loads);
    // The card is pulled away before CREDIT FOR LOAD: MAC2 left the host, the card never saw it.
    await expect(sessionsOf(brokenRelay(app, 1, 'answer', 'card removed'), () => home).agent(card.chip).run(opened.session!)).rejects.toThrow('card removed');
    await expireSession(world, opened.session!.id);
    const again = await openPickup(loads);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(again.session!)).toMatchObject({ state: 'COMPLETED' });
    expect(await balanceOnCard(card.chip)).toBe(500);
    expect(await purseBalance(world, card.chip.asn)).toBe(500n);
    await ledgerOk();
  });
});

describe('the card company settles a pickup as one write', () => {
  it('resolvePendingLoad on one load of a pickup whose MAC2 never reached the card releases every load of it; the next pickup writes them once', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 250), await paidTopUp(card, 150)];
    const opened = await openPickup(loads);
    await expect(sessionsOf(brokenRelay(app, 1, 'answer', 'card removed'), () => home).agent(card.chip).run(opened.session!)).rejects.toThrow('card removed');
    await expireSession(world, opened.session!.id);
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const resolved = await issuer.request<{ resolvePendingLoad: { userErrors: Errors } }>(
      'mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code message } } }',
      { input: { topUp: loads[1], loaded: false, note: 'card read at the counter: no load', idempotencyKey: 'resolve-pickup' } },
    );
    expect(resolved.resolvePendingLoad.userErrors).toEqual([]);
    const claims = await world.db.orm.em.fork().execute<{ load_session_id: string | null }[]>(`select load_session_id from top_up where id in (?)`, [loads.map((l) => Buffer.from(l, 'base64url').toString().split(':')[1])]);
    expect(claims.map((c) => c.load_session_id)).toEqual([null, null]);
    const again = await openPickup(loads);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(again.session!)).toMatchObject({ state: 'COMPLETED' });
    expect(await balanceOnCard(card.chip)).toBe(400);
    expect(await purseBalance(world, card.chip.asn)).toBe(400n);
    await ledgerOk();
  });
});

/** Waits until `n` statements of this database wait on a row lock (a test orchestrating a race, not a timing). */
async function lockWaiters(n: number): Promise<void> {
  for (;;) {
    const [row] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    if (Number(row!.n) >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Holds one top-up row locked until release() is called; resolves once it holds it. */
async function holdTopUp(uuid: string): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  let held!: () => void;
  const holding = new Promise<void>((r) => (held = r));
  const blocker = world.db.orm.em.fork().transactional(async (tx) => {
    await tx.execute(`select id from top_up where id = ? for update`, [uuid]);
    held();
    await new Promise<void>((r) => (release = r));
  });
  await holding;
  return {
    release: async () => {
      release();
      await blocker;
    },
  };
}

describe('the card company settles a pickup while the holder picks up again', () => {
  it('resolvePendingLoad releasing a pickup while the card, on the reader, picks up part of it with another load: both succeed, neither deadlocks', async () => {
    const card = await aliceCard();
    const amounts = new Map<string, number>();
    for (const amount of [110, 120, 130]) amounts.set(await paidTopUp(card, amount), amount);
    const loads = [...amounts.keys()];
    const uuidOf = (id: string) => Buffer.from(id, 'base64url').toString().split(':')[1]!;
    // In the order the rows are locked: the first pickup holds the two lowest, the second the two highest.
    const [low, mid, high] = [...loads].sort((a, b) => (uuidOf(a) < uuidOf(b) ? -1 : 1)) as [string, string, string];
    const first = await openPickup([low, mid]);
    await expect(sessionsOf(brokenRelay(app, 1, 'answer', 'card removed'), () => home).agent(card.chip).run(first.session!)).rejects.toThrow('card removed');
    await expireSession(world, first.session!.id);
    const second = await openPickup([mid, high]);
    expect(second.userErrors).toEqual([]);

    // Both wait on the lowest load (held here), the card company first; then both go on at once.
    const lowest = await holdTopUp(uuidOf(low));
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const resolving = issuer
      .request<{ resolvePendingLoad: { userErrors: Errors } }>('mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code message } } }', {
        input: { topUp: low, loaded: false, note: 'card read at the counter: no load', idempotencyKey: 'resolve-during-pickup' },
      })
      .then((r) => r.resolvePendingLoad.userErrors, (e: Error) => e.message);
    await lockWaiters(1);
    const picking = sessionsOf(app, () => home).agent(card.chip).run(second.session!).then((r) => r, (e: Error) => e.message);
    await lockWaiters(2);
    await lowest.release();
    expect(await resolving).toEqual([]);
    const picked = amounts.get(mid)! + amounts.get(high)!;
    expect(await picking).toMatchObject({ state: 'COMPLETED', result: { amount: picked } });
    expect(await balanceOnCard(card.chip)).toBe(picked);
    expect(await purseBalance(world, card.chip.asn)).toBe(BigInt(picked));
    expect([await topUpStatus(low), await topUpStatus(mid), await topUpStatus(high)]).toEqual(['PAID', 'LOADED', 'LOADED']);
    // The breakdown: one entry per load into the card's purse, keyed by the load, summing to what the card took.
    const entries = await world.db.orm.em.fork().execute<{ entry_key: string; amount: string }[]>(
      `select e.entry_key, abs(p.amount)::text as amount from journal_entry e join posting p on p.entry_id = e.id join ledger_account a on a.id = p.account_id
        where a.code = ? and e.metadata->>'cardSession' = ? order by e.entry_key`,
      [`card.${card.chip.asn}.purse.CNY`, Buffer.from(second.session!.id, 'base64url').toString().split(':')[1]],
    );
    expect(entries).toEqual([mid, high].map((id) => ({ entry_key: `top-up:${uuidOf(id)}:loaded`, amount: String(amounts.get(id)) })).sort((a, b) => (a.entry_key < b.entry_key ? -1 : 1)));
    await ledgerOk();
  });
});

describe('the card company settles a pickup while the card proves it', () => {
  it('resolvePendingLoad (not loaded) racing the proof of a pickup the card took: the release goes through, the proof still books every load once', async () => {
    const card = await aliceCard();
    const loads = [await paidTopUp(card, 230), await paidTopUp(card, 770)];
    const uuidOf = (id: string) => Buffer.from(id, 'base64url').toString().split(':')[1]!;
    const [low, high] = [...loads].sort((a, b) => (uuidOf(a) < uuidOf(b) ? -1 : 1)) as [string, string];
    const opened = await openPickup(loads);
    await expect(sessionsOf(brokenRelay(app, 2, 'request'), () => home).agent(card.chip).run(opened.session!)).rejects.toThrow('connection lost');
    await expireSession(world, opened.session!.id);
    expect(await balanceOnCard(card.chip)).toBe(1_000);

    // The card company (wrongly) releases it while the card is read at a counter, which proves the load: both wait on the lowest load, the card company first.
    const lowest = await holdTopUp(uuidOf(low));
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const resolving = issuer
      .request<{ resolvePendingLoad: { userErrors: Errors } }>('mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code message } } }', {
        input: { topUp: high, loaded: false, note: 'thought the card never took it', idempotencyKey: 'resolve-during-proof' },
      })
      .then((r) => r.resolvePendingLoad.userErrors, (e: Error) => e.message);
    await lockWaiters(1);
    const counterReader = await newReader(world, 'COUNTER-proof', world.gz);
    const counter = sessionsOf(issuer, () => counterReader);
    const reading = counter.agent(card.chip).run(await counter.open('BALANCE')).then((r) => r, (e: Error) => e.message);
    await lockWaiters(2);
    await lowest.release();
    expect(await resolving).toEqual([]);
    expect(await reading).toMatchObject({ state: 'COMPLETED', result: { balance: 1_000 } });
    // The card proved it took them: booked although released, once.
    expect([await topUpStatus(low), await topUpStatus(high)]).toEqual(['LOADED', 'LOADED']);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_000n);
    expect((await openPickup(loads)).userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    await ledgerOk();
  });
});

describe('a pending load refunded at the gateway', () => {
  it('is refused a refund while a pickup claims it; refunded after the pickup opened, the pickup is refused before MAC2 and the other load stays pending', async () => {
    const card = await aliceCard();
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
    const refundLoad = async (topUp: string) =>
      (await issuer.request<{ refundTopUp: { topUp: { status: string } | null; userErrors: Errors } }>('mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { status } userErrors { code message } } }', {
        input: { topUp, idempotencyKey: `refund-${topUp}-${Math.random()}` },
      })).refundTopUp;
    const loads = [await paidTopUp(card, 660), await paidTopUp(card, 340)];
    // A pickup whose MAC2 never reached the card: its claim stands until the card taps again.
    const first = await openPickup(loads);
    await expect(sessionsOf(brokenRelay(app, 1, 'answer', 'card removed'), () => home).agent(card.chip).run(first.session!)).rejects.toThrow('card removed');
    await expireSession(world, first.session!.id);
    expect((await refundLoad(loads[0]!)).userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    // The card's next pickup releases that claim (the card's counter shows it never took it) and writes both: then neither is refundable.
    const second = await openPickup(loads);
    expect(second.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(second.session!)).toMatchObject({ state: 'COMPLETED', result: { amount: 1_000 } });
    expect((await refundLoad(loads[1]!)).userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);

    // Refunded between the open and the tap: nothing is written, the other load stays as it was.
    const more = [await paidTopUp(card, 250), await paidTopUp(card, 750)];
    const third = await openPickup(more);
    expect(third.userErrors).toEqual([]);
    expect((await refundLoad(more[0]!)).userErrors).toEqual([]);
    for (let i = 0; i < 100 && (await topUpStatus(more[0]!)) !== 'REFUNDED'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await topUpStatus(more[0]!)).toBe('REFUNDED');
    expect(await sessionsOf(app, () => home).agent(card.chip).run(third.session!)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_000n);
    expect((await pendingLoads(card)).map((l) => [l.topUp.id, l.writable])).toEqual([[more[1], true]]);
    await ledgerOk();
  });
});

describe('the purse maximum', () => {
  it('a load that would take the card past its purse maximum stays pending with its reason; the others are picked up', async () => {
    const card = await aliceCard();
    const pickupAll = async () => {
      const listed = await pendingLoads(card);
      const opened = await openPickup(listed.filter((l) => l.writable).map((l) => l.topUp.id));
      expect(opened.userErrors).toEqual([]);
      expect((await sessionsOf(app, () => home).agent(card.chip).run(opened.session!)).state).toBe('COMPLETED');
    };
    await paidTopUp(card, 15_000);
    await pickupAll();
    // 150.00 on the card; it pays 50.00, gets a top-up of 90.00 (within the 200.00), then the 50.00 back as a refund.
    const payment = await purchase(card, 5_000);
    const topUp = await paidTopUp(card, 9_000);
    const refunded = await refund(payment, 5_000);
    const listed = await pendingLoads(card);
    expect(listed.map((l) => [l.topUp.id, l.writable])).toEqual([[topUp, true], [refunded, false]]);
    expect(listed[1]!.heldBack).toBe('the card holds 190.00; with this load it would pass its purse maximum of 200.00: it stays pending until the card is spent down (or the card company refunds it)');
    // Confirming both anyway is refused before any session opens.
    const both = await openPickup([topUp, refunded]);
    expect(both.userErrors).toMatchObject([{ code: 'PURSE_LIMIT_EXCEEDED', field: ['input', 'pendingLoads'] }]);
    await pickupAll();
    expect(await balanceOnCard(card.chip)).toBe(19_000);
    expect([await topUpStatus(topUp), await topUpStatus(refunded)]).toEqual(['LOADED', 'PAID']);
    await ledgerOk();
  });

  it('a single pending load named alone (topUp) that would take the card past its purse maximum is refused before MAC2 too', async () => {
    const card = await aliceCard(19_000);
    const load = await paidTopUp(card, 5_000);
    const opened = await app.request<{ openCardSession: { session: Session; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp: load } });
    expect(opened.openCardSession.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(opened.openCardSession.session)).toMatchObject({ state: 'FAILED', refusal: 'PURSE_LIMIT_EXCEEDED' });
    expect(await balanceOnCard(card.chip)).toBe(19_000);
    expect(await topUpStatus(load)).toBe('PAID');
    await ledgerOk();
  });

  it('a top-up named alone (topUp) refused at the purse maximum is left as it was: unclaimed, listed as held back, loaded once the card is spent down', async () => {
    const card = await aliceCard();
    const loadAlone = async (topUp: string) => {
      const opened = await app.request<{ openCardSession: { session: Session; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp } });
      expect(opened.openCardSession.userErrors).toEqual([]);
      return sessionsOf(app, () => home).agent(card.chip).run(opened.openCardSession.session);
    };
    expect((await loadAlone(await paidTopUp(card, 15_000))).state).toBe('COMPLETED');
    // 100.00 on the card once it paid 50.00; a top-up of 90.00 fits then; the 50.00 comes back as a refund, loaded first.
    const payment = await purchase(card, 5_000);
    const load = await paidTopUp(card, 9_000);
    expect((await loadAlone(await refund(payment, 5_000))).state).toBe('COMPLETED');
    expect(await loadAlone(load)).toMatchObject({ state: 'FAILED', refusal: 'PURSE_LIMIT_EXCEEDED' });
    expect(await balanceOnCard(card.chip)).toBe(15_000);
    expect(await purseBalance(world, card.chip.asn)).toBe(15_000n);
    const [row] = await world.db.orm.em.fork().execute<{ status: string; load_session_id: string | null }[]>(`select status, load_session_id from top_up where id = ?`, [Buffer.from(load, 'base64url').toString().split(':')[1]]);
    expect(row).toEqual({ status: 'PAID', load_session_id: null });
    expect((await pendingLoads(card)).map((l) => [l.topUp.id, l.writable])).toEqual([[load, false]]);
    await ledgerOk();
    // Spent down to 100.00, the card takes the 90.00 it was refused, once.
    await purchase(card, 5_000);
    expect((await pendingLoads(card)).map((l) => [l.topUp.id, l.writable])).toEqual([[load, true]]);
    expect(await loadAlone(load)).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 10_000, newBalance: 19_000 } });
    expect(await purseBalance(world, card.chip.asn)).toBe(19_000n);
    expect(await topUpStatus(load)).toBe('LOADED');
    await ledgerOk();
  });

  it('a card holding more than the ledger knows (MAC1 proves its balance) is refused before MAC2: the loads stay pending, unclaimed', async () => {
    // 190.00 on the chip that never went through the ledger (the shadow says 0).
    const card = await aliceCard(19_000);
    const load = await paidTopUp(card, 5_000);
    const opened = await openPickup([load]);
    expect(opened.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(opened.session!)).toMatchObject({ state: 'FAILED', refusal: 'PURSE_LIMIT_EXCEEDED' });
    expect(await balanceOnCard(card.chip)).toBe(19_000);
    expect(await topUpStatus(load)).toBe('PAID');
    const [row] = await world.db.orm.em.fork().execute<{ load_session_id: string | null }[]>(`select load_session_id from top_up where id = ?`, [Buffer.from(load, 'base64url').toString().split(':')[1]]);
    expect(row!.load_session_id).toBeNull();
    await ledgerOk();
  });
});

describe('who may pick up what', () => {
  it('one pending load named twice under two spellings of its id (its uuid in capitals) is refused: the card never gets it twice for one booking', async () => {
    const card = await aliceCard();
    const load = await paidTopUp(card, 500);
    // The same row: Postgres reads a uuid in any case, so only the id's spelling differs.
    const shouted = Buffer.from(`TopUp:${Buffer.from(load, 'base64url').toString().split(':')[1]!.toUpperCase()}`).toString('base64url');
    expect(shouted).not.toBe(load);
    const twice = await openPickup([load, shouted]);
    expect(twice.userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect(twice.session).toBeNull();
    // Named once, it is written once.
    const once = await openPickup([shouted]);
    expect(once.userErrors).toEqual([]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(once.session!)).toMatchObject({ state: 'COMPLETED', result: { amount: 500 } });
    expect(await balanceOnCard(card.chip)).toBe(500);
    expect(await purseBalance(world, card.chip.asn)).toBe(500n);
    expect(await topUpStatus(load)).toBe('LOADED');
    await ledgerOk();
  });

  it('a session that names one load twice (opened before that was refused at open) is refused before MAC2, the load left pending', async () => {
    const card = await aliceCard();
    const load = await paidTopUp(card, 400);
    const opened = await openPickup([load]);
    expect(opened.userErrors).toEqual([]);
    // What the open used to write for [load, the same load in capitals]: its id twice, and twice its amount.
    const uuid = Buffer.from(load, 'base64url').toString().split(':')[1]!;
    await world.db.orm.em
      .fork()
      .execute(`update card_session set amount = 800, context = jsonb_set(context, '{purposeData,topUpIds}', ?::jsonb) where id = ?`, [JSON.stringify([uuid.toUpperCase(), uuid]), Buffer.from(opened.session!.id, 'base64url').toString().split(':')[1]]);
    expect(await sessionsOf(app, () => home).agent(card.chip).run(opened.session!)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(card.chip)).toBe(0);
    expect(await topUpStatus(load)).toBe('PAID');
    await ledgerOk();
  });

  it('a session whose load id is not a uuid (a damaged session row) is refused PURPOSE_REFUSED before MAC2, not a server error', async () => {
    const card = await aliceCard();
    const load = await paidTopUp(card, 300);
    const opened = await openPickup([load]);
    const single = await app.request<{ openCardSession: { session: Session; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', topUp: load } });
    const damage = (session: string, path: string, value: unknown) =>
      world.db.orm.em.fork().execute(`update card_session set context = jsonb_set(context, ?::text[], ?::jsonb) where id = ?`, [path, JSON.stringify(value), Buffer.from(session, 'base64url').toString().split(':')[1]]);
    await damage(opened.session!.id, '{purposeData,topUpIds}', ['not-a-uuid']);
    await damage(single.openCardSession.session.id, '{purposeData,topUpId}', 'not-a-uuid');
    expect(await sessionsOf(app, () => home).agent(card.chip).run(opened.session!)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await sessionsOf(app, () => home).agent(card.chip).run(single.openCardSession.session)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(card.chip)).toBe(0);
    expect(await topUpStatus(load)).toBe('PAID');
    await ledgerOk();
  });

  it('only the holder’s own pending loads, of one card, each named once, without an amount', async () => {
    const card = await aliceCard();
    const other = await aliceCard();
    const a = await paidTopUp(card, 100);
    const b = await paidTopUp(other, 100);
    const codes = async (input: Record<string, unknown>) =>
      (await app.request<{ openCardSession: { userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'LOAD', ...input } })).openCardSession.userErrors.map((e) => e.code);
    expect(await codes({ pendingLoads: [a, b] })).toEqual(['INVALID_INPUT']);
    expect(await codes({ pendingLoads: [a, a] })).toEqual(['INVALID_INPUT']);
    expect(await codes({ pendingLoads: [] })).toEqual(['INVALID_INPUT']);
    expect(await codes({ pendingLoads: [a], amount: 100 })).toEqual(['INVALID_INPUT']);
    expect(await codes({ pendingLoads: [a], topUp: a })).toEqual(['INVALID_INPUT']);
    // The card is a CPU card: a pickup that names another card type is refused before any session opens.
    expect(await codes({ pendingLoads: [a], cardType: 'M1' })).toEqual(['INVALID_INPUT']);
    const bob = await cardholderApp(world, 'bob', ['card:read', 'card:topup']);
    const bobReader = await newReader(world, 'HOME-bob', world.gz, { kind: 'CARDHOLDER', id: bob.id });
    const bobs = await bob.app.request<{ openCardSession: { userErrors: Errors } }>(OPEN, { input: { reader: bobReader.id, operation: 'LOAD', pendingLoads: [a] } });
    expect(bobs.openCardSession.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });
});
