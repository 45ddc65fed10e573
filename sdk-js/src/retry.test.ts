import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, retryPolicy } from './retry.js';

describe('retry policy', () => {
  it('layers the client and call options over the defaults; false means one attempt', () => {
    expect(retryPolicy()).toEqual(DEFAULT_RETRY);
    expect(retryPolicy({ attempts: 6 }, { baseDelayMs: 10, maxDelayMs: undefined })).toEqual({ attempts: 6, baseDelayMs: 10, maxDelayMs: 5_000 });
    expect(retryPolicy({ attempts: 6 }, false).attempts).toBe(1);
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
  });

  it('backs off exponentially with jitter, at least Retry-After, at most maxDelayMs', () => {
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, undefined, () => 1))).toEqual([100, 200, 400, 800, 1_000]);
    expect([1, 2, 3].map((n) => backoffDelay(policy, n, undefined, () => 0))).toEqual([50, 100, 200]);
    expect(backoffDelay(policy, 1, 700, () => 0)).toBe(700);
    expect(backoffDelay(policy, 1, 30_000, () => 0)).toBe(1_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('1')).toBe(1_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-11-25T08:00:00Z');
    expect(parseRetryAfter('Wed, 25 Nov 2026 08:00:03 GMT', now)).toBe(3_000);
  });
});
