/**
 * E-purse algorithm ids: the byte INITIALIZE FOR LOAD / PURCHASE returns to say which cipher the
 * card's keys use (CARD-PROTOCOL.md §2, §3).
 */
import { CardCryptoError, CardCryptoErrorCode } from './cardcrypto.errors.js';

/** Two-key 3DES, the PBOC default (L1 and P1 vectors use it). */
export const ALG_3DES = 0x00;

/**
 * SM4. **Unconfirmed**: the reference does not give the value that selects SM4; 0x04 is our
 * choice (docs/cardcrypto.md). Keep every comparison on this name, never on the literal.
 */
export const ALG_SM4 = 0x04;

export type AlgorithmId = typeof ALG_3DES | typeof ALG_SM4;

export function isAlgorithmId(value: unknown): value is AlgorithmId {
  return value === ALG_3DES || value === ALG_SM4;
}

/** The algorithm id byte from a card response, or a CardCryptoError if we do not implement it. */
export function algorithmId(value: number): AlgorithmId {
  if (!isAlgorithmId(value)) {
    throw new CardCryptoError(CardCryptoErrorCode.UNSUPPORTED_ALGORITHM, `unsupported algorithm id ${String(value)}`);
  }
  return value;
}
