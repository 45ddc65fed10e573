import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE, retryDelayMs, retryScheduleOf } from './retry-schedule.js';
import { signatureHeader } from './webhook-signature.js';

describe('the retry schedule', () => {
  it('doubles from 30 s and stays at 6 h', () => {
    const delays = Array.from({ length: 13 }, (_, i) => retryDelayMs(DEFAULT_RETRY_SCHEDULE, i + 1) / 1000);
    expect(delays).toEqual([30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600, 21600]);
  });

  it('keeps trying for at least 72 hours: the attempts it makes before giving up span that long', () => {
    let at = 0;
    let attempts = 1;
    while (at < DEFAULT_RETRY_SCHEDULE.giveUpAfterMs) at += retryDelayMs(DEFAULT_RETRY_SCHEDULE, attempts++);
    expect(at).toBeGreaterThanOrEqual(72 * 3600_000);
    expect(attempts).toBe(22);
  });

  it('refuses nonsense', () => {
    expect(() => retryScheduleOf({ firstDelayMs: -1 })).toThrow(RangeError);
    expect(() => retryScheduleOf({ firstDelayMs: 1000, maxDelayMs: 10 })).toThrow(RangeError);
  });
});

describe('the signature header', () => {
  it('is t= then one v1= per live secret, the HMAC-SHA256 of "<t>.<body>"', () => {
    // Checkable by hand: printf '%s' '1764072000.{"a":1}' | openssl dgst -sha256 -hmac whsec_x
    expect(signatureHeader(['whsec_x'], '{"a":1}', 1764072000)).toBe('t=1764072000,v1=60df51534abe08f4a17ed67402e697bf0701389bc227a7212f0a9d6a504261e9');
    expect(signatureHeader(['whsec_x', 'whsec_y'], '{"a":1}', 1764072000).split(',')).toHaveLength(3);
  });
});
