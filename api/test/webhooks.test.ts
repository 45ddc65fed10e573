/**
 * Signed webhooks end to end: a real API server, the delivery worker started here (the outbox
 * dispatcher and graphile-worker), and a real receiver on 127.0.0.1 that checks signatures with
 * the SDK. Retries are shortened to milliseconds so the file runs in seconds.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient, OneCardError, verifyWebhook } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import type { PrincipalKind } from '../src/auth/principal.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { type RunningWebhookDelivery, startWebhookDelivery, type WebhookDeliveryOptions } from '../src/webhooks/delivery-worker.js';
import { type OutboxEvent, recordEvent } from '../src/webhooks/outbox.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';

// ---------------------------------------------------------------- a receiver on 127.0.0.1

type Behaviour = 'ok' | 'fail' | 'hang';
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One HTTP server; each endpoint is a path whose answer the test chooses per request. */
class Receiver {
  readonly received: Received[] = [];
  private behaviour = new Map<string, (n: number) => Behaviour>();
  private hanging: ServerResponse[] = [];
  private server!: Server;
  url = '';

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const n = this.received.filter((r) => r.path === path).length;
        const answer = this.behaviour.get(path)?.(n) ?? 'ok';
        if (answer === 'hang') this.hanging.push(res);
        else res.writeHead(answer === 'ok' ? 204 : 500).end(answer === 'ok' ? undefined : 'receiver is failing');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  on(path: string, behaviour: (n: number) => Behaviour): void {
    this.behaviour.set(path, behaviour);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
}

// ---------------------------------------------------------------- the world

let db: TestDatabase;
let server: TestServer;
let receiver: Receiver;
let delivery: RunningWebhookDelivery | null = null;
const tenants = {} as { gzIssuer: string; shopA: string; shopB: string };
const api = {} as Record<'shopA' | 'shopB' | 'issuer', OneCardClient>;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Fast retries: 100 ms doubling to 400 ms, FAILED after 30 s (one test shortens that further). */
const FAST: Partial<WebhookDeliveryOptions> = {
  retry: { firstDelayMs: 100, maxDelayMs: 400, giveUpAfterMs: 30_000 },
  timeoutMs: 3_000,
  dispatchIntervalMs: 50,
  jobPollIntervalMs: 50,
  stopGraceMs: 300,
};

async function startDelivery(overrides: Partial<WebhookDeliveryOptions> = {}): Promise<RunningWebhookDelivery> {
  return startWebhookDelivery({ orm: db.orm, config: server.config, log, ...FAST, ...overrides });
}

async function client(kind: PrincipalKind, tenantId: string, scopes = ['webhooks:manage', 'events:read']): Promise<OneCardClient> {
  const made = await createClient(db.orm.em.fork(), { kind, tenantId, name: `${kind} webhooks test`, scopes });
  return new OneCardClient({ baseUrl: server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: scopes.join(' ') });
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  receiver = new Receiver();
  await receiver.start();
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  tenants.gzIssuer = gz.cardCompany.id;
  tenants.shopA = (await createMerchant(em, { cityId: gz.city.id, name: 'Shop A' })).id;
  tenants.shopB = (await createMerchant(em, { cityId: gz.city.id, name: 'Shop B' })).id;
  api.shopA = await client('MERCHANT', tenants.shopA);
  api.shopB = await client('MERCHANT', tenants.shopB);
  api.issuer = await client('ISSUER', tenants.gzIssuer);
  delivery = await startDelivery();
});
afterAll(async () => {
  await delivery?.stop();
  await receiver?.stop();
  await server?.close();
  await db?.close();
});

// ---------------------------------------------------------------- helpers

const ENDPOINT = `id url eventTypes enabled disabledReason previousSecretExpiresAt`;
const CREATE = `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { ${ENDPOINT} } secret userErrors { code field message } } }`;
const DELIVERIES = `query($event: ID, $endpoint: ID) { webhookDeliveries(event: $event, endpoint: $endpoint) { edges { node { id status replay attemptCount endpoint { id } event { id type } attempts { statusCode error durationMs } } } } }`;

type Endpoint = { id: string; url: string; eventTypes: string[]; enabled: boolean; disabledReason: string | null; previousSecretExpiresAt: string | null };
type Delivery = { id: string; status: string; replay: boolean; attemptCount: number; endpoint: { id: string }; event: { id: string; type: string }; attempts: { statusCode: number | null; error: string | null; durationMs: number }[] };
type UserErrors = { code: string; field: string[]; message: string }[];

let paths = 0;
async function endpoint(who: OneCardClient, eventTypes: string[], behaviour?: (n: number) => Behaviour): Promise<{ endpoint: Endpoint; secret: string; path: string }> {
  const path = `/hook-${++paths}`;
  if (behaviour) receiver.on(path, behaviour);
  const { createWebhookEndpoint: made } = await who.request<{ createWebhookEndpoint: { endpoint: Endpoint; secret: string; userErrors: UserErrors } }>(CREATE, { input: { url: `${receiver.url}${path}`, eventTypes } });
  expect(made.userErrors).toEqual([]);
  return { ...made, path };
}

/** Records an event the way every context does: inside the transaction of its change. */
async function record(event: Partial<OutboxEvent> & Pick<OutboxEvent, 'type' | 'ownerKind' | 'ownerId'>): Promise<string> {
  const subjectId = event.subjectId ?? toGlobalId('Payment', randomUUID());
  await db.orm.em.fork().transactional((tx) => recordEvent(tx, { subjectId, payload: { payment: subjectId, amount: 1234, currency: 'CNY' }, ...event }));
  return subjectId;
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const bodyOf = (r: Received) => JSON.parse(r.body) as { id: string; type: string; created: string; data: Record<string, unknown> };
const receivedFor = (path: string, subject: string) => receiver.at(path).filter((r) => bodyOf(r).data.payment === subject);

async function deliveriesOf(who: OneCardClient, vars: { event?: string; endpoint?: string }): Promise<Delivery[]> {
  const { webhookDeliveries } = await who.request<{ webhookDeliveries: { edges: { node: Delivery }[] } }>(DELIVERIES, vars);
  return webhookDeliveries.edges.map((e) => e.node);
}

/** Every outbox event so far has been through the dispatcher. */
const allDispatched = async () => {
  const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from event_outbox where dispatched_at is null`);
  return row!.n === 0;
};

// ---------------------------------------------------------------- the rules

describe('endpoints', () => {
  it('registering an endpoint shows its signing secret once; it is stored sealed and never readable again', async () => {
    const { endpoint: made, secret } = await endpoint(api.shopA, ['payment.succeeded']);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(made).toMatchObject({ eventTypes: ['payment.succeeded'], enabled: true, disabledReason: null });
    // No field of the API carries it again.
    const type = await api.shopA.request<{ __type: { fields: { name: string }[] } }>(`{ __type(name: "WebhookEndpoint") { fields { name } } }`);
    expect(type.__type.fields.map((f) => f.name).filter((n) => /secret/i.test(n))).toEqual(['previousSecretExpiresAt']);
    const [row] = await db.orm.em.fork().execute<{ secret_sealed: string }[]>(`select secret_sealed from webhook_endpoint where id = ?`, [fromGlobalId(made.id).id]);
    expect(row!.secret_sealed).not.toContain(secret.slice(6));
    const listed = await api.shopA.request<{ webhookEndpoints: { edges: { node: Endpoint }[] } }>(`{ webhookEndpoints { edges { node { ${ENDPOINT} } } } }`);
    expect(listed.webhookEndpoints.edges.map((e) => e.node.id)).toContain(made.id);
  });

  const refusals: [string, Record<string, unknown>, string, string[]][] = [
    ['a URL that is not http(s)', { url: 'ftp://127.0.0.1/x', eventTypes: ['*'] }, 'INVALID_WEBHOOK_URL', ['input', 'url']],
    ['plain http to a host that is not loopback', { url: 'http://example.com/hook', eventTypes: ['*'] }, 'INVALID_WEBHOOK_URL', ['input', 'url']],
    ['credentials in the URL', { url: 'https://user:pass@example.com/hook', eventTypes: ['*'] }, 'INVALID_WEBHOOK_URL', ['input', 'url']],
    ['an unknown event type', { url: 'https://example.com/hook', eventTypes: ['payment.succeeded', 'payment.exploded'] }, 'UNKNOWN_EVENT_TYPE', ['input', 'eventTypes']],
    ['no event type', { url: 'https://example.com/hook', eventTypes: [] }, 'INVALID_INPUT', ['input', 'eventTypes']],
    ['an event type merchants never receive', { url: 'https://example.com/hook', eventTypes: ['topup.paid'] }, 'UNKNOWN_EVENT_TYPE', ['input', 'eventTypes']],
  ];
  it.each(refusals)('refuses %s', async (_name, input, code, field) => {
    const { createWebhookEndpoint } = await api.shopA.request<{ createWebhookEndpoint: { endpoint: null; userErrors: UserErrors } }>(CREATE, { input });
    expect(createWebhookEndpoint).toMatchObject({ endpoint: null, userErrors: [{ code, field }] });
  });

  it('another tenant’s endpoint answers as missing: not listed, not changed, not deleted, null by node', async () => {
    const { endpoint: mine } = await endpoint(api.shopA, ['*']);
    const theirs = await api.shopB.request<{ webhookEndpoints: { edges: { node: Endpoint }[] } }>(`{ webhookEndpoints { edges { node { id } } } }`);
    expect(theirs.webhookEndpoints.edges.map((e) => e.node.id)).not.toContain(mine.id);
    const update = await api.shopB.request<{ updateWebhookEndpoint: { userErrors: UserErrors } }>(`mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { endpoint { id } userErrors { code field message } } }`, { input: { endpoint: mine.id, enabled: false } });
    expect(update.updateWebhookEndpoint.userErrors).toMatchObject([{ code: 'NOT_FOUND', field: ['input', 'endpoint'] }]);
    const del = await api.shopB.request<{ deleteWebhookEndpoint: { userErrors: UserErrors } }>(`mutation($input: DeleteWebhookEndpointInput!) { deleteWebhookEndpoint(input: $input) { deletedEndpointId userErrors { code } } }`, { input: { endpoint: mine.id } });
    expect(del.deleteWebhookEndpoint.userErrors).toMatchObject([{ code: 'NOT_FOUND' }]);
    const node = await api.shopB.request<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: mine.id });
    expect(node.node).toBeNull();
    expect((await api.shopA.request<{ node: { id: string } }>(`query($id: ID!) { node(id: $id) { id } }`, { id: mine.id })).node.id).toBe(mine.id);
  });

  it('a client without webhooks:manage is refused', async () => {
    const reader = await client('MERCHANT', tenants.shopA, ['payments:read']);
    await expect(reader.request(`{ webhookEndpoints { edges { node { id } } } }`)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('delivery', () => {
  it('an event recorded in a transaction reaches the endpoint, signed: the SDK verifies it', async () => {
    const { endpoint: made, secret, path } = await endpoint(api.shopA, ['payment.succeeded']);
    const subject = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const [got] = await until('the webhook', () => receivedFor(path, subject).length > 0 && receivedFor(path, subject));
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers['onecard-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const checked = verifyWebhook(got!.body, got!.headers['onecard-signature'] as string, secret);
    expect(checked).toMatchObject({ ok: true, event: { type: 'payment.succeeded', data: { payment: subject, amount: 1234, currency: 'CNY' } } });
    if (!checked.ok) return;
    expect(got!.headers['onecard-event-id']).toBe(checked.event.id);
    expect(Object.keys(JSON.parse(got!.body))).toEqual(['id', 'type', 'created', 'data']);
    expect(checked.event.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(checked.event.created) - Date.now())).toBeLessThan(60_000);
    expect(verifyWebhook(got!.body, got!.headers['onecard-signature'] as string, 'whsec_someone_else')).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    // The delivery and its one attempt are on record.
    const [d] = await until('DELIVERED', async () => {
      const list = await deliveriesOf(api.shopA, { event: checked.event.id });
      return list[0]?.status === 'DELIVERED' && list;
    });
    expect(d).toMatchObject({ status: 'DELIVERED', replay: false, attemptCount: 1, endpoint: { id: made.id }, event: { id: checked.event.id, type: 'payment.succeeded' }, attempts: [{ statusCode: 204, error: null }] });
  });

  it('a receiver that fails twice gets the event on the third attempt, each attempt recorded', async () => {
    const { endpoint: made, path } = await endpoint(api.shopA, ['payment.failed'], (n) => (n <= 2 ? 'fail' : 'ok'));
    const subject = await record({ type: 'payment.failed', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const [d] = await until('DELIVERED', async () => {
      const list = await deliveriesOf(api.shopA, { endpoint: made.id });
      return list[0]?.status === 'DELIVERED' && list;
    });
    expect(receivedFor(path, subject)).toHaveLength(3);
    expect(d!.attemptCount).toBe(3);
    expect(d!.attempts.map((a) => [a.statusCode, a.error])).toEqual([
      [500, 'HTTP 500'],
      [500, 'HTTP 500'],
      [204, null],
    ]);
    for (const a of d!.attempts) expect(a.durationMs).toBeGreaterThanOrEqual(0);
    // The same event each time: receivers dedupe by its id.
    expect(new Set(receivedFor(path, subject).map((r) => bodyOf(r).id)).size).toBe(1);
  });

  it('an endpoint gets only its owner’s events, of the types it subscribed to', async () => {
    const { path } = await endpoint(api.shopA, ['payment.refunded']);
    const otherType = await record({ type: 'payment.canceled', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const otherOwner = await record({ type: 'payment.refunded', ownerKind: 'MERCHANT', ownerId: tenants.shopB });
    const issuerEvent = await record({ type: 'payment.refunded', ownerKind: 'ISSUER', ownerId: tenants.gzIssuer });
    const mine = await record({ type: 'payment.refunded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    await until('the owner’s event', () => receivedFor(path, mine).length === 1);
    await until('every event dispatched', allDispatched);
    for (const subject of [otherType, otherOwner, issuerEvent]) expect(receivedFor(path, subject)).toEqual([]);
    // Not merely late: they made no delivery to this endpoint at all.
    const [row] = await db.orm.em.fork().execute<{ n: number }[]>(
      `select count(*)::int as n from webhook_delivery d join event_outbox o on o.id = d.event_id join webhook_endpoint e on e.id = d.endpoint_id where e.url = ? and o.subject_id in (?)`,
      [`${receiver.url}${path}`, [otherType, otherOwner, issuerEvent]],
    );
    expect(row!.n).toBe(0);
  });

  it('the event of a rolled-back transaction is never delivered (nor listed)', async () => {
    const { path } = await endpoint(api.shopA, ['payment.succeeded']);
    const ghost = toGlobalId('Payment', randomUUID());
    await expect(
      db.orm.em.fork().transactional(async (tx) => {
        await recordEvent(tx, { type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA, subjectId: ghost, payload: { payment: ghost } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const after = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    await until('the next event', () => receivedFor(path, after).length === 1);
    await until('every event dispatched', allDispatched);
    expect(receivedFor(path, ghost)).toEqual([]);
    const [row] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from event_outbox where subject_id = ?`, [ghost]);
    expect(row!.n).toBe(0);
  });

  it('two delivery workers side by side: every event is dispatched once, one delivery per endpoint', async () => {
    const { path } = await endpoint(api.shopB, ['payment.succeeded']);
    const second = await startDelivery();
    try {
      const subjects = await Promise.all(Array.from({ length: 20 }, () => record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopB })));
      await until('all 20', () => subjects.every((s) => receivedFor(path, s).length >= 1), 15_000);
      await new Promise((r) => setTimeout(r, 300)); // time for a duplicate to show up, if there were one
      for (const s of subjects) expect(receivedFor(path, s)).toHaveLength(1);
      const [row] = await db.orm.em.fork().execute<{ n: number; events: number }[]>(
        `select count(*)::int as n, count(distinct d.event_id)::int as events from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id where e.url = ?`,
        [`${receiver.url}${path}`],
      );
      expect(row).toEqual({ n: 20, events: 20 });
    } finally {
      await second.stop();
    }
  });
});

describe('restarts lose no event (at least once)', () => {
  it('stopping the worker while the receiver hangs hands the delivery back; the next worker delivers it', async () => {
    let hang = true;
    const { endpoint: made, path } = await endpoint(api.shopA, ['payment.succeeded'], () => (hang ? 'hang' : 'ok'));
    const subject = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    await until('the first (hanging) request', () => receivedFor(path, subject).length === 1);
    await delivery!.stop(); // cuts the attempt short after stopGraceMs
    delivery = null;
    hang = false;
    delivery = await startDelivery();
    await until('the event, again', () => receivedFor(path, subject).length === 2);
    const [d] = await until('DELIVERED', async () => {
      const list = await deliveriesOf(api.shopA, { endpoint: made.id });
      return list[0]?.status === 'DELIVERED' && list;
    });
    // The interrupted attempt was ours, not the receiver's: it does not count.
    expect(d!.attemptCount).toBe(1);
    expect(new Set(receivedFor(path, subject).map((r) => r.headers['onecard-event-id'])).size).toBe(1);
  });

  it('a receiver that is down across a restart gets the event once it is back', async () => {
    const down = new Receiver();
    await down.start();
    const port = Number(new URL(down.url).port);
    await down.stop(); // nothing listens there now: connection refused
    const { createWebhookEndpoint: made } = await api.shopA.request<{ createWebhookEndpoint: { endpoint: Endpoint; userErrors: UserErrors } }>(CREATE, { input: { url: `${down.url}/back`, eventTypes: ['payment.succeeded'] } });
    const subject = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    await until('a failed attempt', async () => (await deliveriesOf(api.shopA, { endpoint: made.endpoint.id }))[0]?.attemptCount);
    await delivery!.stop();
    delivery = null;
    const back = new Receiver();
    await back.start(port);
    try {
      delivery = await startDelivery();
      await until('the event at the receiver', () => back.received.some((r) => bodyOf(r).data.payment === subject));
      const [d] = await deliveriesOf(api.shopA, { endpoint: made.endpoint.id });
      expect(d!.attempts[0]!.error).toMatch(/ECONNREFUSED/);
    } finally {
      await back.stop();
    }
  });
});

describe('disabling', () => {
  it('an endpoint whose deliveries fail for the whole retry period is disabled, and its owner hears of it on its other endpoints', async () => {
    const { endpoint: failing } = await endpoint(api.issuer, ['topup.paid'], () => 'fail');
    const { path: watcher, secret } = await endpoint(api.issuer, ['webhook_endpoint.disabled']);
    await delivery!.stop();
    // A retry period of a second holds several attempts even on a loaded machine.
    delivery = await startDelivery({ retry: { firstDelayMs: 50, maxDelayMs: 100, giveUpAfterMs: 1000 } });
    try {
      await record({ type: 'topup.paid', ownerKind: 'ISSUER', ownerId: tenants.gzIssuer, subjectId: toGlobalId('TopUp', randomUUID()), payload: { topUp: 'x', amount: 100, currency: 'CNY' } });
      const [notice] = await until('webhook_endpoint.disabled', () => receiver.at(watcher).length > 0 && receiver.at(watcher));
      const checked = verifyWebhook(notice!.body, notice!.headers['onecard-signature'] as string, secret);
      expect(checked).toMatchObject({ ok: true, event: { type: 'webhook_endpoint.disabled', data: { endpoint: failing.id, reason: 'FAILING' } } });
      const [d] = await deliveriesOf(api.issuer, { endpoint: failing.id });
      expect(d!.status).toBe('FAILED');
      expect(d!.attemptCount).toBeGreaterThanOrEqual(3);
      const { node } = await api.issuer.request<{ node: Endpoint }>(`query($id: ID!) { node(id: $id) { ... on WebhookEndpoint { ${ENDPOINT} } } }`, { id: failing.id });
      expect(node).toMatchObject({ enabled: false, disabledReason: 'FAILING' });
      // Disabled: a new event makes no delivery to it.
      await record({ type: 'topup.paid', ownerKind: 'ISSUER', ownerId: tenants.gzIssuer, subjectId: toGlobalId('TopUp', randomUUID()), payload: {} });
      await until('every event dispatched', allDispatched);
      expect(await deliveriesOf(api.issuer, { endpoint: failing.id })).toHaveLength(1);
    } finally {
      await delivery!.stop();
      delivery = await startDelivery();
    }
  });
});

describe('catching up and replaying', () => {
  const EVENTS = `query($after: String, $types: [String!], $first: Int) { events(after: $after, types: $types, first: $first) { edges { cursor node { id type subject data created } } pageInfo { hasNextPage endCursor } } }`;
  type Page = { events: { edges: { cursor: string; node: { id: string; type: string; subject: string; data: Record<string, unknown> } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };

  it('events(after, types) pages through a tenant’s own events in order, and only its own', async () => {
    const biller = await createMerchant(db.orm.em.fork(), { cityId: (await db.orm.em.fork().execute<{ city_id: string }[]>(`select city_id from merchant where id = ?`, [tenants.shopA]))[0]!.city_id, name: 'Shop C' });
    const shopC = await client('MERCHANT', biller.id);
    const subjects: string[] = [];
    for (const type of ['payment.succeeded', 'payment.refunded', 'payment.succeeded', 'payment.canceled', 'payment.succeeded']) subjects.push(await record({ type, ownerKind: 'MERCHANT', ownerId: biller.id }));
    await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopB });
    await until('every event dispatched', allDispatched);

    const first = await shopC.request<Page>(EVENTS, { first: 2 });
    expect(first.events.edges.map((e) => e.node.subject)).toEqual(subjects.slice(0, 2));
    expect(first.events.pageInfo.hasNextPage).toBe(true);
    const rest = await shopC.request<Page>(EVENTS, { after: first.events.pageInfo.endCursor, first: 10 });
    expect(rest.events.edges.map((e) => e.node.subject)).toEqual(subjects.slice(2));
    expect(rest.events.pageInfo.hasNextPage).toBe(false);
    // After the id of an event received by webhook.
    const fromId = await shopC.request<Page>(EVENTS, { after: first.events.edges[0]!.node.id });
    expect(fromId.events.edges.map((e) => e.node.subject)).toEqual(subjects.slice(1));
    const succeeded = await shopC.request<Page>(EVENTS, { types: ['payment.succeeded'] });
    expect(succeeded.events.edges.map((e) => e.node.subject)).toEqual([subjects[0], subjects[2], subjects[4]]);
    // Another tenant sees none of them, and cannot start after one of them.
    const other = await api.shopB.request<Page>(EVENTS, { first: 100 });
    expect(other.events.edges.filter((e) => subjects.includes(e.node.subject))).toEqual([]);
    await expect(api.shopB.request(EVENTS, { after: first.events.edges[0]!.node.id })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(shopC.request(EVENTS, { types: ['payment.exploded'] })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(shopC.request(EVENTS, { after: Buffer.from('["x","y"]').toString('base64url') })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const byNode = await api.shopB.request<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: first.events.edges[0]!.node.id });
    expect(byNode.node).toBeNull();
  });

  it('replayWebhookEvent sends an event again now, as a fresh delivery; another tenant’s event is NOT_FOUND', async () => {
    const { endpoint: made, path } = await endpoint(api.shopA, ['payment.succeeded']);
    const subject = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const [first] = await until('the webhook', () => receivedFor(path, subject).length === 1 && receivedFor(path, subject));
    const eventId = bodyOf(first!).id;
    const REPLAY = `mutation($input: ReplayWebhookEventInput!) { replayWebhookEvent(input: $input) { deliveries { id status replay endpoint { id } } userErrors { code field message } } }`;
    const replayed = await api.shopA.request<{ replayWebhookEvent: { deliveries: Delivery[]; userErrors: UserErrors } }>(REPLAY, { input: { event: eventId, endpoint: made.id } });
    expect(replayed.replayWebhookEvent).toMatchObject({ userErrors: [], deliveries: [{ status: 'PENDING', replay: true, endpoint: { id: made.id } }] });
    await until('the replay', () => receivedFor(path, subject).length === 2);
    expect(bodyOf(receivedFor(path, subject)[1]!).id).toBe(eventId);
    const both = await deliveriesOf(api.shopA, { event: eventId });
    expect(both.filter((d) => d.endpoint.id === made.id).map((d) => d.replay).sort()).toEqual([false, true]);

    const refused = await api.shopB.request<{ replayWebhookEvent: { deliveries: Delivery[]; userErrors: UserErrors } }>(REPLAY, { input: { event: eventId } });
    expect(refused.replayWebhookEvent).toMatchObject({ deliveries: [], userErrors: [{ code: 'NOT_FOUND', field: ['input', 'event'] }] });
    expect(await deliveriesOf(api.shopB, { event: eventId })).toEqual([]);
  });
});

describe('rotating the secret', () => {
  const ROTATE = `mutation($input: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $input) { endpoint { ${ENDPOINT} } secret userErrors { code field message } } }`;
  type Rotated = { rotateWebhookSecret: { endpoint: Endpoint; secret: string; userErrors: UserErrors } };

  it('signs with both secrets during the overlap, and with the new one only after it', async () => {
    const { endpoint: made, secret: oldSecret, path } = await endpoint(api.shopA, ['payment.succeeded']);
    const { rotateWebhookSecret: rotated } = await api.shopA.request<Rotated>(ROTATE, { input: { endpoint: made.id } });
    expect(rotated.userErrors).toEqual([]);
    expect(rotated.secret).not.toBe(oldSecret);
    const overlapEnds = Date.parse(rotated.endpoint.previousSecretExpiresAt!) - Date.now();
    expect(overlapEnds).toBeGreaterThan(24 * 3600_000 - 60_000);
    expect(overlapEnds).toBeLessThanOrEqual(24 * 3600_000);

    const during = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const [a] = await until('the webhook', () => receivedFor(path, during).length === 1 && receivedFor(path, during));
    const header = a!.headers['onecard-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhook(a!.body, header, rotated.secret).ok).toBe(true);
    expect(verifyWebhook(a!.body, header, oldSecret).ok).toBe(true);

    // Rotated again with no overlap (a leaked secret): only the newest signs.
    const { rotateWebhookSecret: again } = await api.shopA.request<Rotated>(ROTATE, { input: { endpoint: made.id, previousSecretExpiresIn: 0 } });
    expect(again.endpoint.previousSecretExpiresAt).toBeNull();
    const after = await record({ type: 'payment.succeeded', ownerKind: 'MERCHANT', ownerId: tenants.shopA });
    const [b] = await until('the webhook', () => receivedFor(path, after).length === 1 && receivedFor(path, after));
    const only = b!.headers['onecard-signature'] as string;
    expect(only.match(/v1=/g)).toHaveLength(1);
    expect(verifyWebhook(b!.body, only, again.secret).ok).toBe(true);
    expect(verifyWebhook(b!.body, only, rotated.secret)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(verifyWebhook(b!.body, only, oldSecret)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses an overlap longer than 24 hours', async () => {
    const { endpoint: made } = await endpoint(api.shopA, ['*']);
    const { rotateWebhookSecret } = await api.shopA.request<Rotated>(ROTATE, { input: { endpoint: made.id, previousSecretExpiresIn: 86_401 } });
    expect(rotateWebhookSecret.userErrors).toMatchObject([{ code: 'INVALID_INPUT', field: ['input', 'previousSecretExpiresIn'] }]);
  });
});

describe('disabling and deleting by hand', () => {
  it('a disabled endpoint gets nothing, and what waited for it is CANCELED; deleting removes it', async () => {
    const { endpoint: made, path } = await endpoint(api.shopB, ['payment.canceled'], () => 'fail');
    const subject = await record({ type: 'payment.canceled', ownerKind: 'MERCHANT', ownerId: tenants.shopB });
    await until('a failed attempt', () => receivedFor(path, subject).length >= 1);
    const UPDATE = `mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { endpoint { ${ENDPOINT} } userErrors { code } } }`;
    const off = await api.shopB.request<{ updateWebhookEndpoint: { endpoint: Endpoint } }>(UPDATE, { input: { endpoint: made.id, enabled: false } });
    expect(off.updateWebhookEndpoint.endpoint).toMatchObject({ enabled: false, disabledReason: 'MANUAL' });
    expect((await deliveriesOf(api.shopB, { endpoint: made.id }))[0]!.status).toBe('CANCELED');
    const replay = await api.shopB.request<{ replayWebhookEvent: { userErrors: UserErrors } }>(`mutation($input: ReplayWebhookEventInput!) { replayWebhookEvent(input: $input) { userErrors { code field } } }`, {
      input: { event: bodyOf(receivedFor(path, subject)[0]!).id, endpoint: made.id },
    });
    expect(replay.replayWebhookEvent.userErrors).toEqual([{ code: 'WEBHOOK_ENDPOINT_DISABLED', field: ['input', 'endpoint'] }]);
    const seen = receivedFor(path, subject).length;
    await new Promise((r) => setTimeout(r, 500)); // past the next retry it would have had
    expect(receivedFor(path, subject)).toHaveLength(seen);
    const on = await api.shopB.request<{ updateWebhookEndpoint: { endpoint: Endpoint } }>(UPDATE, { input: { endpoint: made.id, enabled: true, eventTypes: ['*'] } });
    expect(on.updateWebhookEndpoint.endpoint).toMatchObject({ enabled: true, disabledReason: null, eventTypes: ['*'] });
    const del = await api.shopB.request<{ deleteWebhookEndpoint: { deletedEndpointId: string; userErrors: UserErrors } }>(`mutation($input: DeleteWebhookEndpointInput!) { deleteWebhookEndpoint(input: $input) { deletedEndpointId userErrors { code } } }`, { input: { endpoint: made.id } });
    expect(del.deleteWebhookEndpoint).toEqual({ deletedEndpointId: made.id, userErrors: [] });
    expect(await deliveriesOf(api.shopB, { endpoint: made.id })).toEqual([]);
  });
});

it('OneCardError is what a refused call throws (sanity of the helpers above)', async () => {
  await expect(api.shopA.request(`{ events(first: 0) { edges { cursor } } }`)).rejects.toBeInstanceOf(OneCardError);
});
