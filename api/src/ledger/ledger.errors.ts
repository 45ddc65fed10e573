import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

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
  /** A balance asked for an instant inside a month whose postings were archived. */
  MONTH_ARCHIVED = 'MONTH_ARCHIVED',
}

const USER_ERROR_CODES: Record<LedgerErrorCode, UserErrorCode> = {
  [LedgerErrorCode.INVALID_ENTRY_KEY]: UserErrorCode.INVALID_INPUT,
  [LedgerErrorCode.INVALID_DESCRIPTION]: UserErrorCode.INVALID_INPUT,
  [LedgerErrorCode.INVALID_ACCOUNT]: UserErrorCode.INVALID_INPUT,
  [LedgerErrorCode.TOO_FEW_LINES]: UserErrorCode.UNBALANCED_ENTRY,
  [LedgerErrorCode.INVALID_AMOUNT]: UserErrorCode.INVALID_INPUT,
  [LedgerErrorCode.UNKNOWN_ACCOUNT]: UserErrorCode.NOT_FOUND,
  [LedgerErrorCode.MIXED_CURRENCIES]: UserErrorCode.MIXED_CURRENCIES,
  [LedgerErrorCode.UNBALANCED]: UserErrorCode.UNBALANCED_ENTRY,
  [LedgerErrorCode.INSUFFICIENT_FUNDS]: UserErrorCode.INSUFFICIENT_FUNDS,
  [LedgerErrorCode.ENTRY_KEY_REUSED]: UserErrorCode.ENTRY_KEY_REUSED,
  [LedgerErrorCode.UNKNOWN_ENTRY]: UserErrorCode.NOT_FOUND,
  [LedgerErrorCode.ALREADY_REVERSED]: UserErrorCode.ALREADY_REVERSED,
  [LedgerErrorCode.MONTH_ARCHIVED]: UserErrorCode.INVALID_INPUT,
};

export class LedgerError extends DomainError<LedgerErrorCode> {
  constructor(
    code: LedgerErrorCode,
    message: string,
    /** The account the refusal is about, where there is one (the resolver points at its input line). */
    readonly accountId?: string,
  ) {
    super(code, message, USER_ERROR_CODES[code]);
    this.name = 'LedgerError';
  }
}
