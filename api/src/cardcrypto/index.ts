/**
 * cardcrypto: pure card cryptography (bytes in, bytes out; no clock, randomness or I/O).
 * See docs/cardcrypto.md.
 */
export { ALG_3DES, ALG_SM4, algorithmId, isAlgorithmId, type AlgorithmId } from './algorithm.js';
export { CardCryptoError, CardCryptoErrorCode, ValueBlockError, type ValueBlockCheck } from './cardcrypto.errors.js';
export {
  DES_BLOCK_SIZE,
  desCbcDecrypt,
  desCbcEncrypt,
  desEcbDecrypt,
  desEcbEncrypt,
  tdesCbcDecrypt,
  tdesCbcEncrypt,
  tdesEcbDecrypt,
  tdesEcbEncrypt,
} from './des.js';
export { diversificationData, diversifyKey, diversifyKeyMultiLevel, diversifyKeys } from './diversify.js';
export {
  bcd,
  loadMac1,
  loadMac1Message,
  loadMac2,
  loadMac2Message,
  loadSessionInput,
  loadSessionKey,
  loadTac,
  loadTacMessage,
  purchaseMac1,
  purchaseMac1Message,
  purchaseMac2,
  purchaseMac2Message,
  purchaseSessionInput,
  purchaseSessionKey,
  purchaseTac,
  purchaseTacs,
  purchaseTacMessage,
  sessionKeyFrom,
  sessionMac,
  tacKey,
  tacOver,
  TransactionType,
  u16be,
  u32be,
  verifyMac,
  type LoadMac1Input,
  type LoadMac2Input,
  type LoadSessionKeyInput,
  type LoadTacInput,
  type PurchaseMac1Input,
  type PurchaseMac2Input,
  type PurchaseSessionKeyInput,
  type PurchaseTacInput,
} from './epurse.js';
export { decodeValueBlock, encodeValueBlock, isValueBlock, M1_BLOCK_SIZE, type ValueBlock } from './m1.js';
export {
  challengeIv,
  desCbcMac,
  desCbcMacs,
  mac4,
  padIso9797M2,
  retailMac,
  sm4CbcMac,
  sm4CbcMacs,
  tdesCbcMac,
  unpadIso9797M2,
} from './mac.js';
export {
  SM4_BLOCK_SIZE,
  sm3,
  sm4CbcDecrypt,
  sm4CbcEncrypt,
  sm4EcbDecrypt,
  sm4EcbEncrypt,
  sm4EcbEncryptor,
} from './sm4.js';
