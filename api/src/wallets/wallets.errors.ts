import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type WalletErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'INSUFFICIENT_FUNDS';

const USER_ERROR_CODES: Record<WalletErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  INSUFFICIENT_FUNDS: UserErrorCode.INSUFFICIENT_FUNDS,
};

/** A refusal of the wallets context (transit wallets and QR ride credentials); resolvers turn it into a userError. */
export class WalletError extends DomainError<WalletErrorCode> {
  constructor(code: WalletErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
