/**
 * Idempotency of money mutations (DESIGN.md §4, docs/api-conventions.md#idempotency) over real
 * HTTP: cardholder apps (signed in with PKCE) topping up their holders' cards with a saved card
 * (pm_card_visa), charged at once by the sandbox gateway, which sits behind a small proxy that can
 * slow its answers and counts the charges asked of it.
 */
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { purgeExpiredIdempotencyRecords, requestHash } from '../src/graphql/idempotency.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { cardholderAccessToken, clientCredentialsToken, discover } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

const SECRET = 'sk_test_idempotency';
const WEBHOOK_SECRET = 'whsec_idempotency_0123456789';

let dir: string;
let sandbox: SandboxGateway;
let proxy: SlowProxy;
let db: TestDatabase;
let server: TestServer;
let companyId: string;
/** Alice and Carol use the same app (one OAuth client); Bob another. */
let alice: Caller;
let carol: Caller;
let bob: Caller;
let operator: Caller;
let cards = 0;

// ——— the gateway, slowed and counted ———

interface SlowProxy {
  url: string;
  /** Each payment-intent create the API asked for: its form. */
  creates: URLSearchParams[];
  delayMs: number;
  close(): Promise<void>;
}

async function startSlowProxy(target: string): Promise<SlowProxy> {
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && req.url === '/v1/payment_intents') {
      state.creates.push(new URLSearchParams(body.toString()));
      if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
    }
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'accept', 'content-type', 'idempotency-key']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
    const upstream = await fetch(`${target}${req.url}`, { method: req.method, headers, body: req.method === 'GET' ? undefined : body });
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: SlowProxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    creates: [],
    delayMs: 0,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return state;
}

/** Payment intents the sandbox gateway holds for a card (its saved state): the charges made. */
async function intentsAtGateway(card: Card): Promise<number> {
  const state = JSON.parse(await fs.readFile(path.join(dir, 'sandbox.json'), 'utf8')) as { paymentIntents: { metadata: Record<string, string> }[] };
  return state.paymentIntents.filter((pi) => pi.metadata.card === card.id).length;
}

/** Create calls the API made to the gateway for a card. */
const createsAsked = (card: Card) => proxy.creates.filter((form) => form.get('metadata[card]') === card.id).length;

// ——— the API ———

const env = () => ({ GATEWAY_URL: proxy.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET });

interface Caller {
  clientId: string;
  /** The holder a cardholder app's token acts for. */
  holderId: string | null;
  token: string;
  /** Gets a token from the running server (a restarted one is another issuer, so callers sign in again). */
  signIn(): Promise<void>;
}

const REDIRECT_URI = 'http://127.0.0.1:8797/callback';

async function newApp(): Promise<string> {
  const { client } = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [REDIRECT_URI] });
  return client.client_id;
}

async function holder(clientId: string, username: string): Promise<Caller> {
  const password = `${username} password 1`;
  const made = await createCardholder(db.orm.em.fork(), { username, password, displayName: username });
  const caller: Caller = {
    clientId,
    holderId: made.id,
    token: '',
    async signIn() {
      caller.token = await cardholderAccessToken(server.url, { clientId, redirectUri: REDIRECT_URI, username, password, scope: 'card:read card:topup' });
    },
  };
  await caller.signIn();
  return caller;
}

async function operatorCaller(): Promise<Caller> {
  const made = await createClient(db.orm.em.fork(), { kind: 'OPERATOR', tenantId: null, name: 'Operator', scopes: ['tenants:manage', 'ledger:write'] });
  const caller: Caller = {
    clientId: made.client.client_id,
    holderId: null,
    token: '',
    async signIn() {
      caller.token = (await clientCredentialsToken(await discover(server.url), made.client.client_id, made.clientSecret!, 'tenants:manage ledger:write')).access_token;
    },
  };
  await caller.signIn();
  return caller;
}

type GraphQLBody = { data?: any; errors?: { message: string; extensions: { code: string } }[] };

async function gql(caller: Caller, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<{ status: number; retryAfter: string | null; body: GraphQLBody }> {
  const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${caller.token}` }, body: JSON.stringify({ query, variables }), signal });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as GraphQLBody };
}

const CREATE = `mutation($input: CreateTopUpInput!) {
  createTopUp(input: $input) {
    topUp { id status amount { amount currency } createdAt paidAt history { from to } }
    userErrors { code field message }
  }
}`;
const create = (caller: Caller, input: Record<string, unknown>, signal?: AbortSignal) => gql(caller, CREATE, { input }, signal);

type Card = { id: string; uuid: string };

/** A card registered to the caller's holder. */
async function newCard(owner: Caller): Promise<Card> {
  const number = `62310000001${String(++cards).padStart(4, '0')}`;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = Number(number[number.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  const row = await registerCard(db.orm.em.fork(), companyId, { cardNumber: number + String((10 - (sum % 10)) % 10), asn: `58100000000001${String(cards).padStart(6, '0')}`, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: owner.holderId! });
  return { id: toGlobalId('Card', row.id), uuid: row.id };
}

async function topUpsOf(card: Card): Promise<number> {
  const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from top_up where card_id = ?`, [card.uuid]);
  return row!.n;
}

async function recordOf(caller: Caller, key: string) {
  const [row] = await db.orm.em.fork().execute<{ state: string; operation: string; owner: string; expires_at: Date; created_at: Date }[]>(`select * from idempotency_record where client_id = ? and holder_id = ? and key = ?`, [caller.clientId, caller.holderId ?? '', key]);
  return row;
}

const codeOf = (r: { body: GraphQLBody }) => r.body.errors?.[0]?.extensions.code;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-idempotency-'));
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, statePath: path.join(dir, 'sandbox.json') });
  proxy = await startSlowProxy(sandbox.url);
  db = await freshDatabase();
  server = await startTestServer(db.orm, env());
  companyId = (await createCity(db.orm.em.fork(), { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' })).cardCompany.id;
  const app = await newApp();
  alice = await holder(app, 'alice');
  carol = await holder(app, 'carol');
  bob = await holder(await newApp(), 'bob');
  operator = await operatorCaller();
});
afterAll(async () => {
  await server?.close();
  await db?.close();
  await proxy?.close();
  await sandbox?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('the same key and the same request', () => {
  it('returns the stored answer and charges once, also after the API restarts on the same database', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 1_000, idempotencyKey: 'same-request', paymentMethod: 'pm_card_visa' };
    const first = await create(alice, input);
    expect(first.status).toBe(200);
    expect(first.body.data.createTopUp).toMatchObject({ topUp: { status: 'PAID', amount: { amount: 1000, currency: 'CNY' } }, userErrors: [] });
    const again = await create(alice, input);
    expect(again).toEqual(first);
    expect(await recordOf(alice, 'same-request')).toMatchObject({ state: 'DONE', operation: 'createTopUp' });

    // A new API server over the same database: nothing about the key lives in the process.
    await server.close();
    server = await startTestServer(db.orm, env());
    for (const caller of [alice, carol, bob, operator]) await caller.signIn();
    const afterRestart = await create(alice, input);
    expect(afterRestart).toEqual(first);

    expect(await topUpsOf(card)).toBe(1);
    expect(createsAsked(card)).toBe(1);
    expect(await intentsAtGateway(card)).toBe(1);
  });

  it('keeps the key at least 24 hours (48)', async () => {
    const card = await newCard(alice);
    await create(alice, { card: card.id, amount: 1_000, idempotencyKey: 'kept', paymentMethod: 'pm_card_visa' });
    const record = (await recordOf(alice, 'kept'))!;
    expect(new Date(record.expires_at).getTime() - new Date(record.created_at).getTime()).toBe(48 * 3600_000);
  });
});

describe('the same key and another request', () => {
  it('is refused with IDEMPOTENCY_KEY_REUSED (HTTP 422), and nothing new is written or charged', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 1_000, idempotencyKey: 'reused', paymentMethod: 'pm_card_visa' };
    const first = await create(alice, input);
    expect(first.body.data.createTopUp.userErrors).toEqual([]);
    const records = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from idempotency_record`);

    const otherAmount = await create(alice, { ...input, amount: 1_100 });
    expect(otherAmount.status).toBe(422);
    expect(otherAmount.body).toMatchObject({ data: null, errors: [{ extensions: { code: 'IDEMPOTENCY_KEY_REUSED' } }] });
    // Another mutation with the key is another request too.
    const otherOperation = await gql(alice, `mutation($input: RefundTopUpInput!) { refundTopUp(input: $input) { userErrors { code } } }`, { input: { topUp: first.body.data.createTopUp.topUp.id, idempotencyKey: 'reused' } });
    expect(codeOf(otherOperation)).toBe('IDEMPOTENCY_KEY_REUSED');

    expect(await topUpsOf(card)).toBe(1);
    expect(createsAsked(card)).toBe(1);
    expect(await db.orm.em.fork().execute(`select count(*)::int as n from idempotency_record`)).toEqual(records);
    // The first request is still answered as before.
    expect(await create(alice, input)).toEqual(first);
  });
});

describe('the same key while the first request runs', () => {
  it('20 requests at once: one execution, one charge; every other answer is the stored one or IDEMPOTENCY_CONFLICT (HTTP 409)', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 2_000, idempotencyKey: 'twenty', paymentMethod: 'pm_card_visa' };
    proxy.delayMs = 400;
    let answers: Awaited<ReturnType<typeof create>>[];
    try {
      answers = await Promise.all(Array.from({ length: 20 }, () => create(alice, input)));
    } finally {
      proxy.delayMs = 0;
    }
    const done = answers.filter((a) => a.status === 200);
    const conflicts = answers.filter((a) => a.status === 409);
    expect(done.length + conflicts.length).toBe(20);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(conflicts.length).toBeGreaterThanOrEqual(1);
    for (const a of conflicts) expect(a.body).toMatchObject({ data: null, errors: [{ extensions: { code: 'IDEMPOTENCY_CONFLICT' } }] });
    for (const a of done) expect(a.body).toEqual(done[0]!.body);
    expect(done[0]!.body.data.createTopUp).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });

    expect(await topUpsOf(card)).toBe(1);
    expect(createsAsked(card)).toBe(1);
    expect(await intentsAtGateway(card)).toBe(1);
    // Once it is done, a retry gets the stored answer.
    expect((await create(alice, input)).body).toEqual(done[0]!.body);
  });

  it('a client that gave up waiting (time-out) and retries gets the one result, never a second top-up', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 1_500, idempotencyKey: 'timed-out', paymentMethod: 'pm_card_visa' };
    proxy.delayMs = 1_000;
    try {
      // The client stops waiting after 150 ms; the server carries on.
      await expect(create(alice, input, AbortSignal.timeout(150))).rejects.toThrow();
      const early = await create(alice, input);
      expect(early).toMatchObject({ status: 409, retryAfter: '1' });
      expect(codeOf(early)).toBe('IDEMPOTENCY_CONFLICT');
    } finally {
      proxy.delayMs = 0;
    }
    let retried = await create(alice, input);
    for (let i = 0; retried.status === 409 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      retried = await create(alice, input);
    }
    expect(retried.status).toBe(200);
    expect(retried.body.data.createTopUp).toMatchObject({ topUp: { status: 'PAID', amount: { amount: 1500 } }, userErrors: [] });
    expect(await topUpsOf(card)).toBe(1);
    expect(createsAsked(card)).toBe(1);
    expect(await intentsAtGateway(card)).toBe(1);
  });

  it('a claim whose process died (lease run out) is taken over; a live one is a conflict', async () => {
    const card = await newCard(alice);
    const key = 'orphaned';
    const input = { card: card.id, amount: 1_000, idempotencyKey: key, paymentMethod: 'pm_card_visa' };
    // What GraphQL hands the resolver: MinorUnits as a bigint.
    const hash = requestHash('createTopUp', { input: { ...input, amount: 1_000n } });
    await db.orm.em.fork().execute(
      `insert into idempotency_record (client_id, holder_id, key, operation, request_hash, state, owner, locked_until, expires_at) values (?, ?, ?, 'createTopUp', ?, 'IN_FLIGHT', 'dead-host:1:claim', now() + interval '30 seconds', now() + interval '48 hours')`,
      [alice.clientId, alice.holderId, key, hash],
    );
    const live = await create(alice, input);
    expect(live.status).toBe(409);
    expect(codeOf(live)).toBe('IDEMPOTENCY_CONFLICT');
    expect(await topUpsOf(card)).toBe(0);

    await db.orm.em.fork().execute(`update idempotency_record set locked_until = now() - interval '1 second' where client_id = ? and holder_id = ? and key = ?`, [alice.clientId, alice.holderId, key]);
    const taken = await create(alice, input);
    expect(taken.status).toBe(200);
    expect(taken.body.data.createTopUp).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
    expect(await recordOf(alice, key)).toMatchObject({ state: 'DONE', owner: expect.not.stringMatching(/^dead-host/) });
    expect(await topUpsOf(card)).toBe(1);
    expect((await create(alice, input)).body).toEqual(taken.body);
  });

  it('a live process whose liveness connection died: a retry of its running top-up is a conflict, not a second execution', async () => {
    const card = await newCard(alice);
    const key = 'liveness-lost';
    const input = { card: card.id, amount: 1_300, idempotencyKey: key, paymentMethod: 'pm_card_visa' };
    proxy.delayMs = 2_000;
    let first: ReturnType<typeof create>;
    try {
      first = create(alice, input);
      for (let i = 0; i < 100 && !(await recordOf(alice, key)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await recordOf(alice, key)).toMatchObject({ state: 'IN_FLIGHT' });
      // The liveness session dies under the running process (a database-side kill, a silent network drop).
      const killed = await db.orm.em.fork().execute(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'onecard-liveness' and datname = current_database()`);
      expect(killed.length).toBeGreaterThan(0);
      const retry = await create(alice, input);
      expect(retry.status).toBe(409);
      expect(codeOf(retry)).toBe('IDEMPOTENCY_CONFLICT');
    } finally {
      proxy.delayMs = 0;
    }
    expect((await first).body.data.createTopUp).toMatchObject({ topUp: { status: 'PAID' }, userErrors: [] });
    expect(createsAsked(card)).toBe(1);
    expect(await topUpsOf(card)).toBe(1);
  });

  it('a stale claim for another request is not taken over: IDEMPOTENCY_KEY_REUSED', async () => {
    const card = await newCard(alice);
    await db.orm.em.fork().execute(
      `insert into idempotency_record (client_id, holder_id, key, operation, request_hash, state, owner, locked_until, expires_at) values (?, ?, 'stale-other', 'createTopUp', ?, 'IN_FLIGHT', 'dead-host:1:claim', now() - interval '1 second', now() + interval '48 hours')`,
      [alice.clientId, alice.holderId, requestHash('createTopUp', { input: { other: true } })],
    );
    expect(codeOf(await create(alice, { card: card.id, amount: 1_000, idempotencyKey: 'stale-other', paymentMethod: 'pm_card_visa' }))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await topUpsOf(card)).toBe(0);
  });
});

describe('what is and is not stored', () => {
  it('a business refusal is an answer: stored and replayed', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 50, idempotencyKey: 'too-small', paymentMethod: 'pm_card_visa' };
    const refused = await create(alice, input);
    expect(refused.body.data.createTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'TOP_UP_AMOUNT_OUT_OF_RANGE' }] });
    expect(await recordOf(alice, 'too-small')).toMatchObject({ state: 'DONE' });
    expect(await create(alice, input)).toEqual(refused);
  });

  it('a request that fails with a GraphQL error leaves the key free for a retry', async () => {
    const card = await newCard(alice);
    const bad = await create(alice, { card: 'not-a-card-id', amount: 1_000, idempotencyKey: 'after-error', paymentMethod: 'pm_card_visa' });
    expect(codeOf(bad)).toBe('BAD_USER_INPUT');
    expect(await recordOf(alice, 'after-error')).toBeUndefined();
    const good = await create(alice, { card: card.id, amount: 1_000, idempotencyKey: 'after-error', paymentMethod: 'pm_card_visa' });
    expect(good.body.data.createTopUp.userErrors).toEqual([]);
  });

  it('a key that is not 1 to 200 printable ASCII characters is BAD_USER_INPUT', async () => {
    const card = await newCard(alice);
    for (const key of ['', '   ', 'k'.repeat(201), 'ключ']) {
      expect(codeOf(await create(alice, { card: card.id, amount: 1_000, idempotencyKey: key }))).toBe('BAD_USER_INPUT');
    }
    expect(await topUpsOf(card)).toBe(0);
  });

  it('a key past its retention is free again; createTopUp’s own key still refuses another top-up with it', async () => {
    const card = await newCard(alice);
    const input = { card: card.id, amount: 1_000, idempotencyKey: 'expired', paymentMethod: 'pm_card_visa' };
    await create(alice, input);
    await db.orm.em.fork().execute(`update idempotency_record set created_at = now() - interval '49 hours', expires_at = now() - interval '1 hour' where client_id = ? and holder_id = ? and key = ?`, [alice.clientId, alice.holderId, 'expired']);
    const later = await create(alice, { ...input, amount: 1_100 });
    expect(later.status).toBe(200);
    expect(later.body.data.createTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'IDEMPOTENCY_KEY_REUSED', field: ['input', 'idempotencyKey'] }] });
    expect(await topUpsOf(card)).toBe(1);
    expect(createsAsked(card)).toBe(1);
  });
});

describe('keys belong to a client, and in a cardholder app to a holder', () => {
  it('another client with the same key runs its own request, whatever the first one was', async () => {
    const aliceCard = await newCard(alice);
    const bobCard = await newCard(bob);
    const mine = await create(alice, { card: aliceCard.id, amount: 1_000, idempotencyKey: 'shared-key', paymentMethod: 'pm_card_visa' });
    const theirs = await create(bob, { card: bobCard.id, amount: 1_200, idempotencyKey: 'shared-key', paymentMethod: 'pm_card_visa' });
    expect(theirs.status).toBe(200);
    expect(theirs.body.data.createTopUp).toMatchObject({ topUp: { amount: { amount: 1200 } }, userErrors: [] });
    expect(theirs.body.data.createTopUp.topUp.id).not.toBe(mine.body.data.createTopUp.topUp.id);
    expect(await topUpsOf(aliceCard)).toBe(1);
    expect(await topUpsOf(bobCard)).toBe(1);
  });

  it('two holders of one app have a key space each: the same key and the same input never replay the other’s answer', async () => {
    const aliceCard = await newCard(alice);
    const input = { card: aliceCard.id, amount: 1_000, idempotencyKey: 'holder-key', paymentMethod: 'pm_card_visa' };
    const hers = await create(alice, input);
    expect(hers.body.data.createTopUp.userErrors).toEqual([]);
    // Carol, through the same app, sends exactly Alice's request: it runs as hers, and her app may not top up Alice's card.
    const carols = await create(carol, input);
    expect(carols.status).toBe(200);
    expect(carols.body.data.createTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'NOT_FOUND' }] });
    // With her own card the key is simply hers.
    const carolCard = await newCard(carol);
    const own = await create(carol, { ...input, idempotencyKey: 'holder-key-2', card: carolCard.id });
    expect(own.body.data.createTopUp.userErrors).toEqual([]);
    expect(await topUpsOf(aliceCard)).toBe(1);
  });
});

describe('the operator’s ledger mutations', () => {
  it('postJournalEntry: the same key replays the entry, another request with it is refused', async () => {
    const em = db.orm.em.fork();
    const a = await openAccount(em, { code: 'idem.a', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const b = await openAccount(em, { code: 'idem.b', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const POST = `mutation($input: PostJournalEntryInput!) { postJournalEntry(input: $input) { entry { id key postings { amount { amount } } } userErrors { code } } }`;
    const lines = (n: number) => [{ account: toGlobalId('LedgerAccount', a.id), debit: n }, { account: toGlobalId('LedgerAccount', b.id), credit: n }];
    const first = await gql(operator, POST, { input: { idempotencyKey: 'adjust-1', description: 'adjustment', lines: lines(700) } });
    expect(first.body.data.postJournalEntry).toMatchObject({ entry: { key: 'manual:adjust-1' }, userErrors: [] });
    expect(await gql(operator, POST, { input: { idempotencyKey: 'adjust-1', description: 'adjustment', lines: lines(700) } })).toEqual(first);
    const other = await gql(operator, POST, { input: { idempotencyKey: 'adjust-1', description: 'adjustment', lines: lines(800) } });
    expect(other.status).toBe(422);
    expect(codeOf(other)).toBe('IDEMPOTENCY_KEY_REUSED');
    const [{ n }] = await em.execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key like 'manual:adjust-%'`);
    expect(n).toBe(1);
  });
});

describe('housekeeping', () => {
  it('purgeExpiredIdempotencyRecords removes only records past their retention, never a live claim', async () => {
    const em = db.orm.em.fork();
    const insert = (key: string, state: 'DONE' | 'IN_FLIGHT', expired: boolean, lockedUntil: string | null) =>
      em.execute(
        `insert into idempotency_record (client_id, key, operation, request_hash, state, response, owner, locked_until, created_at, completed_at, expires_at)
         values ('purge-client', ?, 'createTopUp', repeat('0', 64), ?, ?::jsonb, 'host:1:x', ${lockedUntil ?? 'null'},
                 now() - interval '${expired ? 49 : 1} hours', ${state === 'DONE' ? 'now()' : 'null'}, now() - interval '${expired ? 49 : 1} hours' + interval '48 hours')`,
        [key, state, state === 'DONE' ? '{}' : null],
      );
    await insert('expired-done', 'DONE', true, null);
    await insert('expired-stale-claim', 'IN_FLIGHT', true, `now() - interval '1 minute'`);
    await insert('expired-live-claim', 'IN_FLIGHT', true, `now() + interval '1 minute'`);
    await insert('fresh-done', 'DONE', false, null);
    await insert('fresh-claim', 'IN_FLIGHT', false, `now() + interval '1 minute'`);
    const keys = async () => (await em.execute<{ key: string }[]>(`select key from idempotency_record where client_id = 'purge-client' order by key`)).map((r) => r.key);

    // (Other tests' records share the table: counts are at least these.)
    expect(await purgeExpiredIdempotencyRecords(em, new Date())).toBeGreaterThanOrEqual(2);
    expect(await keys()).toEqual(['expired-live-claim', 'fresh-claim', 'fresh-done']);
    // Two days on (by the clock the job passes), everything has expired and no lease is live.
    expect(await purgeExpiredIdempotencyRecords(em, new Date(Date.now() + 48 * 3600_000), 2)).toBeGreaterThanOrEqual(3);
    expect(await keys()).toEqual([]);
    expect(await em.execute(`select 1 from idempotency_record`)).toEqual([]);
  });
});
