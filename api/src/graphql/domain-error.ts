import { type UserError, userError, type UserErrorCode } from './user-error.js';

/**
 * A business rule refused the request: the one kind of error a mutation answers as a userError
 * (docs/api-conventions.md#mutations-input-payload-usererrors). Each context's error class
 * (PaymentError, BillError, LedgerError, …) extends it with its own refusal codes and names the
 * userError code each one is answered with; anything else a service throws is not a refusal and
 * reaches the client as INTERNAL_SERVER_ERROR.
 */
export class DomainError<Code extends string = string> extends Error {
  constructor(
    /** The context's own refusal code (`INVALID_STATE`), what its services and tests branch on. */
    readonly code: Code,
    message: string,
    /** The code a client sees in `userErrors` (`INVALID_PAYMENT_STATE`). */
    readonly userErrorCode: UserErrorCode,
    /** The input field at fault, relative to the mutation's `input`; a nested one dotted (`lateFee.cap`). */
    readonly field?: string,
  ) {
    super(message);
  }

  /** This refusal as a userError, its field path under `at` (by default the mutation's `input`). */
  toUserError(at: (string | number)[] = ['input']): UserError {
    return userError(this.userErrorCode, this.message, [...at, ...(this.field ? this.field.split('.') : [])]);
  }
}

/**
 * Runs a mutation's work: a refusal (a DomainError, whichever context raised it) becomes the
 * payload's userErrors, the rest of the payload being `refused` (its objects null); any other error
 * propagates. `at` is where the refusal's field hangs: the mutation's `input` by default, or a
 * path chosen from the refusal (the ledger points at the line of the account it refused).
 */
export async function withUserErrors<T extends { userErrors: UserError[] }>(
  work: () => Promise<T>,
  refused: Omit<T, 'userErrors'>,
  at: (string | number)[] | ((err: DomainError) => (string | number)[]) = ['input'],
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    return { ...refused, userErrors: [err.toUserError(typeof at === 'function' ? at(err) : at)] } as T;
  }
}
