import { randomUUID } from 'node:crypto';
import type { ApolloServer } from '@apollo/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { scopesForKind } from '../src/auth/scopes.js';
import { CardError } from '../src/cards/cards.errors.js';
import { CARD_TRANSITIONS, cardStatusHistory, findCardByAsn, luhnValid, registerCardHolder, transitionCard } from '../src/cards/cards.service.js';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { Metrics } from '../src/http/metrics.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testConfig } from './support/server.js';
import { cardPurseAccount } from '../src/ledger/accounts.js';

let db: TestDatabase;
let apollo: ApolloServer<GraphQLContext>;
const ids = { gzCompany: '', szCompany: '', shop: '', alice: '', bob: '' };

const who = (kind: PrincipalKind, tenantId: string | null, extra: Partial<Principal> = {}): Principal => ({ kind, clientId: `t-${kind}`, tenantId, holderId: null, scopes: scopesForKind(kind), ...extra });
const gzIssuer = () => who('ISSUER', ids.gzCompany, { clientId: 'gz-counter' });
const szIssuer = () => who('ISSUER', ids.szCompany);
const app = (holderId: string) => who('CARDHOLDER_APP', ids.gzCompany, { holderId });

/** A card number of `length` digits with a valid Luhn check digit. */
function cardNumber(prefix: string, length = 16): string {
  const body = (prefix + String(Math.floor(Math.random() * 1e15)).padStart(15, '0')).slice(0, length - 1);
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}
const hexAsn = (length = 20) => randomUUID().replaceAll('-', '').slice(0, length).toUpperCase();

beforeAll(async () => {
  db = await freshDatabase();
  apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'GZ cards' });
  const sz = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'SZ cards' });
  const shop = await createMerchant(em, { cityId: gz.city.id, name: 'Shop' });
  const alice = await createCardholder(em, { username: 'alice', password: 'alice password 1', displayName: 'Alice' });
  const bob = await createCardholder(em, { username: 'bob', password: 'bob password 1', displayName: 'Bob' });
  Object.assign(ids, { gzCompany: gz.cardCompany.id, szCompany: sz.cardCompany.id, shop: shop.id, alice: alice.id, bob: bob.id });
});
afterAll(async () => {
  await apollo.stop();
  await db.close();
});

async function run(query: string, variables: Record<string, unknown>, principal: Principal | null) {
  const res = await apollo.executeOperation({ query, variables }, { contextValue: { em: db.orm.em.fork(), principal, requestId: 't', log: pino({ level: 'silent' }), config: testConfig() } });
  if (res.body.kind !== 'single') throw new Error('single');
  return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
}

const CARD_FIELDS = `id number asn cardType keyVersion issuedOn expiresOn status cardCompany holder concession concessionValidUntil concessionProof replacedBy { id } purseBalance { amount currency }`;
const ISSUE = `mutation($input: IssueCardInput!) { issueCard(input: $input) { card { ${CARD_FIELDS} } userErrors { code field message } } }`;
const BLOCK = `mutation($input: CardStatusInput!) { blockCard(input: $input) { card { id status } userErrors { code field message } } }`;
const UNBLOCK = `mutation($input: CardStatusInput!) { unblockCard(input: $input) { card { id status } userErrors { code field message } } }`;
const CARD = `query($id: ID!) { card(id: $id) { ${CARD_FIELDS} } }`;
const CARDS = `query($first: Int, $after: String) { cards(first: $first, after: $after) { edges { cursor node { id number } } pageInfo { hasNextPage endCursor } } }`;

function issueInput(overrides: Record<string, unknown> = {}) {
  return { cardNumber: cardNumber('3101'), asn: hexAsn(), cardType: 'CPU', keyVersion: 1, issuedOn: '2026-11-01', expiresOn: '2031-10-31', ...overrides };
}

async function issue(overrides: Record<string, unknown> = {}, principal = gzIssuer()) {
  const { data, errors } = await run(ISSUE, { input: issueInput(overrides) }, principal);
  expect(errors).toBeUndefined();
  return data.issueCard as { card: any; userErrors: any[] };
}

describe('issuing cards', () => {
  it('the GZ card company issues a CPU card: ACTIVE, full number for itself, zero purse in the city currency', async () => {
    const input = issueInput();
    const { data } = await run(ISSUE, { input: { ...input, asn: input.asn.toLowerCase() } }, gzIssuer());
    const out = data.issueCard;
    expect(out.userErrors).toEqual([]);
    expect(out.card).toMatchObject({
      number: input.cardNumber,
      asn: input.asn,
      cardType: 'CPU',
      keyVersion: 1,
      issuedOn: '2026-11-01',
      expiresOn: '2031-10-31',
      status: 'ACTIVE',
      cardCompany: toGlobalId('CardCompany', ids.gzCompany),
      holder: null,
      concession: 'ADULT',
      concessionValidUntil: null,
      replacedBy: null,
      purseBalance: { amount: 0, currency: 'CNY' },
    });
    const byAsn = await findCardByAsn(db.orm.em.fork(), input.asn.toLowerCase());
    expect(byAsn?.id).toBe(fromGlobalId(out.card.id, 'Card').id);
  });

  it('an M1 card carries its 8-hex UID; a STUDENT concession needs its validity and proof', async () => {
    const m1 = await issue({ cardType: 'M1', asn: hexAsn(8), concession: 'STUDENT', concessionValidUntil: '2028-07-31', concessionProof: 'school letter 2026/118' });
    expect(m1.userErrors).toEqual([]);
    expect(m1.card).toMatchObject({ cardType: 'M1', concession: 'STUDENT', concessionValidUntil: '2028-07-31', concessionProof: 'school letter 2026/118' });
    expect((await issue({ concession: 'STUDENT' })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'concessionValidUntil'] });
    expect((await issue({ concession: 'STUDENT', concessionValidUntil: '2028-07-31' })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'concessionProof'] });
    expect((await issue({ concessionProof: 'x' })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'concessionProof'] });
  });

  it('refuses a bad Luhn digit, a wrong length, a bad ASN, and dates out of order', async () => {
    const good = cardNumber('3101');
    const bad = good.slice(0, -1) + String((Number(good.at(-1)) + 1) % 10);
    expect((await issue({ cardNumber: bad })).userErrors[0]).toMatchObject({ code: 'INVALID_CARD_NUMBER', field: ['input', 'cardNumber'] });
    expect((await issue({ cardNumber: '4242' })).userErrors[0]).toMatchObject({ code: 'INVALID_CARD_NUMBER' });
    expect((await issue({ cardNumber: cardNumber('3101', 19) })).userErrors).toEqual([]);
    expect((await issue({ asn: hexAsn(8) })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'asn'] });
    expect((await issue({ cardType: 'M1', asn: hexAsn(20) })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'asn'] });
    expect((await issue({ asn: 'Z'.repeat(20) })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'asn'] });
    expect((await issue({ issuedOn: '2026-11-01', expiresOn: '2026-11-01' })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'expiresOn'] });
    expect((await issue({ keyVersion: 256 })).userErrors[0]).toMatchObject({ code: 'INVALID_INPUT', field: ['input', 'keyVersion'] });
  });

  it('refuses a duplicate number or ASN, even from another card company', async () => {
    const first = issueInput();
    expect((await issue(first)).userErrors).toEqual([]);
    expect((await issue({ cardNumber: first.cardNumber })).userErrors[0]).toMatchObject({ code: 'DUPLICATE_CARD_NUMBER', field: ['input', 'cardNumber'] });
    expect((await issue({ asn: first.asn }, szIssuer())).userErrors[0]).toMatchObject({ code: 'DUPLICATE_ASN', field: ['input', 'asn'] });
  });

  it('only an issuer with cards:write issues', async () => {
    expect((await run(ISSUE, { input: issueInput() }, who('MERCHANT', ids.shop))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(ISSUE, { input: issueInput() }, who('OPERATOR', null))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    const noScope = { ...gzIssuer(), scopes: gzIssuer().scopes.filter((s) => s !== 'cards:write') };
    expect((await run(ISSUE, { input: issueInput() }, noScope)).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(ISSUE, { input: issueInput() }, null)).errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });
});

describe('who sees and manages a card', () => {
  it('another card company sees nothing and cannot block it: the same answer as a missing card', async () => {
    const { card } = await issue();
    const missing = toGlobalId('Card', randomUUID());
    const theirs = await run(CARD, { id: card.id }, szIssuer());
    expect(theirs).toEqual(await run(CARD, { id: missing }, szIssuer()));
    expect(theirs.data.card).toBeNull();
    const list = await run(CARDS, { first: 100 }, szIssuer());
    expect(list.data.cards.edges.map((e: any) => e.node.id)).not.toContain(card.id);
    const block = (await run(BLOCK, { input: { card: card.id } }, szIssuer())).data.blockCard;
    expect(block).toEqual({ card: null, userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'card'] })] });
    expect((await run(BLOCK, { input: { card: missing } }, szIssuer())).data.blockCard.userErrors[0].code).toBe('NOT_FOUND');
    expect((await run(CARD, { id: card.id }, gzIssuer())).data.card.status).toBe('ACTIVE');
    expect((await run(CARD, { id: card.id }, who('MERCHANT', ids.shop))).data.card).toBeNull();
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: card.id }, szIssuer())).data.node).toBeNull();
    expect((await run(`query($id: ID!) { node(id: $id) { id } }`, { id: card.id }, gzIssuer())).data.node.id).toBe(card.id);
  });

  it('the operator sees every card in full; its own company lists it', async () => {
    const { card } = await issue();
    expect((await run(CARD, { id: card.id }, who('OPERATOR', null))).data.card.number).toBe(card.number);
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = (await run(CARDS, { first: 2, after }, gzIssuer())).data.cards;
      seen.push(...page.edges.map((e: any) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toContain(card.id);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('a cardholder app sees only its holder’s registered cards, masked but for the last 4 digits', async () => {
    const alices = await issue({ holder: toGlobalId('Cardholder', ids.alice), concession: 'SENIOR' });
    expect(alices.userErrors).toEqual([]);
    expect(alices.card.holder).toBe(toGlobalId('Cardholder', ids.alice));
    const anonymous = await issue();
    // The issuer registers the anonymous card to Bob later (service call).
    const em = db.orm.em.fork();
    const bobs = await registerCardHolder(em, ids.gzCompany, fromGlobalId(anonymous.card.id).id, ids.bob);
    expect(bobs.holder_id).toBe(ids.bob);
    await expect(registerCardHolder(em, ids.szCompany, bobs.id, ids.alice)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registerCardHolder(em, ids.gzCompany, bobs.id, ids.alice)).rejects.toBeInstanceOf(CardError);

    const aliceSees = await run(CARD, { id: alices.card.id }, app(ids.alice));
    expect(aliceSees.data.card.number).toBe(`**** **** **** ${alices.card.number.slice(-4)}`);
    expect(aliceSees.data.card.concessionProof).toBeNull();
    expect((await run(CARD, { id: anonymous.card.id }, app(ids.alice))).data.card).toBeNull();
    expect((await run(CARD, { id: anonymous.card.id }, app(ids.bob))).data.card.holder).toBe(toGlobalId('Cardholder', ids.bob));
    const list = (await run(CARDS, { first: 100 }, app(ids.alice))).data.cards.edges;
    expect(list).toEqual([{ cursor: expect.any(String), node: { id: alices.card.id, number: `**** **** **** ${alices.card.number.slice(-4)}` } }]);
    const noScope = { ...app(ids.alice), scopes: [] };
    expect((await run(CARD, { id: alices.card.id }, noScope)).data.card).toBeNull();
    // A cardholder app cannot block cards.
    expect((await run(BLOCK, { input: { card: alices.card.id } }, app(ids.alice))).errors?.[0].extensions.code).toBe('FORBIDDEN');
  });

  it('the purse balance reads the ledger shadow card.<asn>.purse.<CUR>', async () => {
    const { card } = await issue();
    const em = db.orm.em.fork();
    const purse = await cardPurseAccount(em, card.asn, 'CNY');
    const cash = await openAccount(em, { code: `test.cash.${card.asn}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.ISSUER, ownerId: ids.gzCompany, currency: 'CNY' });
    await post(em, { key: `test-load-${card.asn}`, description: 'test load', lines: [debit(cash.id, 5_000n), credit(purse.id, 5_000n)] });
    expect((await run(CARD, { id: card.id }, gzIssuer())).data.card.purseBalance).toEqual({ amount: 5_000, currency: 'CNY' });
  });
});

describe('card status transitions', () => {
  const historyOf = (globalId: string) => cardStatusHistory(db.orm.em.fork(), fromGlobalId(globalId, 'Card').id);

  it('block and unblock write one history row each, with the reason and the client', async () => {
    const { card } = await issue();
    const blocked = (await run(BLOCK, { input: { card: card.id, reason: 'fraud suspected' } }, gzIssuer())).data.blockCard;
    expect(blocked).toEqual({ card: { id: card.id, status: 'BLOCKED' }, userErrors: [] });
    expect((await run(BLOCK, { input: { card: card.id } }, gzIssuer())).data.blockCard.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    expect((await run(UNBLOCK, { input: { card: card.id, reason: 'cleared' } }, gzIssuer())).data.unblockCard).toEqual({ card: { id: card.id, status: 'ACTIVE' }, userErrors: [] });
    expect((await run(UNBLOCK, { input: { card: card.id } }, gzIssuer())).data.unblockCard.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    const history = await historyOf(card.id);
    expect(history.map((h) => [h.from_status, h.to_status, h.reason, h.by_client])).toEqual([
      ['ACTIVE', 'BLOCKED', 'fraud suspected', 'gz-counter'],
      ['BLOCKED', 'ACTIVE', 'cleared', 'gz-counter'],
    ]);
  });

  it('unblocking does not find a LOST card', async () => {
    const { card } = await issue();
    await db.orm.em.fork().transactional((tx) => transitionCard(tx, fromGlobalId(card.id).id, 'LOST', { by: 'test', reason: 'reported lost' }));
    expect((await run(UNBLOCK, { input: { card: card.id } }, gzIssuer())).data.unblockCard.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    expect((await historyOf(card.id)).map((h) => h.to_status)).toEqual(['LOST']);
  });

  it('REPLACED is final: REPLACED → ACTIVE is refused and the history stays as it was', async () => {
    const old = await issue();
    const replacement = await issue();
    const oldId = fromGlobalId(old.card.id).id;
    const em = db.orm.em.fork();
    const replaced = await em.transactional((tx) => transitionCard(tx, oldId, 'REPLACED', { by: 'test', reason: 'damaged', replacedBy: fromGlobalId(replacement.card.id).id }));
    expect(replaced).toMatchObject({ status: 'REPLACED', replaced_by: fromGlobalId(replacement.card.id).id });
    const before = await historyOf(old.card.id);
    expect(before.map((h) => [h.from_status, h.to_status])).toEqual([['ACTIVE', 'REPLACED']]);
    await expect(em.transactional((tx) => transitionCard(tx, oldId, 'ACTIVE', { by: 'test' }))).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
    expect((await run(UNBLOCK, { input: { card: old.card.id } }, gzIssuer())).data.unblockCard.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    expect((await run(BLOCK, { input: { card: old.card.id } }, gzIssuer())).data.blockCard.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    expect(await historyOf(old.card.id)).toEqual(before);
    expect((await run(CARD, { id: old.card.id }, gzIssuer())).data.card).toMatchObject({ status: 'REPLACED', replacedBy: { id: replacement.card.id } });
  });

  it('every pair outside the table is refused, every pair in it applies (service level)', async () => {
    const em = db.orm.em.fork();
    const statuses = Object.keys(CARD_TRANSITIONS) as (keyof typeof CARD_TRANSITIONS)[];
    for (const from of statuses) {
      for (const to of statuses) {
        const { card } = await issue();
        const id = fromGlobalId(card.id).id;
        // Bring the card to `from` along legal moves first.
        if (from !== 'ACTIVE') await em.transactional((tx) => transitionCard(tx, id, from, { by: 'test' }));
        const legal = CARD_TRANSITIONS[from].includes(to);
        const attempt = em.transactional((tx) => transitionCard(tx, id, to, { by: 'test' }));
        if (legal) await expect(attempt).resolves.toMatchObject({ status: to });
        else await expect(attempt).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
        expect((await cardStatusHistory(em, id)).length).toBe((from === 'ACTIVE' ? 0 : 1) + (legal ? 1 : 0));
      }
    }
  });
});

describe('reporting a card lost, and the blacklist', () => {
  const LOST = `mutation($input: CardStatusInput!) { reportCardLost(input: $input) { card { id status number } userErrors { code field message } } }`;
  const FOUND = `mutation($input: CardStatusInput!) { reportCardFound(input: $input) { card { id status } userErrors { code field message } } }`;
  const BLACKLIST = `query($since: Int, $first: Int) { blacklist(since: $since, first: $first) { entries { version asn action reason at card cardCompany } latestVersion hasMore } }`;
  const blacklist = async (principal: Principal, since?: number, first?: number) => {
    const { data, errors } = await run(BLACKLIST, { since, first }, principal);
    expect(errors).toBeUndefined();
    return data.blacklist as { entries: any[]; latestVersion: number; hasMore: boolean };
  };
  const latest = async () => (await blacklist(who('OPERATOR', null))).latestVersion;
  const registered = async (holderId: string) => (await issue({ holder: toGlobalId('Cardholder', holderId) })).card;

  it('a cardholder app reports its registered card lost: LOST, and its ASN on the blacklist', async () => {
    const card = await registered(ids.alice);
    const since = await latest();
    const out = (await run(LOST, { input: { card: card.id, reason: 'left on the bus' } }, app(ids.alice))).data.reportCardLost;
    expect(out).toEqual({ card: { id: card.id, status: 'LOST', number: `**** **** **** ${card.number.slice(-4)}` }, userErrors: [] });
    const delta = await blacklist(gzIssuer(), since);
    expect(delta.entries).toEqual([{ version: expect.any(Number), asn: card.asn, action: 'ADD', reason: 'left on the bus', at: expect.any(String), card: card.id, cardCompany: toGlobalId('CardCompany', ids.gzCompany) }]);
    expect(delta.latestVersion).toBe(delta.entries[0].version);
    expect(delta.hasMore).toBe(false);
    expect((await cardStatusHistory(db.orm.em.fork(), fromGlobalId(card.id).id)).map((h) => [h.from_status, h.to_status, h.by_client])).toEqual([['ACTIVE', 'LOST', 't-CARDHOLDER_APP']]);
    // Reported twice: the second is refused and the blacklist does not change.
    expect((await run(LOST, { input: { card: card.id } }, app(ids.alice))).data.reportCardLost.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    expect((await blacklist(gzIssuer(), since)).entries).toHaveLength(1);
  });

  it('the issuer reports any card it issued lost, registered or not', async () => {
    const { card } = await issue();
    const since = await latest();
    expect((await run(LOST, { input: { card: card.id, reason: 'holder phoned' } }, gzIssuer())).data.reportCardLost).toEqual({ card: { id: card.id, status: 'LOST', number: card.number }, userErrors: [] });
    expect((await blacklist(gzIssuer(), since)).entries.map((e) => [e.asn, e.action])).toEqual([[card.asn, 'ADD']]);
  });

  it('an app is refused an unregistered card (userError) and another holder’s card (NOT_FOUND, like a missing id)', async () => {
    const since = await latest();
    const anonymous = (await issue()).card;
    const unregistered = (await run(LOST, { input: { card: anonymous.id } }, app(ids.alice))).data.reportCardLost;
    expect(unregistered).toEqual({ card: null, userErrors: [expect.objectContaining({ code: 'CARD_NOT_REGISTERED', field: ['input', 'card'] })] });

    const bobs = await registered(ids.bob);
    const theirs = (await run(LOST, { input: { card: bobs.id } }, app(ids.alice))).data.reportCardLost;
    const missing = (await run(LOST, { input: { card: toGlobalId('Card', randomUUID()) } }, app(ids.alice))).data.reportCardLost;
    expect(theirs).toEqual({ card: null, userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'card'] })] });
    expect(theirs.userErrors.map((e: any) => e.code)).toEqual(missing.userErrors.map((e: any) => e.code));
    // Another card company likewise.
    expect((await run(LOST, { input: { card: bobs.id } }, szIssuer())).data.reportCardLost.userErrors[0].code).toBe('NOT_FOUND');
    // Without the scope, or as another kind of client: FORBIDDEN.
    const noManage = { ...app(ids.bob), scopes: app(ids.bob).scopes.filter((s) => s !== 'card:manage') };
    expect((await run(LOST, { input: { card: bobs.id } }, noManage)).errors?.[0].extensions.code).toBe('FORBIDDEN');
    const noWrite = { ...gzIssuer(), scopes: gzIssuer().scopes.filter((s) => s !== 'cards:write') };
    expect((await run(LOST, { input: { card: bobs.id } }, noWrite)).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(LOST, { input: { card: bobs.id } }, who('MERCHANT', ids.shop))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(LOST, { input: { card: bobs.id } }, who('OPERATOR', null))).errors?.[0].extensions.code).toBe('FORBIDDEN');

    for (const card of [anonymous, bobs]) expect((await run(CARD, { id: card.id }, gzIssuer())).data.card.status).toBe('ACTIVE');
    expect((await blacklist(who('OPERATOR', null), since)).entries).toEqual([]);
  });

  it('REPLACED and EXPIRED cards cannot be reported lost, and nothing is blacklisted', async () => {
    const em = db.orm.em.fork();
    const replaced = await registered(ids.alice);
    const replacement = await issue();
    await em.transactional((tx) => transitionCard(tx, fromGlobalId(replaced.id).id, 'REPLACED', { by: 'test', replacedBy: fromGlobalId(replacement.card.id).id }));
    const expired = await registered(ids.alice);
    await em.transactional((tx) => transitionCard(tx, fromGlobalId(expired.id).id, 'EXPIRED', { by: 'test' }));
    const since = await latest();
    for (const card of [replaced, expired]) {
      expect((await run(LOST, { input: { card: card.id } }, app(ids.alice))).data.reportCardLost).toEqual({ card: null, userErrors: [expect.objectContaining({ code: 'INVALID_CARD_TRANSITION' })] });
      expect((await run(LOST, { input: { card: card.id } }, gzIssuer())).data.reportCardLost.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');
    }
    expect((await blacklist(who('OPERATOR', null), since)).entries).toEqual([]);
  });

  it('deltas: lost then found shows ADD then REMOVE; `since` and `first` page through the changes', async () => {
    const card = await registered(ids.alice);
    const since = await latest();
    await run(LOST, { input: { card: card.id, reason: 'lost' } }, app(ids.alice));
    // Only the issuer marks it found; the app may not.
    expect((await run(FOUND, { input: { card: card.id } }, app(ids.alice))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(FOUND, { input: { card: card.id, reason: 'handed in' } }, gzIssuer())).data.reportCardFound).toEqual({ card: { id: card.id, status: 'ACTIVE' }, userErrors: [] });
    expect((await run(FOUND, { input: { card: card.id } }, gzIssuer())).data.reportCardFound.userErrors[0].code).toBe('INVALID_CARD_TRANSITION');

    const both = await blacklist(gzIssuer(), since);
    expect(both.entries.map((e) => [e.asn, e.action, e.reason])).toEqual([
      [card.asn, 'ADD', 'lost'],
      [card.asn, 'REMOVE', 'handed in'],
    ]);
    const [add, remove] = both.entries;
    expect(remove.version).toBeGreaterThan(add.version);
    expect(both.latestVersion).toBe(remove.version);
    const after = await blacklist(gzIssuer(), add.version);
    expect(after.entries.map((e) => e.action)).toEqual(['REMOVE']);
    expect(await blacklist(gzIssuer(), remove.version)).toEqual({ entries: [], latestVersion: remove.version, hasMore: false });
    const page = await blacklist(gzIssuer(), since, 1);
    expect(page.entries.map((e) => e.version)).toEqual([add.version]);
    expect(page.hasMore).toBe(true);
    expect((await blacklist(gzIssuer(), add.version, 1)).hasMore).toBe(false);
    // The whole list from 0 holds both, in version order.
    const all = (await blacklist(gzIssuer(), 0, 500)).entries.map((e) => e.version);
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(all).toEqual(expect.arrayContaining([add.version, remove.version]));
    expect((await run(BLACKLIST, { since: -1 }, gzIssuer())).errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await run(BLACKLIST, { first: 501 }, gzIssuer())).errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('an ACTIVE card that is replaced goes on the blacklist; a LOST one that is replaced stays listed, with no second entry', async () => {
    const em = db.orm.em.fork();
    const active = (await issue()).card;
    const lost = (await issue()).card;
    const since = await latest();
    await run(LOST, { input: { card: lost.id, reason: 'lost' } }, gzIssuer());
    for (const card of [active, lost]) {
      const replacement = (await issue()).card;
      await em.transactional((tx) => transitionCard(tx, fromGlobalId(card.id).id, 'REPLACED', { by: 'test', reason: 'replaced', replacedBy: fromGlobalId(replacement.id).id }));
    }
    expect((await blacklist(gzIssuer(), since)).entries.map((e) => [e.asn, e.action, e.reason])).toEqual([
      [lost.asn, 'ADD', 'lost'],
      [active.asn, 'ADD', 'replaced'],
    ]);
  });

  it('blocking adds an entry and unblocking removes it', async () => {
    const { card } = await issue();
    const since = await latest();
    await run(BLOCK, { input: { card: card.id, reason: 'fraud suspected' } }, gzIssuer());
    await run(UNBLOCK, { input: { card: card.id, reason: 'cleared' } }, gzIssuer());
    expect((await blacklist(gzIssuer(), since)).entries.map((e) => [e.asn, e.action, e.reason])).toEqual([
      [card.asn, 'ADD', 'fraud suspected'],
      [card.asn, 'REMOVE', 'cleared'],
    ]);
  });

  it('an issuer sees only its own company’s entries; the operator sees all; apps and merchants none', async () => {
    const since = await latest();
    const gzCard = (await issue()).card;
    const szCard = (await issue({}, szIssuer())).card;
    await run(BLOCK, { input: { card: gzCard.id } }, gzIssuer());
    await run(LOST, { input: { card: szCard.id } }, szIssuer());
    const gz = await blacklist(gzIssuer(), since);
    const sz = await blacklist(szIssuer(), since);
    expect(gz.entries.map((e) => e.asn)).toEqual([gzCard.asn]);
    expect(sz.entries.map((e) => e.asn)).toEqual([szCard.asn]);
    expect(gz.latestVersion).toBe(gz.entries[0].version);
    expect(sz.latestVersion).toBe(sz.entries[0].version);
    const whole = (await blacklist(gzIssuer(), 0, 500)).entries;
    expect(whole.every((e) => e.cardCompany === toGlobalId('CardCompany', ids.gzCompany))).toBe(true);
    expect(whole.map((e) => e.asn)).not.toContain(szCard.asn);
    expect((await blacklist(who('OPERATOR', null), since)).entries.map((e) => e.asn)).toEqual([gzCard.asn, szCard.asn]);
    expect((await run(BLACKLIST, {}, app(ids.alice))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect((await run(BLACKLIST, {}, who('MERCHANT', ids.shop))).errors?.[0].extensions.code).toBe('FORBIDDEN');
    const noRead = { ...gzIssuer(), scopes: gzIssuer().scopes.filter((s) => s !== 'cards:read') };
    expect((await run(BLACKLIST, {}, noRead)).errors?.[0].extensions.code).toBe('FORBIDDEN');
  });
});
