/**
 * The card-session engine reads less per message (issue 20): the session and its reader in one
 * statement, the chains' CAs once, unsealed card master keys and host keys remembered by the
 * process. None of that may let a session go on with what changed since it began. Each case runs
 * on process B (a second API instance on the same database, as behind a load balancer) after B has
 * completed a whole payment on the same till with another card, so whatever B remembers is warm;
 * the change is made between two messages of one session, outside B (process A's API or the
 * database straight, as the CLI would). Real HTTP, the SDK's reader agent, virtual cards.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard, transitionCard, withLuhnCheckDigit } from '../src/cards/cards.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { storeMasterKeys } from '../src/readers/key-store.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { addCity, apiClient, expectRefused, hex, issueCard, kek, newReader, purseBalance, sessionsOf, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

const world = useCardSessionWorld();
type Requester = Pick<OneCardClient, 'request'>;

let otherOrm: Orm;
let b: TestServer;
let merchantId: string;
let till: TestReader;
/** The merchant's API client on process A, and the same merchant's on process B. */
let merchantOnA: Requester;
let merchantOnB: Requester;
let issuerOnA: Requester;
let counterReader: TestReader;

const MERCHANT_SCOPES = ['payments:write', 'payments:read'];

/** A client of `tenantId` whose requests go to process B (its token from the shared issuer, A's URL). */
async function clientOnB(kind: 'MERCHANT' | 'ISSUER', tenantId: string, scopes: string[]): Promise<Requester> {
  const made = await createClient(world.db.orm.em.fork(), { kind, tenantId, name: `${kind.toLowerCase()} on B`, scopes });
  const token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, scopes.join(' '))).access_token;
  const request = async (query: string, variables?: Record<string, unknown>) => {
    const { body } = await graphql(b.url, query, variables, { authorization: `Bearer ${token}` });
    if (body.errors?.length) throw new Error(`process B: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  return { request } as Requester;
}

beforeAll(async () => {
  otherOrm = await openOrm(world.db.url);
  b = await startTestServer(otherOrm, { PUBLIC_URL: world.server.url });
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Fresh Reads Shop' });
  merchantId = shop.id;
  till = await newReader(world, 'FRESH-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  counterReader = await newReader(world, 'FRESH-COUNTER', world.gz);
  merchantOnA = await apiClient(world, 'MERCHANT', shop.id, MERCHANT_SCOPES);
  merchantOnB = await clientOnB('MERCHANT', shop.id, MERCHANT_SCOPES);
  issuerOnA = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  // B pays once on this till: it has now checked the till's chains, unsealed the card company's
  // purchase and TAC keys and the city's host key.
  const c = await loadedCard(5_000);
  const payment = await createPayment(700);
  expect((await sessionsOf(merchantOnB, () => till).agent(c, till).run(await openPayment(merchantOnB, payment))).state).toBe('COMPLETED');
  expect(await paymentStatus(payment)).toBe('SUCCEEDED');
});
afterAll(async () => {
  await b?.close();
  await otherOrm?.close(true);
});

/** A card of `city` with `loaded` put on it at a counter (on A), so the ledger's purse shadow holds it too. */
async function loadedCard(loaded: number, city: TestCity = world.gz, keys = world.gzMasterKeys, desk: Requester = issuerOnA, at: TestReader = counterReader): Promise<VirtualCpuCard> {
  const c = issueCard({ city, keys });
  const counter = sessionsOf(desk, () => at);
  expect((await counter.agent(c).run(await counter.open('LOAD', loaded))).state).toBe('COMPLETED');
  return c;
}

async function createPayment(amount: number): Promise<string> {
  const key = randomUUID();
  const made = await merchantOnA.request<{ createPayment: { payment: { id: string } } }>(
    `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`,
    { input: { amount, currency: 'CNY', orderReference: key, idempotencyKey: key } },
  );
  return made.createPayment.payment.id;
}

async function openPayment(by: Requester, payment: string) {
  const opened = await by.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: unknown[] } }>(
    `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`,
    { input: { reader: till.id, operation: 'PURCHASE', payment } },
  );
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

async function paymentStatus(payment: string): Promise<string> {
  const data = await merchantOnA.request<{ node: { status: string } }>(`query($id: ID!) { node(id: $id) { ... on Payment { status } } }`, { id: payment });
  return data.node.status;
}

/** A payment session on B driven by hand up to its hello (accepted): what changes next is seen by message 1. */
async function helloedOnB(c: VirtualCpuCard, payment: string) {
  const sessions = sessionsOf(merchantOnB, () => till);
  const session = await openPayment(merchantOnB, payment);
  const agent = sessions.agent(c, till);
  const { VirtualCardTransport } = await import('../../sdk-js/src/index.js');
  const transport = new VirtualCardTransport(c);
  const send = (seq: number, body: unknown) => {
    const text = JSON.stringify(body);
    return sessions.send({ session: session.id, seq, body: text, signature: agent.sign(session.id, seq, text) });
  };
  const hello = await send(0, { challenge: session.challenge, nationalCertificate: till.nationalPem, cityCertificate: till.cityPem, encryptionCertificate: till.encryptionPem });
  expect(hello.userErrors).toEqual([]);
  expect(hello.session?.state).toBe('AUTHENTICATED');
  const firstAnswers = async () => {
    const responses: string[] = [];
    for (const cmd of hello.commands) responses.push(Buffer.from(await transport.transmit(Buffer.from(cmd.apdu!, 'hex'))).toString('hex'));
    return send(1, { responses });
  };
  return { session, firstAnswers };
}

describe('what changes between two messages of a session is seen by the next message, on a process that remembers', () => {
  it('the card blocked by its card company after the hello: message 1 is refused CARD_NOT_USABLE, nothing is paid', async () => {
    const c = await loadedCard(3_000);
    const em = world.db.orm.em.fork();
    const card = await registerCard(em, world.gz.cardCompanyId, { cardNumber: withLuhnCheckDigit(`62140${String(Date.now()).slice(-13)}`), asn: c.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' });
    const payment = await createPayment(400);
    const s = await helloedOnB(c, payment);
    await em.transactional((tx) => transitionCard(tx, card.id, 'BLOCKED', { reason: 'reported stolen', by: 'test' }));
    await expectRefused(world, await s.firstAnswers(), 'CARD_NOT_USABLE', s.session.id);
    expect(await purseBalance(world, c.asn)).toBe(3_000n);
    expect(await paymentStatus(payment)).toBe('REQUIRES_CARD');
  });

  it('the payment canceled by the merchant through process A after the hello: message 1 is refused, the card is not asked to pay', async () => {
    const c = await loadedCard(3_000);
    const payment = await createPayment(500);
    const s = await helloedOnB(c, payment);
    const canceled = await merchantOnA.request<{ cancelPayment: { payment: { status: string } | null } }>(`mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { payment { status } userErrors { code message } } }`, {
      input: { payment, idempotencyKey: randomUUID() },
    });
    expect(canceled.cancelPayment.payment?.status).toBe('CANCELED');
    const reply = await s.firstAnswers();
    await expectRefused(world, reply, 'PURPOSE_REFUSED', s.session.id);
    expect(reply.userErrors[0]!.message).toMatch(/CANCELED/);
    expect(await purseBalance(world, c.asn)).toBe(3_000n);
    expect(await paymentStatus(payment)).toBe('CANCELED');
  });

  it('the payment expired after the hello: message 1 is refused, the card is not asked to pay', async () => {
    const c = await loadedCard(3_000);
    const payment = await createPayment(600);
    const s = await helloedOnB(c, payment);
    await world.db.orm.em.fork().execute(`update payment set expires_at = now() - interval '1 second' where id = ?`, [fromGlobalId(payment, 'Payment').id]);
    const reply = await s.firstAnswers();
    await expectRefused(world, reply, 'PURPOSE_REFUSED', s.session.id);
    expect(reply.userErrors[0]!.message).toMatch(/expired/);
    expect(await purseBalance(world, c.asn)).toBe(3_000n);
  });

  it('the reader suspended through process A after the session opened: the hello is refused READER_NOT_ACTIVE', async () => {
    const reader = await newReader(world, `FRESH-TILL-${randomUUID().slice(0, 8)}`, world.gz, { kind: 'MERCHANT', id: merchantId });
    const c = await loadedCard(3_000);
    const payment = await createPayment(300);
    const opened = await merchantOnB.request<{ openCardSession: { session: { id: string; challenge: string } } }>(
      `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`,
      { input: { reader: reader.id, operation: 'PURCHASE', payment } },
    );
    const operator = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage']);
    await operator.request(`mutation($input: ReaderStatusInput!) { suspendReader(input: $input) { reader { status } } }`, { input: { reader: reader.id } });
    const sessions = sessionsOf(merchantOnB, () => reader);
    const agent = sessions.agent(c, reader);
    const session = opened.openCardSession.session;
    const text = JSON.stringify({ challenge: session.challenge, nationalCertificate: reader.nationalPem, cityCertificate: reader.cityPem, encryptionCertificate: reader.encryptionPem });
    await expectRefused(world, await sessions.send({ session: session.id, seq: 0, body: text, signature: agent.sign(session.id, 0, text) }), 'READER_NOT_ACTIVE', session.id);
  });
});

describe('remembered card keys', () => {
  it('a key version a card company did not have is not remembered as missing: stored afterwards, the next session uses it', async () => {
    const city = await addCity(world, { code: 'HZ', name: 'Hangzhou', cardCompanyName: 'Hangzhou Tong', cardCode: '3100' });
    const keys = { load: hex(Buffer.alloc(16, 0x31)), purchase: hex(Buffer.alloc(16, 0x32)), tac: hex(Buffer.alloc(16, 0x33)) };
    const desk = await clientOnB('ISSUER', city.cardCompanyId, ['topups:write', 'cards:read']);
    const counter = await newReader(world, 'FRESH-HZ-COUNTER', city);
    const c = issueCard({ city, keys });
    const sessions = sessionsOf(desk, () => counter);
    const refused = await sessions.agent(c).run(await sessions.open('LOAD', 900));
    expect(refused).toMatchObject({ state: 'FAILED', refusal: 'UNKNOWN_CARD_KEY' });
    await storeMasterKeys(world.db.orm.em.fork(), kek, { cardCompanyId: city.cardCompanyId, keyVersion: 1, algorithm: '3DES', keys: { LOAD: Buffer.from(keys.load, 'hex'), PURCHASE: Buffer.from(keys.purchase, 'hex'), TAC: Buffer.from(keys.tac, 'hex') } });
    expect((await sessions.agent(c).run(await sessions.open('LOAD', 900))).state).toBe('COMPLETED');
    expect(await purseBalance(world, c.asn)).toBe(900n);
  });
});
