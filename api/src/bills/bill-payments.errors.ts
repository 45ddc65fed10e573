import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type BillPaymentErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'BILL_NOT_PAYABLE' | 'PARTIAL_PAYMENT_NOT_ALLOWED' | 'OVERPAYMENT' | 'BILL_PAYMENT_IN_PROGRESS' | 'INVALID_STATE';

const USER_ERROR_CODES: Record<BillPaymentErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  BILL_NOT_PAYABLE: UserErrorCode.BILL_NOT_PAYABLE,
  PARTIAL_PAYMENT_NOT_ALLOWED: UserErrorCode.PARTIAL_PAYMENT_NOT_ALLOWED,
  OVERPAYMENT: UserErrorCode.OVERPAYMENT,
  BILL_PAYMENT_IN_PROGRESS: UserErrorCode.BILL_PAYMENT_IN_PROGRESS,
  INVALID_STATE: UserErrorCode.INVALID_INPUT,
};

/** A refusal of bill paying; resolvers turn it into a userError. */
export class BillPaymentError extends DomainError<BillPaymentErrorCode> {
  constructor(code: BillPaymentErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
