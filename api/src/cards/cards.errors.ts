import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type CardErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'INVALID_CARD_NUMBER' | 'DUPLICATE_CARD_NUMBER' | 'DUPLICATE_ASN' | 'INVALID_TRANSITION' | 'NOT_REGISTERED';

const USER_ERROR_CODES: Record<CardErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  INVALID_CARD_NUMBER: UserErrorCode.INVALID_CARD_NUMBER,
  DUPLICATE_CARD_NUMBER: UserErrorCode.DUPLICATE_CARD_NUMBER,
  DUPLICATE_ASN: UserErrorCode.DUPLICATE_ASN,
  INVALID_TRANSITION: UserErrorCode.INVALID_CARD_TRANSITION,
  NOT_REGISTERED: UserErrorCode.CARD_NOT_REGISTERED,
};

/** A refusal of the cards context; resolvers turn it into a userError. */
export class CardError extends DomainError<CardErrorCode> {
  constructor(
    code: CardErrorCode,
    message: string,
    /** The input field, relative to `input`; a nested one dotted. */
    field?: string,
  ) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
