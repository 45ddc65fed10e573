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

export class TenancyError extends Error {
  constructor(
    readonly code: TenancyErrorCode,
    message: string,
    /** The input field the refusal is about (`timeZone`, `feePlan`, ...), where there is one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'TenancyError';
  }
}
