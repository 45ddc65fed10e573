import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

/** Why tenancy refused a change. Each is a business outcome a caller can map to a userError. */
export enum TenancyErrorCode {
  INVALID_INPUT = 'INVALID_INPUT',
  INVALID_TIME_ZONE = 'INVALID_TIME_ZONE',
  /** A city code already taken. */
  DUPLICATE_CODE = 'DUPLICATE_CODE',
  /** A fee plan name already taken, or a merchant's or biller's name already taken in its city. */
  DUPLICATE_NAME = 'DUPLICATE_NAME',
  /** A fee plan in another currency than the city of the merchant or biller it is given to. */
  CURRENCY_MISMATCH = 'CURRENCY_MISMATCH',
  UNKNOWN_CITY = 'UNKNOWN_CITY',
  UNKNOWN_FEE_PLAN = 'UNKNOWN_FEE_PLAN',
  UNKNOWN_MERCHANT = 'UNKNOWN_MERCHANT',
  UNKNOWN_BILLER = 'UNKNOWN_BILLER',
}

const USER_ERROR_CODES: Record<TenancyErrorCode, UserErrorCode> = {
  [TenancyErrorCode.INVALID_INPUT]: UserErrorCode.INVALID_INPUT,
  [TenancyErrorCode.INVALID_TIME_ZONE]: UserErrorCode.INVALID_TIME_ZONE,
  [TenancyErrorCode.DUPLICATE_CODE]: UserErrorCode.DUPLICATE_CODE,
  [TenancyErrorCode.DUPLICATE_NAME]: UserErrorCode.DUPLICATE_NAME,
  [TenancyErrorCode.CURRENCY_MISMATCH]: UserErrorCode.CURRENCY_MISMATCH,
  [TenancyErrorCode.UNKNOWN_CITY]: UserErrorCode.NOT_FOUND,
  [TenancyErrorCode.UNKNOWN_FEE_PLAN]: UserErrorCode.NOT_FOUND,
  [TenancyErrorCode.UNKNOWN_MERCHANT]: UserErrorCode.NOT_FOUND,
  [TenancyErrorCode.UNKNOWN_BILLER]: UserErrorCode.NOT_FOUND,
};

export class TenancyError extends DomainError<TenancyErrorCode> {
  constructor(
    code: TenancyErrorCode,
    message: string,
    /** The input field the refusal is about (`timeZone`, `feePlan`, ...), where there is one. */
    field?: string,
  ) {
    super(code, message, USER_ERROR_CODES[code], field);
    this.name = 'TenancyError';
  }
}
