import { checkLateFee, epochDay, type FieldProblem, type LateFeeParts, type LateFeeRule, MAX_BILL_AMOUNT, wholeNumber } from './late-fee.js';

/**
 * The checks of a bill as a biller hands it over — one by one, in a list, as a CSV row, or in its
 * live answer — in one place, so every way in refuses the same things with the same words. Pure:
 * each problem names the field (GraphQL names; the CSV import maps them to its columns).
 */

/** A bill that passed the checks, ready to store. */
export interface BillDraft {
  accountNumber: string;
  period: string;
  amountDue: bigint;
  /** `YYYY-MM-DD`. */
  dueDate: string;
  lateFee: LateFeeRule;
  allowPartial: boolean;
  billerReference: string;
}

/** A bill's fields as they arrive; anything may be missing or of the wrong type. */
export interface BillFields {
  accountNumber?: unknown;
  period?: unknown;
  amountDue?: unknown;
  dueDate?: unknown;
  lateFee?: LateFeeParts | null;
  allowPartial?: unknown;
  billerReference?: unknown;
}

export const TEXT_LIMITS = { accountNumber: 64, period: 32, billerReference: 64 } as const;

/** Due dates a bill may have: a sanity range that catches a year typed wrong. */
const FIRST_DUE_DATE = '2000-01-01';
const LAST_DUE_DATE = '2099-12-31';

// Control characters (tabs, line breaks, …) and text that starts or ends with white space are
// refused rather than cleaned: an account number must match the biller's exactly.
const CONTROL = /\p{Cc}/u;

/** A short identifier-like text: 1 to `max` characters, no control characters, no space at either end. */
export function checkText(value: unknown, field: string, max: number): { value: string | null; problem?: FieldProblem } {
  if (typeof value !== 'string' || value.length === 0) return { value: null, problem: { field, message: `${field} is required (1 to ${max} characters)` } };
  const length = [...value].length; // characters, as PostgreSQL counts them
  if (length > max) return { value: null, problem: { field, message: `${field} is at most ${max} characters (got ${length})` } };
  if (CONTROL.test(value)) return { value: null, problem: { field, message: `${field} has a control character (a tab or a line break?)` } };
  if (value.trim() !== value) return { value: null, problem: { field, message: `${field} starts or ends with white space` } };
  return { value };
}

export function checkDueDate(value: unknown, field = 'dueDate'): { value: string | null; problem?: FieldProblem } {
  if (typeof value !== 'string' || epochDay(value) === null) return { value: null, problem: { field, message: `${field} is a date written YYYY-MM-DD` } };
  if (value < FIRST_DUE_DATE || value > LAST_DUE_DATE) return { value: null, problem: { field, message: `${field} is between ${FIRST_DUE_DATE} and ${LAST_DUE_DATE}` } };
  return { value };
}

export function checkAmountDue(value: unknown, field = 'amountDue'): { value: bigint | null; problem?: FieldProblem } {
  const amount = wholeNumber(value as bigint | number | string | null | undefined, 1n, MAX_BILL_AMOUNT);
  if (amount === null) return { value: null, problem: { field, message: `${field} is a whole number of minor units, 1 to ${MAX_BILL_AMOUNT} (1250 for 12.50)` } };
  return { value: amount };
}

/** Checks every field of a bill and reports every problem, not just the first. */
export function checkBill(fields: BillFields): { draft: BillDraft; problems: [] } | { draft: null; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const take = <T>(checked: { value: T | null; problem?: FieldProblem }): T | null => {
    if (checked.problem) problems.push(checked.problem);
    return checked.value;
  };
  const accountNumber = take(checkText(fields.accountNumber, 'accountNumber', TEXT_LIMITS.accountNumber));
  const period = take(checkText(fields.period, 'period', TEXT_LIMITS.period));
  const amountDue = take(checkAmountDue(fields.amountDue));
  const dueDate = take(checkDueDate(fields.dueDate));
  const billerReference = take(checkText(fields.billerReference, 'billerReference', TEXT_LIMITS.billerReference));
  let allowPartial = false;
  if (fields.allowPartial !== undefined && fields.allowPartial !== null) {
    if (typeof fields.allowPartial === 'boolean') allowPartial = fields.allowPartial;
    else problems.push({ field: 'allowPartial', message: 'allowPartial is true or false' });
  }
  const lateFee = checkLateFee(fields.lateFee);
  problems.push(...lateFee.problems);
  if (problems.length || accountNumber === null || period === null || amountDue === null || dueDate === null || billerReference === null || !lateFee.rule) return { draft: null, problems };
  return { draft: { accountNumber, period, amountDue, dueDate, lateFee: lateFee.rule, allowPartial, billerReference }, problems: [] };
}
