/** Closing a settlement window (the cut-off): what an operator's or the job's close refuses and what it writes. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { createCity } from '../tenancy/tenancy.service.js';
import { closeWindow, ensureWindow, windowOf } from './windows.js';

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
