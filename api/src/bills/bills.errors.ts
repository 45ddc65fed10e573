import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type BillErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_INPUT'
  | 'FORBIDDEN_OPERATION'
  | 'DUPLICATE_BILLER_REFERENCE'
  | 'INVALID_BILL_STATE'
  | 'BILL_VERSION_CONFLICT'
  | 'AMOUNT_DUE_BELOW_PAID'
  | 'PAYMENT_IN_PROGRESS'
  | 'INVALID_CSV'
  | 'CSV_TOO_LARGE'
  | 'BILL_IMPORT_REFUSED'
  | 'INVALID_FETCH_URL'
  | 'BILLER_UNAVAILABLE';

/** A refusal of the bills context; resolvers turn it into a userError (of the same name). */
export class BillError extends DomainError<BillErrorCode> {
  constructor(
    code: BillErrorCode,
    message: string,
    /** The input field, relative to `input` (`amountDue`, `lateFee.cap`). */
    field?: string,
  ) {
    super(code, message, UserErrorCode[code], field);
    this.name = 'BillError';
  }
}

/** One refused bill of a list (`index` from 0), and why. */
export interface BillRefusal {
  index: number;
  field: string | null;
  code: BillErrorCode;
  message: string;
}

/** Bills refused as a whole (publishBill, publishBills): nothing was written. */
export class BillsRefused extends Error {
  constructor(readonly refusals: BillRefusal[]) {
    super(`${new Set(refusals.map((r) => r.index)).size} bill(s) refused; nothing was published`);
    this.name = 'BillsRefused';
  }
}

/** The biller's live look-up failed: no answer, a timeout, or an answer we cannot use. */
export class BillerUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'BillerUnavailable';
  }
}
