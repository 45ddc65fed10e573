/**
 * Clearing plans its pass over a window with statistics that know the window's items (issue 23):
 * it analyzes the window's month partition when the statistics are older than the window's close,
 * and only then, so the cities of one day pay for one ANALYZE, not one each.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { recordClearingItem } from './clearing-items.js';
import { partitionHolding } from './clearing-partitions.js';
import { clearWindow } from './clearing.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
const at = (local: string) => new Date(`${local}+08:00`);

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

/** A city with a shop that sold something on `day`. */
async function cityWithASale(code: string, day: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  const shop = await createMerchant(em, { cityId: city.id, name: `${code} shop` });
  const key = `statistics-test:${++n}`;
  await em.transactional((tx) =>
    recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: shop.id }, cardCompanyId: cardCompany.id, amount: 1_000n, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(`${day}T10:00:00`) }),
  );
  return city.id;
}

/** Closes the city's day the next morning (after the 02:00 cut-off). */
const close = (cityId: string, day: string) => closeWindow(em, { cityId, businessDay: day, closedBy: 'test', cutoff: '02:00', now: new Date(at(`${day}T09:00:00`).getTime() + 86_400_000) });

/** How many times the partition was analyzed by hand (autovacuum's analyses are counted apart). */
async function analyses(partition: string): Promise<number> {
  const [row] = await em.execute<{ n: string }[]>(`select analyze_count as n from pg_stat_user_tables where relid = to_regclass(?)`, [partition]);
  return Number(row!.n);
}

describe('statistics for clearing', () => {
  it('two cities closed for the same day: the first clearing analyzes their month partition, the second plans with those statistics', async () => {
    const day = '2026-05-04';
    const first = await cityWithASale('STA', day);
    const second = await cityWithASale('STB', day);
    const partition = await partitionHolding(em, day);
    const windows = [await close(first, day), await close(second, day)];
    const before = await analyses(partition);

    await clearWindow(em, windows[0]!.id);
    expect(await analyses(partition)).toBe(before + 1);
    await clearWindow(em, windows[1]!.id);
    expect(await analyses(partition)).toBe(before + 1);
  });

  it('statistics taken before the close do not count: the window may have taken items since', async () => {
    const day = '2026-05-05';
    const cityId = await cityWithASale('STC', day);
    const partition = await partitionHolding(em, day);
    await em.execute(`analyze ${partition}`);
    const before = await analyses(partition);
    const window = await close(cityId, day);

    await clearWindow(em, window.id);
    expect(await analyses(partition)).toBe(before + 1);
  });
});
