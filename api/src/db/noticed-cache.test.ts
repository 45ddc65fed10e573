import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { SESSION_READS_CHANNEL } from '../readers/session/session-reads.js';
import { NoticedCache } from './noticed-cache.js';

let db: TestDatabase;
let other: pg.Client;
beforeAll(async () => {
  db = await freshDatabase();
  other = new pg.Client({ connectionString: db.url });
  await other.connect();
});
afterAll(async () => {
  await other?.end();
  await db?.close();
});

/** A reader of the database that counts its calls. */
function counted(keep = true) {
  const read = async () => {
    read.calls++;
    return { value: 'row', keep };
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

async function withCache(body: (cache: NoticedCache) => Promise<void>, databaseUrl = db.url) {
  const cache = new NoticedCache({ databaseUrl, channel: SESSION_READS_CHANNEL });
  await cache.start();
  try {
    await body(cache);
  } finally {
    await cache.close();
  }
}

it('a value is read once, then kept; one its reader says not to keep is read every time', () =>
  withCache(async (cache) => {
    const read = counted();
    expect(await cache.get('a', read)).toBe('row');
    expect(await cache.get('a', read)).toBe('row');
    expect(read.calls).toBe(1);
    const fresh = counted(false);
    await cache.get('b', fresh);
    await cache.get('b', fresh);
    expect(fresh.calls).toBe(2);
  }));

// Every path that rotates, retires, disables or adds what sessions keep writes one of these tables.
it.each([
  ['a host key retired or made', `delete from host_signing_key where false`],
  ['a CA replaced or its revocations counted', `update certificate_authority set revocations = revocations where false`],
  ['a card profile set', `update card_profile set updated_at = now() where false`],
  ['a card company changed', `update card_company set name = name where false`],
  ['a city taking another city’s cards', `delete from city_interoperation where false`],
  ['a master key activated, retired or added', `update card_master_key set retired_at = now() where false`],
])('%s, written anywhere, empties it', (_what, write) =>
  withCache(async (cache) => {
    await cache.get('k', counted());
    expect(cache.size).toBe(1);
    await other.query(write);
    await until(() => cache.size === 0);
  }),
);

it('a read that started before a change is not kept after it', () =>
  withCache(async (cache) => {
    await cache.get('k', async () => {
      await cache.get('witness', counted());
      await other.query(`update card_master_key set retired_at = now() where false`);
      await until(() => cache.size === 0); // the notice emptied the cache
      return { value: 'row read before the change', keep: true };
    });
    expect(cache.size).toBe(0);
  }));

it('nothing is served from it while it is not listening (its connection never made)', () =>
  withCache(async (cache) => {
    const read = counted();
    await cache.get('k', read);
    await cache.get('k', read);
    expect(read.calls).toBe(2);
    expect(cache.size).toBe(0);
  }, db.url.replace(/\/[^/]+$/, '/no_such_database')));
