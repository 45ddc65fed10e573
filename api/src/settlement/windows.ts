import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SettlementError } from './settlement.errors.js';

export type WindowStatus = 'OPEN' | 'CLOSED' | 'CLEARED' | 'SETTLED';

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

/**
 * Closes a city's window for `businessDay` (and, first, every earlier one still open or never
 * opened that has items), in one transaction. Closing takes every item of that day or earlier
 * that no window has yet: an item that arrived after its own day's window closed lands in the
 * next window to close, and an item committed while this runs waits for the next window. So an
 * item belongs to exactly one window. Closing a closed window answers it as it is.
 */
export async function closeWindow(em: EntityManager, p: { cityId: string; businessDay: string; closedBy: string; cutoff: CutOff; now?: Date }): Promise<WindowRow> {
  if (!DAY.test(p.businessDay) || Number.isNaN(Date.parse(`${p.businessDay}T00:00:00Z`))) throw new SettlementError('INVALID_INPUT', 'a business day is YYYY-MM-DD', 'businessDay');
  return em.transactional(async (tx) => {
    // One closer per city at a time: the city row is the lock.
    const [city] = await tx.execute<{ id: string; today: string }[]>(`select id, (?::timestamptz at time zone time_zone)::date::text as today from city where id = ? for update`, [p.now ?? new Date(), p.cityId]);
    if (!city) throw new SettlementError('NOT_FOUND', `no city ${p.cityId}`, 'city');
    if (p.businessDay > city.today) throw new SettlementError('WINDOW_NOT_STARTED', `${p.businessDay} has not begun in this city (today is ${city.today})`, 'businessDay');
    const existing = await windowOf(tx, p.cityId, p.businessDay);
    if (existing && existing.status !== 'OPEN') return existing;
    const [last] = await tx.execute<{ day: string | null }[]>(`select max(business_day)::text as day from settlement_window where city_id = ? and status <> 'OPEN'`, [p.cityId]);
    // Earlier days to close first: open windows, and days after the last closed one with items but no window yet.
    const earlier = await tx.execute<{ day: string }[]>(
      `select business_day::text as day from settlement_window where city_id = ? and status = 'OPEN' and business_day < ?::date
       union
       select distinct business_day::text from clearing_item where city_id = ? and window_id is null and business_day < ?::date and (?::date is null or business_day > ?::date)
       order by 1`,
      [p.cityId, p.businessDay, p.cityId, p.businessDay, last?.day ?? null, last?.day ?? null],
    );
    for (const day of [...earlier.map((r) => r.day), p.businessDay]) {
      const window = await ensureWindow(tx, p.cityId, day, p.cutoff);
      await tx.execute(`update clearing_item set window_id = ? where city_id = ? and window_id is null and business_day <= ?::date`, [window.id, p.cityId, day]);
      await tx.execute(`update settlement_window set status = 'CLOSED', closed_at = now(), closed_by = ? where id = ? and status = 'OPEN'`, [p.closedBy, window.id]);
    }
    return (await windowOf(tx, p.cityId, p.businessDay))!;
  });
}

/**
 * The cut-off: closes, per city, every window whose cut-off has passed, including the day an
 * item waits for (its own day, or the day after the last closed window when it came late).
 * Returns the windows it closed.
 */
export async function closeDueWindows(em: EntityManager, p: { cutoff: CutOff; now?: Date }): Promise<WindowRow[]> {
  const now = p.now ?? new Date();
  const due = await em.execute<{ city_id: string; day: string }[]>(
    `with last as (select c.id as city_id, c.time_zone, (select max(business_day) from settlement_window w where w.city_id = c.id and w.status <> 'OPEN') as day from city c),
     waiting as (
       select l.city_id, l.time_zone, greatest(i.business_day, coalesce(l.day + 1, i.business_day)) as day
         from last l join lateral (select distinct business_day from clearing_item i where i.city_id = l.city_id and i.window_id is null) i on true
       union
       select l.city_id, l.time_zone, w.business_day from last l join settlement_window w on w.city_id = l.city_id and w.status = 'OPEN')
     select city_id, max(day)::text as day from waiting
      where ((day + 1)::timestamp + ?::interval) at time zone time_zone <= ?::timestamptz
      group by city_id`,
    [p.cutoff, now],
  );
  const closed: WindowRow[] = [];
  for (const { city_id, day } of due) closed.push(await closeWindow(em, { cityId: city_id, businessDay: day, closedBy: 'cut-off', cutoff: p.cutoff, now }));
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
