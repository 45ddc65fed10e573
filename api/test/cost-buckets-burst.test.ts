/**
 * Found by review (issue 20, online half), seen failing first. At the unit level: CostBuckets.charge (the write-behind charge of
 * every query and of the gateway-calling mutations) decides from a read of the bucket less what this
 * process had charged *when the read started*. Requests whose reads overlap (any burst: the read
 * is a database round trip) each see the bucket untouched by the others, so all of them pass.
 *
 * The database here is a stand-in that answers the bucket's read as PostgreSQL would while no
 * charge has been written yet (the write is deferred until after the reads, as the event loop
 * orders it when the reads are in flight together), and records the batched write.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CostBuckets } from '../src/graphql/cost-throttle.js';

const SIZE = 600;
const COST = 60;

/** A bucket of SIZE points in a stand-in database: reads answer what has been written so far. */
function standInDatabase() {
  let written = 0;
  const writes: string[] = [];
  const execute = async (sql: string, params: unknown[]) => {
    // A round trip: every read started in this turn is in flight together.
    await new Promise((r) => setTimeout(r, 5));
    if (/^\s*select least/.test(sql)) return [{ available: SIZE - written }];
    if (/jsonb_each_text/.test(sql)) {
      const sums = JSON.parse(params[0] as string) as Record<string, number>;
      written += Object.values(sums).reduce((a, b) => a + Number(b), 0);
      writes.push(sql);
      return [];
    }
    // chargeCost's conditional upsert (a bucket half full or less): atomic on the stand-in too.
    const cost = Number(params[3]);
    const ok = SIZE - written >= cost;
    if (ok) written += cost;
    return [{ available: SIZE - written, last_charged: ok }];
  };
  const em = { execute, getConnection: () => ({ execute }) } as unknown as EntityManager;
  return { em, written: () => written };
}

describe('CostBuckets.charge under a burst', () => {
  it('20 charges of 60 started together against a full 600-point bucket: at most 10 are allowed (the bucket is not overspent)', async () => {
    const db = standInDatabase();
    const buckets = new CostBuckets({ maximumAvailable: SIZE, restoreRate: 1 }, pino({ level: 'silent' }));
    const results = await Promise.all(Array.from({ length: 20 }, () => buckets.charge(db.em, 'ip:burst', COST)));
    await buckets.close();
    const allowed = results.filter((r) => r.charged).length;
    expect(allowed).toBeLessThanOrEqual(SIZE / COST);
  });
});
