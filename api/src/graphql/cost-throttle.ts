import type { EntityManager } from '@mikro-orm/postgresql';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { Caller } from './context.js';

/**
 * Cost-based rate limits, Shopify's model (docs/security.md#rate-limits-graphql-cost): each caller
 * has a leaky bucket of cost points that refills at a fixed rate up to its maximum; an operation is
 * charged its measured cost before it runs and refused with THROTTLED when the bucket holds less.
 * Buckets live in PostgreSQL (`graphql_cost_bucket`), so every API process shares them.
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
  const r = restored(settings);
  const fits = cost <= settings.maximumAvailable;
  const [row] = await em.getConnection().execute<{ available: number; last_charged: boolean }[]>(
    `insert into graphql_cost_bucket as b (bucket_key, available, last_charged, updated_at)
     values (?, ?, ?, clock_timestamp())
     on conflict (bucket_key) do update set
       available = case when ${r} >= ? then ${r} - ? else ${r} end,
       last_charged = ${r} >= ?,
       updated_at = excluded.updated_at
     returning available, last_charged`,
    [key, fits ? settings.maximumAvailable - cost : settings.maximumAvailable, fits, cost, cost, cost],
  );
  return { charged: row!.last_charged, status: statusOf(row!.available, settings) };
}

/** What the bucket of `key` holds now, without charging it (for an operation refused before it was charged). */
export async function peekBucket(em: EntityManager, key: string, settings: CostThrottleSettings): Promise<ThrottleStatus> {
  const [row] = await em
    .getConnection()
    .execute<{ available: number }[]>(`select least(?::float8, available + ?::float8 * greatest(0, extract(epoch from clock_timestamp() - updated_at))) as available from graphql_cost_bucket where bucket_key = ?`, [
      settings.maximumAvailable,
      settings.restoreRate,
      key,
    ]);
  return statusOf(row?.available ?? settings.maximumAvailable, settings);
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
