/**
 * Settlement windows: what an operator's or the job's close refuses and what it writes, an item
 * and the close of its window at once (an item lands in exactly one window), and the list the
 * settlement queries read.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { recordClearingItem } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { closeDueWindows, closeWindow, ensureWindow, listWindows, openUpcomingWindows, windowForNewItem, windowOf } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const at = (local: string) => new Date(`${local}+08:00`);

describe('closing a window', () => {
  it('refuses a day that is not a date and a city that does not exist, each with its field, and writes nothing', async () => {
    const { city } = await createCity(em, { code: 'WNA', name: 'City WNA', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WNA Card Co' });
    const close = (businessDay: string, cityId = city.id) => closeWindow(em, { cityId, businessDay, closedBy: 'operator', cutoff: '02:00', now: at('2026-03-10T09:00:00') });
    for (const day of ['2026-3-02', '2026-03-02T00:00', ' 2026-03-02', '2026-13-01', '2026-03-32']) {
      await expect(close(day), day).rejects.toMatchObject({ code: 'INVALID_INPUT', message: 'a business day is YYYY-MM-DD', field: 'businessDay' });
    }
    const nowhere = '00000000-0000-4000-8000-000000000000';
    await expect(close('2026-03-02', nowhere)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no city ${nowhere}`, field: 'city' });
    const [{ n }] = await em.execute<{ n: number }[]>(`select count(*)::int as n from settlement_window where city_id = ?`, [city.id]);
    expect(n).toBe(0);
  });

  it('closes the day and every earlier open day with the cut-off on the next local day; a closed window closed again is answered as it is', async () => {
    const { city } = await createCity(em, { code: 'WNB', name: 'City WNB', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WNB Card Co' });
    await ensureWindow(em, city.id, '2026-03-01', '02:00');
    const closed = await closeWindow(em, { cityId: city.id, businessDay: '2026-03-03', closedBy: 'operator', cutoff: '04:30', now: at('2026-03-04T09:00:00') });
    expect(closed).toMatchObject({ status: 'CLOSED', closed_by: 'operator' });
    const rows = await em.execute<{ business_day: string; status: string; closed_by: string | null; cutoff_at: Date | string }[]>(
      `select business_day::text, status, closed_by, cutoff_at from settlement_window where city_id = ? order by business_day`,
      [city.id],
    );
    expect(rows.map((r) => [r.business_day, r.status, r.closed_by, new Date(r.cutoff_at).toISOString()])).toEqual([
      ['2026-03-01', 'CLOSED', 'operator', at('2026-03-02T04:30:00').toISOString()],
      ['2026-03-03', 'CLOSED', 'operator', at('2026-03-04T04:30:00').toISOString()],
    ]);
    const again = await closeWindow(em, { cityId: city.id, businessDay: '2026-03-03', closedBy: 'someone else', cutoff: '06:00', now: at('2026-03-05T09:00:00') });
    expect(again).toEqual(await windowOf(em, city.id, '2026-03-03'));
    expect(again).toMatchObject({ id: closed.id, closed_by: 'operator', status: 'CLOSED' });
  });
});

async function shopIn(code: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  const shop = await createMerchant(em, { cityId: city.id, name: `${code} Shop` });
  return { cityId: city.id, cardCompanyId: cardCompany.id, shopId: shop.id };
}
type Shop = Awaited<ReturnType<typeof shopIn>>;

let sales = 0;
/** A card payment to the shop, as a payment's settlement records it. */
const sale = (c: Shop, amount: bigint, occurredAt: Date) => ({
  kind: 'PAYMENT' as const,
  participant: { kind: 'MERCHANT' as const, id: c.shopId },
  cardCompanyId: c.cardCompanyId,
  amount,
  currency: 'CNY',
  entryKey: `window-sale:${++sales}`,
  reference: `window-sale-${sales}`,
  occurredAt,
});

const windowsOfItems = async (c: Shop) =>
  Object.fromEntries((await em.execute<{ amount: number; window_id: string | null }[]>(`select amount::int as amount, window_id from clearing_item where city_id = ? order by id`, [c.cityId])).map((i) => [i.amount, i.window_id]));

/** Waits until `n` sessions of this test's database wait for a lock: the interleaving set up has been reached. */
async function lockWaiters(n: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const [row] = await em.execute<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    if (row!.n >= n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${n} transactions never waited for a lock`);
}

/** A transaction of its own that runs `work` and stays open until commit(): an item being written, a lock held. */
function openTransaction(work: (tx: EntityManager) => Promise<unknown>) {
  let commit!: () => void;
  const mayCommit = new Promise<void>((resolve) => (commit = resolve));
  let worked!: () => void;
  const didWork = new Promise<void>((resolve) => (worked = resolve));
  const done = db.orm.em.fork().transactional(async (tx) => {
    await work(tx);
    worked();
    await mayCommit;
  });
  return {
    worked: Promise.race([didWork, done]),
    async commit() {
      commit();
      await done;
    },
  };
}

describe('closing a window, continued', () => {
  it('an operator may close today’s window early (its day has begun), not tomorrow’s; the move is in the window’s status trail', async () => {
    const { city } = await createCity(em, { code: 'WNC', name: 'City WNC', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WNC Card Co' });
    const now = at('2026-03-10T15:00:00');
    await expect(closeWindow(em, { cityId: city.id, businessDay: '2026-03-11', closedBy: 'operator', cutoff: '02:00', now })).rejects.toMatchObject({
      code: 'WINDOW_NOT_STARTED',
      message: '2026-03-11 has not begun in this city (today is 2026-03-10)',
      field: 'businessDay',
    });
    expect(await windowOf(em, city.id, '2026-03-11')).toBeNull();
    const today = await closeWindow(em, { cityId: city.id, businessDay: '2026-03-10', closedBy: 'operator', cutoff: '02:00', now });
    expect(today).toMatchObject({ business_day: '2026-03-10', status: 'CLOSED', closed_by: 'operator' });
    const trail = await em.execute(`select from_status, to_status, cause from status_history where machine = 'settlement_window' and row_id = ? order by id`, [today.id]);
    expect(trail).toEqual([{ from_status: 'OPEN', to_status: 'CLOSED', cause: 'closed by operator' }]);
  });

  it('opening the window of a city that does not exist is refused on the city', async () => {
    const nowhere = '00000000-0000-4000-8000-000000000001';
    await expect(ensureWindow(em, nowhere, '2026-03-02', '02:00')).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no city ${nowhere}`, field: 'city' });
  });

  it('the cut-off job closes every open window whose cut-off has passed, earlier days too, and answers each; a window whose cut-off has not passed stays open', async () => {
    const c = await shopIn('WND');
    // Sales open their days' windows, with the default cut-off (02:00 the next local day).
    for (const day of ['2026-05-01', '2026-05-02', '2026-05-03']) await recordClearingItem(em, sale(c, 10n, at(`${day}T10:00:00`)));
    expect(new Date((await windowOf(em, c.cityId, '2026-05-01'))!.cutoff_at).toISOString()).toBe(at('2026-05-02T02:00:00').toISOString());
    const closed = (await closeDueWindows(em, { cutoff: '02:00', now: at('2026-05-03T02:00:00') })).filter((w) => w.city_id === c.cityId);
    expect(closed.map((w) => [w.business_day, w.status, w.closed_by]).sort()).toEqual([
      ['2026-05-01', 'CLOSED', 'cut-off'],
      ['2026-05-02', 'CLOSED', 'cut-off'],
    ]);
    expect(await windowOf(em, c.cityId, '2026-05-03')).toMatchObject({ status: 'OPEN' });
  });
});

describe('opening windows ahead', () => {
  it('the job opens today’s and tomorrow’s (local) with the configured cut-off, and none behind a day already closed (a run whose clock is a day behind)', async () => {
    const { city } = await createCity(em, { code: 'WOA', name: 'City WOA', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WOA Card Co' });
    await openUpcomingWindows(em, { cutoff: '03:00', now: at('2026-07-10T12:00:00') });
    const cutoffOf = async (day: string) => new Date((await windowOf(em, city.id, day))!.cutoff_at).toISOString();
    expect([await cutoffOf('2026-07-10'), await cutoffOf('2026-07-11')]).toEqual([at('2026-07-11T03:00:00').toISOString(), at('2026-07-12T03:00:00').toISOString()]);
    await closeWindow(em, { cityId: city.id, businessDay: '2026-07-10', closedBy: 'operator', cutoff: '03:00', now: at('2026-07-10T15:00:00') });
    // Items of 9 July would go into 11 July's window now: a window of the 9th would stay empty.
    await openUpcomingWindows(em, { cutoff: '03:00', now: at('2026-07-09T12:00:00') });
    expect(await windowOf(em, city.id, '2026-07-09')).toBeNull();
    expect(await windowOf(em, city.id, '2026-07-10')).toMatchObject({ status: 'CLOSED' });
  });
});

describe('an item and the close of its window at once: the item lands in exactly one window', () => {
  it('an item whose transaction is still open when its window starts closing: the close waits for it (a closed window’s items no longer change), and the window’s batch counts it', async () => {
    const c = await shopIn('WRA');
    await recordClearingItem(em, sale(c, 100n, at('2026-05-04T10:00:00')));
    const inFlight = openTransaction((tx) => recordClearingItem(tx, sale(c, 250n, at('2026-05-04T11:00:00'))));
    await inFlight.worked;
    const closing = closeWindow(db.orm.em.fork(), { cityId: c.cityId, businessDay: '2026-05-04', closedBy: 'cut-off', cutoff: '02:00', now: at('2026-05-05T02:00:00') });
    try {
      expect(await Promise.race([lockWaiters(1).then(() => 'the close waits for the item'), closing.then(() => 'closed while the item was being written')])).toBe('the close waits for the item');
    } finally {
      await inFlight.commit();
    }
    const closed = await closing;
    expect(closed).toMatchObject({ business_day: '2026-05-04', status: 'CLOSED' });
    expect(await windowsOfItems(c)).toEqual({ 100: closed.id, 250: closed.id });
    expect(await clearWindow(em, closed.id)).toMatchObject({ item_count: '2', gross: '350' });
  });

  it('an item of a day whose window is closing right now waits for the close, then goes into the next day’s window (recorded as a sale is, or asked for as an offline upload asks); an item from before windows joins the closing one', async () => {
    const c = await shopIn('WRB');
    await recordClearingItem(em, sale(c, 100n, at('2026-05-04T10:00:00')));
    // An item from before items were written into windows: the close takes it in. Its row, locked
    // here, stops the close half-way, holding its window's row.
    const legacy = sale(c, 40n, at('2026-05-04T09:00:00'));
    await em.execute(
      `insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference)
       values (?, '2026-05-04', null, 'PAYMENT', 'MERCHANT', ?, ?, 40, 'CNY', ?, ?, ?)`,
      [c.cityId, c.shopId, c.cardCompanyId, legacy.occurredAt, legacy.entryKey, legacy.reference],
    );
    const held = openTransaction((tx) => tx.execute(`select id from clearing_item where entry_key = ? for update`, [legacy.entryKey]));
    await held.worked;
    const closing = closeWindow(db.orm.em.fork(), { cityId: c.cityId, businessDay: '2026-05-04', closedBy: 'operator', cutoff: '02:00', now: at('2026-05-05T09:00:00') });
    let recorded!: Promise<void>;
    let asked!: Promise<string>;
    try {
      await lockWaiters(1);
      recorded = recordClearingItem(db.orm.em.fork(), sale(c, 300n, at('2026-05-04T23:00:00')));
      asked = windowForNewItem(db.orm.em.fork(), c.cityId, '2026-05-04');
      await lockWaiters(3);
    } finally {
      await held.commit();
    }
    const closed = await closing;
    await recorded;
    const next = await windowOf(em, c.cityId, '2026-05-05');
    expect(next).toMatchObject({ status: 'OPEN' });
    expect(await asked).toBe(next!.id);
    expect(closed).toMatchObject({ business_day: '2026-05-04', status: 'CLOSED' });
    expect(await windowsOfItems(c)).toEqual({ 100: closed.id, 40: closed.id, 300: next!.id });
    expect(await clearWindow(em, closed.id)).toMatchObject({ item_count: '2', gross: '140' });
  });
});

describe('listing windows (the settlement queries)', () => {
  it('newest business day first, by city, status and days (both bounds included), in pages after a day and id, at most the limit', async () => {
    const { city: a } = await createCity(em, { code: 'WLA', name: 'City WLA', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WLA Card Co' });
    const { city: b } = await createCity(em, { code: 'WLB', name: 'City WLB', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'WLB Card Co' });
    const w = Object.fromEntries(await Promise.all(['2026-06-01', '2026-06-02', '2026-06-03'].map(async (day) => [day, await ensureWindow(em, a.id, day, '02:00')] as const)));
    const other = await ensureWindow(em, b.id, '2026-06-02', '02:00');
    await closeWindow(em, { cityId: a.id, businessDay: '2026-06-01', closedBy: 'operator', cutoff: '02:00', now: at('2026-06-03T09:00:00') });
    const list = async (p: Partial<Parameters<typeof listWindows>[1]>) => (await listWindows(em, { cityIds: [a.id], limit: 10, ...p })).map((r) => `${r.city_code} ${r.business_day} ${r.status}`);

    expect(await list({})).toEqual(['WLA 2026-06-03 OPEN', 'WLA 2026-06-02 OPEN', 'WLA 2026-06-01 CLOSED']);
    expect(await list({ status: 'CLOSED' })).toEqual(['WLA 2026-06-01 CLOSED']);
    expect(await list({ status: 'OPEN', from: '2026-06-02' })).toEqual(['WLA 2026-06-03 OPEN', 'WLA 2026-06-02 OPEN']);
    expect(await list({ to: '2026-06-02' })).toEqual(['WLA 2026-06-02 OPEN', 'WLA 2026-06-01 CLOSED']);
    expect(await list({ from: '2026-06-02', to: '2026-06-02' })).toEqual(['WLA 2026-06-02 OPEN']);
    expect(await list({ limit: 2 })).toEqual(['WLA 2026-06-03 OPEN', 'WLA 2026-06-02 OPEN']);
    expect(await list({ after: { day: '2026-06-02', id: w['2026-06-02']!.id }, limit: 2 })).toEqual(['WLA 2026-06-01 CLOSED']);
    // A principal that sees no city sees no window.
    expect(await list({ cityIds: [] })).toEqual([]);
    // Two cities: one day's windows by id, newest first; every city (the operator) includes both.
    const sameDay = [w['2026-06-02']!.id, other.id].sort().reverse();
    expect((await listWindows(em, { cityIds: [a.id, b.id], from: '2026-06-02', to: '2026-06-02', limit: 10 })).map((r) => r.id)).toEqual(sameDay);
    expect((await listWindows(em, { from: '2026-06-02', to: '2026-06-02', limit: 10 })).map((r) => r.id)).toEqual(expect.arrayContaining(sameDay));
    // No filter at all: every window of every city.
    const [{ n }] = await em.execute<{ n: number }[]>(`select count(*)::int as n from settlement_window`);
    expect(await listWindows(em, { limit: 1_000 })).toHaveLength(n);
  });
});
