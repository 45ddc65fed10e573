/** Why the ledger refused an entry. Each is a business outcome a caller can map to a userError. */
export enum LedgerErrorCode {
  INVALID_ENTRY_KEY = 'INVALID_ENTRY_KEY',
  INVALID_DESCRIPTION = 'INVALID_DESCRIPTION',
  /** An account opened with a bad currency, or a code already taken by a different account. */
  INVALID_ACCOUNT = 'INVALID_ACCOUNT',
  TOO_FEW_LINES = 'TOO_FEW_LINES',
  INVALID_AMOUNT = 'INVALID_AMOUNT',
  UNKNOWN_ACCOUNT = 'UNKNOWN_ACCOUNT',
  MIXED_CURRENCIES = 'MIXED_CURRENCIES',
  UNBALANCED = 'UNBALANCED',
  INSUFFICIENT_FUNDS = 'INSUFFICIENT_FUNDS',
  ENTRY_KEY_REUSED = 'ENTRY_KEY_REUSED',
  UNKNOWN_ENTRY = 'UNKNOWN_ENTRY',
  ALREADY_REVERSED = 'ALREADY_REVERSED',
}

export class LedgerError extends Error {
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
    /** The account the refusal is about, where there is one. */
    readonly accountId?: string,
  ) {
    super(message);
    this.name = 'LedgerError';
  }
}
