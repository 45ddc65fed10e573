import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type ReaderErrorCode = 'NOT_FOUND' | 'INVALID_CSR' | 'KEY_MISMATCH' | 'DUPLICATE_SERIAL' | 'DUPLICATE_TERMINAL_NUMBER' | 'INVALID_TRANSITION' | 'NO_CITY_CA' | 'INVALID_INPUT';

/** A refusal of the reader registry; a client sees NOT_FOUND, or INVALID_INPUT with the message naming the rule. */
export class ReaderError extends DomainError<ReaderErrorCode> {
  constructor(code: ReaderErrorCode, message: string, field?: string) {
    super(code, message, code === 'NOT_FOUND' ? UserErrorCode.NOT_FOUND : code === 'DUPLICATE_TERMINAL_NUMBER' ? UserErrorCode.DUPLICATE_TERMINAL_NUMBER : UserErrorCode.INVALID_INPUT, field);
  }
}
