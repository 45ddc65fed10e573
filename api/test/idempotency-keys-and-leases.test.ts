/**
 * Idempotency (graphql/idempotency.ts) around the cases idempotency.test.ts does not reach over
 * HTTP: which keys are accepted, to the character; what each refusal says; that a success with an
 * empty userErrors list commits (it is not a refusal); that a cardholder app whose token names no
 * holder still has one key space; that a transactional claim is never seen before it commits with
 * its effect; and that a resumable mutation running longer than its lease keeps its claim by
 * renewing it (otherwise a retry would take it over and run it a second time). The
 * mutation here is a probe that records its effect in a table, run through `idempotent()` with the
 * context the GraphQL layer gives it. (Found by mutation testing, docs/testing.md.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal } from '../src/auth/principal.js';
import { SimulatedCrash } from '../src/graphql/crash-point.js';
import { idempotent, IN_FLIGHT_LEASE_SECONDS } from '../src/graphql/idempotency.js';
import { stopLiveness } from '../src/graphql/process-liveness.js';
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
const OPERATOR: Partial<Principal> = { kind: 'OPERATOR', clientId: 'keys-test' };
const contextOf = (principal: Partial<Principal> | null = OPERATOR) => ({ em: db.orm.em.fork(), principal, requestId: 'r', log: silent }) as unknown as GraphQLContext;
const effects = async (key: string) => (await db.orm.em.fork().execute(`select 1 from effect_probe where key = ?`, [key])).length;
const recordOf = async (key: string) =>
  (await db.orm.em.fork().execute<{ holder_id: string; state: string; locked_until: Date | null }[]>(`select holder_id, state, locked_until from idempotency_record where key = ?`, [key]))[0];

/** The probe mutation: writes its effect, waits for `during` if given, then answers `answer`. */
function probe(key: string, opts: { principal?: Partial<Principal> | null; answer?: unknown; operation?: string; input?: Record<string, unknown>; during?: () => Promise<void>; effect?: 'resumable' } = {}) {
  const ctx = contextOf(opts.principal);
  return idempotent(
    ctx,
    { operation: opts.operation ?? 'probe', key, args: { input: { idempotencyKey: key, ...opts.input } } },
    async () => {
      await ctx.em.execute(`insert into effect_probe (key) values (?)`, [key]);
      await opts.during?.();
      return opts.answer ?? { ok: true, userErrors: [] };
    },
    { effect: opts.effect },
  );
}

const refusalOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: { message: string; extensions: Record<string, unknown> }) => ({ message: err.message, code: err.extensions.code }),
  );

describe('an idempotency key is 1 to 200 printable ASCII characters', () => {
  it.each([
    ['one character', 'k'],
    ['200 characters', 'k'.repeat(200)],
    ['the first and last printable characters (space and ~) inside it', ' a~'],
  ])('%s: accepted', async (_name, key) => {
    await expect(probe(key)).resolves.toEqual({ ok: true, userErrors: [] });
    expect(await effects(key)).toBe(1);
  });

  it.each([
    ['201 characters', 'k'.repeat(201)],
    ['a non-ASCII character first', 'ключ-1'],
    ['a non-ASCII character last', '1-ключ'],
    ['a tab', 'a\tb'],
    ['a DEL (0x7f)', 'a\x7fb'],
    ['a newline at the end', 'key\n'],
    ['spaces only', '  '],
  ])('%s: BAD_USER_INPUT, saying what a key is, and nothing runs', async (_name, key) => {
    expect(await refusalOf(probe(key))).toEqual({ code: 'BAD_USER_INPUT', message: 'idempotencyKey must be 1 to 200 printable ASCII characters, not only spaces' });
    expect(await effects(key)).toBe(0);
  });
});

describe('what a refusal says', () => {
  it('the same key for another request names the operation first used with it and says to use a new key', async () => {
    await probe('said-reused', { input: { amount: 1 } });
    expect(await refusalOf(probe('said-reused', { input: { amount: 2 } }))).toEqual({
      code: 'IDEMPOTENCY_KEY_REUSED',
      message: 'This idempotency key was used before for another request (probe with other input). Use a new key for a new request.',
    });
    expect(await refusalOf(probe('said-reused', { operation: 'otherProbe', input: { amount: 1 } }))).toMatchObject({ message: expect.stringContaining('(probe with other input)') });
    expect(await effects('said-reused')).toBe(1);
  });

  it('the same key while the first runs says to retry with the same key', async () => {
    let release!: () => void;
    const running = probe('said-conflict', { during: () => new Promise<void>((r) => (release = r)) });
    for (let i = 0; i < 200 && (await recordOf('said-conflict'))?.state !== 'IN_FLIGHT'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await refusalOf(probe('said-conflict'))).toEqual({ code: 'IDEMPOTENCY_CONFLICT', message: 'A request with this idempotency key is still running. Retry with the same key shortly to get its result.' });
    release();
    await running;
    expect(await effects('said-conflict')).toBe(1);
  });
});

describe('what is an answer', () => {
  it('a payload with an empty userErrors list is a success: its effect commits and is replayed, not run again', async () => {
    const answer = { ok: true, userErrors: [] };
    expect(await probe('empty-errors', { answer })).toEqual(answer);
    expect(await probe('empty-errors', { answer })).toEqual(answer);
    expect(await effects('empty-errors')).toBe(1);
    expect(await recordOf('empty-errors')).toMatchObject({ state: 'DONE', locked_until: null });
  });

  it('a payload without a userErrors field is a success too', async () => {
    expect(await probe('no-errors-field', { answer: { ok: true } })).toEqual({ ok: true });
    expect(await effects('no-errors-field')).toBe(1);
  });

  it('a refusal (non-empty userErrors) is answered and replayed, and what it wrote is rolled back', async () => {
    const answer = { ok: false, userErrors: [{ code: 'NOPE', message: 'no', field: ['input'] }] };
    expect(await probe('refused', { answer })).toEqual(answer);
    expect(await probe('refused', { answer })).toEqual(answer);
    expect(await effects('refused')).toBe(0);
  });
});

describe('whose key space', () => {
  it('a client other than a cardholder app has one key space, whatever holder its principal names', async () => {
    await probe('shared-space', { principal: { kind: 'MERCHANT', clientId: 'space-merchant', holderId: 'h1' } as Partial<Principal> });
    expect(await recordOf('shared-space')).toMatchObject({ holder_id: '' });
    expect(await probe('shared-space', { principal: { kind: 'MERCHANT', clientId: 'space-merchant', holderId: 'h2' } as Partial<Principal> })).toEqual({ ok: true, userErrors: [] });
    expect(await effects('shared-space')).toBe(1);
  });

  it('a cardholder app token that names no holder has the app’s one holder-less key space', async () => {
    await probe('app-no-holder', { principal: { kind: 'CARDHOLDER_APP', clientId: 'space-app', holderId: null } as Partial<Principal> });
    expect(await recordOf('app-no-holder')).toMatchObject({ holder_id: '', state: 'DONE' });
  });
});

describe('exactly one execution commits', () => {
  it('a transactional claim commits with its effect: while it runs there is no claim for another process to see or take over, and a death mid-run leaves neither', async () => {
    const seenWhileRunning: unknown[] = [];
    const died = await probe('dies-mid-run', {
        async during() {
          seenWhileRunning.push(await recordOf('dies-mid-run'));
          // The process dies here, its effect written and not committed (its connection's transaction ends with it).
          throw new SimulatedCrash('answer', 'probe');
        },
      }).catch((err: unknown) => err);
    expect(died).toBeInstanceOf(SimulatedCrash);
    expect(seenWhileRunning).toEqual([undefined]);
    expect(await recordOf('dies-mid-run')).toBeUndefined();
    expect(await effects('dies-mid-run')).toBe(0);
    // The retry runs it, once.
    expect(await probe('dies-mid-run')).toEqual({ ok: true, userErrors: [] });
    expect(await probe('dies-mid-run')).toEqual({ ok: true, userErrors: [] });
    expect(await effects('dies-mid-run')).toBe(1);
  });

  it('a call without an authenticated client is refused before anything is claimed or run', async () => {
    expect(await refusalOf(probe('anonymous', { principal: null }))).toEqual({ code: 'UNAUTHENTICATED', message: 'Authentication required: send an OAuth access token' });
    expect(await recordOf('anonymous')).toBeUndefined();
    expect(await effects('anonymous')).toBe(0);
  });
});

describe('a resumable mutation that runs longer than its lease', () => {
  it('renews its lease while it runs, so its claim never looks abandoned; done, it holds no lease', async () => {
    let firstLease: number | undefined;
    let renewed: number | undefined;
    await probe('long-running', {
      // A resumable mutation's claim is committed before it runs (a transactional one has no lease: its claim is never seen running).
      effect: 'resumable',
      async during() {
        firstLease = new Date((await recordOf('long-running'))!.locked_until!).getTime();
        // The lease is renewed every few seconds: wait (at most 20 s) until it has been.
        for (let i = 0; i < 200 && renewed === undefined; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const now = new Date((await recordOf('long-running'))!.locked_until!).getTime();
          if (now > firstLease) renewed = now;
        }
      },
    });
    expect(renewed).toBeDefined();
    // Renewed to a full lease from the time of renewal.
    expect(renewed! - firstLease!).toBeGreaterThan(0);
    expect(renewed! - firstLease!).toBeLessThan(IN_FLIGHT_LEASE_SECONDS * 1000);
    expect(await recordOf('long-running')).toMatchObject({ state: 'DONE', locked_until: null });
    expect(await effects('long-running')).toBe(1);
  });
});
