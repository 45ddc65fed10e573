import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { EntityManager } from '@mikro-orm/postgresql';
import { GraphQLError } from 'graphql';
import { getMetadataStorage, type MiddlewareFn, UseMiddleware } from 'type-graphql';
import type { GraphQLContext } from './context.js';
import type {} from './cost-throttle.js'; // ctx.costCharge
import { crashPoint, SimulatedCrash } from './crash-point.js';
import { LOCK_HELD_SQL, livenessFor } from './process-liveness.js';

/**
 * Idempotency of every mutation that moves money (DESIGN.md §4; docs/api-conventions.md#idempotency),
 * built once in the GraphQL layer. Keyed by (OAuth client, `input.idempotencyKey`) — for a cardholder
 * app, one client for many holders, by (client, holder, key) — and stored with a hash of the
 * request in `idempotency_record`:
 *
 * - same key, same request, first answered: the stored payload (also after a restart);
 * - same key, another request: `IDEMPOTENCY_KEY_REUSED` (HTTP 422), nothing runs;
 * - same key while the first still runs: `IDEMPOTENCY_CONFLICT` (HTTP 409), nothing runs, unless
 *   that claim's process is dead (its liveness lock is gone: process-liveness.ts) or its lease ran
 *   out unrenewed, then this call takes it over at once;
 * - a thrown error (GraphQL or internal) releases the claim, so a retry runs the mutation again.
 *
 * A transactional mutation (the default) commits once (issue 20): its claim, its effect, its stored
 * answer and its request's cost charge (cost-throttle.ts) are one transaction. The claim is the
 * transaction's first statement, under a transaction-scoped advisory lock on the key, so that a
 * concurrent duplicate finds the lock taken and is answered IDEMPOTENCY_CONFLICT at once (never a
 * second execution, never a wait on the first); a crash anywhere before the commit rolls the claim
 * back with the effect, so a retry runs it once (issue 19: the answer commits with the effect).
 * The resolver's `ctx.em` is that transaction. A mutation that calls the payment gateway
 * (`effect: 'resumable'`) cannot hold a transaction over the call: its claim is committed before it
 * runs (with a lease and its process's liveness lock), its service commits each step itself and
 * finds its effect by the key on a retry, resuming where it stopped.
 *
 * Records are kept 48 hours (the spec asks for at least 24); `purgeExpiredIdempotencyRecords` deletes them after.
 */

/** How long a key is remembered. */
export const IDEMPOTENCY_RETENTION_HOURS = 48;
/** An IN_FLIGHT claim whose lease has not been renewed for this long is given up, even if its process lives (e.g. a release that failed). */
export const IN_FLIGHT_LEASE_SECONDS = 60;
/** How often a running mutation renews its lease (and re-stamps it with its process's current liveness lock). */
const LEASE_RENEWAL_MS = 5_000;
/**
 * A resumable mutation (the gateway call outside any transaction) is not fenced by a transaction:
 * its claim is taken over only when its lock is gone AND its lease has gone this long unrenewed, so
 * that a live process whose liveness session died (its claims' lock no longer held) keeps its claim.
 */
const RESUMABLE_UNRENEWED_SECONDS = 10;
/** The same rule as the service-level keys (top-ups, ledger entries) had: printable ASCII, not blank. */
const KEY = /^[\x20-\x7e]{1,200}$/;

// ——— the request hash ———

/**
 * Canonical JSON of a request (RFC 8785 in spirit): object keys sorted by UTF-16 code units,
 * no whitespace, `undefined` properties left out; bigints written as exact integer literals (so
 * 2^60 stays 2^60, and `5n` and `5` are the same amount); dates as ISO strings. Anything else
 * (functions, maps, buffers, NaN) is refused rather than guessed at.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      assertRecord(value);
      const entries = Object.keys(value)
        .sort()
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
      return `{${entries.join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no ${typeof value}`);
  }
}

/** What "the same request" means: sha256 (hex) of the canonical JSON of the mutation name and its arguments. */
export function requestHash(operation: string, args: unknown): string {
  return createHash('sha256').update(canonicalJson([operation, args])).digest('hex');
}

function assertRecord(value: object): void {
  if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof RegExp) {
    throw new TypeError(`cannot serialise a ${value.constructor.name}`);
  }
}

// ——— the stored payload ———

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A payload as JSON that keeps what plain JSON loses: bigints (`{"$bigint": "12345"}`, Money
 * amounts), dates (`{"$date": "…Z"}`), and the class of each GraphQL object type (`"$type": "TopUp"`,
 * so an interface or union still resolves its type on a replay). Properties that are not GraphQL
 * fields (`uuid`, which field resolvers read) are kept like the rest. An object with a key of its
 * own starting with `$` is wrapped (`{"$object": {…}}`), so no key is ever misread.
 */
export function encodePayload(value: unknown): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot store ${value} in a payload`);
    return value;
  }
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError('cannot store an invalid date in a payload');
    return { $date: value.toISOString() };
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : encodePayload(v)));
  if (typeof value !== 'object') throw new TypeError(`cannot store a ${typeof value} in a payload`);
  assertRecord(value);
  const fields: Record<string, Json> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) fields[k] = encodePayload(v);
  const type = graphqlTypeOf(value);
  if (Object.keys(fields).some((k) => k.startsWith('$'))) return type ? { $type: type, $object: fields } : { $object: fields };
  return type ? { $type: type, ...fields } : fields;
}

/** The payload `encodePayload` stored, with its bigints, dates and object classes back. */
export function decodePayload(json: Json): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(decodePayload);
  if ('$bigint' in json) return BigInt(json.$bigint as string);
  if ('$date' in json) return new Date(json.$date as string);
  const { $type, $object, ...rest } = json;
  const fields = ($object ?? rest) as Record<string, Json>;
  const target = typeof $type === 'string' ? classOfGraphqlType($type) : undefined;
  const out = (target ? Object.create(target.prototype as object) : {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) out[k] = decodePayload(v);
  return out;
}

/** The GraphQL object type name of a class instance (`TopUpType` → "TopUp"); none for plain objects. */
function graphqlTypeOf(value: object): string | undefined {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === null || proto === Object.prototype) return undefined;
  return getMetadataStorage().objectTypes.find((t) => t.target === value.constructor)?.name;
}

function classOfGraphqlType(name: string): { prototype: unknown } | undefined {
  return getMetadataStorage().objectTypes.find((t) => t.name === name)?.target;
}

// ——— the errors ———

function keyReused(operation: string): GraphQLError {
  return new GraphQLError(`This idempotency key was used before for another request (${operation} with other input). Use a new key for a new request.`, {
    extensions: { code: 'IDEMPOTENCY_KEY_REUSED', http: { status: 422 } },
  });
}

function inFlight(): GraphQLError {
  return new GraphQLError('A request with this idempotency key is still running. Retry with the same key shortly to get its result.', {
    extensions: { code: 'IDEMPOTENCY_CONFLICT', http: { status: 409, headers: new Map([['retry-after', '1']]) } },
  });
}

// ——— the record ———

interface Claim {
  em: EntityManager;
  clientId: string;
  /** The holder a cardholder app's token acts for; '' for other clients. */
  holderId: string;
  key: string;
  owner: string;
  /** The advisory lock this process holds while it lives (process-liveness.ts); null: the lease alone tells. */
  ownerLock: string | null;
}

type ClaimOutcome = { kind: 'claimed' } | { kind: 'replay'; payload: unknown; fencedOut?: boolean } | { kind: 'reused'; operation: string } | { kind: 'in-flight' } | { kind: 'gone' };

/**
 * An IN_FLIGHT claim nobody runs any more: its process is dead (the liveness lock it named is not
 * held), or its lease ran out unrenewed (a claim of a process with no liveness, or one it failed to release).
 */
const STALE = `(coalesce(locked_until <= now(), false) or (owner_lock is not null and not ${LOCK_HELD_SQL('owner_lock')}))`;
const STALE_RESUMABLE = `(coalesce(locked_until <= now(), false) or (owner_lock is not null and locked_until <= now() + interval '${IN_FLIGHT_LEASE_SECONDS - RESUMABLE_UNRENEWED_SECONDS} seconds' and not ${LOCK_HELD_SQL('owner_lock')}))`;

/** The claim's insert; `fenced`: only when the advisory lock of the `lock` CTE was free. */
const claimInsert = (fenced: boolean) => `insert into idempotency_record (client_id, holder_id, key, operation, request_hash, state, owner, owner_lock, locked_until, created_at, expires_at)
     select ?, ?, ?, ?, ?, 'IN_FLIGHT', ?, ?::bigint, now() + interval '${IN_FLIGHT_LEASE_SECONDS} seconds', now(), now() + interval '${IDEMPOTENCY_RETENTION_HOURS} hours'${fenced ? ' from lock where lock.free' : ''}
     on conflict (client_id, holder_id, key) do update
       set operation = excluded.operation, request_hash = excluded.request_hash, state = 'IN_FLIGHT', response = null, owner = excluded.owner, owner_lock = excluded.owner_lock,
           locked_until = excluded.locked_until, created_at = excluded.created_at, completed_at = null, expires_at = excluded.expires_at
       where idempotency_record.expires_at <= now()
     returning owner`;

/**
 * The advisory lock a transactional claim holds until its transaction ends: 64 bits of the key's
 * hash (a collision of two keys running at the same moment answers one IDEMPOTENCY_CONFLICT, never
 * a wrong replay: the record itself is keyed by the full key).
 */
function claimLock(c: Claim): string {
  return createHash('sha256').update(`idempotency\0${c.clientId}\0${c.holderId}\0${c.key}`).digest().readBigInt64BE(0).toString();
}

/**
 * Claims (client, key) for one execution. `within` a transaction (a transactional mutation): the
 * claim is that transaction's own, invisible to others until it commits with the effect, and a
 * concurrent duplicate is told apart by the advisory lock it cannot take (no wait on the first's
 * row). Otherwise (a resumable mutation) each step is its own committed statement. Either way a new
 * key (or one whose record has expired) is inserted IN_FLIGHT; an existing record answers for
 * itself; a stale IN_FLIGHT claim (committed by a resumable mutation whose process died) with the
 * same request is taken over by a conditional update, so of two that try, one wins.
 */
async function claim(c: Claim, operation: string, hash: string, resumable: boolean, within?: EntityManager): Promise<ClaimOutcome> {
  const stale = resumable ? STALE_RESUMABLE : STALE;
  const params = [c.clientId, c.holderId, c.key, operation, hash, c.owner, c.ownerLock];
  if (within) {
    const [fenced] = await within.execute<{ free: boolean; claimed: boolean }[]>(
      `with lock as (select pg_try_advisory_xact_lock(?::bigint) as free),
            claimed as (${claimInsert(true)})
       select (select free from lock) as free, exists (select 1 from claimed) as claimed`,
      [claimLock(c), ...params],
    );
    if (!fenced!.free) return heldElsewhere(within, c, hash);
    if (fenced!.claimed) return { kind: 'claimed' };
  } else {
    const [inserted] = await c.em.execute<{ owner: string }[]>(claimInsert(false), params);
    if (inserted) return { kind: 'claimed' };
  }
  const em = within ?? c.em;
  const [row] = await em.execute<{ operation: string; request_hash: string; state: 'IN_FLIGHT' | 'DONE'; response: Json; stale: boolean }[]>(
    // pg_locks is probed only for a claim still in flight, not for every replay.
    `select operation, request_hash, state, response, case when state = 'IN_FLIGHT' then ${stale} else false end as stale from idempotency_record where client_id = ? and holder_id = ? and key = ?`,
    [c.clientId, c.holderId, c.key],
  );
  if (!row) return { kind: 'gone' }; // released or purged between the two statements: try again
  if (row.request_hash !== hash) return { kind: 'reused', operation: row.operation };
  if (row.state === 'DONE') return { kind: 'replay', payload: decodePayload(row.response) };
  if (!row.stale) return { kind: 'in-flight' };
  const [taken] = await em.execute<{ owner: string }[]>(
    `update idempotency_record set owner = ?, owner_lock = ?::bigint, locked_until = now() + interval '${IN_FLIGHT_LEASE_SECONDS} seconds'
      where client_id = ? and holder_id = ? and key = ? and state = 'IN_FLIGHT' and request_hash = ? and ${stale}
      returning owner`,
    [c.owner, c.ownerLock, c.clientId, c.holderId, c.key, hash],
  );
  return taken ? { kind: 'claimed' } : { kind: 'gone' };
}

/**
 * Another transaction holds the key's advisory lock: a duplicate running, or a replay of a finished
 * request. The committed record tells them apart: the stored answer to the same request is replayed
 * (`fencedOut`: its charge is then written behind, not taken in this transaction, which would wait
 * on the other's bucket row); anything else is still running.
 */
async function heldElsewhere(em: EntityManager, c: Claim, hash: string): Promise<ClaimOutcome> {
  const [row] = await em.execute<{ request_hash: string; state: 'IN_FLIGHT' | 'DONE'; response: Json }[]>(
    `select request_hash, state, response from idempotency_record where client_id = ? and holder_id = ? and key = ? and expires_at > now()`,
    [c.clientId, c.holderId, c.key],
  );
  if (row?.state === 'DONE' && row.request_hash === hash) return { kind: 'replay', payload: decodePayload(row.response), fencedOut: true };
  return { kind: 'in-flight' };
}

/** Renews the lease, under the process's liveness lock as it is now (a new one if its session was lost; none, then the lease alone tells). */
async function renewLease(c: Claim): Promise<unknown> {
  c.ownerLock = (await livenessFor(c.em))?.lock ?? null;
  return c.em.execute(`update idempotency_record set locked_until = now() + interval '${IN_FLIGHT_LEASE_SECONDS} seconds', owner_lock = ?::bigint where client_id = ? and holder_id = ? and key = ? and owner = ? and state = 'IN_FLIGHT'`, [
    c.ownerLock,
    c.clientId,
    c.holderId,
    c.key,
    c.owner,
  ]);
}

/** Gives the key back (the mutation threw, or its answer is not final): the next call with it runs. */
function release(c: Claim): Promise<unknown> {
  return c.em.execute(`delete from idempotency_record where client_id = ? and holder_id = ? and key = ? and owner = ? and state = 'IN_FLIGHT'`, [c.clientId, c.holderId, c.key, c.owner]);
}

/** The statement that stores the answer: it returns one row, or none when the claim is no longer ours. */
function completion(c: Claim, payload: unknown): { sql: string; params: unknown[] } {
  return {
    sql: `update idempotency_record set state = 'DONE', response = ?::jsonb, locked_until = null, completed_at = now()
      where client_id = ? and holder_id = ? and key = ? and owner = ? and state = 'IN_FLIGHT' returning owner`,
    params: [JSON.stringify(encodePayload(payload)), c.clientId, c.holderId, c.key, c.owner],
  };
}

/** Stores the answer, through `em` (the claim's own connection); false when the claim is no longer ours. */
async function complete(em: EntityManager, c: Claim, payload: unknown): Promise<boolean> {
  const { sql, params } = completion(c, payload);
  return (await em.execute<{ owner: string }[]>(sql, params)).length === 1;
}

// ——— running a mutation once ———

export interface IdempotencyOptions<T> {
  /**
   * False for an answer that is not the outcome yet (the payment gateway did not answer): it is
   * returned but not stored, and the key is released, so a retry runs the mutation again. Only for
   * a mutation that is itself idempotent underneath (createTopUp: its own row per key, and the
   * gateway's key per top-up), since that retry is a second execution. In a transactional mutation a
   * non-final answer must be a refusal (rolled back); any other throws. Default: every answer is final.
   */
  isFinal?: (payload: T) => boolean;
  /**
   * How the answer is kept with the effect. `transactional` (the default): the mutation runs in the
   * transaction its answer is committed in (`ctx.em`); a payload with userErrors is a refusal, and
   * whatever it wrote is rolled back before its answer is stored. `resumable`: the mutation calls
   * outside the database (the payment gateway), so it must not hold a transaction over that call;
   * it commits its own steps, and its service must find its effect by the idempotency key on a
   * retry and resume it (a crash between its commit and the stored answer is then harmless).
   */
  effect?: 'transactional' | 'resumable';
}

export interface IdempotentRequest {
  /** The mutation field name. */
  operation: string;
  /** `input.idempotencyKey`. */
  key: string;
  /** Everything that makes the request: the mutation's arguments as GraphQL coerced them. */
  args: unknown;
}

/** The claim was not ours any more when the answer was stored: this execution is rolled back. */
class ClaimLost extends Error {}

/** A transactional mutation answered a non-final payload that is not a refusal: a bug; its effect is rolled back. */
class NonFinalSuccess extends Error {
  constructor() {
    super('a transactional @Idempotent mutation answered a payload that is not final and not a refusal (no userErrors): its effect is rolled back, as its key is given back for a retry');
  }
}

/** Carries a refusal out of its transaction, so that what it wrote is rolled back and its answer kept. */
class Refusal<T> extends Error {
  constructor(readonly payload: T) {
    super('refused');
  }
}

const isRefusal = (payload: unknown) => Array.isArray((payload as { userErrors?: unknown } | null)?.userErrors) && (payload as { userErrors: unknown[] }).userErrors.length > 0;

/**
 * Runs `run` at most once per (client, holder, key) (see the top of this file). A transactional
 * mutation's claim commits with its effect and answer; a resumable one's is committed before it
 * runs, so that other requests see it while it calls out (`options.effect`).
 */
export async function idempotent<T>(ctx: GraphQLContext, request: IdempotentRequest, run: () => Promise<T>, options: IdempotencyOptions<T> = {}): Promise<T> {
  const execution = runOnce(ctx, request, run, options);
  // A context made by hand (a test executing the schema directly) has none: nothing waits on it then.
  return ctx.runningMutations ? ctx.runningMutations.track(execution) : execution;
}

/**
 * The idempotent mutations one process is running. The composition root (platform.ts) makes one
 * and hands it to the app, which puts it in every request's context: a clean stop waits for them
 * before it ends the process's liveness lock, so their claims do not look dead while they still run.
 */
export class RunningMutations {
  private readonly running = new Set<Promise<unknown>>();

  async track<T>(execution: Promise<T>): Promise<T> {
    this.running.add(execution);
    try {
      return await execution;
    } finally {
      this.running.delete(execution);
    }
  }

  /** Waits (at most `timeoutMs`) for the mutations running now to finish, however they end. */
  async drain(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

declare module './context.js' {
  interface GraphQLContext {
    /** This process's running idempotent mutations (createHttpApp puts the composition root's here). */
    runningMutations?: RunningMutations;
  }
}

async function runOnce<T>(ctx: GraphQLContext, request: IdempotentRequest, run: () => Promise<T>, options: IdempotencyOptions<T>): Promise<T> {
  const clientId = ctx.principal?.clientId;
  if (!clientId) throw new GraphQLError('Authentication required: send an OAuth access token', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
  if (!KEY.test(request.key) || !request.key.trim()) {
    throw new GraphQLError('idempotencyKey must be 1 to 200 printable ASCII characters, not only spaces', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const hash = requestHash(request.operation, request.args);
  // A cardholder app is one OAuth client for many holders: each holder has a key space of its own.
  const holderId = ctx.principal?.kind === 'CARDHOLDER_APP' ? (ctx.principal.holderId ?? '') : '';
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const final = (payload: T) => !options.isFinal || options.isFinal(payload);
  if (options.effect !== 'resumable') {
    // No liveness lock and no lease: the claim is never committed while it runs.
    const c: Claim = { em: ctx.em, clientId, holderId, key: request.key, owner, ownerLock: null };
    return runInTransaction(ctx, c, request, hash, run, final);
  }

  const em = ctx.em.fork();
  const liveness = await livenessFor(em);
  const c: Claim = { em, clientId, holderId, key: request.key, owner, ownerLock: liveness?.lock ?? null };
  for (let attempt = 0; ; attempt++) {
    const outcome = await claim(c, request.operation, hash, true);
    if (outcome.kind === 'claimed') break;
    if (outcome.kind === 'replay') return outcome.payload as T;
    if (outcome.kind === 'reused') throw keyReused(outcome.operation);
    if (outcome.kind === 'in-flight' || attempt >= 3) throw inFlight();
  }

  const renewal = setInterval(() => renewLease(c).catch((err: unknown) => ctx.log.warn({ err, key: c.key }, 'could not renew an idempotency lease')), LEASE_RENEWAL_MS);
  renewal.unref();
  const giveBack = () => release(c).catch((err: unknown) => ctx.log.error({ err, key: c.key }, 'could not release an idempotency key; it frees itself when its lease ends'));
  let payload: T;
  try {
    payload = await run();
  } catch (err) {
    // A simulated death releases nothing, as a dead process would not.
    if (err instanceof SimulatedCrash) throw err;
    await giveBack();
    throw err;
  } finally {
    clearInterval(renewal);
  }
  await crashPoint('answer', request.operation);
  if (!final(payload)) {
    await giveBack();
    return payload;
  }
  // A resumable mutation has had its effect: its answer goes to the caller even if storing it fails
  // (the claim then ends with its lease, and a late retry finds the effect by its key).
  try {
    if (!(await complete(c.em, c, payload))) ctx.log.warn({ key: c.key, operation: request.operation }, 'an idempotency claim was taken over while its mutation ran (its process was taken for dead)');
  } catch (err) {
    ctx.log.error({ err, key: c.key, operation: request.operation }, 'could not store the answer of an idempotent mutation');
  }
  return payload;
}

/** What one transaction of a transactional mutation ended with. */
type Ended<T> = { kind: 'answered'; payload: T } | { kind: 'replayed'; payload: T };

/**
 * Runs a transactional mutation in one transaction, the one writing commit of its request: the
 * claim first (claim()), then the mutation with `ctx.em` bound to the transaction, then the
 * request's cost charge (`ctx.costCharge`, cost-throttle.ts) and the stored answer. A replay is
 * answered (and charged) in the same transaction. A refusal (userErrors) rolls the whole
 * transaction back, whatever it wrote, and its answer is then stored by a second, short one (a
 * refusal is rare; a savepoint around every mutation would cost each of them two statements and a
 * subtransaction). A throw or a crash anywhere rolls the claim back with the effect: the key is free.
 */
async function runInTransaction<T>(ctx: GraphQLContext, c: Claim, request: IdempotentRequest, hash: string, run: () => Promise<T>, final: (payload: T) => boolean): Promise<T> {
  const outer = ctx.em;
  /** Claims within `tx`; the answer already stored (a replay), or undefined: claimed, run it. */
  const claimWithin = async (tx: EntityManager): Promise<Ended<T> | undefined> => {
    for (let attempt = 0; ; attempt++) {
      const outcome = await claim(c, request.operation, hash, false, tx);
      if (outcome.kind === 'claimed') return undefined;
      if (outcome.kind === 'replay') {
        if (!outcome.fencedOut) await ctx.costCharge?.take(tx);
        return { kind: 'replayed', payload: outcome.payload as T };
      }
      if (outcome.kind === 'reused') throw keyReused(outcome.operation);
      if (outcome.kind === 'in-flight' || attempt >= 3) throw inFlight();
    }
  };
  // The request's charge and the answer: one statement, the last before the commit.
  const store = async (tx: EntityManager, payload: T) => {
    const stored = ctx.costCharge ? (await ctx.costCharge.take(tx, completion(c, payload))) === 1 : await complete(tx, c, payload);
    if (!stored) throw new ClaimLost();
  };
  /** One transaction; when it rolls back a charge it took, the charge went with it (one taken by an earlier field's committed transaction stays). */
  const transaction = async (body: (tx: EntityManager) => Promise<Ended<T>>): Promise<Ended<T>> => {
    const chargedBefore = ctx.costCharge?.taken ?? false;
    try {
      return await outer.transactional(body);
    } catch (err) {
      if (!chargedBefore) ctx.costCharge?.rolledBack();
      throw err;
    }
  };
  let ended: Ended<T>;
  try {
    ended = await transaction(async (tx) => {
      const replay = await claimWithin(tx);
      if (replay) return replay;
      ctx.em = tx;
      const payload = await run();
      if (isRefusal(payload)) throw new Refusal(payload);
      // Only a refusal may be non-final (its key is given back, and a retry runs again): a
      // non-final answer with an effect would commit that effect twice.
      if (!final(payload)) throw new NonFinalSuccess();
      await store(tx, payload);
      return { kind: 'answered', payload };
    });
  } catch (err) {
    ctx.em = outer;
    if (err instanceof ClaimLost) throw inFlight();
    if (!(err instanceof Refusal)) throw err;
    const refusal = err.payload as T;
    // Rolled back with what it wrote; a non-final refusal leaves its key free.
    if (!final(refusal)) return refusal;
    ended = await transaction(async (tx) => {
      const replay = await claimWithin(tx);
      if (replay) return replay; // a duplicate ran and answered in between: its answer is the one kept
      await store(tx, refusal);
      return { kind: 'answered', payload: refusal };
    });
  } finally {
    // Fields of the payload resolve after the mutation, on the request's own (non-transactional) em.
    ctx.em = outer;
  }
  if (ended.kind === 'answered') await crashPoint('answer', request.operation);
  return ended.payload;
}

const IDEMPOTENT = Symbol('onecard.idempotent');

/**
 * Makes a mutation idempotent by `input.idempotencyKey` (the one way to do it: STYLE.md §4). Put it
 * under `@Authorized(...)` (which runs first) on a mutation whose `input` has `idempotencyKey: String!`:
 *
 *     @Authorized('MERCHANT')
 *     @Mutation(() => PaymentPayload)
 *     @Idempotent()
 *     createPayment(@Arg('input', () => CreatePaymentInput) input: CreatePaymentInput, @Ctx() ctx: GraphQLContext) { … }
 */
export function Idempotent<T = unknown>(options: IdempotencyOptions<T> = {}): MethodDecorator {
  const middleware: MiddlewareFn<GraphQLContext> = ({ args, context, info }, next) => {
    const key = (args.input as { idempotencyKey?: unknown } | undefined)?.idempotencyKey;
    if (typeof key !== 'string') throw new Error(`@Idempotent() on ${info.parentType.name}.${info.fieldName}: its input has no idempotencyKey`);
    return idempotent(context, { operation: info.fieldName, key, args }, () => next() as Promise<T>, options);
  };
  Object.defineProperty(middleware, IDEMPOTENT, { value: options.effect ?? 'transactional' });
  return UseMiddleware(middleware) as MethodDecorator;
}

/** Whether a type-graphql middleware is the one `@Idempotent()` adds (for the test that every money mutation has it). */
export function isIdempotencyMiddleware(fn: unknown): boolean {
  return typeof fn === 'function' && typeof (fn as unknown as Record<symbol, unknown>)[IDEMPOTENT] === 'string';
}

let transactionalMutations: Set<string> | undefined;

/**
 * Whether the mutation field `name` runs in one transaction of its own (a transactional
 * `@Idempotent()`), in which its request's cost is charged (cost-throttle.ts): the GraphQL layer
 * then leaves the charge to it rather than charge before it runs.
 */
export function chargesInItsTransaction(name: string): boolean {
  transactionalMutations ??= new Set(
    getMetadataStorage()
      .mutations.filter((m) => m.middlewares?.some((fn) => isIdempotencyMiddleware(fn) && (fn as unknown as Record<symbol, unknown>)[IDEMPOTENT] === 'transactional'))
      .map((m) => m.schemaName),
  );
  return transactionalMutations.has(name);
}

// ——— housekeeping ———

/**
 * Deletes records past their retention (48 h) — never a claim still being run — in batches, so a
 * large backlog does not hold one long lock. Returns how many went. For the job runner.
 */
export async function purgeExpiredIdempotencyRecords(em: EntityManager, now: Date = new Date(), batchSize = 5_000): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await em.execute<{ n: number }[]>(
      `with gone as (
         delete from idempotency_record where ctid in (
           select ctid from idempotency_record
            where expires_at <= ?::timestamptz and (state = 'DONE' or locked_until <= ?::timestamptz)
            limit ?)
         returning 1)
       select count(*)::int as n from gone`,
      [now.toISOString(), now.toISOString(), batchSize],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < batchSize) return total;
  }
}
