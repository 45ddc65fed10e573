import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { type TokenStatus, TokenStatusCache } from './token-status-cache.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

const LIVE: TokenStatus = { kind: 'MERCHANT', tenant_id: null, disabled: false, live: true };

/** A reader of the database that counts its calls. */
function counted(status: TokenStatus | null = LIVE) {
  const read = async () => {
    read.calls++;
    return status;
  };
  read.calls = 0;
  return read;
}

/** Waits until `cond` holds (a notice is asynchronous); fails after 10 s. */
async function until(cond: () => boolean) {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > 10_000) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('a status is read once per client and token, then kept', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url });
  await cache.start();
  try {
    const read = counted();
    expect(await cache.statusOf('c1', 'j1', read)).toEqual(LIVE);
    expect(await cache.statusOf('c1', 'j1', read)).toEqual(LIVE);
    expect(read.calls).toBe(1);
    await cache.statusOf('c1', 'j2', read);
    expect(read.calls).toBe(2);
  } finally {
    await cache.close();
  }
});

it('is bounded: beyond its size the oldest entry goes', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url, maxEntries: 3 });
  await cache.start();
  try {
    const read = counted();
    for (const jti of ['j1', 'j2', 'j3', 'j4', 'j5']) await cache.statusOf('c', jti, read);
    expect(cache.size).toBe(3);
    await cache.statusOf('c', 'j5', read);
    expect(read.calls).toBe(5);
    await cache.statusOf('c', 'j1', read); // evicted: read again
    expect(read.calls).toBe(6);
  } finally {
    await cache.close();
  }
});

it('a token revocation or a client change written anywhere empties it', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url });
  await cache.start();
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  try {
    for (const write of [
      `insert into revoked_access_token (jti, client_id, expires_at) values ('x', 'y', now() + interval '1 minute')`,
      `update oauth_client set disabled = true where false`,
    ]) {
      await cache.statusOf('c', 'j', counted());
      expect(cache.size).toBe(1);
      await other.query(write);
      await until(() => cache.size === 0);
    }
  } finally {
    await other.end();
    await cache.close();
  }
});

it('a read that started before a change is not kept after it', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url });
  await cache.start();
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  try {
    // While the status is being read, the client is changed elsewhere and the notice arrives.
    await cache.statusOf('c', 'j', async () => {
      await cache.statusOf('c', 'witness', counted());
      expect(cache.size).toBe(1);
      await other.query(`update oauth_client set disabled = true where false`);
      await until(() => cache.size === 0); // the notice emptied the cache
      return LIVE;
    });
    expect(cache.size).toBe(0);
  } finally {
    await other.end();
    await cache.close();
  }
});

it('a lost listening connection empties it; nothing is kept until it listens again', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url });
  await cache.start();
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  try {
    await cache.statusOf('c', 'j', counted());
    const listener = `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query like 'listen %'`;
    expect((await other.query(listener)).rowCount).toBe(1);
    await until(() => cache.size === 0);
    const read = counted();
    await cache.statusOf('c', 'j', read);
    expect(cache.size).toBe(0); // not listening: not kept
    // It listens again by itself, and keeps again.
    await until(() => {
      void cache.statusOf('c', 'j', read);
      return cache.size === 1;
    });
  } finally {
    await other.end();
    await cache.close();
  }
});

it('nothing is served from it while it is not listening (its connection lost or never made)', async () => {
  const cache = new TokenStatusCache({ databaseUrl: db.url.replace(/\/[^/]+$/, '/no_such_database') });
  await cache.start();
  try {
    const read = counted();
    await cache.statusOf('c', 'j', read);
    await cache.statusOf('c', 'j', read);
    expect(read.calls).toBe(2);
    expect(cache.size).toBe(0);
  } finally {
    await cache.close();
  }
});
