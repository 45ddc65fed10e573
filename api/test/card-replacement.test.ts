/**
 * Card replacement (补卡) and card history over real HTTP: the card company's OAuth client replaces
 * a card that was loaded at its counter and spent at a merchant's certified reader (real card
 * sessions); the old card goes on the blacklist; its purse shadow moves to the new card only after
 * the wait for offline transactions, once; the history of both cards tells the story with signed
 * amounts and running balances. A cardholder app signed in with PKCE reads it and cannot replace.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, OneCardError, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { cardHistory, historyWindow } from '../src/cards/card-history.service.js';
import { findCardByAsn, luhnValid, type NewCardInput, replaceCard, runDueBalanceTransfers, transitionCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, balanceOnCard, issueCard as virtualCard, newReader, OPEN, purseBalance, sessionsOf, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';
import { graphql } from './support/server.js';
import { cardPurseAccount } from '../src/ledger/accounts.js';

/** The wait before a replaced card's balance moves, for this file's server (CARD_BALANCE_TRANSFER_DELAY). */
const DELAY_SECONDS = 3600;
const world = useCardSessionWorld({ env: () => ({ CARD_BALANCE_TRANSFER_DELAY: String(DELAY_SECONDS) }) });

let counterReader: TestReader;
let shopReader: TestReader;
let issuer: OneCardClient;
let szIssuer: OneCardClient;
let merchant: OneCardClient;
let holder: { id: string; token: string; app: ReturnType<typeof bearerClient> };

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' });
  counterReader = await newReader(world, 'GZ-COUNTER-RP', world.gz);
  shopReader = await newReader(world, 'GZ-SHOP-RP', world.gz, { kind: 'MERCHANT', id: shop.id });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read', 'cards:write', 'topups:write']);
  szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['cards:read', 'cards:write']);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write']);
  const made = await createCardholder(em, { username: 'mei', password: 'mei password 1', displayName: 'Mei' });
  const redirectUri = 'http://127.0.0.1:8797/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: world.gz.cardCompanyId, name: 'Card App', scopes: ['card:read', 'card:manage'], redirectUris: [redirectUri] });
  const token = await cardholderAccessToken(world.server.url, { clientId: client.client_id, redirectUri, username: 'mei', password: 'mei password 1', scope: 'card:read card:manage' });
  holder = { id: made.id, token, app: bearerClient(world.server.url, token) };
});

const counter = () => sessionsOf(issuer, () => counterReader);
const till = () => sessionsOf(merchant, () => shopReader);
const em = () => world.db.orm.em.fork();
const HOUR = 3600_000;
/** A moment the transfers scheduled now are due at. */
const afterDue = () => new Date(Date.now() + DELAY_SECONDS * 1000 + 60_000);
/** Finishes the transfers earlier tests left waiting, so a test can count its own. */
const drain = () => runDueBalanceTransfers(em(), new Date(Date.now() + 365 * 24 * HOUR));

let numbers = 0;
function cardNumber(): string {
  const body = `62340000${String(Date.now() % 1e6).padStart(6, '0')}${String(++numbers).padStart(3, '0')}`.slice(0, 18);
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

/** A card number whose check digit is wrong. */
function badLuhn(): string {
  const good = cardNumber();
  return good.slice(0, -1) + String((Number(good.at(-1)) + 1) % 10);
}

type Card = { id: string; uuid: string; asn: string; number: string };
type UserErrors = { code: string; field: string[] | null; message: string }[];

const ISSUE = `mutation($input: IssueCardInput!) { issueCard(input: $input) { card { id asn number } userErrors { code message } } }`;
const CARD_FIELDS = `id number status holder cardCompany concession concessionValidUntil concessionProof replacedBy { id status } purseBalance { amount currency } pendingLoad { amount currency }
  balanceTransfer { id fromCard toCard dueAt transferredAt amount { amount currency } }`;
const REPLACE = `mutation($input: ReplaceCardInput!) {
  replaceCard(input: $input) { card { ${CARD_FIELDS} } oldCard { ${CARD_FIELDS} } balanceTransfer { id fromCard toCard dueAt transferredAt amount { amount currency } } userErrors { code field message } }
}`;
const CARD = `query($id: ID!) { card(id: $id) { ${CARD_FIELDS} } }`;
const HISTORY = `query($id: ID!, $first: Int, $after: String, $kinds: [CardActivityKind!], $from: DateTime, $to: DateTime) {
  card(id: $id) { history(first: $first, after: $after, kinds: $kinds, from: $from, to: $to) {
    edges { cursor node { id at kind amount { amount currency } balanceAfter { amount currency } description reference } }
    pageInfo { hasNextPage endCursor }
  } }
}`;

/** A card in the card company's registry, optionally registered to a cardholder, and the chip that carries it. */
async function register(extra: Record<string, unknown> = {}) {
  const chip = virtualCard({ city: world.gz, keys: world.gzMasterKeys });
  const out = await issuer.request<{ issueCard: { card: Omit<Card, 'uuid'> | null; userErrors: UserErrors } }>(ISSUE, {
    input: { cardNumber: cardNumber(), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', ...extra },
  });
  expect(out.issueCard.userErrors).toEqual([]);
  const card = out.issueCard.card!;
  return { chip, card: { ...card, uuid: fromGlobalId(card.id, 'Card').id } as Card };
}

/** The chips of replacement cards, by ASN: the holder takes the new card home. */
const chips = new Map<string, VirtualCpuCard>();

function freshChip(): string {
  const chip = virtualCard({ city: world.gz, keys: world.gzMasterKeys });
  chips.set(chip.asn, chip);
  return chip.asn;
}

/**
 * The new card meets the card company's reader: its pending load (the replaced card's balance) is
 * written onto the chip (补登). Returns the chip.
 */
async function tapToLoad(cardGlobalId: string): Promise<VirtualCpuCard> {
  const [pending] = await em().execute<{ id: string }[]>(`select id from top_up where card_id = ? and status = 'PAID'`, [fromGlobalId(cardGlobalId, 'Card').id]);
  const opened = await issuer.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: counterReader.id, operation: 'LOAD', topUp: toGlobalId('TopUp', pending!.id) } });
  const chip = chips.get((await registryRow(cardGlobalId)).asn)!;
  expect((await counter().agent(chip).run(opened.openCardSession.session)).state).toBe('COMPLETED');
  return chip;
}

/** The particulars of a replacement card (a fresh chip's ASN). */
const newCardInput = (extra: Record<string, unknown> = {}) => ({
  cardNumber: cardNumber(),
  asn: freshChip(),
  cardType: 'CPU',
  keyVersion: 1,
  issuedOn: '2026-11-25',
  expiresOn: '2031-11-24',
  ...extra,
});

async function replace(cardId: string, newCard = newCardInput(), reason: string | null = 'damaged chip', client = issuer) {
  const data = await client.request<{ replaceCard: { card: any; oldCard: any; balanceTransfer: any; userErrors: UserErrors } }>(REPLACE, { input: { card: cardId, newCard, reason } });
  return data.replaceCard;
}

const cardAs = async (id: string, client: { request: OneCardClient['request'] } = issuer) => (await client.request<{ card: any }>(CARD, { id })).card;

async function historyOf(id: string, args: Record<string, unknown> = {}, client: { request: OneCardClient['request'] } = issuer) {
  return (await client.request<{ card: { history: { edges: { cursor: string; node: any }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } }>(HISTORY, { id, ...args })).card.history;
}

/** What an offline terminal upload would post: fare taken from the purse shadow (kind TRANSIT). */
async function offlineFare(asn: string, amount: number) {
  const e = em();
  const purse = await cardPurseAccount(e, asn, 'CNY');
  const transit = await openAccount(e, { code: 'test.transit-clearing.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  return post(e, { key: `test-fare:${randomUUID()}`, description: `offline bus fare, card ${asn}`, lines: [debit(purse.id, BigInt(amount)), credit(transit.id, BigInt(amount))], metadata: { kind: 'TRANSIT' } });
}

/** Puts value on a purse shadow from a test cash account (no kind: it reads as ADJUSTMENT). */
async function fund(asn: string, amount: number) {
  const e = em();
  const purse = await cardPurseAccount(e, asn, 'CNY');
  const cash = await openAccount(e, { code: 'test.cash.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  await post(e, { key: `test-fund:${randomUUID()}`, description: `test funding of card ${asn}`, lines: [debit(cash.id, BigInt(amount)), credit(purse.id, BigInt(amount))] });
}

async function transferRows(cardUuid: string) {
  return em().execute<{ id: string; amount: string | null; journal_entry_id: string | null }[]>(`select id, amount::text as amount, journal_entry_id from card_balance_transfer where from_card_id = ?`, [cardUuid]);
}

const money = (amount: number) => ({ amount, currency: 'CNY' });

/**
 * The story most tests read: loaded 5000 at the counter, 1200 spent at the shop, replaced, 300 of
 * offline fares arriving during the wait, and the transfer run once due.
 */
async function replacedAfterUse() {
  const { chip, card } = await register({ holder: toGlobalId('Cardholder', holder.id) });
  const load = await counter().open('LOAD', 5000);
  expect((await counter().agent(chip).run(load)).state).toBe('COMPLETED');
  const purchase = await till().open('PURCHASE', 1200);
  expect((await till().agent(chip).run(purchase)).state).toBe('COMPLETED');
  const replaced = await replace(card.id);
  expect(replaced.userErrors).toEqual([]);
  await offlineFare(chip.asn, 300);
  return { chip, card, replaced, loadSession: load.id, purchaseSession: purchase.id };
}

describe('replacing a card', () => {
  it('issues the new card for the same holder, makes the old one REPLACED and blacklisted, and schedules the transfer after the configured wait', async () => {
    const { chip, card } = await register({ holder: toGlobalId('Cardholder', holder.id) });
    const { latestVersion: since } = (await issuer.request<{ blacklist: { latestVersion: number } }>(`{ blacklist(first: 1) { latestVersion } }`)).blacklist;
    const newCard = newCardInput();
    const before = Date.now();
    const out = await replace(card.id, newCard, 'chip cracked');
    expect(out.userErrors).toEqual([]);
    expect(out.card).toMatchObject({ number: newCard.cardNumber, status: 'ACTIVE', holder: toGlobalId('Cardholder', holder.id), cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId), concession: 'ADULT', replacedBy: null });
    expect(out.oldCard).toMatchObject({ id: card.id, status: 'REPLACED', replacedBy: { id: out.card.id, status: 'ACTIVE' } });
    expect(out.balanceTransfer).toMatchObject({ fromCard: card.id, toCard: out.card.id, transferredAt: null, amount: null });
    const due = Date.parse(out.balanceTransfer.dueAt);
    expect(due).toBeGreaterThanOrEqual(before + DELAY_SECONDS * 1000 - 5_000);
    expect(due).toBeLessThanOrEqual(Date.now() + DELAY_SECONDS * 1000 + 5_000);
    // Both cards show the same transfer.
    expect((await cardAs(card.id)).balanceTransfer).toEqual(out.balanceTransfer);
    expect((await cardAs(out.card.id)).balanceTransfer).toEqual(out.balanceTransfer);

    // Terminals learn to refuse the old card offline; online it is refused at once.
    const delta = (await issuer.request<{ blacklist: { entries: any[] } }>(`query($since: Int) { blacklist(since: $since) { entries { asn action reason card } } }`, { since })).blacklist;
    expect(delta.entries).toEqual([{ asn: chip.asn, action: 'ADD', reason: 'chip cracked', card: card.id }]);
    const refused = await counter().agent(chip).run(await counter().open('LOAD', 100));
    expect(refused.state).toBe('FAILED');
    expect(JSON.stringify(refused)).toContain('CARD_NOT_USABLE');
  });

  it('the balance moves once, only when due, with what offline spending left; the ledger balances throughout', async () => {
    await drain();
    const { chip, replaced } = await replacedAfterUse();
    const newCard = await registryRow(replaced.card.id);
    expect(await purseBalance(world, chip.asn)).toBe(3500n);

    // Not due yet: nothing moves, however often the job runs.
    expect(await runDueBalanceTransfers(em(), new Date())).toBe(0);
    expect(await runDueBalanceTransfers(em(), new Date(Date.now() + DELAY_SECONDS * 1000 - 60_000))).toBe(0);
    expect(await purseBalance(world, chip.asn)).toBe(3500n);
    expect(await purseBalance(world, newCard.asn)).toBeUndefined();

    // A late offline fare still counts: the transfer moves what is left when it runs.
    await offlineFare(chip.asn, 200);
    const when = afterDue();
    expect(await runDueBalanceTransfers(em(), when)).toBe(1);
    expect(await runDueBalanceTransfers(em(), when)).toBe(0);
    expect(await purseBalance(world, chip.asn)).toBe(0n);
    // The value waits for the new chip as a pending load; the next tap writes it.
    expect(await purseBalance(world, newCard.asn)).toBeUndefined();
    expect((await cardAs(replaced.card.id)).pendingLoad).toEqual(money(3300));
    const newChip = await tapToLoad(replaced.card.id);
    expect(await balanceOnCard(newChip)).toBe(3300);
    expect(await purseBalance(world, newCard.asn)).toBe(3300n);

    const transferId = fromGlobalId(replaced.balanceTransfer.id, 'BalanceTransfer').id;
    const entries = await em().execute<{ n: string }[]>(`select count(*)::text as n from journal_entry where entry_key = ? and metadata->>'kind' = 'BALANCE_TRANSFER'`, [`card-balance-transfer:${transferId}`]);
    expect(entries[0]!.n).toBe('1');
    const expected = { id: replaced.balanceTransfer.id, fromCard: replaced.oldCard.id, toCard: replaced.card.id, dueAt: replaced.balanceTransfer.dueAt, transferredAt: when.toISOString(), amount: money(3300) };
    expect((await cardAs(replaced.oldCard.id)).balanceTransfer).toEqual(expected);
    expect(await cardAs(replaced.card.id)).toMatchObject({ balanceTransfer: expected, purseBalance: money(3300), pendingLoad: money(0) });
    expect((await cardAs(replaced.oldCard.id)).purseBalance).toEqual(money(0));
    // 5000 loaded = 1200 bought + 500 in fares + 3300 on the new card.
    expect(await checkLedger(em())).toEqual([]);
  });

  it('an empty purse records a transfer of 0 and posts nothing', async () => {
    await drain();
    const { card } = await register();
    const out = await replace(card.id);
    expect(out.userErrors).toEqual([]);
    expect(await runDueBalanceTransfers(em(), afterDue())).toBe(1);
    expect(await transferRows(card.uuid)).toEqual([{ id: fromGlobalId(out.balanceTransfer.id).id, amount: '0', journal_entry_id: null }]);
    expect((await cardAs(out.card.id)).balanceTransfer.amount).toEqual(money(0));
    expect(await purseBalance(world, card.asn)).toBeUndefined();
  });

  it('a chain of replacements ends with the whole value on the last card', async () => {
    await drain();
    const { card: first } = await register();
    await fund(first.asn, 900);
    const second = (await replace(first.id)).card;
    const third = (await replace(second.id)).card;
    const thirdAsn = (await registryRow(third.id)).asn;
    expect(await runDueBalanceTransfers(em(), afterDue())).toBe(2);
    expect(await purseBalance(world, first.asn)).toBe(0n);
    expect(await purseBalance(world, (await registryRow(second.id)).asn)).toBeUndefined();
    // The value follows the chain to the card in the holder's hand, as a pending load.
    expect((await cardAs(third.id)).pendingLoad).toEqual(money(900));
    await tapToLoad(third.id);
    expect(await purseBalance(world, thirdAsn)).toBe(900n);
    expect(await checkLedger(em())).toEqual([]);
  });

  it('a LOST or BLOCKED card can be replaced and stays listed (no second blacklist entry); the concession carries over', async () => {
    const lost = (await register({ concession: 'STUDENT', concessionValidUntil: '2029-07-31', concessionProof: 'school letter 77' })).card;
    const blocked = (await register()).card;
    await issuer.request(`mutation($input: CardStatusInput!) { reportCardLost(input: $input) { userErrors { code } } }`, { input: { card: lost.id, reason: 'lost' } });
    await issuer.request(`mutation($input: CardStatusInput!) { blockCard(input: $input) { userErrors { code } } }`, { input: { card: blocked.id, reason: 'fraud' } });
    const { latestVersion: since } = (await issuer.request<{ blacklist: { latestVersion: number } }>(`{ blacklist(first: 1) { latestVersion } }`)).blacklist;
    const fromLost = await replace(lost.id);
    expect(fromLost.userErrors).toEqual([]);
    expect(fromLost.card).toMatchObject({ concession: 'STUDENT', concessionValidUntil: '2029-07-31', concessionProof: 'school letter 77' });
    expect((await replace(blocked.id)).userErrors).toEqual([]);
    expect((await issuer.request<{ blacklist: { entries: unknown[] } }>(`query($since: Int) { blacklist(since: $since) { entries { asn } } }`, { since })).blacklist.entries).toEqual([]);
  });
});

/** A card's registry row (its ASN), by the card's global id. */
async function registryRow(globalId: string) {
  const [row] = await em().execute<{ asn: string }[]>(`select asn from card where id = ?`, [fromGlobalId(globalId, 'Card').id]);
  return row!;
}

describe('what a replacement refuses, leaving nothing written', () => {
  async function nothingWritten(card: Card) {
    expect((await cardAs(card.id)).status).toBe('ACTIVE');
    expect(await transferRows(card.uuid)).toEqual([]);
    expect(await em().execute(`select 1 from card_status_history where card_id = ?`, [card.uuid])).toEqual([]);
    expect(await em().execute(`select 1 from card_blacklist where card_id = ?`, [card.uuid])).toEqual([]);
  }

  it.each([
    ['a card number already issued', async () => ({ cardNumber: (await register()).card.number }), 'DUPLICATE_CARD_NUMBER', ['input', 'newCard', 'cardNumber']],
    ['an ASN already issued', async () => ({ asn: (await register()).card.asn }), 'DUPLICATE_ASN', ['input', 'newCard', 'asn']],
    ['a bad Luhn digit', async () => ({ cardNumber: badLuhn() }), 'INVALID_CARD_NUMBER', ['input', 'newCard', 'cardNumber']],
    ['an M1 UID for a CPU card', async () => ({ asn: 'A1B2C3D4' }), 'INVALID_INPUT', ['input', 'newCard', 'asn']],
    ['dates out of order', async () => ({ issuedOn: '2031-01-01', expiresOn: '2030-01-01' }), 'INVALID_INPUT', ['input', 'newCard', 'expiresOn']],
  ])('%s', async (_name, overrides, code, field) => {
    const { card } = await register();
    const out = await replace(card.id, newCardInput(await overrides()));
    expect(out).toMatchObject({ card: null, oldCard: null, balanceTransfer: null });
    expect(out.userErrors).toEqual([expect.objectContaining({ code, field })]);
    await nothingWritten(card);
  });

  it('a STUDENT concession that ended before the new card’s issue day is about the card', async () => {
    const { card } = await register({ concession: 'STUDENT', concessionValidUntil: '2026-06-30', concessionProof: 'school letter 1', issuedOn: '2026-01-01' });
    const out = await replace(card.id, newCardInput({ issuedOn: '2026-11-25' }));
    expect(out.userErrors).toEqual([expect.objectContaining({ code: 'INVALID_INPUT', field: ['input', 'card'] })]);
    await nothingWritten(card);
  });

  it('REPLACED and EXPIRED cards: INVALID_CARD_TRANSITION, and no new card', async () => {
    const replaced = (await register()).card;
    expect((await replace(replaced.id)).userErrors).toEqual([]);
    const expired = (await register()).card;
    await em().transactional((tx) => transitionCard(tx, expired.uuid, 'EXPIRED', { by: 'test' }));
    for (const card of [replaced, expired]) {
      const newCard = newCardInput();
      const out = await replace(card.id, newCard);
      expect(out.userErrors).toEqual([expect.objectContaining({ code: 'INVALID_CARD_TRANSITION', field: ['input', 'card'] })]);
      expect(await findCardByAsn(em(), newCard.asn)).toBeNull();
    }
    expect(await transferRows(replaced.uuid)).toHaveLength(1);
    expect(await transferRows(expired.uuid)).toEqual([]);
  });

  it('two replacements of one card at once: exactly one wins, the other finds it REPLACED', async () => {
    const { card } = await register();
    const inputs = [newCardInput(), newCardInput()];
    const outs = await Promise.all(inputs.map((input) => replace(card.id, input)));
    expect(outs.map((o) => o.userErrors.map((e) => e.code)).sort()).toEqual([[], ['INVALID_CARD_TRANSITION']]);
    const loser = inputs[outs.findIndex((o) => o.userErrors.length > 0)]!;
    const winner = outs.find((o) => o.userErrors.length === 0)!;
    expect(await findCardByAsn(em(), loser.asn)).toBeNull();
    expect((await cardAs(card.id)).replacedBy.id).toBe(winner.card.id);
    expect(await transferRows(card.uuid)).toHaveLength(1);
    expect(await em().execute(`select to_status from card_status_history where card_id = ?`, [card.uuid])).toEqual([{ to_status: 'REPLACED' }]);
  });

  it('a replacement that finds another in flight waits on the card’s row lock, then finds it REPLACED', async () => {
    const { card } = await register();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let replaced!: () => void;
    const inFlight = new Promise<void>((resolve) => (replaced = resolve));
    const first = em().transactional(async (tx) => {
      const out = await replaceCard(tx, world.gz.cardCompanyId, card.uuid, { newCard: newCardInput() as NewCardInput, by: 'test', transferDelaySeconds: DELAY_SECONDS });
      replaced();
      await held; // not committed yet: the card's row stays locked
      return out;
    });
    await inFlight;
    const second = replace(card.id, newCardInput());
    // Wait until the second request is blocked on a lock in this database, then let the first commit.
    for (let i = 0; ; i++) {
      const [row] = await em().execute<{ n: string }[]>(`select count(*)::text as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
      if (row!.n !== '0') break;
      if (i > 200) throw new Error('the second replacement never waited on the lock');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    release();
    const won = await first;
    expect((await second).userErrors).toEqual([expect.objectContaining({ code: 'INVALID_CARD_TRANSITION' })]);
    expect((await cardAs(card.id)).replacedBy.id).toBe(toGlobalId('Card', won.card.id));
  });

  it('another card company’s card answers NOT_FOUND, exactly like a card that does not exist', async () => {
    const { card } = await register();
    const theirs = await replace(card.id, newCardInput(), null, szIssuer);
    const missing = await replace(toGlobalId('Card', randomUUID()), newCardInput(), null, szIssuer);
    expect(theirs.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'card'] })]);
    expect(theirs.userErrors.map((e) => e.code)).toEqual(missing.userErrors.map((e) => e.code));
    await nothingWritten(card);
  });

  it('only the issuer replaces: a cardholder app (even for its own card) and a merchant are FORBIDDEN', async () => {
    const { card } = await register({ holder: toGlobalId('Cardholder', holder.id) });
    const variables = { input: { card: card.id, newCard: newCardInput() } };
    const asApp = await graphql(world.server.url, REPLACE, variables, { authorization: `Bearer ${holder.token}` });
    expect(asApp.body.errors[0].extensions.code).toBe('FORBIDDEN');
    await expect(merchant.request(REPLACE, variables)).rejects.toMatchObject({ code: 'FORBIDDEN' } satisfies Partial<OneCardError>);
    const noWrite = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cards:read']);
    await expect(noWrite.request(REPLACE, variables)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await nothingWritten(card);
  });
});

describe('card history', () => {
  let story: Awaited<ReturnType<typeof replacedAfterUse>>;
  let transferredAt: Date;
  beforeAll(async () => {
    await drain();
    story = await replacedAfterUse();
    transferredAt = afterDue();
    expect(await runDueBalanceTransfers(em(), transferredAt)).toBe(1);
    await tapToLoad(story.replaced.card.id);
  });

  it('lists every movement newest first, signed from the card’s view, with the running balance', async () => {
    const old = await historyOf(story.card.id);
    expect(old.edges.map((e) => [e.node.kind, e.node.amount.amount, e.node.balanceAfter.amount])).toEqual([
      ['TRANSFER_OUT', -3500, 0],
      ['TRANSIT', -300, 3500],
      ['PURCHASE', -1200, 3800],
      ['COUNTER_LOAD', 5000, 5000],
    ]);
    expect(old.edges.map((e) => e.node.reference)).toEqual([story.replaced.balanceTransfer.id, null, story.purchaseSession, story.loadSession]);
    expect(old.edges.every((e) => e.node.amount.currency === 'CNY' && e.node.description.length > 0)).toBe(true);
    const times = old.edges.map((e) => Date.parse(e.node.at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(old.pageInfo.hasNextPage).toBe(false);

    const fresh = await historyOf(story.replaced.card.id);
    expect(fresh.edges.map((e) => [e.node.kind, e.node.amount, e.node.balanceAfter, e.node.reference])).toEqual([['TRANSFER_IN', money(3500), money(3500), story.replaced.balanceTransfer.id]]);

    // The running balance agrees with what the ledger recorded when each posting was made.
    for (const { node } of old.edges) {
      const [row] = await em().execute<{ balance_after: string }[]>(`select balance_after::text from posting where id = ?`, [fromGlobalId(node.id, 'CardActivity').id]);
      expect(Number(row!.balance_after)).toBe(node.balanceAfter.amount);
    }
    // Each movement is a node its viewers can fetch again.
    const first = old.edges[0]!.node;
    expect((await issuer.request<{ node: any }>(`query($id: ID!) { node(id: $id) { ... on CardActivity { id kind balanceAfter { amount } } } }`, { id: first.id })).node).toEqual({ id: first.id, kind: 'TRANSFER_OUT', balanceAfter: { amount: 0 } });
    expect((await szIssuer.request<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: first.id })).node).toBeNull();
    expect((await issuer.request<{ node: any }>(`query($id: ID!) { node(id: $id) { ... on BalanceTransfer { fromCard amount { amount } } } }`, { id: story.replaced.balanceTransfer.id })).node).toEqual({ fromCard: story.card.id, amount: { amount: 3500 } });
  });

  it('filters by kind, keeping the true running balance', async () => {
    const only = await historyOf(story.card.id, { kinds: ['PURCHASE', 'TRANSIT'] });
    expect(only.edges.map((e) => [e.node.kind, e.node.balanceAfter.amount])).toEqual([
      ['TRANSIT', 3500],
      ['PURCHASE', 3800],
    ]);
    expect((await historyOf(story.card.id, { kinds: ['TOP_UP_LOAD'] })).edges).toEqual([]);
  });

  it('filters by time: from inclusive, to exclusive', async () => {
    const all = (await historyOf(story.card.id)).edges.map((e) => e.node);
    const purchase = all.find((n) => n.kind === 'PURCHASE')!;
    const fare = all.find((n) => n.kind === 'TRANSIT')!;
    const window = await historyOf(story.card.id, { from: purchase.at, to: fare.at });
    expect(window.edges.map((e) => e.node.kind)).toEqual(['PURCHASE']);
    const since = await historyOf(story.card.id, { from: fare.at });
    expect(since.edges.map((e) => e.node.kind)).toEqual(['TRANSFER_OUT', 'TRANSIT']);
    // A window that ended before the card was used.
    expect((await historyOf(story.card.id, { to: new Date(Date.now() - 24 * HOUR).toISOString() })).edges).toEqual([]);
  });

  it('pages with `after`, each movement exactly once', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page = await historyOf(story.card.id, { first: 1, after });
      seen.push(...page.edges.map((e) => e.node.kind));
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toBe(4);
    expect(seen).toEqual(['TRANSFER_OUT', 'TRANSIT', 'PURCHASE', 'COUNTER_LOAD']);
    const second = await historyOf(story.card.id, { first: 2, kinds: ['PURCHASE', 'COUNTER_LOAD', 'TRANSIT'] });
    const rest = await historyOf(story.card.id, { first: 2, after: second.pageInfo.endCursor, kinds: ['PURCHASE', 'COUNTER_LOAD', 'TRANSIT'] });
    expect(rest.edges.map((e) => e.node.kind)).toEqual(['COUNTER_LOAD']);
  });

  it('the default window is the last six months: seen from seven months on, today is outside it', async () => {
    const card = { asn: story.chip.asn, currency: 'CNY' };
    expect(await cardHistory(em(), card, { ...historyWindow({}, new Date()), limit: 10 })).toHaveLength(4);
    const later = new Date(Date.now() + 7 * 31 * 24 * HOUR);
    expect(await cardHistory(em(), card, { ...historyWindow({}, later), limit: 10 })).toEqual([]);
    expect(await cardHistory(em(), card, { ...historyWindow({ to: later }, new Date()), limit: 10 })).toEqual([]);
  });

  it.each([
    ['`from` later than `to`', { from: '2026-06-01T00:00:00Z', to: '2026-05-01T00:00:00Z' }],
    ['a window over 13 months', { from: '2025-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }],
    ['a cursor it never gave out', { after: Buffer.from(JSON.stringify(['x', 'drop table'])).toString('base64url') }],
  ])('refuses %s with BAD_USER_INPUT', async (_name, args) => {
    await expect(historyOf(story.card.id, args)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('is visible to those who see the card: its cardholder’s app, not another card company', async () => {
    const asApp = await historyOf(story.card.id, {}, holder.app);
    expect(asApp.edges.map((e) => e.node.kind)).toEqual(['TRANSFER_OUT', 'TRANSIT', 'PURCHASE', 'COUNTER_LOAD']);
    expect((await cardAs(story.replaced.card.id, holder.app)).balanceTransfer.amount).toEqual(money(3500));
    expect((await szIssuer.request<{ card: unknown }>(HISTORY, { id: story.card.id })).card).toBeNull();
  });
});
