/**
 * executeBound(): bulk statements with bound parameters (issue 23). What its callers rely on: the
 * values reach PostgreSQL exactly as given (quotes, backslashes, `?` and `$1` inside text are data,
 * not SQL), the statement runs in the caller's transaction (it sees and is rolled back with what the
 * transaction wrote), and a failure is MikroORM's exception with the SQLSTATE, as em.execute() gives.
 */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { executeBound } from './bound-statement.js';

let db: TestDatabase;
let em: EntityManager;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  await em.execute(`create table bound_probe (k text primary key, v text)`);
});
afterAll(() => db.close());

describe('executeBound()', () => {
  it('sends text as data: quotes, backslashes, ? and $1 come back unchanged', async () => {
    const tricky = `it's a \\ "quoted" ? $1 '); drop table bound_probe; --`;
    const rows = await executeBound<{ k: string; v: string }>(em, `select r.k, r.v from json_to_recordset($1::json) as r(k text, v text)`, [JSON.stringify([{ k: 'a', v: tricky }])]);
    expect(rows).toEqual([{ k: 'a', v: tricky }]);
  });

  it('runs in the caller’s transaction: sees its rows, and is undone with it', async () => {
    await expect(
      em.transactional(async (tx) => {
        await tx.execute(`insert into bound_probe (k, v) values ('inside', 'x')`);
        await executeBound(tx, `insert into bound_probe (k, v) values ($1, $2)`, ['bound', 'y']);
        const seen = await executeBound<{ k: string }>(tx, `select k from bound_probe where k = any($1::text[]) order by k`, [['bound', 'inside']]);
        expect(seen.map((r) => r.k)).toEqual(['bound', 'inside']);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await em.execute(`select k from bound_probe`)).toEqual([]);
  });

  it('fails as em.execute() does: a unique violation is MikroORM’s exception with its SQLSTATE', async () => {
    await executeBound(em, `insert into bound_probe (k, v) values ($1, $2)`, ['once', 'v']);
    const err = await executeBound(em, `insert into bound_probe (k, v) values ($1, $2)`, ['once', 'v']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UniqueConstraintViolationException);
    expect((err as { code?: string }).code).toBe('23505');
  });
});
