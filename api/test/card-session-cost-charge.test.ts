/**
 * A card-session request's cost charge (graphql/cost-throttle.ts) is taken in the request's own
 * transaction, in the session's move (issue 20 item 1: one writing commit per message), no longer
 * written behind in a commit of its own. What a caller would notice: the charge commits with the
 * message or not at all, and a message PostgreSQL ends for a deadlock and runs again is charged
 * its cost once. Real HTTP on the world's API process, the SDK's reader agent and virtual card.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { issueCard, newReader, OPEN, sessionsOf, sessionUuid, type TestReader, useCardSessionWorld, waitForBlocked } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql } from './support/server.js';

// A bucket no message empties, refilled slowly: what a request took is read off its row.
const BUCKET = 1_000_000;
const RESTORE_RATE = 1;
const world = useCardSessionWorld({ env: () => ({ GRAPHQL_COST_BUCKET: String(BUCKET), GRAPHQL_COST_RESTORE_RATE: String(RESTORE_RATE) }) });

let lockOrm: Orm;
let desk: TestReader;
let bucketKey: string;
/** The card company's client, over raw HTTP, so that each answer's `extensions.cost` can be read. */
let issuer: { request<T>(query: string, variables?: Record<string, unknown>): Promise<T> };
let lastCost: { requested: number } | undefined;
let token: string;

beforeAll(async () => {
  lockOrm = await openOrm(world.db.url);
  desk = await newReader(world, 'CHARGE-DESK', world.gz);
  const scopes = 'topups:write cards:read';
  const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: world.gz.cardCompanyId, name: 'charged issuer', scopes: scopes.split(' ') });
  bucketKey = `client:${made.client.client_id}`;
  token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, scopes)).access_token;
  issuer = {
    async request<T>(query: string, variables?: Record<string, unknown>) {
      const { body } = await graphql(world.server.url, query, variables, { authorization: `Bearer ${token}` });
      lastCost = body.extensions?.cost;
      if (body.errors?.length) throw new Error(body.errors.map((e: { message: string }) => e.message).join('; '));
      return body.data as T;
    },
  };
});
afterAll(async () => {
  await lockOrm?.close(true);
});

/** The bucket's row as it stands: what it held and when it was last charged. */
async function bucket(): Promise<{ available: number; at: string }> {
  const [row] = await world.db.orm.em.fork().execute<{ available: number; at: string }[]>(`select available, updated_at::text as at from graphql_cost_bucket where bucket_key = ?`, [bucketKey]);
  return row!;
}

/** The points taken from the bucket since `before`: what it would hold now, refilled at its rate, less what it holds. */
async function chargedSince(before: { available: number; at: string }): Promise<number> {
  const [row] = await world.db.orm.em
    .fork()
    .execute<{ charged: number }[]>(`select least(?::float8, ?::float8 + ?::float8 * extract(epoch from updated_at - ?::timestamptz)) - available as charged from graphql_cost_bucket where bucket_key = ?`, [
      BUCKET,
      before.available,
      RESTORE_RATE,
      before.at,
      bucketKey,
    ]);
  return row!.charged;
}

/** The backend waiting for the bucket's row, and whether it holds a lock on the card_session table meanwhile. */
async function waiterOnTheBucket(): Promise<{ pid: number; holdsSessionLock: boolean }> {
  await waitForBlocked(lockOrm, 'graphql_cost_bucket');
  const [row] = await lockOrm.em.fork().execute<{ pid: number; holds: boolean }[]>(
    `select a.pid, exists (select 1 from pg_locks l where l.pid = a.pid and l.granted and l.relation = 'card_session'::regclass) as holds
       from pg_stat_activity a where a.wait_event_type = 'Lock' and a.query like '%graphql_cost_bucket%' limit 1`,
  );
  return { pid: row!.pid, holdsSessionLock: row!.holds };
}

/** A transaction of another process holding the bucket's row until `release` is called; `then` runs in it before it ends. */
function holdBucket(then: (tx: EntityManager) => Promise<void> = async () => {}) {
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const done = lockOrm.em.fork().transactional(async (tx) => {
    // This transaction is never the one PostgreSQL picks to end a deadlock: the message's is.
    await tx.execute(`set local deadlock_timeout = '60s'`);
    await tx.execute(`select 1 from graphql_cost_bucket where bucket_key = ? for update`, [bucketKey]);
    held();
    await released;
    await then(tx);
  });
  return { isHeld, release, done };
}

it('a message’s charge commits with the message: while its bucket’s row is held, the message waits to charge inside its own transaction, then is accepted and charged its cost once', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
  const m = await sessionsOf(issuer, () => desk).manual(c, 'BALANCE');
  const before = await bucket();
  const hold = holdBucket();
  await hold.isHeld;
  const reply = m.hello();
  try {
    // Written behind (before), the charge waited in a statement of its own, the message long committed.
    expect((await waiterOnTheBucket()).holdsSessionLock).toBe(true);
  } finally {
    hold.release();
    await hold.done;
  }
  expect((await reply).session?.state).toBe('AUTHENTICATED');
  expect(await chargedSince(before)).toBeCloseTo(lastCost!.requested, 3);
});

it('a message ended by a deadlock on its charge is run again: accepted once, audited once, charged its cost once', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
  const m = await sessionsOf(issuer, () => desk).manual(c, 'BALANCE');
  const before = await bucket();
  let sessionLockedAt: 'before the message answered' | 'after' | undefined;
  let answered = false;
  // The other transaction holds the bucket, then wants the session the message holds: a cycle,
  // which PostgreSQL breaks by ending the message's transaction.
  const hold = holdBucket(async (tx) => {
    await tx.execute(`select id from card_session where id = ? for update`, [sessionUuid(m.session.id)]);
    sessionLockedAt = answered ? 'after' : 'before the message answered';
  });
  await hold.isHeld;
  const reply = m.hello().finally(() => (answered = true));
  expect((await waiterOnTheBucket()).holdsSessionLock).toBe(true);
  hold.release();
  await hold.done;
  // It got the session while the message was still running: the message's first transaction had ended.
  expect(sessionLockedAt).toBe('before the message answered');
  expect((await reply).session?.state).toBe('AUTHENTICATED');
  const audit = await world.db.orm.em.fork().execute<{ step: string }[]>(`select step from card_session_audit where session_id = ? order by id`, [sessionUuid(m.session.id)]);
  expect(audit.map((a) => a.step)).toEqual(['open', 'hello']);
  expect(await chargedSince(before)).toBeCloseTo(lastCost!.requested, 3);
});

/** Empties the bucket in the holding transaction (another process spent it meanwhile). */
const emptyTheBucket = (tx: EntityManager) => tx.execute(`update graphql_cost_bucket set available = 0, updated_at = clock_timestamp() where bucket_key = ?`, [bucketKey]).then(() => undefined);

it('a bucket another process empties while an openCardSession waits to charge: THROTTLED (429), and no session is opened', async () => {
  const readerId = fromGlobalId(desk.id, 'Reader').id;
  const sessions = async () => Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from card_session where reader_id = ?`, [readerId]))[0]!.n);
  const before = await sessions();
  const hold = holdBucket(emptyTheBucket);
  await hold.isHeld;
  const open = graphql(world.server.url, OPEN, { input: { reader: desk.id, operation: 'BALANCE' } }, { authorization: `Bearer ${token}` });
  try {
    await waitForBlocked(lockOrm, 'graphql_cost_bucket');
  } finally {
    hold.release();
    await hold.done;
  }
  const refused = await open;
  expect(refused.status).toBe(429);
  expect(refused.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['THROTTLED']);
  expect(await sessions()).toBe(before);
  await refill();
});

it('a bucket another process empties while a message waits to charge: THROTTLED (429), and the message’s step is rolled back whole (the session as it was, no audit row)', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
  const m = await sessionsOf(issuer, () => desk).manual(c, 'BALANCE');
  const hold = holdBucket(emptyTheBucket);
  await hold.isHeld;
  const reply = m.hello().then(
    () => 'accepted',
    (err: Error) => err.message,
  );
  try {
    expect((await waiterOnTheBucket()).holdsSessionLock).toBe(true);
  } finally {
    hold.release();
    await hold.done;
  }
  expect(await reply).toMatch(/^Throttled/);
  const [session] = await world.db.orm.em.fork().execute<{ state: string; next_seq: number }[]>(`select state, next_seq from card_session where id = ?`, [sessionUuid(m.session.id)]);
  expect(session).toEqual({ state: 'OPEN', next_seq: 0 });
  const audit = await world.db.orm.em.fork().execute<{ step: string }[]>(`select step from card_session_audit where session_id = ? order by id`, [sessionUuid(m.session.id)]);
  expect(audit.map((a) => a.step)).toEqual(['open']);
  await refill();
});

/** The bucket full again, for the tests after. */
async function refill() {
  await world.db.orm.em.fork().execute(`update graphql_cost_bucket set available = ? where bucket_key = ?`, [BUCKET, bucketKey]);
}
