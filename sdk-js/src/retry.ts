/**
 * How the client retries a call that may safely be sent again (a query, or a money mutation with its
 * idempotency key): after a network error, an HTTP 5xx, `THROTTLED` (the cost bucket is empty), or `IDEMPOTENCY_CONFLICT` (the first call with
 * the key still runs). Each retry waits longer: `baseDelayMs`, doubled each time up to `maxDelayMs`,
 * with jitter, and at least what the server's `Retry-After` asks (up to `maxDelayMs`).
 */
export interface RetryOptions {
  /** Attempts in all, the first one included (default 4); 1 turns retries off. */
  attempts?: number;
  /** The wait before the first retry, in ms (default 250). */
  baseDelayMs?: number;
  /** The longest wait between attempts, in ms (default 5000); it also caps `Retry-After`. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 4, baseDelayMs: 250, maxDelayMs: 5_000 };

export function retryPolicy(...layers: (RetryOptions | false | undefined)[]): Required<RetryOptions> {
  let policy = { ...DEFAULT_RETRY };
  for (const layer of layers) {
    if (layer === false) policy = { ...policy, attempts: 1 };
    else if (layer) policy = { ...policy, ...Object.fromEntries(Object.entries(layer).filter(([, v]) => v !== undefined)) };
  }
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) throw new RangeError('OneCardClient: retry.attempts must be a positive integer');
  return policy;
}

/**
 * The wait before attempt `attempt + 1` (`attempt` counts from 1): exponential with equal jitter
 * (between half and all of `baseDelayMs · 2^(attempt-1)`), at least `retryAfterMs`, at most `maxDelayMs`.
 */
export function backoffDelay(policy: Required<RetryOptions>, attempt: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** Waits `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Errors that `fetch` itself threw (the request may or may not have reached the server). */
const networkErrors = new WeakSet<object>();

/** Whether `err` was thrown by `fetch` (a network failure), as marked by {@link markingNetworkErrors}. */
export function isNetworkError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && networkErrors.has(err);
}

/**
 * Wraps a `fetch` so that what it throws is known as a network failure, unless the request was
 * aborted by its signal (the caller's choice, not retried).
 */
export function markingNetworkErrors(f: () => typeof fetch): typeof fetch {
  return async (input, init) => {
    try {
      return await f()(input, init);
    } catch (err) {
      if (typeof err === 'object' && err !== null && !init?.signal?.aborted) networkErrors.add(err);
      throw err;
    }
  };
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
