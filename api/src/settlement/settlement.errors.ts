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

/** A refusal of the settlement context; resolvers turn it into a userError. */
export class SettlementError extends Error {
  constructor(
    readonly code: SettlementErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'SettlementError';
  }
}
