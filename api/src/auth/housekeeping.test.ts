import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { purgeExpired } from './housekeeping.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

it('purges what has expired and keeps what has not', async () => {
  const em = db.orm.em.fork();
  await em.execute(`insert into oidc_payload (id, kind, payload, expires_at) values
    ('old', 'Session', '{}', now() - interval '1 second'), ('live', 'Session', '{}', now() + interval '1 hour'), ('forever', 'Grant', '{}', null)`);
  await em.execute(`insert into seen_jti (jti, expires_at) values ('old', now() - interval '1 second'), ('live', now() + interval '1 minute')`);
  await em.execute(`insert into revoked_access_token (jti, client_id, expires_at) values ('old', 'c', now() - interval '1 second'), ('live', 'c', now() + interval '5 minutes')`);
  expect(await purgeExpired(em)).toBe(3);
  const left = await em.execute<{ t: string; id: string }[]>(
    `select 'payload' as t, id from oidc_payload union all select 'jti', jti from seen_jti union all select 'revoked', jti from revoked_access_token order by 1, 2`,
  );
  expect(left).toEqual([
    { t: 'jti', id: 'live' },
    { t: 'payload', id: 'forever' },
    { t: 'payload', id: 'live' },
    { t: 'revoked', id: 'live' },
  ]);
  expect(await purgeExpired(em)).toBe(0);
});
