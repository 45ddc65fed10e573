import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type PaymentErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'FORBIDDEN_OPERATION' | 'CURRENCY_MISMATCH' | 'DUPLICATE_ORDER' | 'INVALID_STATE' | 'PAYMENT_IN_PROGRESS' | 'REFUND_EXCEEDS_PAYMENT';

const USER_ERROR_CODES: Record<PaymentErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  FORBIDDEN_OPERATION: UserErrorCode.FORBIDDEN_OPERATION,
  CURRENCY_MISMATCH: UserErrorCode.CURRENCY_MISMATCH,
  DUPLICATE_ORDER: UserErrorCode.DUPLICATE_ORDER,
  INVALID_STATE: UserErrorCode.INVALID_PAYMENT_STATE,
  PAYMENT_IN_PROGRESS: UserErrorCode.PAYMENT_IN_PROGRESS,
  REFUND_EXCEEDS_PAYMENT: UserErrorCode.REFUND_EXCEEDS_PAYMENT,
};

/** A refusal of the payments context; resolvers turn it into a userError. */
export class PaymentError extends DomainError<PaymentErrorCode> {
  constructor(code: PaymentErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
