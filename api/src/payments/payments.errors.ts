export type PaymentErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'FORBIDDEN_OPERATION' | 'CURRENCY_MISMATCH' | 'DUPLICATE_ORDER' | 'INVALID_STATE' | 'PAYMENT_IN_PROGRESS' | 'REFUND_EXCEEDS_PAYMENT';

/** A refusal of the payments context; resolvers turn it into a userError. */
export class PaymentError extends Error {
  constructor(
    readonly code: PaymentErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
