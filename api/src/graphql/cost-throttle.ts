import type { EntityManager } from '@mikro-orm/postgresql';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { Extensions } from 'type-graphql';
import type { Logger } from 'pino';
import type { Caller } from './context.js';

declare module './context.js' {
  interface GraphQLContext {
    /** The request's cost charge, when a mutation's own transaction is to take it (apollo.ts puts it here). */
    costCharge?: PendingCharge;
  }
}

/**
 * Cost-based rate limits, Shopify's model (docs/security.md#rate-limits-graphql-cost): each caller
 * has a leaky bucket of cost points that refills at a fixed rate up to its maximum; an operation is
 * charged its measured cost and refused with THROTTLED when the bucket holds less.
 * Buckets live in PostgreSQL (`graphql_cost_bucket`), so every API process shares them.
 *
 * No request pays a commit of its own for its charge (issue 20):
 * - a mutation that runs in one transaction (a transactional `@Idempotent()`) is charged in that
 *   transaction, just before it commits (`PendingCharge`): an empty bucket rolls the mutation back
 *   and answers THROTTLED (a short bucket is refused before it runs, by a read: `CostBuckets.available`);
 * - so is a card-session request (`@ChargedInItsTransaction()`), in its session's own writing
 *   statement (`statement()` and `settle()`: openSession's insert, the message's move);
 * - any other operation reads its bucket (no write) before it runs, is refused or charged against
 *   what it read less what this process has charged and not yet written, and its charge is written
 *   behind (`CostBuckets`): one statement for every bucket charged since the last write. Two
 *   processes that read a bucket before either wrote its charge may both spend the same points:
 *   the overdraft is bounded by what a caller can spend in one write's time on each process
 *   (docs/security.md#rate-limits-graphql-cost), and the bucket goes negative by it (paid back).
 */
export interface CostThrottleSettings {
  /** The bucket's size, in cost points. */
  maximumAvailable: number;
  /** Points restored per second. */
  restoreRate: number;
}

/** Reported on every answer to an operation as `extensions.cost.throttleStatus`. */
export interface ThrottleStatus {
  maximumAvailable: number;
  currentlyAvailable: number;
  restoreRate: number;
}

/**
 * Whose bucket a call draws on: its OAuth client's; a cardholder app's holder has one of their own
 * (one app serves many holders, as a Shopify app has a bucket per store); anonymous calls, their IP address's.
 */
export function bucketKey(principal: Caller | null, ip: string | undefined): string {
  if (!principal) return `ip:${ip ?? 'unknown'}`;
  return principal.holderId ? `client:${principal.clientId}:holder:${principal.holderId}` : `client:${principal.clientId}`;
}

/** What the bucket holds at the row's new time: refilled for the seconds since it was last charged, up to its size. */
function restored(settings: CostThrottleSettings): string {
  // Numbers from the validated configuration, never from a request.
  const max = Number(settings.maximumAvailable);
  const rate = Number(settings.restoreRate);
  return `least(${max}::float8, b.available + ${rate}::float8 * greatest(0, extract(epoch from excluded.updated_at - b.updated_at)))`;
}

/**
 * Charges `cost` points to the bucket of `key` if it holds them; otherwise charges nothing.
 * Returns whether it was charged and what the bucket holds after.
 *
 * One statement, atomic under concurrency: ON CONFLICT locks the row, so two processes charging the
 * same bucket serialise on it. The refill uses the database's clock, the one clock all processes share.
 */
export async function chargeCost(em: EntityManager, key: string, cost: number, settings: CostThrottleSettings): Promise<{ charged: boolean; status: ThrottleStatus }> {
  const charge = chargeStatement(key, cost, settings);
  // Through `em`, not its connection: in a mutation's transaction when `em` is one.
  const [row] = await em.execute<{ available: number; last_charged: boolean }[]>(charge.sql, charge.params);
  return { charged: row!.last_charged, status: statusOf(row!.available, settings) };
}

/** A statement and its parameters, to run alone or as a CTE beside another. */
export interface Statement {
  sql: string;
  params: unknown[];
}

/** chargeCost's upsert, returning `available, last_charged`. */
function chargeStatement(key: string, cost: number, settings: CostThrottleSettings): Statement {
  const r = restored(settings);
  const fits = cost <= settings.maximumAvailable;
  return {
    sql: `insert into graphql_cost_bucket as b (bucket_key, available, last_charged, updated_at)
     values (?, ?, ?, clock_timestamp())
     on conflict (bucket_key) do update set
       available = case when ${r} >= ? then ${r} - ? else ${r} end,
       last_charged = ${r} >= ?,
       updated_at = excluded.updated_at
     returning available, last_charged`,
    params: [key, fits ? settings.maximumAvailable - cost : settings.maximumAvailable, fits, cost, cost, cost],
  };
}

/** What the bucket of `key` holds now, without charging it (for an operation refused before it was charged). */
export async function peekBucket(em: EntityManager, key: string, settings: CostThrottleSettings): Promise<ThrottleStatus> {
  return statusOf(await peekAvailable(em, key, settings), settings);
}

function statusOf(available: number, settings: CostThrottleSettings): ThrottleStatus {
  // Whole points for the client: what it may spend now.
  return { maximumAvailable: settings.maximumAvailable, currentlyAvailable: Math.floor(available), restoreRate: settings.restoreRate };
}

/** THROTTLED (HTTP 429), with the status and a `Retry-After` of when the bucket will hold `cost`. */
export function throttled(cost: number, limit: number, status: ThrottleStatus): GraphQLError {
  const waitSeconds = status.restoreRate > 0 ? Math.max(1, Math.ceil((cost - status.currentlyAvailable) / status.restoreRate)) : 60;
  return new GraphQLError(`Throttled: this operation costs ${cost} points and your bucket holds ${status.currentlyAvailable}; it refills ${status.restoreRate} points a second`, {
    extensions: {
      code: 'THROTTLED',
      cost: { requested: cost, limit, throttleStatus: status },
      http: { status: 429, headers: new Map([['retry-after', String(waitSeconds)]]) },
    },
  });
}

/** How long an operation waits for its bucket before it runs uncharged. */
export const BUCKET_DEADLINE_MS = 1_000;

/**
 * A bucket statement's result, or undefined when the database fails or does not answer within
 * BUCKET_DEADLINE_MS. The operation then runs uncharged (fails open): without its database the API
 * serves only what needs none (`serverInfo`), and a throttle must not take that away too.
 */
export async function unlessUnavailable<T>(statement: Promise<T>, log: Logger): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), BUCKET_DEADLINE_MS);
  });
  const settled = statement.catch((err: unknown) => {
    log.warn({ err }, 'cost bucket unavailable: the operation runs uncharged');
    return undefined;
  });
  try {
    const result = await Promise.race([settled, deadline]);
    if (result === undefined) log.warn('cost bucket unavailable: the operation runs uncharged');
    return result;
  } finally {
    clearTimeout(timer);
  }
}

// ——— no commit of its own per request ———

/** A request's charge, taken inside the transaction of the mutation it pays for (graphql/idempotency.ts). */
export interface PendingCharge {
  /**
   * Charges the bucket in `em`'s transaction, once per request; THROTTLED (the transaction then
   * rolls back) when it holds too little. With `along`, a writing statement of the same transaction
   * run in the same round trip (the stored answer): returns how many rows it returned.
   */
  take(em: EntityManager, along?: Statement): Promise<number>;
  /**
   * The charge as a statement (returning `available, last_charged`) for the caller to run as a CTE
   * of a writing statement of its own transaction (a card session's move: no round trip of its
   * own); then `settle` with the row it returned. Undefined when an earlier transaction of the
   * request took it already (a second root field): nothing to charge.
   */
  statement(): Statement | undefined;
  /** What `statement()` returned (undefined: it did not run); THROTTLED (roll the transaction back) when it charged nothing. */
  settle(row: { available: number; last_charged: boolean } | undefined): void;
  /** The transaction that took the charge rolled back (call it for that one only): the charge went with it (the request is then charged behind). */
  rolledBack(): void;
  /** The bucket after the charge (or after a refusal for want of points); undefined while not taken. */
  readonly status: ThrottleStatus | undefined;
  readonly taken: boolean;
}

export function pendingCharge(key: string, cost: number, limit: number, settings: CostThrottleSettings): PendingCharge {
  let status: ThrottleStatus | undefined;
  let taken = false;
  return {
    get status() {
      return status;
    },
    get taken() {
      return taken;
    },
    rolledBack() {
      if (!taken) return;
      taken = false;
      status = undefined;
    },
    statement() {
      return taken ? undefined : chargeStatement(key, cost, settings);
    },
    settle(row) {
      if (!row) return;
      status = statusOf(row.available, settings);
      if (!row.last_charged) throw throttled(cost, limit, status);
      taken = true;
    },
    async take(em, along) {
      if (taken) return along ? (await em.execute(along.sql, along.params)).length : 0;
      const charge = chargeStatement(key, cost, settings);
      const [row] = along
        ? await em.execute<{ available: number; last_charged: boolean; along: number }[]>(
            `with charge as (${charge.sql}), along as (${along.sql}) select available, last_charged, (select count(*) from along)::int as along from charge`,
            [...charge.params, ...along.params],
          )
        : await em.execute<{ available: number; last_charged: boolean; along: number }[]>(charge.sql, charge.params);
      status = statusOf(row!.available, settings);
      if (!row!.last_charged) throw throttled(cost, limit, status);
      taken = true;
      return row!.along ?? 0;
    },
  };
}

const CHARGED_IN_ITS_TRANSACTION = 'costChargedInItsTransaction';

/**
 * Marks a mutation that takes its request's charge (`ctx.costCharge`) in its own transaction, as a
 * transactional `@Idempotent()` does: the card-session mutations, whose charge goes in the
 * session's own writing statement. It must take it on every path that commits, or leave it
 * untaken (then it is written behind, apollo.ts): never both.
 */
export const ChargedInItsTransaction = (): MethodDecorator => Extensions({ [CHARGED_IN_ITS_TRANSACTION]: true }) as MethodDecorator;

/** Whether the mutation field `name` of `schema` carries `@ChargedInItsTransaction()`. */
export function markedChargedInItsTransaction(schema: GraphQLSchema, name: string): boolean {
  return schema.getMutationType()?.getFields()[name]?.extensions?.[CHARGED_IN_ITS_TRANSACTION] === true;
}

/** Most buckets a process keeps charges unwritten for (beyond, a charge is dropped with a warning: memory stays bounded). */
const MAX_UNWRITTEN_BUCKETS = 10_000;

/** How long a bucket read back from a charge stands in for a read of it (CostBuckets.available). */
const SEEN_FOR_MS = 2_000;

/** A charge made and not yet written: its points, and when (the bucket refills from then on). */
interface Unwritten {
  cost: number;
  at: number;
}

/**
 * One API process's share of the buckets: what it has charged and not yet written, and the one
 * write in flight. Charges are written behind, all of them in one statement, after the requests
 * that made them; charges made while a write runs go in the next one. A charge that leaves its
 * bucket half full or less is written at once instead, by the atomic conditional upsert
 * (`chargeCost`): near its limit a caller is counted exactly across processes; above it, two
 * processes may each spend points the other has not written yet, at most what the caller spends
 * in one write's time on each, and never more than half the bucket
 * (docs/security.md#rate-limits-graphql-cost).
 */
export class CostBuckets {
  private unwritten = new Map<string, Unwritten[]>();
  /** The charges of the write in flight: not yet visible to a read, and no longer in `unwritten`. */
  private inFlight = new Map<string, Unwritten[]>();
  /** Charges being made at once (`chargeCost`), near a bucket's limit: counted by the checks that run meanwhile. */
  private charging = new Map<string, Unwritten[]>();
  /** Buckets as this process's transactions last read them back from their charges (`observe`). */
  private seen = new Map<string, { available: number; at: number }>();
  private writing: Promise<void> | null = null;
  private em: EntityManager | undefined;
  private closed = false;

  constructor(
    private readonly settings: CostThrottleSettings,
    private readonly log: Logger,
  ) {}

  /**
   * Charges `cost` to the bucket of `key` if it holds that much: reads it (one select, no write),
   * less what this process has charged and not yet written; writes the charge behind, or at once
   * when it leaves the bucket half full or less.
   */
  async charge(em: EntityManager, key: string, cost: number): Promise<{ charged: boolean; status: ThrottleStatus }> {
    // The charges unwritten as the read starts: one written while it runs is then counted twice (strict, never lenient).
    const atRead = this.charges(key);
    const available = await peekAvailable(em, key, this.settings);
    // From here to the charge, no await: of requests whose reads overlap, each counts those decided before it.
    const before = Math.min(this.settings.maximumAvailable, available) - this.pending(new Set([...atRead, ...this.charges(key)]));
    if (before < cost) return { charged: false, status: statusOf(before, this.settings) };
    if (before - cost <= this.settings.maximumAvailable / 2) return this.chargeNow(em, key, cost);
    this.defer(em, key, cost);
    return { charged: true, status: statusOf(before - cost, this.settings) };
  }

  /**
   * What the bucket of `key` holds for this process now: the row less this process's charges not
   * yet in it. The check before a mutation whose own transaction takes its exact charge, so it only
   * decides whether the mutation is refused before it runs. It reads the row, unless a transaction
   * of this process read it back from its charge (`seen`) within SEEN_FOR_MS and the bucket, refilled
   * since and less this process's charges, is still at least half full (issue 20: a round trip on
   * every card-session request). What other processes charged meanwhile is then not counted: their
   * mutation still runs, and its transaction's exact charge refuses it (THROTTLED, rolled back) if
   * the bucket is short. Near the limit the row is always read.
   */
  async available(em: EntityManager, key: string): Promise<ThrottleStatus> {
    const seen = this.seen.get(key);
    const now = Date.now();
    if (seen && now - seen.at <= SEEN_FOR_MS) {
      const estimate = Math.min(this.settings.maximumAvailable, seen.available + (this.settings.restoreRate * (now - seen.at)) / 1000) - this.pending(this.charges(key));
      if (estimate >= this.settings.maximumAvailable / 2) return statusOf(estimate, this.settings);
    }
    const atRead = this.charges(key);
    const available = await peekAvailable(em, key, this.settings);
    return statusOf(Math.min(this.settings.maximumAvailable, available) - this.pending(new Set([...atRead, ...this.charges(key)])), this.settings);
  }

  /** The bucket as a transaction of this process read it back from its exact charge (PendingCharge's status). */
  observe(key: string, status: ThrottleStatus | undefined): void {
    if (!status) return;
    this.seen.delete(key); // newest last: the oldest goes first when full
    if (this.seen.size >= MAX_UNWRITTEN_BUCKETS) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { available: status.currentlyAvailable, at: Date.now() });
  }

  /** Charges `cost` at once (conditionally, across processes); counted as this process's while its statement runs. */
  private async chargeNow(em: EntityManager, key: string, cost: number): Promise<{ charged: boolean; status: ThrottleStatus }> {
    const mine: Unwritten = { cost, at: Date.now() };
    this.charging.set(key, [...(this.charging.get(key) ?? []), mine]);
    try {
      return await chargeCost(em, key, cost, this.settings);
    } finally {
      const left = this.charging.get(key)!.filter((c) => c !== mine);
      if (left.length) this.charging.set(key, left);
      else this.charging.delete(key);
    }
  }

  /** Charges `cost` without a check (an operation that ran without its transaction taking the charge), written behind. */
  defer(em: EntityManager, key: string, cost: number): void {
    this.em ??= em;
    if (!this.unwritten.has(key) && this.unwritten.size >= MAX_UNWRITTEN_BUCKETS) return void this.log.warn({ key }, 'too many cost buckets waiting to be written: a charge is dropped');
    this.unwritten.set(key, [...(this.unwritten.get(key) ?? []), { cost, at: Date.now() }]);
    this.writing ??= this.write();
  }

  /** Writes every charge not yet written (tests). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** A clean stop: writes what is left, once, and writes no more. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** This process's charges of `key` its bucket's row may not show yet: unwritten, being written, or being charged at once. */
  private charges(key: string): Unwritten[] {
    return [...(this.unwritten.get(key) ?? []), ...(this.inFlight.get(key) ?? []), ...(this.charging.get(key) ?? [])];
  }

  /**
   * What `charges` still take from the bucket now: each refills at the restore rate from when it
   * was made, as it would have in the bucket (the read already refills the bucket for that time
   * when it is below full: lenient by the rate times a write's latency).
   */
  private pending(charges: Iterable<Unwritten>): number {
    const now = Date.now();
    let points = 0;
    for (const c of charges) points += Math.max(0, c.cost - (this.settings.restoreRate * (now - c.at)) / 1000);
    return points;
  }

  private async write(): Promise<void> {
    // After the requests of this turn of the event loop, so that they share the statement.
    await new Promise((r) => setImmediate(r));
    const batch = this.unwritten;
    this.unwritten = new Map();
    this.inFlight = batch;
    let failed = false;
    try {
      await writeCharges(this.em!, batch, this.settings);
    } catch (err) {
      failed = true;
      this.log.warn({ err, buckets: batch.size }, 'cost buckets could not be written: retried with the next charge');
    }
    this.inFlight = new Map();
    if (failed && !this.closed) {
      for (const [key, charges] of batch) this.unwritten.set(key, [...charges, ...(this.unwritten.get(key) ?? [])]);
      // Not at once: a database that is down would be asked again in a loop.
      await new Promise((r) => setTimeout(r, 1_000).unref());
    }
    this.writing = this.unwritten.size && !(failed && this.closed) ? this.write() : null;
  }
}

/** The points in the bucket of `key` now, refilled, without charging it; a full bucket when it has none. */
async function peekAvailable(em: EntityManager, key: string, settings: CostThrottleSettings): Promise<number> {
  const [row] = await em
    .getConnection()
    .execute<{ available: number }[]>(`select least(?::float8, available + ?::float8 * greatest(0, extract(epoch from clock_timestamp() - updated_at))) as available from graphql_cost_bucket where bucket_key = ?`, [
      settings.maximumAvailable,
      settings.restoreRate,
      key,
    ]);
  return row?.available ?? settings.maximumAvailable;
}

/**
 * Charges every bucket of `batch` its sum, unconditionally (each was allowed when it was made),
 * in one statement, in key order (two processes writing the same buckets lock them in one order).
 * A bucket goes at most its size below zero: an overdraft is paid back by waiting, not forgotten.
 */
async function writeCharges(em: EntityManager, batch: Map<string, Unwritten[]>, settings: CostThrottleSettings): Promise<void> {
  const keys = [...batch.keys()].sort();
  // Every allowed charge in full (the statement keeps the bucket no lower than minus its size).
  const sums = keys.map((k) => [k, batch.get(k)!.reduce((sum, c) => sum + c.cost, 0)]);
  const max = Number(settings.maximumAvailable);
  await em.getConnection().execute(
    `insert into graphql_cost_bucket as b (bucket_key, available, last_charged, updated_at)
     select key, greatest(-${max}::float8, ${max}::float8 - value::float8), true, clock_timestamp() from jsonb_each_text(?::jsonb) order by key
     on conflict (bucket_key) do update set
       available = greatest(-${max}::float8, ${restored(settings)} - (${max}::float8 - excluded.available)),
       last_charged = true,
       updated_at = excluded.updated_at`,
    [JSON.stringify(Object.fromEntries(sums))],
  );
}
