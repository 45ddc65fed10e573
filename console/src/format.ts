/**
 * Amounts and times as people read them. Amounts arrive as integer minor units and are turned into
 * a decimal string by digit arithmetic (never a float) before Intl formats them for the currency;
 * times are shown in the city's time zone, whatever the browser's is.
 */
import { locale } from './i18n.ts';

export interface Money {
  amount: number;
  currency: string;
}

/** How many minor digits a currency has (CNY 2, JPY 0), as Intl knows it. */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** 1250 CNY → "12.50": exact, by strings. */
export function minorToDecimal(amount: number, currency: string): string {
  const digits = minorDigits(currency);
  const sign = amount < 0 ? '-' : '';
  const text = String(Math.abs(amount)).padStart(digits + 1, '0');
  return digits === 0 ? `${sign}${text}` : `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** "12.5" → 1250 for CNY; undefined when it is not an amount of this currency (too many decimals, not a number). */
export function decimalToMinor(text: string, currency: string): number | undefined {
  const digits = minorDigits(currency);
  const m = /^\s*(\d{1,12})(?:[.,](\d*))?\s*$/.exec(text);
  if (!m || (m[2] ?? '').length > digits) return undefined;
  const minor = Number(`${m[1]}${(m[2] ?? '').padEnd(digits, '0')}`);
  return Number.isSafeInteger(minor) ? minor : undefined;
}

/** ¥12.50, formatted for the current language from the exact decimal string. */
export function formatMoney(money: Money | null | undefined): string {
  if (!money) return '—';
  const format = new Intl.NumberFormat(locale(), { style: 'currency', currency: money.currency, currencyDisplay: 'narrowSymbol' });
  // Intl takes a decimal string exactly (ES2023 Intl.NumberFormat v3): no float on the way.
  return format.format(minorToDecimal(money.amount, money.currency) as unknown as number);
}

/** The zone times are shown in: the city's (every demo city is in China), unless a page knows better. */
export const DEFAULT_TIME_ZONE = 'Asia/Shanghai';

export function formatTime(iso: string | null | undefined, timeZone = DEFAULT_TIME_ZONE): string {
  if (!iso) return '—';
  return new Intl.DateTimeFormat(locale(), { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/**
 * A rate typed in per cent ("0.6", "0.60", "0.60 %") → 60 basis points, by digits (never a float);
 * undefined when it is not 0 to 100 % with at most two decimals.
 */
export function percentToBasisPoints(text: string): number | undefined {
  const m = /^\s*(\d{1,3})(?:[.,](\d{0,2}))?\s*%?\s*$/.exec(text);
  if (!m) return undefined;
  const basisPoints = Number(`${m[1]}${(m[2] ?? '').padEnd(2, '0')}`);
  return basisPoints <= 10_000 ? basisPoints : undefined;
}

/** 60 basis points → "0.60" (per cent), by digits. */
export function basisPointsToPercent(basisPoints: number): string {
  const text = String(basisPoints).padStart(3, '0');
  return `${text.slice(0, -2)}.${text.slice(-2)}`;
}
