import { DomainError } from '../../graphql/domain-error.js';
import { UserErrorCode } from '../../graphql/user-error.js';

export type TerminalProvisioningErrorCode = 'NOT_A_TERMINAL' | 'TERMINAL_NOT_ACTIVE' | 'NO_ENCRYPTION_CERTIFICATE' | 'NO_PURCHASE_KEY' | 'KEY_IN_HSM';

/** Why a terminal's PSAM was not provisioned; the message names the rule. Nothing was sent. */
export class TerminalProvisioningError extends DomainError<TerminalProvisioningErrorCode> {
  constructor(code: TerminalProvisioningErrorCode, message: string) {
    super(code, `${code}: ${message}`, code === 'KEY_IN_HSM' || code === 'NOT_A_TERMINAL' ? UserErrorCode.FORBIDDEN_OPERATION : UserErrorCode.INVALID_INPUT, 'terminal');
  }
}
