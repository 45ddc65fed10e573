/**
 * When a failed delivery is tried again: the delay doubles from `firstDelayMs` up to `maxDelayMs`,
 * and a delivery whose first attempt is `giveUpAfterMs` old when an attempt fails is FAILED. With
 * the defaults: 30 s, 1 min, 2 min … 4 h 16 min, then every 6 h, for at least 72 hours.
 */
export interface RetrySchedule {
  firstDelayMs: number;
  maxDelayMs: number;
  giveUpAfterMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  firstDelayMs: 30_000,
  maxDelayMs: 6 * 3600_000,
  giveUpAfterMs: 72 * 3600_000,
};

/** The wait after the `attempts`-th failed attempt (1 = the first). */
export function retryDelayMs(schedule: RetrySchedule, attempts: number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 40);
  return Math.min(schedule.firstDelayMs * 2 ** exponent, schedule.maxDelayMs);
}

export function retryScheduleOf(overrides: Partial<RetrySchedule> = {}): RetrySchedule {
  const schedule = { ...DEFAULT_RETRY_SCHEDULE, ...overrides };
  for (const [name, value] of Object.entries(schedule)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`retry.${name}: expected milliseconds ≥ 0, got ${value}`);
  }
  if (schedule.maxDelayMs < schedule.firstDelayMs) throw new RangeError('retry.maxDelayMs must be at least retry.firstDelayMs');
  return schedule;
}
