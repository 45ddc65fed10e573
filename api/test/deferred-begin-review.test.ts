/**
 * Review of db/deferred-begin.ts (session 22, issue 20): a transaction's `begin` rides with its
 * first statement as `begin; <statement>` in one simple query. What a transaction promises must
 * hold whatever its first statement is: everything in it commits or rolls back together, its
 * transaction-scoped locks and settings last until it ends, its isolation level is the one asked
 * for, and the pooled connection serves the next transaction cleanly.
 */
import { IsolationLevel } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let em: EntityManager;
let other: pg.Client;

beforeAll(async () => {
  db = await freshDatabase({ poolMax: 4 });
  em = db.orm.em.fork();
  await em.execute(`create table review_probe (k text primary key)`);
  // A connection of its own, outside the ORM's pool: what another session sees.
  other = new pg.Client({ connectionString: db.url });
  await other.connect();
});
afterAll(async () => {
  await other.end();
  await db.close();
});

const keys = async (like: string) => (await em.execute<{ k: string }[]>(`select k from review_probe where k like '${like}' order by k`)).map((r) => r.k);

describe('a transaction whose first statement fails', () => {
  it('a first statement the parser refuses leaves the transaction open and aborted: a later write does not commit on its own', async () => {
    // Before the change: `begin` ran on its own, the refused statement aborted the transaction, and
    // every later statement was refused (25P02) until the rollback. Sent as `begin; selec 1`, the
    // parser refuses the whole text: the begin never runs, and what follows runs in autocommit.
    const outcome = await em
      .transactional(async (tx) => {
        await tx.execute(`selec 1`).catch(() => undefined); // a caller that goes on after a failed step
        await tx.execute(`insert into review_probe (k) values ('syntax.after')`);
        throw new Error('roll back');
      })
      .catch((e: unknown) => e as Error);
    expect(outcome).toBeInstanceOf(Error);
    // Nothing of a transaction that rolled back is in the database.
    expect(await keys('syntax.%')).toEqual([]);
  });

  it('a first statement refused at analysis (an unknown table) leaves the transaction aborted: a later write is refused and nothing commits', async () => {
    const outcome = await em
      .transactional(async (tx) => {
        await tx.execute(`select * from no_such_table`).catch(() => undefined);
        await tx.execute(`insert into review_probe (k) values ('analysis.after')`);
      })
      .catch((e: unknown) => e as { code?: string });
    expect((outcome as { code?: string }).code).toBe('25P02');
    expect(await keys('analysis.%')).toEqual([]);
  });

  it('after a parser-refused first statement every pooled connection serves a transaction that rolls back as a whole', async () => {
    for (let i = 0; i < 8; i++) {
      await em.transactional(async (tx) => tx.execute(`selec ${i}`)).catch(() => undefined);
    }
    const inTransaction: boolean[] = [];
    await Promise.all(
      [0, 1, 2, 3].map((i) =>
        db.orm.em
          .fork()
          .transactional(async (tx) => {
            await tx.execute(`insert into review_probe (k) values ('pool.${i}')`);
            // Still the insert's transaction: it has a transaction id (a statement on its own would not).
            const [inside] = await tx.execute<{ in_tx: boolean }[]>(`select pg_current_xact_id_if_assigned() is not null as in_tx`);
            inTransaction.push(inside!.in_tx);
            throw new Error('roll back');
          })
          .catch(() => undefined),
      ),
    );
    expect(inTransaction).toEqual([true, true, true, true]);
    expect(await keys('pool.%')).toEqual([]);
  });
  it('a failing first statement reports the position of its error in its own text, as it does outside a transaction (low severity)', async () => {
    const text = `select k, no_such_column from review_probe`;
    const alone = (await em.execute(text).catch((e: unknown) => e)) as { position?: string };
    const first = (await em.transactional(async (tx) => tx.execute(text)).catch((e: unknown) => e)) as { position?: string; code?: string };
    expect(first.code).toBe('42703');
    // The error's position is where in the text sent the error is: sent as `begin; <text>`, it is 7 characters off.
    expect(first.position).toBe(alone.position);
  });
});

describe('a transaction whose first statement is the one that makes it what it is', () => {
  it('an advisory lock taken by the first statement is held until the commit, not released at the end of the statement', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = em.fork().transactional(async (tx) => {
      await tx.execute(`select pg_advisory_xact_lock(424242)`);
      locked();
      await released;
    });
    await isLocked;
    expect((await other.query(`select pg_try_advisory_lock(424242) as got`)).rows[0].got).toBe(false);
    release();
    await holder;
    expect((await other.query(`select pg_try_advisory_lock(424242) as got`)).rows[0].got).toBe(true);
    await other.query(`select pg_advisory_unlock(424242)`);
  });

  it('a lock table as first statement runs (it needs a transaction block) and keeps other writers out until the commit', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = em.fork().transactional(async (tx) => {
      await tx.execute(`lock table review_probe in exclusive mode`);
      locked();
      await released;
    });
    await isLocked;
    await other.query(`set lock_timeout = 200`);
    await expect(other.query(`insert into review_probe (k) values ('lock.other')`)).rejects.toMatchObject({ code: '55P03' });
    release();
    await holder;
    await other.query(`insert into review_probe (k) values ('lock.other')`);
    await other.query(`reset lock_timeout`);
    expect(await keys('lock.%')).toEqual(['lock.other']);
  });

  it('a serializable transaction is serializable from its first statement, and a read only one refuses a write', async () => {
    const [level] = await em.fork().transactional(async (tx) => tx.execute<{ transaction_isolation: string }[]>(`show transaction_isolation`), { isolationLevel: IsolationLevel.SERIALIZABLE });
    expect(level!.transaction_isolation).toBe('serializable');
    const refused = await em
      .fork()
      .transactional(async (tx) => tx.execute(`insert into review_probe (k) values ('ro.write')`), { readOnly: true })
      .catch((e: unknown) => e as { code?: string });
    expect((refused as { code?: string }).code).toBe('25006');
    expect(await keys('ro.%')).toEqual([]);
  });

  it('set local in the first statement lasts for the transaction and not beyond it', async () => {
    const fork = em.fork();
    const inside = await fork.transactional(async (tx) => {
      await tx.execute(`set local statement_timeout = '1234ms'`);
      return tx.execute<{ statement_timeout: string }[]>(`show statement_timeout`);
    });
    expect(inside[0]!.statement_timeout).toBe('1234ms');
    for (let i = 0; i < 4; i++) {
      const [after] = await db.orm.em.fork().transactional(async (tx) => tx.execute<{ statement_timeout: string }[]>(`show statement_timeout`));
      expect(after!.statement_timeout).not.toBe('1234ms');
    }
  });

  it('a first statement with semicolons inside its strings is one statement: its value is stored whole and rolls back with the transaction', async () => {
    await em.transactional(async (tx) => tx.execute(`insert into review_probe (k) values ('semi.kept; commit; x')`));
    await em
      .transactional(async (tx) => {
        await tx.execute(`insert into review_probe (k) values ('semi.undone; commit; x')`);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(await keys('semi.%')).toEqual(['semi.kept; commit; x']);
  });

  it('the first statement sees the rows and the row count it would see on its own', async () => {
    const rows = await em.transactional(async (tx) => tx.execute<{ k: string }[]>(`insert into review_probe (k) values ('shape.a'), ('shape.b') returning k`));
    expect(rows.map((r) => r.k)).toEqual(['shape.a', 'shape.b']);
    const result = await em.transactional(async (tx) => tx.execute(`update review_probe set k = k || '!' where k like 'shape.%'`, [], 'run'));
    expect((result as { affectedRows?: number }).affectedRows).toBe(2);
  });
});
