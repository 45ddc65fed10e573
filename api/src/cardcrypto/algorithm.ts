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

/** The cipher an algorithm id byte names, and where that reading comes from. */
export interface AlgorithmIdMeaning {
  /** What the engine computes with: ALG_3DES or ALG_SM4. */
  cipher: AlgorithmId;
  meaning: string;
}

/**
 * Every algorithm id byte a card profile may accept, with its meaning. A card answers the byte;
 * the profile of its card company says whether that byte is accepted; this table says what it
 * means. `01` is how T-Union (JT/T 978) cards answer a 3DES key: the public L2 capture's card
 * answers 01 and its MACs reproduce with 3DES (issue 24).
 */
export const ALGORITHM_ID_MEANINGS: ReadonlyMap<number, AlgorithmIdMeaning> = new Map<number, AlgorithmIdMeaning>([
  [ALG_3DES, { cipher: ALG_3DES, meaning: 'two-key 3DES (PBOC, CJ/T 166 city-union cards; reference vectors L1 and P1)' }],
  [0x01, { cipher: ALG_3DES, meaning: 'two-key 3DES as T-Union (JT/T 978) cards answer it (the public L2 capture’s card)' }],
  [ALG_SM4, { cipher: ALG_SM4, meaning: 'SM4 (OneCard’s choice of id, unconfirmed: docs/cardcrypto.md)' }],
]);
