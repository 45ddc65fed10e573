/**
 * Card key diversification (CARD-PROTOCOL.md §4): a card's own key (DLK, DPK, DTK, …) from the
 * issuer's master key and a diversification factor, usually the application serial number (ASN).
 *
 *   D   = rightmost 8 bytes of the factor (the ASN is 10 bytes)
 *   3DES: DK = 3DES-ECB(MK, D) || 3DES-ECB(MK, NOT D)
 *   SM4:  DK = SM4-ECB(MK, D || NOT D)
 *
 * Multi-level schemes diversify again by each further factor. The order of the levels (issuer or
 * city factor first, then the ASN — or the reverse) is **unconfirmed**, so the caller passes the
 * factors in the order its issuer uses; nothing here assumes one.
 */
import { ALG_3DES, ALG_SM4, algorithmId, type AlgorithmId } from './algorithm.js';
import { notBytes, requireLength } from './bytes.js';
import { tdesEcbEncrypt } from './des.js';
import { sm4EcbEncrypt } from './sm4.js';

/** D: the rightmost 8 bytes of a factor of at least 8 bytes (an ASN, a city or issuer factor). */
export function diversificationData(factor: Uint8Array): Buffer {
  if (factor.length < 8) {
    throw new RangeError(`a diversification factor must be at least 8 bytes, got ${factor.length}`);
  }
  return Buffer.from(factor.subarray(factor.length - 8));
}

/** One level: the 16-byte key diversified from the 16-byte `masterKey` by `factor`. */
export function diversifyKey(algorithm: AlgorithmId, masterKey: Uint8Array, factor: Uint8Array): Buffer {
  requireLength('master key', masterKey, 16);
  const d = diversificationData(factor);
  switch (algorithmId(algorithm)) {
    case ALG_3DES:
      return Buffer.concat([tdesEcbEncrypt(masterKey, d), tdesEcbEncrypt(masterKey, notBytes(d))]);
    case ALG_SM4:
      return sm4EcbEncrypt(masterKey, Buffer.concat([d, notBytes(d)]));
  }
}

/**
 * diversifyKey for each factor under one master key, from one ECB cipher over every factor's
 * D || NOT D (ECB enciphers each block alone, so this is the same as one call per half): an
 * offline batch's cards (issue 23), instead of two cipher objects per card.
 */
export function diversifyKeys(algorithm: AlgorithmId, masterKey: Uint8Array, factors: readonly Uint8Array[]): Buffer[] {
  requireLength('master key', masterKey, 16);
  const id = algorithmId(algorithm);
  if (factors.length === 0) return [];
  const blocks = Buffer.concat(
    factors.map((f) => {
      const d = diversificationData(f);
      return Buffer.concat([d, notBytes(d)]);
    }),
  );
  const out = id === ALG_3DES ? tdesEcbEncrypt(masterKey, blocks) : sm4EcbEncrypt(masterKey, blocks);
  blocks.fill(0);
  const keys = factors.map((_, i) => Buffer.from(out.subarray(16 * i, 16 * (i + 1))));
  out.fill(0);
  return keys;
}

/**
 * Several levels: diversify by `factors[0]`, then the result by `factors[1]`, and so on. The order
 * is the caller's (an issuer setting); an empty list returns a copy of the master key.
 */
export function diversifyKeyMultiLevel(
  algorithm: AlgorithmId,
  masterKey: Uint8Array,
  factors: readonly Uint8Array[],
): Buffer {
  requireLength('master key', masterKey, 16);
  let key: Buffer = Buffer.from(masterKey);
  for (const factor of factors) key = diversifyKey(algorithm, key, factor);
  return key;
}
