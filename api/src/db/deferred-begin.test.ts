/**
 * deferBegin(): a transaction's begin rides with its first statement (issue 20). What every
 * transaction of the platform relies on stays true: its statements share one snapshot time and
 * commit or roll back together, a failing first statement fails as before and leaves the
 * connection usable, and a statement with bound parameters still runs inside the transaction. And
 * what it is for: one round trip fewer per transaction.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { createRequire } from 'node:module';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { executeBound } from './bound-statement.js';

let db: TestDatabase;
let em: EntityManager;
const sent: string[] = [];
// The copy of `pg` MikroORM brings (its pool's clients), which is not the one this package imports.
const require = createRequire(import.meta.url);
const ormPg = createRequire(require.resolve('@mikro-orm/postgresql'))('pg') as typeof pg;
const query = ormPg.Client.prototype.query;

beforeAll(async () => {
  // Every query a pooled client puts on the wire (deferBegin sends through the query its client had
  // when it connected: so this goes in before the database and its pool).
  ormPg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if (typeof args[0] === 'string') sent.push(args[0]);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  db = await freshDatabase();
  em = db.orm.em.fork();
  await em.execute(`create table begin_probe (k text primary key)`);
});
beforeEach(() => {
  sent.length = 0;
});
afterAll(async () => {
  ormPg.Client.prototype.query = query;
  await db.close();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a transaction opened by the ORM', () => {
  it('sends its begin with its first statement: two statements and the commit are three round trips', async () => {
    await em.transactional(async (tx) => {
      await tx.execute(`insert into begin_probe (k) values ('one')`);
      await tx.execute(`insert into begin_probe (k) values ('two')`);
    });
    expect(sent).toEqual([`begin; insert into begin_probe (k) values ('one')`, `insert into begin_probe (k) values ('two')`, 'commit']);
    expect((await em.execute(`select k from begin_probe order by k`)).map((r) => r.k)).toEqual(['one', 'two']);
  });

  it('is one transaction: its statements see one transaction time, and a rollback undoes them all', async () => {
    await expect(
      em.transactional(async (tx) => {
        const [first] = await tx.execute<{ at: string }[]>(`select now()::text as at`);
        await tx.execute(`insert into begin_probe (k) values ('undone')`);
        await pause(20);
        const [second] = await tx.execute<{ at: string }[]>(`select now()::text as at`);
        expect(second!.at).toBe(first!.at);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await em.execute(`select k from begin_probe where k = 'undone'`)).toEqual([]);
  });

  it('a first statement with bound parameters runs inside the transaction, behind its begin', async () => {
    await expect(
      em.transactional(async (tx) => {
        await executeBound(tx, `insert into begin_probe (k) values ($1)`, ['bound']);
        const [inside] = await tx.execute<{ n: string }[]>(`select count(*) as n from begin_probe where k = 'bound'`);
        expect(inside!.n).toBe('1');
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(sent.slice(0, 2)).toEqual(['begin', `insert into begin_probe (k) values ($1)`]);
    expect(await em.execute(`select k from begin_probe where k = 'bound'`)).toEqual([]);
  });

  it('a failing first statement fails with its own error, and the connection serves the next transaction', async () => {
    await em.transactional(async (tx) => tx.execute(`insert into begin_probe (k) values ('taken')`));
    for (let i = 0; i < 25; i++) {
      // More times than the pool has connections: each goes back to the pool after its rollback.
      const err = await em.transactional(async (tx) => tx.execute(`insert into begin_probe (k) values ('taken')`)).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('23505');
    }
    const rows = await em.transactional(async (tx) => tx.execute<{ k: string }[]>(`select k from begin_probe where k = 'taken'`));
    expect(rows).toEqual([{ k: 'taken' }]);
  });

  it('a transaction with no statement never reaches the server', async () => {
    await em.transactional(async () => undefined);
    await em.execute(`select 1 as outside`); // what is sent is seen
    expect(sent).toEqual(['select 1 as outside']);
    sent.length = 0;
    await expect(em.transactional(async () => Promise.reject(new Error('before any statement')))).rejects.toThrow('before any statement');
    expect(sent).toEqual([]);
  });

  it('a nested transaction is a savepoint inside it', async () => {
    await em.transactional(async (tx) => {
      await tx.execute(`insert into begin_probe (k) values ('outer')`);
      await tx
        .transactional(async (inner) => {
          await inner.execute(`insert into begin_probe (k) values ('inner')`);
          throw new Error('inner only');
        })
        .catch(() => undefined);
    });
    expect((await em.execute(`select k from begin_probe where k in ('outer', 'inner')`)).map((r) => r.k)).toEqual(['outer']);
  });
});
