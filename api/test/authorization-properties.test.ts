/**
 * Property-level authorization (issue 18, problem 7), over real HTTP with real OAuth tokens: a
 * cardholder app sees of a payment it is asked to pay only what docs/payments.md promises (amount,
 * description, merchant name, status and the payment's timeline); the merchant's own data
 * (`metadata`, the ledger) is the merchant's and the operator's, and what ties a payment to a
 * customer (`orderReference`, `card`, `failureCode`, `refunds`) is also shown to the holder whose card
 * paid it. Each other field answers FORBIDDEN with its path, and its value appears nowhere.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, issueCard, newReader, OPEN, sessionsOf, testCardNumber, useCardSessionWorld, type TestReader } from './support/card-sessions.js';
import { bearerClient, cardholderAccessToken, clientCredentialsToken, discover } from './support/oauth.js';
import { graphql } from './support/server.js';

const world = useCardSessionWorld();

interface Holder {
  id: string;
  token: string;
  home: TestReader;
}

let merchant: OneCardClient;
let operatorToken: string;
let alice: Holder;
let mallory: Holder;
const EMAIL = 'alice.customer@example.com';

async function holder(username: string): Promise<Holder> {
  const em = world.db.orm.em.fork();
  const id = (await createCardholder(em, { username, password: `${username} password 1`, displayName: username })).id;
  const redirectUri = 'http://127.0.0.1:8799/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: world.gz.cardCompanyId, name: `${username}'s app`, scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  const token = await cardholderAccessToken(world.server.url, { clientId: client.client_id, redirectUri, username, password: `${username} password 1`, scope: 'card:read card:topup' });
  return { id, token, home: await newReader(world, `HOME-${username}`, world.gz, { kind: 'CARDHOLDER', id }) };
}

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Tea House' });
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read', 'refunds:write']);
  const op = await createClient(em, { kind: 'OPERATOR', tenantId: null, name: 'Operator', scopes: ['payments:read'] });
  operatorToken = (await clientCredentialsToken(await discover(world.server.url), op.client.client_id, op.clientSecret!, 'payments:read')).access_token;
  alice = await holder('alice');
  mallory = await holder('mallory');
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

let orders = 0;
async function newPayment(amount = 1_280): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(
    `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`,
    { input: { amount, currency: 'CNY', orderReference: `secret-order-${++orders}`, description: 'two teas', metadata: { email: EMAIL, cart: 'c-77' }, idempotencyKey: `props-${orders}` } },
  );
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

/** What docs/payments.md promises the holder's app, plus the payment's timeline. */
const PROMISED = 'id merchant merchantName amount { amount currency } description status expiresAt createdAt succeededAt canceledAt cancelReason refundedAmount { amount }';
const MERCHANTS_ONLY = ['metadata', 'ledgerEntries { kind }'];
const PARTIES_ONLY = ['orderReference', 'card', 'failureCode', 'refunds { id }'];
const fieldName = (selection: string) => selection.split(' ')[0]!;

describe('a payment another party is asked to pay (cardholder app, by id)', () => {
  it('shows the holder’s app what docs/payments.md promises: amount, description, merchant name, status', async () => {
    const id = await newPayment();
    const { body } = await graphql(world.server.url, `query($id: ID!) { payment(id: $id) { ${PROMISED} } }`, { id }, as(mallory.token));
    expect(body.errors).toBeUndefined();
    expect(body.data.payment).toMatchObject({ id, merchantName: 'Tea House', amount: { amount: 1280, currency: 'CNY' }, description: 'two teas', status: 'REQUIRES_CARD' });
  });

  it.each([...MERCHANTS_ONLY, ...PARTIES_ONLY])('refuses %s FORBIDDEN, by payment(id) and by node(id), and never shows its value', async (selection) => {
    const id = await newPayment();
    for (const query of [`query($id: ID!) { payment(id: $id) { status ${selection} } }`, `query($id: ID!) { node(id: $id) { ... on Payment { status ${selection} } } }`]) {
      const { body } = await graphql(world.server.url, query, { id }, as(mallory.token));
      expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, path: [query.includes('node(') ? 'node' : 'payment', fieldName(selection)] });
      const text = JSON.stringify(body);
      expect(text).not.toContain(EMAIL);
      expect(text).not.toContain('secret-order-');
    }
  });

  it('the merchant and the operator still see every field', async () => {
    const id = await newPayment();
    const all = `query($id: ID!) { payment(id: $id) { ${PROMISED} ${[...MERCHANTS_ONLY, ...PARTIES_ONLY].join(' ')} } }`;
    const mine = await merchant.request<{ payment: { metadata: Record<string, string>; orderReference: string } }>(all, { id });
    expect(mine.payment).toMatchObject({ metadata: { email: EMAIL }, orderReference: expect.stringMatching(/^secret-order-/) });
    const { body } = await graphql(world.server.url, all, { id }, as(operatorToken));
    expect(body.errors).toBeUndefined();
    expect(body.data.payment.metadata).toEqual({ email: EMAIL, cart: 'c-77' });
  });
});

describe('a payment the holder’s own card paid', () => {
  it('shows its payer the order reference, the card and the refunds, never the merchant’s metadata or ledger; another holder gets null', async () => {
    // Alice's registered card, loaded at the card company's counter.
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
    const counter = await newReader(world, 'GZ-COUNTER-PROPS', world.gz);
    const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const card = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623177000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: alice.id });
    const counterSessions = sessionsOf(issuer, () => counter);
    expect((await counterSessions.agent(chip).run(await counterSessions.open('LOAD', 5_000))).state).toBe('COMPLETED');

    const id = await newPayment(1_000);
    const app = bearerClient(world.server.url, alice.token);
    const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: unknown[] } }>(OPEN, { input: { reader: alice.home.id, operation: 'PURCHASE', payment: id } });
    expect(opened.openCardSession.userErrors).toEqual([]);
    expect((await sessionsOf(app, () => alice.home).agent(chip, alice.home).run(opened.openCardSession.session)).state).toBe('COMPLETED');

    const parties = `query($id: ID!) { payment(id: $id) { ${PROMISED} ${PARTIES_ONLY.join(' ')} } }`;
    const payer = await graphql(world.server.url, parties, { id }, as(alice.token));
    expect(payer.body.errors).toBeUndefined();
    expect(payer.body.data.payment).toMatchObject({ status: 'SUCCEEDED', card: toGlobalId('Card', card.id), orderReference: expect.stringMatching(/^secret-order-/), refunds: [] });
    for (const selection of MERCHANTS_ONLY) {
      const { body } = await graphql(world.server.url, `query($id: ID!) { payment(id: $id) { status ${selection} } }`, { id }, as(alice.token));
      expect(body.errors?.[0]?.extensions.code, selection).toBe('FORBIDDEN');
      expect(JSON.stringify(body)).not.toContain(EMAIL);
    }
    const other = await graphql(world.server.url, parties, { id }, as(mallory.token));
    expect(other.body.data.payment).toBeNull();

    // The card is registered to another holder later: the payment stays Alice's, its order reference hers.
    const orderReference = payer.body.data.payment.orderReference as string;
    await world.db.orm.em.fork().execute(`update card set holder_id = ? where id = ?`, [mallory.id, card.id]);
    const later = await graphql(world.server.url, `query($id: ID!) { payment(id: $id) { status orderReference refunds { id } } }`, { id }, as(mallory.token));
    expect(JSON.stringify(later.body)).not.toContain(orderReference);
    const stillAlices = await graphql(world.server.url, parties, { id }, as(alice.token));
    expect(stillAlices.body.errors).toBeUndefined();
    expect(stillAlices.body.data.payment).toMatchObject({ orderReference, refunds: [] });
    // The card that paid is recorded when it pays, and only then.
    const [row] = await world.db.orm.em.fork().execute<{ card_asn: string; payer_holder_id: string }[]>(`select card_asn, payer_holder_id from payment where id = ?`, [fromGlobalId(id, 'Payment').id]);
    expect(row).toEqual({ card_asn: chip.asn, payer_holder_id: alice.id });
  });
});
