/**
 * Clearing's pass runs under planner settings of its own (PASS_PLAN in clearing.ts: work_mem, no
 * merge join, no nested loop). They must end with the pass: not carried into the clearing's later
 * statements, nor into the caller's transaction, nor left on the pooled connection for whatever
 * runs on it next — after a clearing that commits and after one that fails in the pass. And the
 * ANALYZE clearing now runs before its transaction must not make clearings that run at once (the
 * cities of one day, one window twice) fail or book twice.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { createCity, createFeePlan, createMerchant } from '../tenancy/tenancy.service.js';
import { recordClearingItem } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { closeWindow } from './windows.js';

let n = 0;
const at = (local: string) => new Date(`${local}+08:00`);

/** A city whose window for `day` is closed, with `sales` sales of `amount` to one shop on a 100 % plan. */
async function closedWindow(em: EntityManager, code: string, day: string, amount: bigint, sales = 1) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  const plan = await createFeePlan(em, { name: `pass settings ${code}`, basisPoints: 10_000, fixedFee: 0n, minimumFee: 0n, currency: 'CNY' });
  const shop = await createMerchant(em, { cityId: city.id, name: `${code} shop`, feePlanId: plan.id });
  for (let k = 0; k < sales; k++) {
    const key = `pass-settings:${++n}`;
    await em.transactional((tx) => recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: shop.id }, cardCompanyId: cardCompany.id, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(`${day}T10:00:00`) }));
  }
  return closeWindow(em, { cityId: city.id, businessDay: day, closedBy: 'test', cutoff: '02:00', now: new Date(at(`${day}T09:00:00`).getTime() + 86_400_000) });
}

const settings = async (em: EntityManager) =>
  (await em.execute<Record<string, string>[]>(`select current_setting('work_mem') as work_mem, current_setting('enable_nestloop') as nestloop, current_setting('enable_mergejoin') as mergejoin`))[0];

describe('the pass’s planner settings', () => {
  let db: TestDatabase;
  let em: EntityManager;
  // One connection: what a clearing leaves on it, the next statement sees.
  beforeAll(async () => {
    db = await freshDatabase({ poolMax: 1 });
    em = db.orm.em.fork();
  });
  afterAll(() => db.close());

  it('end with the pass: the connection after a clearing that commits or fails, and the caller’s transaction after it, keep their own', async () => {
    const before = await settings(em);
    expect(before).toEqual({ work_mem: '4MB', nestloop: 'on', mergejoin: 'on' });

    await clearWindow(em, (await closedWindow(em, 'PSA', '2026-05-04', 1_000n)).id);
    expect(await settings(em)).toEqual(before);

    // 9·10^15 fen at 10,000 bp overflows bigint in the pass's fee: the clearing fails there, and rolls back whole.
    const failing = await closedWindow(em, 'PSB', '2026-05-05', 9_000_000_000_000_000n);
    await expect(clearWindow(em, failing.id)).rejects.toThrow(/bigint out of range/);
    expect(await settings(em)).toEqual(before);
    expect(await em.execute(`select w.status, (select count(*)::int from settlement_batch b where b.window_id = w.id) as batches from settlement_window w where w.id = ?`, [failing.id])).toEqual([{ status: 'CLOSED', batches: 0 }]);

    const window = await closedWindow(em, 'PSC', '2026-05-06', 1_000n);
    await em.transactional(async (tx) => {
      await clearWindow(tx, window.id);
      expect(await settings(tx)).toEqual(before);
      await expect(clearWindow(tx, failing.id)).rejects.toThrow(/bigint out of range/);
      expect(await settings(tx)).toEqual(before);
    });
    expect(await settings(em)).toEqual(before);
  });
});

describe('clearings at once, each analyzing first', () => {
  let db: TestDatabase;
  let em: EntityManager;
  beforeAll(async () => {
    db = await freshDatabase();
    em = db.orm.em.fork();
  });
  afterAll(() => db.close());

  it('four cities of one day cleared at once, each window twice: all succeed, one batch per window, the same one', async () => {
    const windows = [];
    for (const code of ['CCA', 'CCB', 'CCC', 'CCD']) windows.push(await closedWindow(em, code, '2026-05-07', 100n, 50));
    const batches = await Promise.all([...windows, ...windows].map((w) => clearWindow(db.orm.em.fork(), w.id)));
    expect(batches.slice(0, 4)).toEqual(batches.slice(4));
    expect(batches.map((b) => b.gross)).toEqual(Array(8).fill('5000'));
    expect(await em.execute(`select count(*)::int as n from settlement_batch`)).toEqual([{ n: 4 }]);
  });
});
