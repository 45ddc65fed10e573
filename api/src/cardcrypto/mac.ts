/**
 * Padding and CBC-MACs used by CPU cards (CARD-PROTOCOL.md §4).
 *
 * Every MAC here pads its input with ISO/IEC 9797-1 padding method 2 first, and chains from a
 * zero IV unless one is given (secure-messaging commands use the card's challenge || 00…00, see
 * `challengeIv`). The functions return the whole final block; `mac4` keeps the left 4 bytes, which
 * is what the e-purse puts on the wire as MAC1, MAC2 and TAC.
 */
import { cbcMacs } from './block-cipher.js';
import { lastBlock, requireLength } from './bytes.js';
import { CardCryptoError, CardCryptoErrorCode } from './cardcrypto.errors.js';
import { DES_BLOCK_SIZE, desCbcEncrypt, desEcbDecrypt, desEcbEncrypt, tdesCbcEncrypt } from './des.js';
import { SM4_BLOCK_SIZE, sm4CbcEncrypt } from './sm4.js';

function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 255) {
    throw new RangeError(`block size must be an integer 1..255, got ${blockSize}`);
  }
}

/**
 * ISO/IEC 9797-1 padding method 2 (also ISO/IEC 7816-4): append `80`, then `00`s up to a multiple
 * of the block size. Always adds at least one byte, so aligned data gains a whole block.
 */
export function padIso9797M2(data: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  const length = (Math.floor(data.length / blockSize) + 1) * blockSize;
  const out = Buffer.alloc(length);
  out.set(data, 0);
  out[data.length] = 0x80;
  return out;
}

/**
 * Removes padding method 2 (for data deciphered from a secure-messaging response). Refuses data that
 * is not whole blocks, or whose last block does not end in `80 00…00`.
 */
export function unpadIso9797M2(data: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  if (data.length === 0 || data.length % blockSize !== 0) {
    throw new RangeError(`padded data must be a non-empty multiple of ${blockSize} bytes, got ${data.length}`);
  }
  let i = data.length - 1;
  const floor = data.length - blockSize;
  while (i >= floor && data[i] === 0x00) i--;
  if (i < floor || data[i] !== 0x80) {
    throw new CardCryptoError(CardCryptoErrorCode.INVALID_PADDING, 'data does not end in ISO 9797-1 method 2 padding');
  }
  return Buffer.from(data.subarray(0, i));
}

/**
 * The IV secure messaging uses: the card's challenge (GET CHALLENGE, usually 4 bytes) followed by
 * `00`s to the block size (challenge || 00000000 for DES).
 */
export function challengeIv(challenge: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  if (challenge.length > blockSize) {
    throw new RangeError(`challenge must be at most ${blockSize} bytes, got ${challenge.length}`);
  }
  const iv = Buffer.alloc(blockSize);
  iv.set(challenge, 0);
  return iv;
}

/** Single-DES CBC-MAC (ISO 9797-1 algorithm 1), 8-byte key: the e-purse "MAC with an 8-byte key". */
export function desCbcMac(key: Uint8Array, data: Uint8Array, iv?: Uint8Array): Buffer {
  requireLength('DES MAC key', key, 8);
  return lastBlock(desCbcEncrypt(key, padIso9797M2(data, DES_BLOCK_SIZE), iv), DES_BLOCK_SIZE);
}

/**
 * Retail MAC (ISO 9797-1 algorithm 3, ANSI X9.19), 16-byte key K1 || K2: single-DES CBC under K1,
 * then the last block is deciphered under K2 and enciphered under K1.
 */
export function retailMac(key: Uint8Array, data: Uint8Array, iv?: Uint8Array): Buffer {
  requireLength('retail MAC key', key, 16);
  const k1 = key.subarray(0, 8);
  const k2 = key.subarray(8, 16);
  const h = desCbcMac(k1, data, iv);
  return desEcbEncrypt(k1, desEcbDecrypt(k2, h));
}

/** Two-key 3DES CBC-MAC (every block under 3DES), 16-byte key. */
export function tdesCbcMac(key: Uint8Array, data: Uint8Array, iv?: Uint8Array): Buffer {
  requireLength('3DES MAC key', key, 16);
  return lastBlock(tdesCbcEncrypt(key, padIso9797M2(data, DES_BLOCK_SIZE), iv), DES_BLOCK_SIZE);
}

/** SM4 CBC-MAC over 16-byte blocks (padding method 2 to 16), 16-byte key; returns 16 bytes. */
export function sm4CbcMac(key: Uint8Array, data: Uint8Array, iv?: Uint8Array): Buffer {
  requireLength('SM4 MAC key', key, 16);
  return lastBlock(sm4CbcEncrypt(key, padIso9797M2(data, SM4_BLOCK_SIZE), iv), SM4_BLOCK_SIZE);
}

/**
 * desCbcMac of each message under one 8-byte key (zero IV), from one cipher object: a card's TACs
 * in an offline batch (issue 23). Single DES runs as EDE with K || K, as des.ts does.
 */
export function desCbcMacs(key: Uint8Array, messages: readonly Uint8Array[]): Buffer[] {
  requireLength('DES MAC key', key, 8);
  const kk = Buffer.concat([key, key]);
  try {
    return cbcMacs('des-ede-cbc', kk, DES_BLOCK_SIZE, messages.map((m) => padIso9797M2(m, DES_BLOCK_SIZE)));
  } finally {
    kk.fill(0);
  }
}

/** sm4CbcMac of each message under one key (zero IV), from one cipher object. */
export function sm4CbcMacs(key: Uint8Array, messages: readonly Uint8Array[]): Buffer[] {
  requireLength('SM4 MAC key', key, 16);
  return cbcMacs('sm4-cbc', key, SM4_BLOCK_SIZE, messages.map((m) => padIso9797M2(m, SM4_BLOCK_SIZE)));
}

/** The left 4 bytes of a MAC block: the form the e-purse sends (MAC1, MAC2, TAC). */
export function mac4(mac: Uint8Array): Buffer {
  if (mac.length < 4) throw new RangeError(`a MAC must be at least 4 bytes, got ${mac.length}`);
  return Buffer.from(mac.subarray(0, 4));
}
