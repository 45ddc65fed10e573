import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type PkiErrorCode = 'NOT_FOUND' | 'INVALID_CSR' | 'ALREADY_EXISTS' | 'ROOT_MISMATCH' | 'INVALID_INPUT';

/** A refusal of the PKI (the CLI and /pki answer it; as a userError: NOT_FOUND, or INVALID_INPUT naming the rule). */
export class PkiError extends DomainError<PkiErrorCode> {
  constructor(code: PkiErrorCode, message: string) {
    super(code, message, code === 'NOT_FOUND' ? UserErrorCode.NOT_FOUND : UserErrorCode.INVALID_INPUT);
  }
}
