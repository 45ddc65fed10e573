/**
 * Why a card computation was refused for a reason other than a wrong length (lengths throw a
 * plain RangeError: they are programming errors, not card outcomes).
 */
export enum CardCryptoErrorCode {
  /** An algorithm id this code does not implement (see algorithm.ts). */
  UNSUPPORTED_ALGORITHM = 'UNSUPPORTED_ALGORITHM',
  /** Data that should end in ISO 9797-1 padding method 2 does not. */
  INVALID_PADDING = 'INVALID_PADDING',
  /** A MIFARE Classic block that fails the value-block integrity check. */
  INVALID_VALUE_BLOCK = 'INVALID_VALUE_BLOCK',
}

export class CardCryptoError extends Error {
  constructor(
    readonly code: CardCryptoErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CardCryptoError';
  }
}

/** Which redundant copy of a value block disagreed (CARD-PROTOCOL.md §6). */
export type ValueBlockCheck = 'value' | 'address';

/** A 16-byte block that is not a well-formed M1 value block. */
export class ValueBlockError extends CardCryptoError {
  constructor(
    readonly check: ValueBlockCheck,
    message: string,
  ) {
    super(CardCryptoErrorCode.INVALID_VALUE_BLOCK, message);
    this.name = 'ValueBlockError';
  }
}
