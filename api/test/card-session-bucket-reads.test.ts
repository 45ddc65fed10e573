/**
 * The check of a caller's cost bucket before a card-session request (graphql/cost-throttle.ts,
 * `CostBuckets.available`) stands on what the caller's last charge read back, for two seconds,
 * while the bucket is at least half full: no read of its own (issue 20: a round trip on every
 * request). What must not change for the caller: a bucket another process emptied meanwhile still
 * refuses the request (THROTTLED, 429, nothing opened), in the request's own transaction; near the
 * limit the bucket is read again before the request runs. Real HTTP on the world's API process.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { beforeAll, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { newReader, OPEN, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql } from './support/server.js';

// Every statement the API's pooled clients send (MikroORM's copy of `pg`), counted from before the
// world's database and pool exist (the pool's clients send through the query they had when they connected).
const sent: string[] = [];
const require = createRequire(import.meta.url);
const ormPg = createRequire(require.resolve('@mikro-orm/postgresql'))('pg') as typeof pg;
const query = ormPg.Client.prototype.query;
ormPg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  if (typeof args[0] === 'string') sent.push(args[0]);
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

const BUCKET = 10_000;
const world = useCardSessionWorld({ env: () => ({ GRAPHQL_COST_BUCKET: String(BUCKET), GRAPHQL_COST_RESTORE_RATE: '1' }) });

let desk: TestReader;
let token: string;
let bucketKey: string;

beforeAll(async () => {
  desk = await newReader(world, 'BUCKET-DESK', world.gz);
  const scopes = 'topups:write cards:read';
  const made = await createClient(world.db.orm.em.fork(), { kind: 'ISSUER', tenantId: world.gz.cardCompanyId, name: 'bucket reads issuer', scopes: scopes.split(' ') });
  bucketKey = `client:${made.client.client_id}`;
  token = (await clientCredentialsToken(await discover(world.server.url), made.client.client_id, made.clientSecret!, scopes)).access_token;
});

const open = () => graphql(world.server.url, OPEN, { input: { reader: desk.id, operation: 'BALANCE' } }, { authorization: `Bearer ${token}` });
const bucketReads = () => sent.filter((s) => /from graphql_cost_bucket where bucket_key/.test(s)).length;
const sessions = async () =>
  Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from card_session where reader_id = ?`, [fromGlobalId(desk.id, 'Reader').id]))[0]!.n);
const setBucket = (available: number) => world.db.orm.em.fork().execute(`update graphql_cost_bucket set available = ?, updated_at = clock_timestamp() where bucket_key = ?`, [available, bucketKey]);

it('a request right after a charge of the same caller is checked against what that charge read back: no read of the bucket', async () => {
  expect((await open()).body.data.openCardSession.session.state).toBe('OPEN'); // the first: its bucket read, then charged
  sent.length = 0;
  const second = await open();
  expect(second.body.data.openCardSession.session.state).toBe('OPEN');
  expect(bucketReads()).toBe(0);
  expect(second.body.extensions.cost.throttleStatus.currentlyAvailable).toBeLessThan(BUCKET);
});

it('a bucket another process emptied since: the request is still refused (THROTTLED, 429) by its own transaction, and opens nothing', async () => {
  await open();
  await setBucket(0);
  const before = await sessions();
  sent.length = 0;
  const refused = await open();
  expect(refused.status).toBe(429);
  expect(refused.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['THROTTLED']);
  expect(await sessions()).toBe(before);
  // The refusal read the bucket back as it is: the next request reads the row, and is refused before it runs.
  sent.length = 0;
  expect((await open()).status).toBe(429);
  expect(bucketReads()).toBe(1);
  expect(sent.some((s) => /insert into card_session\b/.test(s))).toBe(false);
  expect(await sessions()).toBe(before);
  await setBucket(BUCKET);
});

it('a bucket under half full is read before each request', async () => {
  await setBucket(BUCKET / 4);
  await open(); // read (the row is below half), charged: what it read back is below half too
  sent.length = 0;
  expect((await open()).body.data.openCardSession.session.state).toBe('OPEN');
  expect(bucketReads()).toBe(1);
  await setBucket(BUCKET);
});
