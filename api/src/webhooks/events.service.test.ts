import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { listEvents } from './events.service.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

it('lists a tenant’s events in position order across digit counts (9 before 10 before 100), so catching up skips none', async () => {
  const em = db.orm.em.fork();
  const owner = randomUUID();
  const positions = [100, 9, 10, 2, 11];
  for (const position of positions) {
    await em.execute(`insert into event_outbox (type, owner_kind, owner_id, subject_id, payload, position, dispatched_at) values ('payment.succeeded', 'MERCHANT', ?, ?, '{}', ?, now())`, [owner, `s${position}`, position]);
  }
  const page = await listEvents(em, { kind: 'MERCHANT', id: owner }, { afterPosition: null, types: null, limit: 3 });
  expect(page.map((e) => e.position)).toEqual(['2', '9', '10']);
  const rest = await listEvents(em, { kind: 'MERCHANT', id: owner }, { afterPosition: page.at(-1)!.position, types: null, limit: 10 });
  expect(rest.map((e) => e.position)).toEqual(['11', '100']);
});
