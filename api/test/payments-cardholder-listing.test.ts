/**
 * A cardholder's app may open a payment it is handed (by its id) to pay it, but it never lists
 * payments: not other merchants' open ones (their amounts, order references and metadata), not
 * those another holder paid, and not through the payments of its own cards' history. Over real HTTP
 * with a token the app got by signing the holder in (PKCE); the payments paid with virtual cards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, cardholderApp, issueCard, newReader, OPEN, sessionsOf, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

type App = ReturnType<typeof bearerClient>;
let tea: OneCardClient;
let noodles: OneCardClient;
let issuer: OneCardClient;
let counter: TestReader;
const holders: { id: string; app: App; home: TestReader }[] = [];

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  tea = await apiClient(world, 'MERCHANT', (await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' })).id, ['payments:write', 'payments:read']);
  noodles = await apiClient(world, 'MERCHANT', (await createMerchant(em, { cityId: world.gz.cityId, name: 'Noodle Bar' })).id, ['payments:write', 'payments:read']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  counter = await newReader(world, 'LIST-COUNTER', world.gz);
  for (const name of ['list-holder-1', 'list-holder-2']) {
    const { id, app } = await cardholderApp(world, name, ['card:read', 'card:topup']);
    holders.push({ id, app, home: await newReader(world, `HOME-${name}`, world.gz, { kind: 'CARDHOLDER', id }) });
  }
});

let orders = 0;
async function newPayment(by: OneCardClient, amount: number): Promise<string> {
  const made = await by.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(`mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`, {
    input: { amount, currency: 'CNY', orderReference: `list-order-${++orders}`, idempotencyKey: `list-create-${orders}`, metadata: { customer: `private-${orders}` } },
  });
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

/** The holder pays the payment with a card of their own on their reader; the card's global id. */
async function payWithOwnCard(holder: (typeof holders)[number], paymentId: string): Promise<string> {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const row = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623144000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: holder.id });
  const atCounter = sessionsOf(issuer, () => counter);
  expect((await atCounter.agent(chip).run(await atCounter.open('LOAD', 5_000))).state).toBe('COMPLETED');
  const opened = await holder.app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: unknown[] } }>(OPEN, { input: { reader: holder.home.id, operation: 'PURCHASE', payment: paymentId } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  expect((await sessionsOf(holder.app, () => holder.home).agent(chip, holder.home).run(opened.openCardSession.session)).state).toBe('COMPLETED');
  return toGlobalId('Card', row.id);
}

const LIST = `query($after: String) { payments(first: 100, after: $after) { edges { node { id amount { amount } orderReference metadata merchantName } } pageInfo { hasNextPage endCursor } } }`;
type Listed = { payments: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean } } };

describe('a cardholder app listing payments', () => {
  it('sees none: not the merchants’ open payments, not the one another holder paid, not even the one its own holder paid', async () => {
    const openAtTea = await newPayment(tea, 1_200);
    const openAtNoodles = await newPayment(noodles, 2_300);
    const paidByOther = await newPayment(noodles, 800);
    await payWithOwnCard(holders[1]!, paidByOther);
    const paidByMine = await newPayment(tea, 600);
    const myCard = await payWithOwnCard(holders[0]!, paidByMine);

    // The merchants' own lists hold them: the listing works, and the payments exist.
    const teaIds = (await tea.request<Listed>(LIST, {})).payments.edges.map((e) => e.node.id);
    expect(teaIds).toEqual(expect.arrayContaining([openAtTea, paidByMine]));

    for (const [i, holder] of holders.entries()) {
      const listed = await holder.app.request<Listed>(LIST, {});
      expect(listed.payments, `holder ${i + 1}`).toEqual({ edges: [], pageInfo: expect.objectContaining({ hasNextPage: false }) });
      // Filters do not open it either.
      const filtered = await holder.app.request<Listed>(`query { payments(first: 100, filter: { status: [REQUIRES_CARD, SUCCEEDED] }) { edges { node { id } } } }`);
      expect(filtered.payments.edges, `holder ${i + 1} filtered`).toEqual([]);
    }

    // By its id, an open payment is the app's to see (the checkout hands the id over): that is not a list.
    expect((await holders[0]!.app.request<{ payment: { id: string } | null }>(`query($id: ID!) { payment(id: $id) { id } }`, { id: openAtNoodles })).payment).toEqual({ id: openAtNoodles });
    // Another holder's paid payment is not, even by id.
    expect((await holders[0]!.app.request<{ payment: unknown }>(`query($id: ID!) { payment(id: $id) { id } }`, { id: paidByOther })).payment).toBeNull();

    // The holder's own card history names only its own purchase, never another party's payment.
    const history = await holders[0]!.app.request<{ card: { history: { edges: { node: { reference: string | null } }[] } } }>(`query($id: ID!) { card(id: $id) { history(first: 100) { edges { node { reference } } } } }`, { id: myCard });
    const references = history.card.history.edges.map((e) => e.node.reference);
    for (const other of [openAtTea, openAtNoodles, paidByOther]) expect(references).not.toContain(other);
  });
});
