export type CardErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'INVALID_CARD_NUMBER' | 'DUPLICATE_CARD_NUMBER' | 'DUPLICATE_ASN' | 'INVALID_TRANSITION' | 'NOT_REGISTERED';

/** A refusal of the cards context; resolvers turn it into a userError. */
export class CardError extends Error {
  constructor(
    readonly code: CardErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
