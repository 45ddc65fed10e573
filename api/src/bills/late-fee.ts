/**
 * Late fees (滞纳金) of a bill: a rule the biller publishes with it, and the one pure function that
 * says what the rule adds on a given day. No clock: "today" (the biller's city day) comes in.
 */

export type LateFeeRule = { kind: 'NONE' } | { kind: 'FIXED'; amount: bigint } | { kind: 'DAILY_BASIS_POINTS'; basisPoints: number; cap: bigint };

export type LateFeeKind = LateFeeRule['kind'];
export const LATE_FEE_KINDS: readonly LateFeeKind[] = ['NONE', 'FIXED', 'DAILY_BASIS_POINTS'];

/** The largest amount a bill (or a fixed fee, or a cap) may name: far above any utility bill, far below 2^53. */
export const MAX_BILL_AMOUNT = 100_000_000n;
/** A daily rate of at most 100 %. Chinese utilities commonly charge 5 (0.05 % a day, 万分之五). */
export const MAX_DAILY_BASIS_POINTS = 10_000;

const DAY_MS = 86_400_000;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since the epoch of a valid `YYYY-MM-DD` calendar date; null for anything else. */
export function epochDay(date: string): number | null {
  const m = ISO_DATE.exec(date);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  return ms / DAY_MS;
}

/** Whole days `today` is past `dueDate` (0 on or before the due date). */
export function daysLate(dueDate: string, today: string): number {
  const due = epochDay(dueDate);
  const now = epochDay(today);
  if (due === null) throw new RangeError(`dueDate: not a date: ${dueDate}`);
  if (now === null) throw new RangeError(`today: not a date: ${today}`);
  return Math.max(0, now - due);
}

/**
 * What the rule adds to a bill on `today` (both `YYYY-MM-DD`, today in the biller's city):
 * - paid on or before the due date: nothing;
 * - FIXED: the amount, from the day after the due date;
 * - DAILY_BASIS_POINTS: amountDue × basisPoints / 10000 for each day past the due date, rounded
 *   half up to the minor unit once over the whole period (not per day), and never more than the cap.
 * Integer arithmetic only (bigint), so a long-overdue bill cannot overflow or drift.
 */
export function lateFeeFor(bill: { amountDue: bigint; dueDate: string; lateFee: LateFeeRule }, today: string): bigint {
  const days = daysLate(bill.dueDate, today);
  if (days === 0) return 0n;
  const rule = bill.lateFee;
  switch (rule.kind) {
    case 'NONE':
      return 0n;
    case 'FIXED':
      return rule.amount;
    case 'DAILY_BASIS_POINTS': {
      const fee = (bill.amountDue * BigInt(rule.basisPoints) * BigInt(days) + 5_000n) / 10_000n;
      return fee < rule.cap ? fee : rule.cap;
    }
  }
}

/** amount due + late fee on `today`: what the bill asks for in total. */
export function amountOwed(bill: { amountDue: bigint; dueDate: string; lateFee: LateFeeRule }, today: string): bigint {
  return bill.amountDue + lateFeeFor(bill, today);
}

// ——— the rule as data ———

/** A rule as its parts arrive (GraphQL input, CSV columns, a biller's JSON answer). */
export interface LateFeeParts {
  kind?: string | null;
  amount?: bigint | number | string | null;
  basisPoints?: bigint | number | string | null;
  cap?: bigint | number | string | null;
}

export interface FieldProblem {
  /** `lateFee.amount`, … (relative to the bill). */
  field: string;
  message: string;
}

/** A whole number in range, from a JS integer, a bigint or a string of digits; null when it is not one. */
export function wholeNumber(value: bigint | number | string | null | undefined, min: bigint, max: bigint): bigint | null {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]{1,16}$/.test(value)) n = BigInt(value);
  else return null;
  return n >= min && n <= max ? n : null;
}

/** Checks a rule's parts; returns the rule, or what is wrong with it (field names under `prefix`). */
export function checkLateFee(parts: LateFeeParts | null | undefined, prefix = 'lateFee'): { rule: LateFeeRule; problems: [] } | { rule: null; problems: FieldProblem[] } {
  if (!parts) return { rule: { kind: 'NONE' }, problems: [] };
  const f = (name: string) => `${prefix}.${name}`;
  const present = (v: unknown) => v !== null && v !== undefined && v !== '';
  const kind = parts.kind ?? 'NONE';
  const problems: FieldProblem[] = [];
  const extra = (names: (keyof LateFeeParts)[]) => {
    for (const n of names) if (present(parts[n])) problems.push({ field: f(n), message: `a ${kind} late fee takes no ${n}` });
  };
  switch (kind) {
    case 'NONE':
      extra(['amount', 'basisPoints', 'cap']);
      return problems.length ? { rule: null, problems } : { rule: { kind: 'NONE' }, problems: [] };
    case 'FIXED': {
      extra(['basisPoints', 'cap']);
      const amount = wholeNumber(parts.amount, 1n, MAX_BILL_AMOUNT);
      if (amount === null) problems.push({ field: f('amount'), message: `a FIXED late fee has an amount of 1 to ${MAX_BILL_AMOUNT} minor units` });
      return problems.length || amount === null ? { rule: null, problems } : { rule: { kind: 'FIXED', amount }, problems: [] };
    }
    case 'DAILY_BASIS_POINTS': {
      extra(['amount']);
      const bp = wholeNumber(parts.basisPoints, 1n, BigInt(MAX_DAILY_BASIS_POINTS));
      const cap = wholeNumber(parts.cap, 1n, MAX_BILL_AMOUNT);
      if (bp === null) problems.push({ field: f('basisPoints'), message: `a daily late fee is 1 to ${MAX_DAILY_BASIS_POINTS} basis points of the amount due a day` });
      if (cap === null) problems.push({ field: f('cap'), message: `a daily late fee has a cap of 1 to ${MAX_BILL_AMOUNT} minor units` });
      return problems.length || bp === null || cap === null ? { rule: null, problems } : { rule: { kind: 'DAILY_BASIS_POINTS', basisPoints: Number(bp), cap }, problems: [] };
    }
    default:
      return { rule: null, problems: [{ field: f('kind'), message: `a late fee kind is one of ${LATE_FEE_KINDS.join(', ')}` }] };
  }
}

/** The rule as stored (jsonb): amounts as JSON numbers (all below 2^53). */
export function lateFeeJson(rule: LateFeeRule): string {
  switch (rule.kind) {
    case 'NONE':
      return '{"kind":"NONE"}';
    case 'FIXED':
      return JSON.stringify({ kind: 'FIXED', amount: Number(rule.amount) });
    case 'DAILY_BASIS_POINTS':
      return JSON.stringify({ kind: 'DAILY_BASIS_POINTS', basisPoints: rule.basisPoints, cap: Number(rule.cap) });
  }
}

/** The rule from its stored jsonb. */
export function lateFeeFromJson(json: { kind: string; amount?: number; basisPoints?: number; cap?: number }): LateFeeRule {
  if (json.kind === 'FIXED') return { kind: 'FIXED', amount: BigInt(json.amount!) };
  if (json.kind === 'DAILY_BASIS_POINTS') return { kind: 'DAILY_BASIS_POINTS', basisPoints: json.basisPoints!, cap: BigInt(json.cap!) };
  return { kind: 'NONE' };
}
