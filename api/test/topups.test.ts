/**
 * Online top-ups end to end over real HTTP: a cardholder app signed in with PKCE, the sandbox
 * gateway (a real server sending signed webhooks), a virtual CPU card on the holder's own reader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { runTopUpJobs } from '../src/topups/topups.jobs.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { GatewayClient } from '../src/topups/gateway/gateway-client.js';
import { apiClient, auditOf, balanceOnCard, brokenRelay, cardholderApp, expireSession, issueCard, lastMessageLost, newReader, OPEN, purseBalance, sessionsOf, sessionUuid, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const SECRET = 'sk_test_topups';
const WEBHOOK_SECRET = 'whsec_topups_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET, TOPUP_DAILY_MAX: '150000' }) });
afterAll(async () => {
  await sandbox?.close();
});

type Holder = { id: string; app: ReturnType<typeof bearerClient>; reader: TestReader };
let alice: Holder;
let bob: Holder;
let issuer: OneCardClient;

async function holder(username: string): Promise<Holder> {
  const { id, app } = await cardholderApp(world, username, ['card:read', 'card:topup', 'card:manage']);
  return { id, app, reader: await newReader(world, `HOME-${username}`, world.gz, { kind: 'CARDHOLDER', id }) };
}

/** A virtual card in the holder's hand, issued (registered to the holder) in the card company's registry. */
async function cardOf(owner: Holder, balance = 0) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623100000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: owner.id });
  return { chip, id: `${Buffer.from(`Card:${row.id}`).toString('base64url')}`, uuid: row.id };
}

const TOP_UP = `id status amount { amount currency } paymentUrl clientSecret failureCode paidAt loadedAt history { from to cause }`;
const CREATE = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code field message } } }`;
const GET = `query($id: ID!) { topUp(id: $id) { ${TOP_UP} } }`;

type TopUp = { id: string; status: string; paymentUrl: string | null; failureCode: string | null; paidAt: string | null; loadedAt: string | null; history: { from: string | null; to: string; cause: string }[] };
type CreateResult = { createTopUp: { topUp: TopUp | null; userErrors: { code: string; field: string[]; message: string }[] } };

const create = (who: Holder, input: Record<string, unknown>) => who.app.request<CreateResult>(CREATE, { input });

async function waitFor(who: Holder, id: string, status: string): Promise<TopUp> {
  for (let i = 0; i < 100; i++) {
    const { topUp } = await who.app.request<{ topUp: TopUp }>(GET, { id });
    if (topUp.status === status) return topUp;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`top-up ${id} never became ${status}`);
}

/** The holder pays on the sandbox's hosted page, as a person would: a form POST. */
async function payOnCheckoutPage(paymentUrl: string, paymentMethod = 'pm_card_visa') {
  const res = await fetch(paymentUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `payment_method=${paymentMethod}` });
  expect(res.status).toBe(200);
}

async function paidTopUp(who: Holder, card: { id: string }, amount: number): Promise<TopUp> {
  const made = await create(who, { card: card.id, amount, idempotencyKey: `paid-${Math.random()}`, paymentMethod: 'pm_card_visa' });
  expect(made.createTopUp.userErrors).toEqual([]);
  return waitFor(who, made.createTopUp.topUp!.id, 'PAID');
}

/** What the top-up row records of its load: the card session that wrote it, and when. */
async function loadedColumns(topUpGlobalId: string) {
  const uuid = Buffer.from(topUpGlobalId, 'base64url').toString().split(':')[1]!;
  const [row] = await world.db.orm.em.fork().execute<{ loaded_session_id: string | null; loaded_at: Date | null }[]>(`select loaded_session_id::text, loaded_at from top_up where id = ?`, [uuid]);
  return row!;
}

async function ledgerOk() {
  expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
}

async function pendingLoads(): Promise<bigint> {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`card-company.${world.gz.cardCompanyId}.pending-loads.CNY`]);
  return BigInt(row?.balance ?? 0);
}

beforeAll(async () => {
  sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
  alice = await holder('alice');
  bob = await holder('bob');
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'topups:write']);
});

describe('the whole top-up, with the sandbox gateway and a virtual card', () => {
  it('the holder pays on the gateway page, the signed webhook makes it a pending load, and the card takes it at a reader (补登)', async () => {
    const card = await cardOf(alice, 500);
    const made = await create(alice, { card: card.id, amount: 2_000, idempotencyKey: 'first top-up' });
    expect(made.createTopUp.userErrors).toEqual([]);
    const topUp = made.createTopUp.topUp!;
    expect(topUp).toMatchObject({ status: 'AWAITING_PAYMENT', amount: { amount: 2000, currency: 'CNY' } });
    expect(topUp.paymentUrl).toMatch(new RegExp(`^${sandbox.url}/checkout/pi_`));

    await payOnCheckoutPage(topUp.paymentUrl!);
    const paid = await waitFor(alice, topUp.id, 'PAID');
    expect(paid.history.map((h) => h.to)).toEqual(['CREATED', 'AWAITING_PAYMENT', 'PAID']);
    // Paid, not on the card yet: no load time, no loading session.
    expect(paid.paidAt).not.toBeNull();
    expect(paid.loadedAt).toBeNull();
    expect(await loadedColumns(topUp.id)).toEqual({ loaded_session_id: null, loaded_at: null });
    expect(paid.history[2]!.cause).toMatch(/^gateway event evt_/);
    const cardView = await alice.app.request<{ card: { pendingLoad: { amount: number } } }>(`query($id: ID!) { card(id: $id) { pendingLoad { amount } } }`, { id: card.id });
    expect(cardView.card.pendingLoad.amount).toBe(2000);

    const sessions = sessionsOf(alice.app, () => alice.reader);
    const opened = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: unknown[] } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    expect(opened.openCardSession.userErrors).toEqual([]);
    const done = await sessions.agent(card.chip).run(opened.openCardSession.session!);
    expect(done.state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(2_500);

    const loaded = await waitFor(alice, topUp.id, 'LOADED');
    expect(loaded.history.at(-1)!.cause).toMatch(/\(TAC\)$/);
    // The holder sees when it went onto the card (after it was paid); the top-up records the session that wrote it.
    expect(loaded.loadedAt).not.toBeNull();
    expect(new Date(loaded.loadedAt!).getTime()).toBeGreaterThanOrEqual(new Date(paid.paidAt!).getTime());
    expect(loaded.paidAt).toBe(paid.paidAt);
    expect((await loadedColumns(topUp.id)).loaded_session_id).toBe(sessionUuid(opened.openCardSession.session!.id));
    // The card company was told it was paid, then that it is on the card.
    const told = await world.db.orm.em.fork().execute<{ type: string; status: string }[]>(`select type, payload->>'status' as status from event_outbox where subject_id = ? order by id`, [topUp.id]);
    expect(told).toEqual([
      { type: 'topup.paid', status: 'PAID' },
      { type: 'topup.loaded', status: 'LOADED' },
    ]);
    // Money: the gateway's clearing → pending loads → the card's purse; nothing left pending.
    expect(await purseBalance(world, card.chip.asn)).toBe(2_000n);
    expect(await pendingLoads()).toBe(0n);
    await ledgerOk();

    // The same load cannot be opened again.
    const again = await alice.app.request<{ openCardSession: { userErrors: { code: string; message: string }[] } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    expect(again.openCardSession.userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/LOADED/) });
  });

  it('a declined payment is FAILED with the decline code, and nothing is booked', async () => {
    const card = await cardOf(alice);
    const made = await create(alice, { card: card.id, amount: 1_000, idempotencyKey: 'declined', paymentMethod: 'pm_card_chargeDeclined' });
    expect(made.createTopUp.userErrors.map((e) => e.code)).toEqual(['PAYMENT_DECLINED']);
    expect(made.createTopUp.topUp).toMatchObject({ status: 'FAILED', failureCode: 'generic_decline' });
    await ledgerOk();
  });

  it('the same idempotency key and request returns the first top-up; another request with it is refused', async () => {
    // The rules themselves are in idempotency.test.ts; here, what a top-up client sees.
    const card = await cardOf(alice);
    const input = { card: card.id, amount: 1_200, idempotencyKey: 'same-key', paymentMethod: 'pm_card_visa' };
    const answers = await Promise.allSettled([create(alice, input), create(alice, input), create(alice, input)]);
    // Each is the one top-up, or told the first is still running (IDEMPOTENCY_CONFLICT).
    for (const a of answers) if (a.status === 'rejected') expect(String(a.reason)).toMatch(/still running/);
    const done = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
    const first = done[0] ?? (await create(alice, input));
    expect(new Set([...done, first].map((r) => r.createTopUp.topUp!.id)).size).toBe(1);
    expect(await create(alice, input)).toEqual(first);
    await expect(create(alice, { ...input, amount: 1_300 })).rejects.toThrow(/idempotency key was used before for another request/);
    const [{ n }] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from top_up where card_id = ?`, [card.uuid]);
    expect(n).toBe('1');
  });
});

describe('pending loads are written at most once', () => {
  it('two readers loading the same pending load at once: one wins, the card gets the money once', async () => {
    const card = await cardOf(alice, 100);
    const topUp = await paidTopUp(alice, card, 3_000);
    const second = await newReader(world, 'HOME-alice-2', world.gz, { kind: 'CARDHOLDER', id: alice.id });
    // The card and a copy of it (same keys, same counters), one in each reader's field at once.
    const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
    const sessions = sessionsOf(alice.app, () => alice.reader);
    const open = async (reader: TestReader) => (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: reader.id, operation: 'LOAD', topUp: topUp.id } })).openCardSession.session;
    const [s1, s2] = await Promise.all([open(alice.reader), open(second)]);
    const results = await Promise.all([sessions.agent(card.chip, alice.reader).run(s1), sessions.agent(copy, second).run(s2)]);
    expect(results.map((r) => r.state).sort()).toEqual(['COMPLETED', 'FAILED']);
    // Refused while the winner writes, or, when it has finished by then, as already loaded.
    expect(results.find((r) => r.state === 'FAILED')!.refusal).toMatch(/^(LOAD_IN_PROGRESS|ALREADY_LOADED)$/);
    // Exactly one of the two took the value, and the ledger moved it once.
    expect((await balanceOnCard(card.chip)) + (await balanceOnCard(copy))).toBe(3_100 + 100);
    expect(await purseBalance(world, card.chip.asn)).toBe(3_000n);
    await waitFor(alice, topUp.id, 'LOADED');
    await ledgerOk();
  });

  it('a lost answer after the card took the load is settled from the card’s log on the next tap, not loaded twice', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 1_500);
    const sessions = sessionsOf(alice.app, () => alice.reader);
    // The reader writes the load to the card but its last message (the TAC) never reaches the host.
    const first = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    const lossy = sessionsOf(brokenRelay(alice.app, 2, 'request'), () => alice.reader);
    await expect(lossy.agent(card.chip).run(first.openCardSession.session)).rejects.toThrow('connection lost');
    expect(await balanceOnCard(card.chip)).toBe(1_500);
    // The holder taps again once the first session is over (here: expired by the clock).
    await expireSession(world, first.openCardSession.session.id);
    const second = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    const retried = await sessions.agent(card.chip).run(second.openCardSession.session);
    expect(retried).toMatchObject({ state: 'FAILED', refusal: 'ALREADY_LOADED' });
    expect(await balanceOnCard(card.chip)).toBe(1_500);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_500n);
    const loaded = await waitFor(alice, topUp.id, 'LOADED');
    expect(loaded.history.at(-1)!.cause).toMatch(/GET TRANSACTION PROVE/);
    expect((await auditOf(world, second.openCardSession.session.id)).at(-1)).toMatchObject({ refusal: 'ALREADY_LOADED' });
    await ledgerOk();
  });

  it('a write that never reached the card is written on the next tap, once', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 900);
    const first = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    // The card is pulled away before CREDIT FOR LOAD: MAC2 left the host, the card never saw it.
    const dropped = sessionsOf(brokenRelay(alice.app, 1, 'answer', 'card removed'), () => alice.reader);
    await expect(dropped.agent(card.chip).run(first.openCardSession.session)).rejects.toThrow('card removed');
    await expireSession(world, first.openCardSession.session.id);
    const second = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    const done = await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(second.openCardSession.session);
    expect(done.state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(900);
    expect(await purseBalance(world, card.chip.asn)).toBe(900n);
    await ledgerOk();
  });

  it('a card that moved on with another MAC2 for the same counter is not taken as proof: LOAD_UNRESOLVED, nothing booked', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 1_000);
    const first = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    const dropped = sessionsOf(brokenRelay(alice.app, 1, 'answer', 'card removed'), () => alice.reader);
    await expect(dropped.agent(card.chip).run(first.openCardSession.session)).rejects.toThrow('card removed');
    await expireSession(world, first.openCardSession.session.id);
    // The card is loaded 5.00 at the counter instead: its online counter moves on with that MAC2.
    const counterReader = await newReader(world, `GZ-COUNTER-${Date.now()}`, world.gz);
    const counter = sessionsOf(issuer, () => counterReader);
    expect((await counter.agent(card.chip).run(await counter.open('LOAD', 500))).state).toBe('COMPLETED');
    const retry = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    const refused = await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(retry.openCardSession.session);
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect(await balanceOnCard(card.chip)).toBe(500);
    expect(await purseBalance(world, card.chip.asn)).toBe(500n);
    expect((await alice.app.request<{ topUp: TopUp }>(GET, { id: topUp.id })).topUp.status).toBe('PAID');
    await ledgerOk();

    // The card company looks into it (the card's balance shows the top-up never arrived) and releases it.
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status history { cause } } userErrors { code } } }`;
    const foreign = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['cards:read', 'topups:write']);
    expect((await foreign.request<{ resolvePendingLoad: { userErrors: { code: string }[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: false, note: 'not ours', idempotencyKey: 'r-0' } })).resolvePendingLoad.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    const resolved = await issuer.request<{ resolvePendingLoad: { topUp: { status: string; history: { cause: string }[] }; userErrors: unknown[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: false, note: 'chip balance 5.00: the 10.00 never arrived', idempotencyKey: 'r-1' } });
    expect(resolved.resolvePendingLoad.userErrors).toEqual([]);
    expect(resolved.resolvePendingLoad.topUp.history.at(-1)!.cause).toMatch(/never arrived/);
    const again = await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    expect((await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(again.openCardSession.session)).state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(1_500);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_500n);
    await ledgerOk();
  });

  it('a top-up is written only onto its own card, and only by its holder’s app', async () => {
    const card = await cardOf(alice);
    const other = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 700);
    const session = (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } })).openCardSession.session;
    const wrongCard = await sessionsOf(alice.app, () => alice.reader).agent(other.chip).run(session);
    expect(wrongCard).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(other.chip)).toBe(0);
    const bobs = await bob.app.request<{ openCardSession: { userErrors: { code: string }[] } }>(OPEN, { input: { reader: bob.reader.id, operation: 'LOAD', topUp: topUp.id } });
    expect(bobs.openCardSession.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });
});

type Requester = Pick<OneCardClient, 'request'>;

/** How the load's last message (seq 2: CREDIT FOR LOAD's TAC) fails after the card has been credited. */
const LOST_ANSWERS = lastMessageLost(world, 8);

/** Drives a load whose last message fails as `how` says; the card is credited, the session is over (expired if it was left open). */
async function loseTheAnswer(how: string, client: Requester, reader: TestReader, chip: VirtualCpuCard, session: { id: string; challenge: string }) {
  await sessionsOf(LOST_ANSWERS[how]!(client), () => reader).agent(chip).run(session).catch(() => undefined);
  await expireSession(world, session.id);
}

/** How many times the ledger booked onto this card's purse. */
async function purseEntries(asn: string): Promise<number> {
  const [row] = await world.db.orm.em.fork().execute<{ n: string }[]>(
    `select count(*) as n from posting l join ledger_account a on a.id = l.account_id where a.code = ?`,
    [`card.${asn}.purse.CNY`],
  );
  return Number(row!.n);
}

describe('no value left unbooked: a load whose last answer was lost is settled from the card’s proof (issue 17)', () => {
  const openLoad = async (topUpId: string) => (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUpId } })).openCardSession.session;

  for (const how of Object.keys(LOST_ANSWERS)) {
    it(`pending load (补登), ${how}: the next balance read proves it (GET TRANSACTION PROVE) and books it once, LOADED with its event`, async () => {
      const card = await cardOf(alice);
      const topUp = await paidTopUp(alice, card, 800);
      await loseTheAnswer(how, alice.app, alice.reader, card.chip, await openLoad(topUp.id));
      // The chip holds the value, the ledger does not (yet).
      expect(await balanceOnCard(card.chip)).toBe(800);
      expect(await purseBalance(world, card.chip.asn)).toBeUndefined();
      expect((await alice.app.request<{ topUp: TopUp }>(GET, { id: topUp.id })).topUp.status).toBe('PAID');

      const sessions = sessionsOf(alice.app, () => alice.reader);
      const read = await sessions.agent(card.chip).run(await sessions.open('BALANCE'));
      expect(read).toMatchObject({ state: 'COMPLETED' });
      expect(await purseBalance(world, card.chip.asn)).toBe(800n);
      const loaded = await waitFor(alice, topUp.id, 'LOADED');
      expect(loaded.history.at(-1)!.cause).toMatch(/GET TRANSACTION PROVE/);
      // Again, and twice at once (the card and a copy in two readers): nothing more is booked.
      const entries = await purseEntries(card.chip.asn);
      const second = await newReader(world, `HOME-alice-proof-${Math.random()}`, world.gz, { kind: 'CARDHOLDER', id: alice.id });
      const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
      const [a, b] = await Promise.all([sessions.open('BALANCE'), sessions.open('BALANCE', undefined, second)]);
      const both = await Promise.all([sessions.agent(card.chip).run(a), sessions.agent(copy, second).run(b)]);
      expect(both.map((r) => r.state)).toEqual(['COMPLETED', 'COMPLETED']);
      expect(await purseEntries(card.chip.asn)).toBe(entries);
      expect(await purseBalance(world, card.chip.asn)).toBe(BigInt(await balanceOnCard(card.chip)));
      // The pending loads account gave it up exactly once; LOADED sent top_up.loaded as a normal completion does.
      const [events] = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from event_outbox where subject_id = ? and payload->>'status' = 'LOADED'`, [topUp.id]);
      expect(Number(events!.n)).toBe(1);
      await ledgerOk();
    });
  }

  it('a card company that releases a load the card did take is corrected by the card’s proof at the next tap; a proved load cannot be released', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 600);
    await loseTheAnswer('the app dies after the card answered', alice.app, alice.reader, card.chip, await openLoad(topUp.id));
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code field } } }`;
    const released = await issuer.request<{ resolvePendingLoad: { topUp: { status: string } | null; userErrors: unknown[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: false, note: 'we think it never arrived', idempotencyKey: `rel-${Math.random()}` } });
    expect(released.resolvePendingLoad.userErrors).toEqual([]);
    const sessions = sessionsOf(alice.app, () => alice.reader);
    expect((await sessions.agent(card.chip).run(await sessions.open('BALANCE'))).state).toBe('COMPLETED');
    expect(await purseBalance(world, card.chip.asn)).toBe(600n);
    expect((await waitFor(alice, topUp.id, 'LOADED')).status).toBe('LOADED');
    // Writing it again is refused (it is on the card), and so is releasing it now.
    const again = await alice.app.request<{ openCardSession: { session: unknown; userErrors: { code: string }[] } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: topUp.id } });
    expect(again.openCardSession).toMatchObject({ session: null, userErrors: [{ code: 'INVALID_INPUT' }] });
    const late = await issuer.request<{ resolvePendingLoad: { topUp: unknown; userErrors: { code: string }[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: false, note: 'still think so', idempotencyKey: `rel-${Math.random()}` } });
    expect(late.resolvePendingLoad.userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect(await balanceOnCard(card.chip)).toBe(600);
    await ledgerOk();
  });

  it('the card company’s resolution (loaded) and then the card’s proof book the load once', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 700);
    await loseTheAnswer('the relay corrupts the last message', alice.app, alice.reader, card.chip, await openLoad(topUp.id));
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code } } }`;
    const resolved = await issuer.request<{ resolvePendingLoad: { topUp: { status: string } | null; userErrors: unknown[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: true, note: 'chip shows 7.00', idempotencyKey: `res-${Math.random()}` } });
    expect(resolved.resolvePendingLoad.topUp?.status).toBe('LOADED');
    const sessions = sessionsOf(alice.app, () => alice.reader);
    expect((await sessions.agent(card.chip).run(await sessions.open('BALANCE'))).state).toBe('COMPLETED');
    expect(await purseBalance(world, card.chip.asn)).toBe(700n);
    expect(await purseEntries(card.chip.asn)).toBe(1);
    await ledgerOk();
  });

  it('the card company settles it with the card’s TAC (read with GET TRANSACTION PROVE at its counter): verified with the card’s key, booked once', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 900);
    await loseTheAnswer('the session limit passes', alice.app, alice.reader, card.chip, await openLoad(topUp.id));
    // The card company's own counter device asks the card for the proof of its load at counter 0.
    const device = new VirtualCardTransport(card.chip);
    await device.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
    const proof = Buffer.from(await device.transmit(Buffer.from('805A000202000008', 'hex'))).toString('hex').toUpperCase();
    expect(proof.slice(-4)).toBe('9000');
    const tac = proof.slice(8, 16);
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status history { cause } } userErrors { code field } } }`;
    type Resolved = { resolvePendingLoad: { topUp: { status: string; history: { cause: string }[] } | null; userErrors: { code: string; field: string[] }[] } };
    const resolve = (input: Record<string, unknown>) => issuer.request<Resolved>(RESOLVE, { input: { topUp: topUp.id, note: 'read at the counter', idempotencyKey: `tac-${Math.random()}`, ...input } });
    const forged = `${tac.slice(0, 7)}${tac[7] === '0' ? '1' : '0'}`;
    expect((await resolve({ loaded: true, tac: forged })).resolvePendingLoad.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'tac'] }]);
    expect((await resolve({ loaded: false, tac })).resolvePendingLoad.userErrors.map((e) => e.code)).toEqual(['INVALID_INPUT']);
    expect(await purseBalance(world, card.chip.asn)).toBeUndefined();
    const settled = await resolve({ loaded: true, tac });
    expect(settled.resolvePendingLoad.topUp?.status).toBe('LOADED');
    expect(settled.resolvePendingLoad.topUp?.history.at(-1)!.cause).toMatch(/TAC from GET TRANSACTION PROVE, verified/);
    // The card moved its online counter on with this load: a copy of it from before the load (counter 0) must be caught.
    // Before the review fix the counter stayed where it was when the proof was new.
    const [counter] = await world.db.orm.em.fork().execute<{ online_counter: number }[]>(`select online_counter from card_counter where asn = ?`, [card.chip.asn]);
    expect(counter?.online_counter).toBe(1);
    // The card's next session finds nothing left to prove.
    const sessions = sessionsOf(alice.app, () => alice.reader);
    const read = await sessions.agent(card.chip).run(await sessions.open('BALANCE'));
    expect((await auditOf(world, read.id)).map((r) => r.step)).not.toContain('proofAnswer');
    expect(await purseBalance(world, card.chip.asn)).toBe(900n);
    expect(await purseEntries(card.chip.asn)).toBe(1);
    await ledgerOk();
  });

  it('a TAC for a load made under a key version the card company retired is a clear refusal, not a server error', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 400);
    const lost = await openLoad(topUp.id);
    await loseTheAnswer('the session limit passes', alice.app, alice.reader, card.chip, lost);
    const device = new VirtualCardTransport(card.chip);
    await device.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
    const [row] = await world.db.orm.em.fork().execute<{ c: number }[]>(`select (context->'init'->>'onlineCounter')::int as c from card_session where id = ?`, [sessionUuid(lost.id)]);
    const proof = Buffer.from(await device.transmit(Buffer.from(`805A000202${row!.c.toString(16).padStart(4, '0')}08`, 'hex'))).toString('hex').toUpperCase();
    expect(proof.slice(-4)).toBe('9000');
    await world.db.orm.em.fork().execute(`update card_session set context = jsonb_set(context, '{init,keyVersion}', '99') where id = ?`, [sessionUuid(lost.id)]);
    const RESOLVE = `mutation($input: ResolvePendingLoadInput!) { resolvePendingLoad(input: $input) { topUp { status } userErrors { code field } } }`;
    const answer = await issuer.request<{ resolvePendingLoad: { topUp: unknown; userErrors: { code: string; field: string[] }[] } }>(RESOLVE, { input: { topUp: topUp.id, loaded: true, tac: proof.slice(8, 16), note: 'read at the counter', idempotencyKey: `retired-${Math.random()}` } });
    expect(answer.resolvePendingLoad.userErrors).toEqual([{ code: 'INVALID_INPUT', field: ['input', 'tac'] }]);
    await ledgerOk();
  });

  for (const how of Object.keys(LOST_ANSWERS)) {
    it(`counter load, ${how}: the card's next session of any kind books the counter cash once`, async () => {
      const card = await cardOf(alice);
      const counterReader = await newReader(world, `GZ-COUNTER-P-${Math.random()}`, world.gz);
      const counter = sessionsOf(issuer, () => counterReader);
      await loseTheAnswer(how, issuer, counterReader, card.chip, await counter.open('LOAD', 1_000));
      expect(await balanceOnCard(card.chip)).toBe(1_000);
      expect(await purseBalance(world, card.chip.asn)).toBeUndefined();
      // The next session is another counter load: it proves the first, then loads its own.
      const next = await counter.agent(card.chip).run(await counter.open('LOAD', 300));
      expect(next.state).toBe('COMPLETED');
      expect(await balanceOnCard(card.chip)).toBe(1_300);
      expect(await purseBalance(world, card.chip.asn)).toBe(1_300n);
      // Balance reads after it, one by one and two at once: nothing more is booked.
      const entries = await purseEntries(card.chip.asn);
      expect((await counter.agent(card.chip).run(await counter.open('BALANCE'))).state).toBe('COMPLETED');
      const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
      const [a, b] = await Promise.all([counter.open('BALANCE'), counter.open('BALANCE')]);
      expect((await Promise.all([counter.agent(card.chip).run(a), counter.agent(copy).run(b)])).map((r) => r.state)).toEqual(['COMPLETED', 'COMPLETED']);
      expect(await purseEntries(card.chip.asn)).toBe(entries);
      await ledgerOk();
    });
  }

  it('a counter load whose proof answer is dropped (9406): the next load is refused LOAD_UNRESOLVED before MAC2, so the lost one is never passed over unbooked', async () => {
    const card = await cardOf(alice);
    const counterReader = await newReader(world, `GZ-COUNTER-U-${Math.random()}`, world.gz);
    const counter = sessionsOf(issuer, () => counterReader);
    await loseTheAnswer('the app dies after the card answered', issuer, counterReader, card.chip, await counter.open('LOAD', 1_000));
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    // A relay that answers 94 06 to GET TRANSACTION PROVE (80 5A) in the card's place.
    const real = new VirtualCardTransport(card.chip);
    const dropsProofs = { transmit: async (apdu: Uint8Array) => (apdu[1] === 0x5a ? Uint8Array.from([0x94, 0x06]) : real.transmit(apdu)) };
    const next = await counter.agent(card.chip, counterReader, dropsProofs).run(await counter.open('LOAD', 300));
    expect(next).toMatchObject({ state: 'FAILED', refusal: 'LOAD_UNRESOLVED' });
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    // The honest next tap still proves and books the first load.
    expect((await counter.agent(card.chip).run(await counter.open('BALANCE'))).state).toBe('COMPLETED');
    expect(await purseBalance(world, card.chip.asn)).toBe(1_000n);
    await ledgerOk();
  });

  it('counter loads lost twice in a row, read back by two balance reads at once: each booked exactly once', async () => {
    const card = await cardOf(alice);
    const counterReader = await newReader(world, `GZ-COUNTER-Q-${Math.random()}`, world.gz);
    const counter = sessionsOf(issuer, () => counterReader);
    await loseTheAnswer('the session limit passes', issuer, counterReader, card.chip, await counter.open('LOAD', 500));
    const copy = VirtualCpuCard.fromJSON(card.chip.toJSON());
    const [a, b] = await Promise.all([counter.open('BALANCE'), counter.open('BALANCE')]);
    const both = await Promise.all([counter.agent(card.chip).run(a), counter.agent(copy).run(b)]);
    expect(both.map((r) => r.state)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(await purseBalance(world, card.chip.asn)).toBe(500n);
    expect(await purseEntries(card.chip.asn)).toBe(1);
    await ledgerOk();
  });

  it('a load whose MAC2 never reached the card books nothing: the card answers 94 06 and the balance read completes', async () => {
    const card = await cardOf(alice);
    const counterReader = await newReader(world, `GZ-COUNTER-R-${Math.random()}`, world.gz);
    const counter = sessionsOf(issuer, () => counterReader);
    const dropped = sessionsOf(brokenRelay(issuer, 1, 'answer', 'card removed'), () => counterReader);
    const first = await counter.open('LOAD', 400);
    await expect(dropped.agent(card.chip).run(first)).rejects.toThrow('card removed');
    await expireSession(world, first.id);
    const read = await counter.agent(card.chip).run(await counter.open('BALANCE'));
    expect(read.state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(0);
    expect(await purseBalance(world, card.chip.asn)).toBeUndefined();
    expect((await auditOf(world, read.id)).map((r) => r.step)).toContain('proofAnswer');
    await ledgerOk();
  });
});

describe('who sees a top-up', () => {
  it('another holder’s app and another card company get null, as for an id that does not exist', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 600);
    expect((await bob.app.request<{ topUp: unknown }>(GET, { id: topUp.id })).topUp).toBeNull();
    const sz = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['cards:read', 'topups:write']);
    expect((await sz.request<{ topUp: unknown }>(GET, { id: topUp.id })).topUp).toBeNull();
    expect((await issuer.request<{ topUp: { id: string } }>(GET, { id: topUp.id })).topUp.id).toBe(topUp.id);
    const refused = await sz.request<{ refundTopUp: { userErrors: { code: string }[] } }>(`mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { userErrors { code } } }`, { input: { topUp: topUp.id, idempotencyKey: 'sz-refund' } });
    expect(refused.refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });
});

describe('limits', () => {
  it('refuses a top-up below the minimum, above the maximum, past the day’s limit and past the purse maximum', async () => {
    const card = await cardOf(alice);
    const codeOf = async (amount: number) => (await create(alice, { card: card.id, amount, idempotencyKey: `limit-${amount}-${Math.random()}`, paymentMethod: 'pm_card_visa' })).createTopUp.userErrors.map((e) => e.code);
    expect(await codeOf(99)).toEqual(['TOP_UP_AMOUNT_OUT_OF_RANGE']);
    expect(await codeOf(100_001)).toEqual(['TOP_UP_AMOUNT_OUT_OF_RANGE']);
    expect(await codeOf(90_000)).toEqual([]);
    // 90,000 paid and pending: the purse maximum (100,000) leaves room for 10,000.
    expect(await codeOf(10_001)).toEqual(['PURSE_LIMIT_EXCEEDED']);
    expect(await codeOf(10_000)).toEqual([]);
  });

  it('counts the day’s top-ups in the card’s city, including ones loaded since', async () => {
    const card = await cardOf(alice);
    await paidTopUp(alice, card, 80_000);
    // Load it, so the purse maximum leaves room again; the day's total does not.
    const topUps = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from top_up where card_id = ? and status = 'PAID'`, [card.uuid]);
    const id = Buffer.from(`TopUp:${topUps[0]!.id}`).toString('base64url');
    const session = (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: id } })).openCardSession.session;
    await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(session);
    const more = await create(alice, { card: card.id, amount: 80_000, idempotencyKey: `daily-${Math.random()}`, paymentMethod: 'pm_card_visa' });
    expect(more.createTopUp.userErrors.map((e) => e.code)).toEqual(['DAILY_LIMIT_EXCEEDED']);
  });

  it('concurrent top-ups of one card never pass the purse maximum together', async () => {
    const card = await cardOf(alice);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => create(alice, { card: card.id, amount: 30_000, idempotencyKey: `race-${i}`, paymentMethod: 'pm_card_visa' })));
    expect(results.filter((r) => r.createTopUp.userErrors.length === 0)).toHaveLength(3);
    expect(results.filter((r) => r.createTopUp.userErrors[0]?.code === 'PURSE_LIMIT_EXCEEDED')).toHaveLength(3);
  });

  it('refuses a card that is not ACTIVE, and another holder’s card as if it did not exist', async () => {
    const card = await cardOf(alice);
    const bobs = await create(bob, { card: card.id, amount: 1_000, idempotencyKey: 'not-mine' });
    expect(bobs.createTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    await world.db.orm.em.fork().execute(`update card set status = 'BLOCKED' where id = ?`, [card.uuid]);
    const blocked = await create(alice, { card: card.id, amount: 1_000, idempotencyKey: 'blocked' });
    expect(blocked.createTopUp.userErrors.map((e) => e.code)).toEqual(['CARD_NOT_USABLE']);
  });
});

describe('refunds', () => {
  it('a paid top-up of a lost card is refunded through the gateway; the ledger gives the money back', async () => {
    const card = await cardOf(alice);
    const topUp = await paidTopUp(alice, card, 2_500);
    const REFUND = `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { topUp { ${TOP_UP} } userErrors { code message } } }`;
    const early = await alice.app.request<{ refundTopUp: { userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-early' } });
    expect(early.refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    await world.db.orm.em.fork().execute(`update card set status = 'LOST' where id = ?`, [card.uuid]);
    const before = await pendingLoads();
    // A refusal is an answer: the same key now would replay it, so the new attempt takes a new key.
    expect((await alice.app.request<{ refundTopUp: { userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-early' } })).refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    const refunded = await alice.app.request<{ refundTopUp: { topUp: TopUp; userErrors: unknown[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-lost-card' } });
    expect(refunded.refundTopUp.userErrors).toEqual([]);
    expect(refunded.refundTopUp.topUp.status).toBe('REFUNDED');
    // Refunded, never on the card: no load time shows, no loading session is recorded.
    expect(refunded.refundTopUp.topUp.loadedAt).toBeNull();
    expect(await loadedColumns(topUp.id)).toEqual({ loaded_session_id: null, loaded_at: null });
    expect(await pendingLoads()).toBe(before - 2_500n);
    // A retry of it (say after a time-out) gets the same answer, and refunds nothing more.
    expect((await alice.app.request<{ refundTopUp: { topUp: TopUp; userErrors: unknown[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-lost-card' } })).refundTopUp.topUp.status).toBe('REFUNDED');
    expect(await pendingLoads()).toBe(before - 2_500n);
    const twice = await alice.app.request<{ refundTopUp: { userErrors: { code: string }[] } }>(REFUND, { input: { topUp: topUp.id, idempotencyKey: 'refund-again' } });
    expect(twice.refundTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    await ledgerOk();
  });
});

describe('auto top-up and the low-balance event', () => {
  it('a purchase that takes the purse below the threshold sends card.low_balance and tops up the saved card; the next tap loads it', async () => {
    const card = await cardOf(alice);
    const first = await paidTopUp(alice, card, 3_000);
    const loadSession = (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: first.id } })).openCardSession.session;
    await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(loadSession);
    const SET = `mutation($input: SetAutoTopUpInput!) { setAutoTopUp(input: $input) { autoTopUp { threshold { amount } amount { amount } enabled } userErrors { code field } } }`;
    const bad = await alice.app.request<{ setAutoTopUp: { userErrors: { code: string }[] } }>(SET, { input: { card: card.id, threshold: 1_000, amount: 50, paymentMethod: 'pm_card_visa', enabled: true } });
    expect(bad.setAutoTopUp.userErrors.map((e) => e.code)).toEqual(['TOP_UP_AMOUNT_OUT_OF_RANGE']);
    const set = await alice.app.request<{ setAutoTopUp: { autoTopUp: unknown; userErrors: unknown[] } }>(SET, { input: { card: card.id, threshold: 1_000, amount: 2_000, paymentMethod: 'pm_card_visa', enabled: true } });
    expect(set.setAutoTopUp).toEqual({ autoTopUp: { threshold: { amount: 1000 }, amount: { amount: 2000 }, enabled: true }, userErrors: [] });
    expect((await bob.app.request<{ setAutoTopUp: { userErrors: { code: string }[] } }>(SET, { input: { card: card.id, threshold: 1_000, amount: 2_000, paymentMethod: 'pm_card_visa', enabled: true } })).setAutoTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);

    // A shop takes 2,500: 3,000 → 500, below the threshold of 1,000.
    const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Corner Shop' });
    const till = await newReader(world, 'SHOP-TILL-1', world.gz, { kind: 'MERCHANT', id: shop.id });
    const merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write']);
    const shopSessions = sessionsOf(merchant, () => till);
    const bought = await shopSessions.agent(card.chip).run(await shopSessions.open('PURCHASE', 2_500));
    expect(bought.state).toBe('COMPLETED');
    const em = world.db.orm.em.fork();
    const events = await em.execute<{ type: string; payload: { balance: number; threshold: number } }[]>(`select type, payload from event_outbox where subject_id = ? order by id`, [card.id]);
    expect(events).toEqual([{ type: 'card.low_balance', payload: expect.objectContaining({ balance: 500, threshold: 1000 }) }]);
    const [auto] = await em.execute<{ id: string; status: string; amount: string }[]>(`select id, status, amount::text from top_up where card_id = ? and origin = 'AUTO'`, [card.uuid]);
    expect(auto).toMatchObject({ status: 'CREATED', amount: '2000' });

    // The job charges the saved payment method; the next tap writes it.
    await runTopUpJobs(world.db.orm.em.fork(), new GatewayClient({ url: sandbox.url, secretKey: SECRET }));
    const autoId = Buffer.from(`TopUp:${auto!.id}`).toString('base64url');
    await waitFor(alice, autoId, 'PAID');
    const tap = (await alice.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: alice.reader.id, operation: 'LOAD', topUp: autoId } })).openCardSession.session;
    expect((await sessionsOf(alice.app, () => alice.reader).agent(card.chip).run(tap)).state).toBe('COMPLETED');
    expect(await balanceOnCard(card.chip)).toBe(2_500);
    // A purchase that leaves the purse above the threshold (2,500 → 1,500) triggers nothing.
    await shopSessions.agent(card.chip).run(await shopSessions.open('PURCHASE', 1_000));
    expect((await em.execute(`select 1 from top_up where card_id = ? and origin = 'AUTO'`, [card.uuid])).length).toBe(1);
    await ledgerOk();
  });
});

describe('the poll covers a webhook that never comes', () => {
  it('a top-up paid at the gateway while its webhooks are lost becomes PAID when the job polls', async () => {
    sandbox.setWebhookUrl('http://127.0.0.1:9/nowhere');
    try {
      const card = await cardOf(alice);
      const made = await create(alice, { card: card.id, amount: 1_100, idempotencyKey: 'no-webhook' });
      await payOnCheckoutPage(made.createTopUp.topUp!.paymentUrl!);
      expect((await alice.app.request<{ topUp: TopUp }>(GET, { id: made.createTopUp.topUp!.id })).topUp.status).toBe('AWAITING_PAYMENT');
      const gateway = new GatewayClient({ url: sandbox.url, secretKey: SECRET });
      const round = await runTopUpJobs(world.db.orm.em.fork(), gateway, { now: new Date(Date.now() + 120_000) });
      expect(round.polled).toBeGreaterThanOrEqual(1);
      const paid = await waitFor(alice, made.createTopUp.topUp!.id, 'PAID');
      expect(paid.history.at(-1)!.cause).toBe('poll');
    } finally {
      sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
    }
  });

  it('the card company tops up a card at its counter, paid on the gateway’s page; it may not charge a holder’s saved payment method', async () => {
    const card = await cardOf(alice);
    const saved = await issuer.request<CreateResult>(CREATE, { input: { card: card.id, amount: 5_000, idempotencyKey: 'counter-0', paymentMethod: 'pm_card_visa' } });
    expect(saved.createTopUp.userErrors.map((e) => e.code)).toEqual(['FORBIDDEN_OPERATION']);
    const made = await issuer.request<CreateResult>(CREATE, { input: { card: card.id, amount: 5_000, idempotencyKey: 'counter-1' } });
    expect(made.createTopUp.userErrors).toEqual([]);
    await payOnCheckoutPage(made.createTopUp.topUp!.paymentUrl!);
    expect((await issuer.request<{ topUp: TopUp }>(GET, { id: made.createTopUp.topUp!.id })).topUp.status).toMatch(/AWAITING_PAYMENT|PAID/);
  });
});
