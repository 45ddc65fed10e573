/**
 * Calendar months as the monthly partitions name them (`YYYY-MM`, in UTC): clearing items' and the
 * ledger's (docs/scaling.md "Partitions and retention").
 */

/** Months created ahead of the current one (in UTC; a city's day is at most a day off it). */
export const MONTHS_AHEAD = 3;

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** `YYYY-MM` is a calendar month. */
export const isMonth = (month: string): boolean => MONTH.test(month);

/** The first day of the month and of the next one, `YYYY-MM-DD`. */
export function monthBounds(month: string): { from: string; to: string } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
  return { from: `${month}-01`, to: `${next}-01` };
}

/** The month `k` months after the one of `day` (a Date, in UTC). */
export function monthAfter(day: Date, k: number): string {
  const d = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + k, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The months a table's partitions must cover: this one, the next MONTHS_AHEAD, and any `held` (rows a default partition took), in order. */
export function monthsToMake(now: Date, held: readonly string[]): string[] {
  return [...new Set([...Array.from({ length: MONTHS_AHEAD + 1 }, (_, k) => monthAfter(now, k)), ...held])].sort();
}
