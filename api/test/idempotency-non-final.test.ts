/**
 * Review finding 4: in a transactional @Idempotent mutation, an answer that is not final (isFinal
 * false) gives the key back, so a retry runs the mutation again. If such an answer committed its
 * effect, the retry would make a second one. A non-final answer must therefore be a refusal (rolled
 * back with its savepoint); a success-shaped one is an internal error that commits nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GraphQLContext } from '../src/graphql/context.js';
import { idempotent, RunningMutations } from '../src/graphql/idempotency.js';
import { stopLiveness } from '../src/graphql/process-liveness.js';
import { userError, UserErrorCode } from '../src/graphql/user-error.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
  await db.orm.em.fork().execute(`create table effect_probe (key text not null)`);
});
afterAll(async () => {
  await stopLiveness();
  await db?.close();
});

const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent } as unknown as GraphQLContext['log'];
/** What the composition root hands the app (platform.ts), and the app every request's context. */
const runningMutations = new RunningMutations();
const contextOf = () => ({ em: db.orm.em.fork(), principal: { kind: 'OPERATOR', clientId: 'non-final-test' }, requestId: 'r', log: silent, runningMutations }) as unknown as GraphQLContext;
const effects = async (key: string) => (await db.orm.em.fork().execute(`select 1 from effect_probe where key = ?`, [key])).length;
const records = async (key: string) => db.orm.em.fork().execute<{ state: string }[]>(`select state from idempotency_record where key = ?`, [key]);

/** A mutation that writes its effect, then answers `answer`; its answers are never final. */
function run(key: string, answer: { ok: boolean; userErrors: unknown[] }) {
  const ctx = contextOf();
  return idempotent(
    ctx,
    { operation: 'probe', key, args: { input: { idempotencyKey: key } } },
    async () => {
      await ctx.em.execute(`insert into effect_probe (key) values (?)`, [key]);
      return answer;
    },
    { isFinal: () => false },
  );
}

describe('a non-final answer of a transactional mutation', () => {
  it('a success-shaped one never commits its effect, so the retry the freed key allows cannot double it', async () => {
    await expect(run('success-shaped', { ok: true, userErrors: [] })).rejects.toThrow(/not final/);
    await expect(run('success-shaped', { ok: true, userErrors: [] })).rejects.toThrow(/not final/);
    expect(await effects('success-shaped')).toBe(0);
    expect(await records('success-shaped')).toEqual([]);
  });

  it('a refusal is answered, rolled back, and its key given back', async () => {
    const refusal = { ok: false, userErrors: [userError(UserErrorCode.PAYMENT_IN_PROGRESS, 'busy', ['input'])] };
    expect(await run('refusal', refusal)).toEqual(refusal);
    expect(await effects('refusal')).toBe(0);
    expect(await records('refusal')).toEqual([]);
  });
});

describe('a final refusal of a transactional mutation, by contrast', () => {
  it('is the key’s answer: a retry is answered the same refusal without running again, even when the request would now succeed', async () => {
    const refusal = { ok: false, userErrors: [userError(UserErrorCode.PAYMENT_IN_PROGRESS, 'busy', ['input'])] };
    let runs = 0;
    const attempt = (answer: { ok: boolean; userErrors: unknown[] }) => {
      const ctx = contextOf();
      return idempotent(ctx, { operation: 'probe', key: 'final-refusal', args: { input: { idempotencyKey: 'final-refusal' } } }, async () => {
        runs++;
        await ctx.em.execute(`insert into effect_probe (key) values (?)`, ['final-refusal']);
        return answer;
      });
    };
    expect(await attempt(refusal)).toEqual(refusal);
    expect(await attempt({ ok: true, userErrors: [] })).toEqual(refusal);
    expect(runs).toBe(1);
    expect(await effects('final-refusal')).toBe(0);
    expect(await records('final-refusal')).toEqual([{ state: 'DONE' }]);
  });
});

describe('a resumable mutation (its steps commit as they go)', () => {
  const request = (key: string) => ({ operation: 'probe', key, args: { input: { idempotencyKey: key } } });
  const done = { ok: true, userErrors: [] };

  it('that throws gives its key back: a retry runs at once, not IDEMPOTENCY_CONFLICT until the lease ends', async () => {
    await expect(idempotent(contextOf(), request('resumable-throws'), async () => Promise.reject(new Error('gateway exploded')), { effect: 'resumable' })).rejects.toThrow('gateway exploded');
    expect(await idempotent(contextOf(), request('resumable-throws'), async () => done, { effect: 'resumable' })).toEqual(done);
    expect(await records('resumable-throws')).toEqual([{ state: 'DONE' }]);
  });

  it('that answers a non-final refusal gives its key back: a retry runs again and its answer is the one kept', async () => {
    const busy = { ok: false, userErrors: [userError(UserErrorCode.PAYMENT_IN_PROGRESS, 'busy', ['input'])] };
    const isFinal = (p: { ok: boolean }) => p.ok;
    expect(await idempotent(contextOf(), request('resumable-non-final'), async () => busy, { effect: 'resumable', isFinal })).toEqual(busy);
    expect(await records('resumable-non-final')).toEqual([]);
    expect(await idempotent(contextOf(), request('resumable-non-final'), async () => done, { effect: 'resumable', isFinal })).toEqual(done);
    expect(await idempotent(contextOf(), request('resumable-non-final'), async () => busy, { effect: 'resumable', isFinal })).toEqual(done);
  });
});

describe('a clean stop', () => {
  it('waits for the idempotent mutations still running before it ends the liveness lock (platform.ts)', async () => {
    const events: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const ctx = contextOf();
    const mutation = idempotent(ctx, { operation: 'probe', key: 'draining', args: { input: { idempotencyKey: 'draining' } } }, async () => {
      started();
      await held;
      events.push('mutation finished');
      return { ok: true, userErrors: [] };
    });
    await running;
    const drained = runningMutations.drain(60_000).then(() => events.push('drained'));
    await new Promise((r) => setImmediate(r));
    events.push('released');
    release();
    await Promise.all([mutation, drained]);
    expect(events).toEqual(['released', 'mutation finished', 'drained']);
  });
});
