import { MAX_TRANSFER_WINDOW_MINUTES } from './origin-destination.service.js';

/**
 * The arguments every analytics answer takes, checked once for the GraphQL queries (BAD_USER_INPUT)
 * and the CSV downloads (400): business days YYYY-MM-DD at most 366 days apart, a transfer window.
 */

/** Bad arguments, said plainly; not a refusal of a business rule. */
export class AnalyticsInputError extends Error {
  override name = 'AnalyticsInputError';
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const MAX_PERIOD_DAYS = 366;

function checkedDay(value: unknown, name: string): string {
  const day = typeof value === 'string' ? value : '';
  // Year 0000 is a date to JavaScript, none to PostgreSQL (1 BC is followed by AD 1): refused here, not by the statement.
  if (!DAY.test(day) || day.startsWith('0000') || Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) throw new AnalyticsInputError(`\`${name}\` is a date YYYY-MM-DD`);
  return day;
}

/** The first and last business day (inclusive). */
export function checkedPeriod(from: unknown, to: unknown): { from: string; to: string } {
  const [first, last] = [checkedDay(from, 'from'), checkedDay(to, 'to')];
  const span = (Date.parse(last) - Date.parse(first)) / 86_400_000;
  if (span < 0 || span > MAX_PERIOD_DAYS) throw new AnalyticsInputError(`\`to\` is from 0 to ${MAX_PERIOD_DAYS} days after \`from\``);
  return { from: first, to: last };
}

/** Whole minutes, 1 to MAX_TRANSFER_WINDOW_MINUTES. */
export function checkedTransferWindow(value: unknown): number {
  const minutes = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : value;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > MAX_TRANSFER_WINDOW_MINUTES) throw new AnalyticsInputError(`\`transferWindowMinutes\` is whole minutes from 1 to ${MAX_TRANSFER_WINDOW_MINUTES}`);
  return minutes;
}

/** One of `allowed`, as asked. */
export function checkedChoice<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw new AnalyticsInputError(`\`${name}\` is one of ${allowed.join(', ')}`);
  return value as T;
}
