import { describe, expect, it } from 'vitest';
import { afterFailure } from './throttle.js';

describe('the back-off after failures', () => {
  const rule = { freeFailures: 3, firstBackoffSeconds: 30, maxBackoffSeconds: 900 };
  const now = new Date('2026-12-06T12:00:00Z');
  const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);
  const cases: [string, { failures: number; lastFailureAt: Date } | undefined, number, number | null][] = [
    ['the first failure is free', undefined, 1, null],
    ['the free ones stay free', { failures: 2, lastFailureAt: at(-5) }, 3, null],
    ['the first past them blocks for the first back-off', { failures: 3, lastFailureAt: at(-5) }, 4, 30],
    ['each next one doubles it', { failures: 5, lastFailureAt: at(-5) }, 6, 120],
    ['up to the ceiling', { failures: 40, lastFailureAt: at(-5) }, 41, 900],
    ['failures older than the window are forgotten', { failures: 40, lastFailureAt: at(-86_401) }, 1, null],
  ];
  it.each(cases)('%s', (_name, previous, failures, blockedFor) => {
    const next = afterFailure(previous, rule, 86_400, now);
    expect(next.failures).toBe(failures);
    expect(next.blockedUntil).toEqual(blockedFor === null ? null : at(blockedFor));
  });
});
