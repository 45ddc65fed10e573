import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type SettlementErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_INPUT'
  /** A window for a business day that has not begun in its city. */
  | 'WINDOW_NOT_STARTED'
  /** Clearing or reconciling a window that is still open. */
  | 'WINDOW_OPEN'
  /** A reconciliation difference that is no longer open. */
  | 'DIFFERENCE_NOT_OPEN'
  | 'GATEWAY_UNAVAILABLE';

const USER_ERROR_CODES: Record<SettlementErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  WINDOW_NOT_STARTED: UserErrorCode.WINDOW_NOT_STARTED,
  WINDOW_OPEN: UserErrorCode.WINDOW_OPEN,
  DIFFERENCE_NOT_OPEN: UserErrorCode.DIFFERENCE_NOT_OPEN,
  GATEWAY_UNAVAILABLE: UserErrorCode.GATEWAY_UNAVAILABLE,
};

/** A refusal of the settlement context (reconciliation's too); resolvers turn it into a userError. */
export class SettlementError extends DomainError<SettlementErrorCode> {
  constructor(code: SettlementErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
    this.name = 'SettlementError';
  }
}
