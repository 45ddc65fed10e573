export type TopUpErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_INPUT'
  | 'FORBIDDEN_OPERATION'
  | 'CARD_NOT_USABLE'
  | 'TOP_UP_AMOUNT_OUT_OF_RANGE'
  | 'DAILY_LIMIT_EXCEEDED'
  | 'PURSE_LIMIT_EXCEEDED'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'GATEWAY_UNAVAILABLE'
  | 'PAYMENT_DECLINED'
  | 'NOT_REFUNDABLE';

/** A refusal of the top-ups context; resolvers turn it into a userError. */
export class TopUpError extends Error {
  constructor(
    readonly code: TopUpErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
