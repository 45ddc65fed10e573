import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SettlementError } from './settlement.errors.js';

export type { WindowStatus } from './settlement-machines.js';
import { type WindowStatus, windowMachine } from './settlement-machines.js';
import { NOW, sql, transitionWhere } from '../lifecycle/machine.js';

export interface WindowRow {
  id: string;
  city_id: string;
  city_code: string;
  time_zone: string;
  business_day: string;
  currency: string;
  status: WindowStatus;
  cutoff_at: Date;
  closed_at: Date | null;
  closed_by: string | null;
  cleared_at: Date | null;
  settled_at: Date | null;
  created_at: Date;
}

const WINDOW_COLUMNS = `w.id, w.city_id, c.code as city_code, c.time_zone, w.business_day::text as business_day, btrim(w.currency) as currency, w.status,
  w.cutoff_at, w.closed_at, w.closed_by, w.cleared_at, w.settled_at, w.created_at`;
const WINDOW_FROM = `settlement_window w join city c on c.id = w.city_id`;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `HH:MM` after local midnight ending the business day: when that day's window closes by itself. */
export type CutOff = string;

export async function windowById(em: EntityManager, id: string, lock = false): Promise<WindowRow | null> {
  const [row] = await em.execute<WindowRow[]>(`select ${WINDOW_COLUMNS} from ${WINDOW_FROM} where w.id = ?${lock ? ' for update of w' : ''}`, [id]);
  return row ?? null;
}

export async function windowOf(em: EntityManager, cityId: string, businessDay: string): Promise<WindowRow | null> {
  const [row] = await em.execute<WindowRow[]>(`select ${WINDOW_COLUMNS} from ${WINDOW_FROM} where w.city_id = ? and w.business_day = ?::date`, [cityId, businessDay]);
  return row ?? null;
}

/** The window of a city's business day, opened when first needed; its cut-off is the next local day at `cutoff`. */
export async function ensureWindow(em: EntityManager, cityId: string, businessDay: string, cutoff: CutOff): Promise<WindowRow> {
  await em.execute(
    `insert into settlement_window (id, city_id, business_day, currency, status, cutoff_at)
     select ?, c.id, ?::date, c.currency, 'OPEN', ((?::date + 1)::timestamp + ?::interval) at time zone c.time_zone from city c where c.id = ?
     on conflict (city_id, business_day) do nothing`,
    [randomUUID(), businessDay, businessDay, cutoff, cityId],
  );
  const window = await windowOf(em, cityId, businessDay);
  if (!window) throw new SettlementError('NOT_FOUND', `no city ${cityId}`, 'city');
  return window;
}

/** The cut-off a window opened by a transaction gets until the job applies the configured one. */
const DEFAULT_CUTOFF: CutOff = '02:00';

/**
 * The window a new item of `businessDay` goes into, locked (key share) until the caller's
 * transaction ends, so that a closing window waits for the items being written into it: its own
 * day's window while that is open; once that day (or a later one) has closed, the next day after
 * the last closed one — a late item is cleared in the next window, never lost, never twice. The
 * window is opened when it does not exist yet.
 */
export async function windowForNewItem(em: EntityManager, cityId: string, businessDay: string): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const [last] = await em.execute<{ day: string | null }[]>(`select max(business_day)::text as day from settlement_window where city_id = ? and status <> 'OPEN'`, [cityId]);
    const [target] = await em.execute<{ day: string }[]>(
      `select case when ?::date is not null and ?::date >= ?::date then (?::date + 1)::text else ?::text end as day`,
      [last?.day ?? null, last?.day ?? null, businessDay, last?.day ?? null, businessDay],
    );
    await ensureWindow(em, cityId, target!.day, DEFAULT_CUTOFF);
    // A window closing right now holds its row: this waits, then finds it closed and tries the next day.
    const [open] = await em.execute<{ id: string }[]>(`select id from settlement_window where city_id = ? and business_day = ?::date and status = 'OPEN' for key share`, [cityId, target!.day]);
    if (open) return open.id;
  }
  throw new Error(`no open settlement window for city ${cityId} after ${businessDay}`);
}

/**
 * Closes a city's window for `businessDay`, and first every earlier one still open, one window per
 * transaction. Items are written into a window while it is open (windowForNewItem, which holds
 * the window's row until its transaction ends), so closing waits for the items being written and
 * an item written after the close goes into the next window: an item belongs to exactly one
 * window. Holding one window lock at a time, a close never deadlocks with a transaction that writes
 * items of several days. Closing a closed window answers it as it is.
 */
export async function closeWindow(em: EntityManager, p: { cityId: string; businessDay: string; closedBy: string; cutoff: CutOff; now?: Date }): Promise<WindowRow> {
  if (!DAY.test(p.businessDay) || Number.isNaN(Date.parse(`${p.businessDay}T00:00:00Z`))) throw new SettlementError('INVALID_INPUT', 'a business day is YYYY-MM-DD', 'businessDay');
  const [city] = await em.execute<{ id: string; today: string }[]>(`select id, (?::timestamptz at time zone time_zone)::date::text as today from city where id = ?`, [p.now ?? new Date(), p.cityId]);
  if (!city) throw new SettlementError('NOT_FOUND', `no city ${p.cityId}`, 'city');
  if (p.businessDay > city.today) throw new SettlementError('WINDOW_NOT_STARTED', `${p.businessDay} has not begun in this city (today is ${city.today})`, 'businessDay');
  const existing = await windowOf(em, p.cityId, p.businessDay);
  if (existing && existing.status !== 'OPEN') return existing;
  const earlier = await em.execute<{ day: string }[]>(`select business_day::text as day from settlement_window where city_id = ? and status = 'OPEN' and business_day < ?::date order by business_day`, [p.cityId, p.businessDay]);
  for (const { day } of [...earlier, { day: p.businessDay }]) {
    await em.transactional(async (tx) => {
      const window = await ensureWindow(tx, p.cityId, day, p.cutoff);
      // Waits for the transactions writing items into it, then closes it.
      await tx.execute(`select id from settlement_window where id = ? for update`, [window.id]);
      // Items from before windows were written at once (none otherwise) join the window that closes.
      await tx.execute(`update clearing_item set window_id = ? where city_id = ? and window_id is null and business_day <= ?::date`, [window.id, p.cityId, day]);
      await transitionWhere(tx, windowMachine, {
        from: ['OPEN'],
        to: 'CLOSED',
        alias: 'w',
        using: 'city c',
        patch: { closed_at: NOW, closed_by: p.closedBy, cutoff_at: sql('((w.business_day + 1)::timestamp + ?::interval) at time zone c.time_zone', p.cutoff) },
        where: 'c.id = w.city_id and w.id = ?',
        params: [window.id],
        cause: `closed by ${p.closedBy}`,
      });
    });
  }
  return (await windowOf(em, p.cityId, p.businessDay))!;
}

/** Opens every city's windows of today and tomorrow (local) ahead of their first transaction, each in its own short transaction. */
export async function openUpcomingWindows(em: EntityManager, p: { cutoff: CutOff; now?: Date }): Promise<void> {
  const days = await em.execute<{ city_id: string; day: string }[]>(
    `select c.id as city_id, ((?::timestamptz at time zone c.time_zone)::date + d)::text as day
       from city c cross join (values (0), (1)) as ahead(d)
      where not exists (select 1 from settlement_window w where w.city_id = c.id and w.business_day = (?::timestamptz at time zone c.time_zone)::date + d)
        and not exists (select 1 from settlement_window w where w.city_id = c.id and w.status <> 'OPEN' and w.business_day >= (?::timestamptz at time zone c.time_zone)::date + d)`,
    [p.now ?? new Date(), p.now ?? new Date(), p.now ?? new Date()],
  );
  for (const { city_id, day } of days) await ensureWindow(em, city_id, day, p.cutoff);
}

/**
 * The cut-off: closes, per city, every open window whose cut-off (the configured time on the
 * next local day) has passed. Returns the windows it closed.
 */
export async function closeDueWindows(em: EntityManager, p: { cutoff: CutOff; now?: Date }): Promise<WindowRow[]> {
  const now = p.now ?? new Date();
  // Open windows show the configured cut-off (one opened by a transaction got the default).
  await em.execute(
    `update settlement_window w set cutoff_at = ((w.business_day + 1)::timestamp + ?::interval) at time zone c.time_zone
       from city c where c.id = w.city_id and w.status = 'OPEN' and w.cutoff_at <> ((w.business_day + 1)::timestamp + ?::interval) at time zone c.time_zone`,
    [p.cutoff, p.cutoff],
  );
  const due = await em.execute<{ city_id: string; day: string }[]>(
    `select city_id, max(business_day)::text as day from settlement_window where status = 'OPEN' and cutoff_at <= ?::timestamptz group by city_id`,
    [now],
  );
  const closed: WindowRow[] = [];
  for (const { city_id, day } of due) {
    const before = await em.execute<{ id: string }[]>(`select id from settlement_window where city_id = ? and status = 'OPEN' and business_day <= ?::date`, [city_id, day]);
    await closeWindow(em, { cityId: city_id, businessDay: day, closedBy: 'cut-off', cutoff: p.cutoff, now });
    for (const { id } of before) closed.push((await windowById(em, id))!);
  }
  return closed;
}

/** Windows in a city (or all cities), newest business day first, for the queries. */
export async function listWindows(
  em: EntityManager,
  p: { cityIds?: string[] | null; status?: WindowStatus | null; from?: string | null; to?: string | null; after?: { day: string; id: string } | null; limit: number },
): Promise<WindowRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (p.cityIds) {
    if (p.cityIds.length === 0) return [];
    where.push('w.city_id in (?)');
    params.push(p.cityIds);
  }
  if (p.status) (where.push('w.status = ?'), params.push(p.status));
  if (p.from) (where.push('w.business_day >= ?::date'), params.push(p.from));
  if (p.to) (where.push('w.business_day <= ?::date'), params.push(p.to));
  if (p.after) (where.push('(w.business_day, w.id) < (?::date, ?::uuid)'), params.push(p.after.day, p.after.id));
  return em.execute<WindowRow[]>(
    `select ${WINDOW_COLUMNS} from ${WINDOW_FROM} ${where.length ? `where ${where.join(' and ')}` : ''} order by w.business_day desc, w.id desc limit ?`,
    [...params, p.limit],
  );
}
