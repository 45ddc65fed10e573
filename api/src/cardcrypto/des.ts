/**
 * Single DES and two-key triple DES (EDE, K1 K2 K1) in ECB and CBC, no padding.
 *
 * Node 22's OpenSSL 3 has no `des-ecb` / `des-cbc` (single DES sits in the legacy provider), so
 * single DES runs as `des-ede-*` with the 8-byte key repeated: E(K, D(K, E(K, x))) = E(K, x).
 * Two-key 3DES is `des-ede-*` with the 16-byte key K1 || K2 (CARD-PROTOCOL.md §4).
 */
import { decryptBlocks, encryptBlocks } from './block-cipher.js';
import { requireBlocks, requireLength } from './bytes.js';

export const DES_BLOCK_SIZE = 8;
const ZERO_IV = new Uint8Array(DES_BLOCK_SIZE);

/** K || K: a two-key EDE key that computes single DES under K. */
function singleDesKey(key: Uint8Array): Buffer {
  requireLength('DES key', key, 8);
  return Buffer.concat([key, key]);
}

function checkData(data: Uint8Array): void {
  requireBlocks('DES data', data, DES_BLOCK_SIZE);
}

function checkIv(iv: Uint8Array): void {
  requireLength('DES IV', iv, DES_BLOCK_SIZE);
}

/** Single DES, ECB, 8-byte key. */
export function desEcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkData(data);
  return encryptBlocks('des-ede-ecb', singleDesKey(key), data, null);
}

export function desEcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkData(data);
  return decryptBlocks('des-ede-ecb', singleDesKey(key), data, null);
}

/** Single DES, CBC, 8-byte key, zero IV unless one is given. */
export function desCbcEncrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkData(data);
  checkIv(iv);
  return encryptBlocks('des-ede-cbc', singleDesKey(key), data, iv);
}

export function desCbcDecrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkData(data);
  checkIv(iv);
  return decryptBlocks('des-ede-cbc', singleDesKey(key), data, iv);
}

function tdesKey(key: Uint8Array): Uint8Array {
  requireLength('3DES key', key, 16);
  return key;
}

/** Two-key 3DES (K1 || K2), ECB. */
export function tdesEcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkData(data);
  return encryptBlocks('des-ede-ecb', tdesKey(key), data, null);
}

export function tdesEcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkData(data);
  return decryptBlocks('des-ede-ecb', tdesKey(key), data, null);
}

/** Two-key 3DES (K1 || K2), CBC, zero IV unless one is given. */
export function tdesCbcEncrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkData(data);
  checkIv(iv);
  return encryptBlocks('des-ede-cbc', tdesKey(key), data, iv);
}

export function tdesCbcDecrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkData(data);
  checkIv(iv);
  return decryptBlocks('des-ede-cbc', tdesKey(key), data, iv);
}
