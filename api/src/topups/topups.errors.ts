import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

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

const USER_ERROR_CODES: Record<TopUpErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  FORBIDDEN_OPERATION: UserErrorCode.FORBIDDEN_OPERATION,
  CARD_NOT_USABLE: UserErrorCode.CARD_NOT_USABLE,
  TOP_UP_AMOUNT_OUT_OF_RANGE: UserErrorCode.TOP_UP_AMOUNT_OUT_OF_RANGE,
  DAILY_LIMIT_EXCEEDED: UserErrorCode.DAILY_LIMIT_EXCEEDED,
  PURSE_LIMIT_EXCEEDED: UserErrorCode.PURSE_LIMIT_EXCEEDED,
  IDEMPOTENCY_KEY_REUSED: UserErrorCode.IDEMPOTENCY_KEY_REUSED,
  GATEWAY_UNAVAILABLE: UserErrorCode.GATEWAY_UNAVAILABLE,
  PAYMENT_DECLINED: UserErrorCode.PAYMENT_DECLINED,
  NOT_REFUNDABLE: UserErrorCode.NOT_REFUNDABLE,
};

/** A refusal of the top-ups context; resolvers turn it into a userError. */
export class TopUpError extends DomainError<TopUpErrorCode> {
  constructor(code: TopUpErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
