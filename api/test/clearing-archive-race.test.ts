/**
 * Review of issue 23 item 3 (`onecard partitions archive`): the archive checks that every item of the
 * month is in a SETTLED window, then detaches the partition. A late item of that month (an offline
 * ride uploaded after its day was settled) is booked into the next OPEN window but keeps its business
 * day, so it lands in the month's partition. Booked while the archive runs — after the check, before
 * the detach takes its lock — it is exported and dropped with the month although its window has not
 * been cleared: the merchant's payable holds it, settlement never sees it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { payableAccount } from '../src/ledger/accounts.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { archiveClearingMonth } from '../src/settlement/clearing-archive.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { createPartitionsAhead } from '../src/settlement/clearing-partitions.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { applyPayout } from '../src/settlement/payouts.js';
import { closeWindow } from '../src/settlement/windows.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let em: EntityManager;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-archive-race-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  await db.close();
});

const at = (local: string) => new Date(`${local}+08:00`);

/** A sale booked as the flows book it: the ledger entry and its clearing item in one transaction. */
async function sale(tx: EntityManager, merchantId: string, cardCompanyId: string, key: string, amount: bigint, local: string) {
  const funding = await openAccount(tx, { code: 'test.archive-race.purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(tx, 'MERCHANT', merchantId, 'CNY');
  await post(tx, { key, description: 'a sale', lines: [debit(funding.id, amount), credit(payable.id, amount)] });
  await recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(local) });
}

/** Closes and clears the day's window, and the gateway pays its payouts: SETTLED. */
async function settle(cityId: string, day: string) {
  const window = await closeWindow(em, { cityId, businessDay: day, closedBy: 'test', cutoff: '02:00', now: at('2026-12-01T09:00:00') });
  const batch = await clearWindow(em, window.id);
  const payouts = await em.execute<{ id: string; amount: string; currency: string }[]>(`select p.id, p.amount::text, btrim(p.currency) as currency from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
  for (const p of payouts) {
    expect(await applyPayout(em, { id: `po_${p.id.slice(0, 8)}`, object: 'payout', amount: Number(p.amount), currency: p.currency.toLowerCase(), status: 'paid', metadata: { settlementPayout: p.id }, created: 0, arrival_date: 0 })).toBe('applied');
  }
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

it('an item of the month booked into a window still OPEN while the archive runs is not archived and dropped with the month', async () => {
  const { city, cardCompany } = await createCity(em, { code: 'RAC', name: 'Race City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Race Card Co' });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Race Shop' });
  await em.transactional((tx) => sale(tx, shop.id, cardCompany.id, 'race:settled', 1_000n, '2026-09-05T10:00:00'));
  await createPartitionsAhead(em);
  await settle(city.id, '2026-09-05');

  // A late ride of 5 September is booked: its day is settled, so it goes into the next window (6 September, OPEN).
  const booked = deferred();
  const release = deferred();
  const booking = db.orm.em.fork().transactional(async (tx) => {
    await sale(tx, shop.id, cardCompany.id, 'race:late', 400n, '2026-09-05T21:00:00');
    booked.resolve();
    await release.promise;
  });
  await booked.promise;

  // The archive checks September (the late item is not committed yet), then waits for the booking's lock to detach.
  const archiving = archiveClearingMonth(db.orm.em.fork(), db.url, { month: '2026-09', dir }).then(
    (r) => r,
    (e: unknown) => e,
  );
  const watcher = db.orm.em.fork();
  for (;;) {
    const [waiting] = await watcher.execute<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike 'alter table clearing_item detach%'`);
    if (waiting!.n > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  release.resolve();
  await booking;
  const outcome = await archiving;

  // Refused or archived without it, either is sound; the late item must stay for the clearing of 6 September's window.
  const late = await em.execute(`select w.business_day::text as window_day, w.status from clearing_item i join settlement_window w on w.id = i.window_id where i.entry_key = 'race:late'`);
  expect(late, `archive answered ${outcome instanceof Error ? outcome.message : JSON.stringify((outcome as { totals: unknown }).totals)}`).toEqual([{ window_day: '2026-09-06', status: 'OPEN' }]);
});
