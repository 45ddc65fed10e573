/**
 * SM4 (GB/T 32907-2016) in ECB and CBC without padding, and SM3 (GB/T 32905-2016), both from
 * Node 22's OpenSSL (`sm4-ecb`, `sm4-cbc`, `sm3`).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { decryptBlocks, encryptBlocks } from './block-cipher.js';
import { requireBlocks, requireLength } from './bytes.js';

export const SM4_BLOCK_SIZE = 16;
const ZERO_IV = new Uint8Array(SM4_BLOCK_SIZE);

function checkKey(key: Uint8Array): void {
  requireLength('SM4 key', key, 16);
}

function checkData(data: Uint8Array): void {
  requireBlocks('SM4 data', data, SM4_BLOCK_SIZE);
}

function checkIv(iv: Uint8Array): void {
  requireLength('SM4 IV', iv, SM4_BLOCK_SIZE);
}

export function sm4EcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkKey(key);
  checkData(data);
  return encryptBlocks('sm4-ecb', key, data, null);
}

export function sm4EcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  checkKey(key);
  checkData(data);
  return decryptBlocks('sm4-ecb', key, data, null);
}

/** SM4-CBC, zero IV unless one is given. */
export function sm4CbcEncrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkKey(key);
  checkData(data);
  checkIv(iv);
  return encryptBlocks('sm4-cbc', key, data, iv);
}

export function sm4CbcDecrypt(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Buffer {
  checkKey(key);
  checkData(data);
  checkIv(iv);
  return decryptBlocks('sm4-cbc', key, data, iv);
}

/**
 * SM4-ECB encryption under one key, reusing a single OpenSSL context: for loops that encrypt
 * many blocks under the same key, where `sm4EcbEncrypt` would set up the key schedule every call.
 * ECB keeps no state between blocks, so each call depends only on its argument.
 */
export function sm4EcbEncryptor(key: Uint8Array): (data: Uint8Array) => Buffer {
  checkKey(key);
  const cipher = createCipheriv('sm4-ecb', key, null);
  cipher.setAutoPadding(false);
  return (data) => {
    checkData(data);
    return cipher.update(data);
  };
}

/** SM3 digest (32 bytes). */
export function sm3(data: Uint8Array): Buffer {
  return createHash('sm3').update(data).digest();
}
