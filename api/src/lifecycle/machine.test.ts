import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { allowedFrom, defineMachine, IllegalTransition, NOW, sql, transition, transitionWhere } from './machine.js';

type DoorState = 'CLOSED' | 'OPEN' | 'LOCKED' | 'GONE';

class DoorError extends Error {}

/** A machine over a table of this test's own database: what the helper does, whatever the context. */
const door = defineMachine<DoorState>({
  name: 'door',
  table: 'door',
  initial: ['CLOSED'],
  transitions: { CLOSED: ['OPEN', 'LOCKED'], OPEN: ['CLOSED'], LOCKED: ['CLOSED', 'GONE'], GONE: [] },
  refuse: (from, to) => new DoorError(`a ${from} door cannot become ${to}`),
  onEnter: {
    OPEN: async (em, row) => {
      await em.execute(`insert into door_event (door_id, what) values (?, 'opened')`, [(row as { id: string }).id]);
    },
  },
});

/** A machine with a move that keeps the state (like a payment a later session claims again: PROCESSING → PROCESSING). */
const latch = defineMachine<DoorState>({
  name: 'latch',
  table: 'door',
  initial: ['CLOSED'],
  transitions: { CLOSED: ['LOCKED'], OPEN: ['LOCKED'], LOCKED: ['LOCKED', 'GONE'], GONE: [] },
  onEnter: {
    LOCKED: async (em, row) => {
      await em.execute(`insert into door_event (door_id, what) values (?, 'latched')`, [(row as { id: string }).id]);
    },
  },
});

describe('lifecycle/machine.ts: one way to move a status', () => {
  let db: TestDatabase;
  let em: EntityManager;
  const history = async (id: string) =>
    (await em.execute<{ from_status: string; to_status: string; cause: string | null }[]>(`select from_status, to_status, cause from status_history where machine = 'door' and row_id = ? order by id`, [id])).map(
      (h) => `${h.from_status}→${h.to_status}${h.cause ? ` (${h.cause})` : ''}`,
    );
  const row = async (id: string) => (await em.execute<{ id: string; status: DoorState; opened: number; note: string | null }[]>(`select id, status, opened, note from door where id = ?`, [id]))[0]!;

  beforeAll(async () => {
    db = await freshDatabase();
    em = db.orm.em.fork();
    await em.execute(`create table door (id text primary key, status text not null, opened int not null default 0, note text)`);
    await em.execute(`create table door_event (door_id text not null, what text not null)`);
    await em.execute(`insert into door (id, status) values ('a', 'CLOSED'), ('b', 'CLOSED'), ('c', 'OPEN'), ('d', 'LOCKED')`);
  });
  afterAll(async () => db?.close());

  it('moves a row along its table with the patch, records the move and runs what entering the state does', async () => {
    const moved = await transition(em, door, await row('a'), 'OPEN', { opened: sql('opened + ?', 1), note: 'first' }, { cause: 'a test' });
    expect(moved).toMatchObject({ id: 'a', status: 'OPEN', opened: 1, note: 'first' });
    expect(await history('a')).toEqual(['CLOSED→OPEN (a test)']);
    expect(await em.execute(`select what from door_event where door_id = 'a'`)).toEqual([{ what: 'opened' }]);
  });

  it('refuses a move the table does not have with the machine’s own error, and writes nothing', async () => {
    await expect(transition(em, door, await row('b'), 'GONE')).rejects.toThrow(new DoorError('a CLOSED door cannot become GONE'));
    expect((await row('b')).status).toBe('CLOSED');
    expect(await history('b')).toEqual([]);
  });

  it('refuses a row that moved since the caller read it (the state it read is the one it moves from)', async () => {
    const stale = await row('b');
    await transition(em, door, stale, 'LOCKED');
    await expect(transition(em, door, stale, 'OPEN', { note: 'late' })).rejects.toThrow(DoorError);
    expect(await row('b')).toMatchObject({ status: 'LOCKED', note: null });
    expect(await history('b')).toEqual(['CLOSED→LOCKED']);
  });

  it('a set-based move takes every row matching, each from a state the table allows, with one history row each', async () => {
    await em.execute(`insert into door (id, status) values ('e', 'OPEN'), ('f', 'LOCKED'), ('g', 'CLOSED')`);
    const moved = await transitionWhere(em, door, { from: allowedFrom(door, 'CLOSED'), to: 'CLOSED', where: `t.id in ('e','f','g')`, patch: { note: 'shut' }, cause: 'night' });
    expect(moved.map((r) => r.id).sort()).toEqual(['e', 'f']);
    expect(await history('e')).toEqual(['OPEN→CLOSED (night)']);
    expect(await history('f')).toEqual(['LOCKED→CLOSED (night)']);
    expect(await history('g')).toEqual([]);
  });

  it('a set-based move from a state the table does not allow is refused before anything is written', async () => {
    await expect(transitionWhere(em, door, { from: ['OPEN', 'CLOSED'], to: 'GONE', where: 'true', patch: { opened: NOW } })).rejects.toThrow(IllegalTransition);
    expect(await em.execute(`select count(*)::int as n from door where status = 'GONE'`)).toEqual([{ n: 0 }]);
  });

  it('a set-based move into a state that may stay itself moves each row once: one history row, one onEnter', async () => {
    await em.execute(`insert into door (id, status) values ('h', 'CLOSED'), ('i', 'LOCKED'), ('j', 'OPEN')`);
    const from = allowedFrom(latch, 'LOCKED');
    expect(from).toEqual(['CLOSED', 'OPEN', 'LOCKED']);
    const moved = await transitionWhere(em, latch, { from: [...from, 'CLOSED'], to: 'LOCKED', where: `t.id in ('h','i','j')`, cause: 'latch all' });
    expect(moved.map((r) => r.id).sort()).toEqual(['h', 'i', 'j']);
    const latchHistory = async (id: string) =>
      (await em.execute<{ from_status: string; to_status: string }[]>(`select from_status, to_status from status_history where machine = 'latch' and row_id = ? order by id`, [id])).map((h) => `${h.from_status}→${h.to_status}`);
    expect(await latchHistory('h')).toEqual(['CLOSED→LOCKED']);
    expect(await latchHistory('i')).toEqual(['LOCKED→LOCKED']);
    expect(await latchHistory('j')).toEqual(['OPEN→LOCKED']);
    expect(await em.execute(`select door_id, count(*)::int as n from door_event where what = 'latched' group by door_id order by door_id`)).toEqual([
      { door_id: 'h', n: 1 },
      { door_id: 'i', n: 1 },
      { door_id: 'j', n: 1 },
    ]);
  });

  it('a move asked outside a transaction is still whole: a history that cannot be written leaves the status as it was', async () => {
    await em.execute(`insert into door (id, status) values ('k', 'CLOSED'), ('l', 'CLOSED')`);
    const broken = defineMachine<DoorState>({
      ...door,
      history: async () => {
        throw new Error('history unavailable');
      },
    });
    expect(em.isInTransaction()).toBe(false);
    await expect(transition(em, broken, await row('k'), 'OPEN')).rejects.toThrow('history unavailable');
    await expect(transitionWhere(em, broken, { from: ['CLOSED'], to: 'LOCKED', where: `t.id = 'l'` })).rejects.toThrow('history unavailable');
    expect((await row('k')).status).toBe('CLOSED');
    expect((await row('l')).status).toBe('CLOSED');
  });

  it('allowedFrom reads the table backwards', () => {
    expect(allowedFrom(door, 'CLOSED').sort()).toEqual(['LOCKED', 'OPEN']);
    expect(allowedFrom(door, 'GONE')).toEqual(['LOCKED']);
  });
});
