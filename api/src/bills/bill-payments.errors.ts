export type BillPaymentErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'BILL_NOT_PAYABLE' | 'PARTIAL_PAYMENT_NOT_ALLOWED' | 'OVERPAYMENT' | 'BILL_PAYMENT_IN_PROGRESS' | 'INVALID_STATE';

/** A refusal of bill paying; resolvers turn it into a userError. */
export class BillPaymentError extends Error {
  constructor(
    readonly code: BillPaymentErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
