/**
 * Malformed input is refused before any cryptography runs, with an error that names the input
 * and says what was expected: a wrong-length key or a month 13 never yields a MAC that a card
 * would then refuse for reasons nobody can see. (Found by mutation testing, docs/testing.md.)
 */
import { describe, expect, it } from 'vitest';
import { ALG_3DES, ALG_SM4, algorithmId, type AlgorithmId } from './algorithm.js';
import { CardCryptoError, CardCryptoErrorCode, ValueBlockError } from './cardcrypto.errors.js';
import { desCbcDecrypt, desCbcEncrypt, desEcbDecrypt, desEcbEncrypt, tdesCbcDecrypt, tdesCbcEncrypt, tdesEcbDecrypt, tdesEcbEncrypt } from './des.js';
import { diversificationData, diversifyKey, diversifyKeyMultiLevel } from './diversify.js';
import { bcd, loadMac1, loadMac2, loadSessionKey, loadTac, purchaseMac1, purchaseSessionKey, tacKey, u16be, u32be } from './epurse.js';
import { decodeValueBlock, encodeValueBlock, isValueBlock } from './m1.js';
import { challengeIv, desCbcMac, mac4, padIso9797M2, retailMac, sm4CbcMac, tdesCbcMac, unpadIso9797M2 } from './mac.js';
import { sm4CbcDecrypt, sm4CbcEncrypt, sm4EcbDecrypt, sm4EcbEncrypt, sm4EcbEncryptor } from './sm4.js';

const bytes = (n: number, fill = 0x11) => Buffer.alloc(n, fill);
const K8 = bytes(8);
const K16 = bytes(16);
const TERMINAL = bytes(6);
const RANDOM = bytes(4);

/** A string of the right length where bytes belong: node:crypto would take it as UTF-8 key material. */
const notBytes = (s: string) => s as unknown as Uint8Array;

const loadMac2With = (date: string, time: string) =>
  loadMac2({ algorithm: ALG_3DES, sessionKey: K8, amount: 100, terminalId: TERMINAL, date, time });
const purchaseMac1With = (date: string, time: string) =>
  purchaseMac1({ algorithm: ALG_3DES, sessionKey: K8, amount: 100, terminalId: TERMINAL, date, time });

describe('a malformed argument is refused with a RangeError naming it', () => {
  const cases: [string, () => unknown, string][] = [
    // des.ts
    ['a 7-byte DES key', () => desEcbEncrypt(bytes(7), K8), 'DES key must be 8 bytes, got 7'],
    ['DES data that is not whole blocks (ECB encrypt)', () => desEcbEncrypt(K8, bytes(7)), 'DES data must be a multiple of 8 bytes, got 7'],
    ['DES data that is not whole blocks (ECB decrypt)', () => desEcbDecrypt(K8, bytes(9)), 'DES data must be a multiple of 8 bytes, got 9'],
    ['DES data that is not whole blocks (CBC encrypt)', () => desCbcEncrypt(K8, bytes(7)), 'DES data must be a multiple of 8 bytes, got 7'],
    ['DES data that is not whole blocks (CBC decrypt)', () => desCbcDecrypt(K8, bytes(7)), 'DES data must be a multiple of 8 bytes, got 7'],
    ['a 4-byte DES IV (CBC encrypt)', () => desCbcEncrypt(K8, K8, bytes(4)), 'DES IV must be 8 bytes, got 4'],
    ['a 4-byte DES IV (CBC decrypt)', () => desCbcDecrypt(K8, K8, bytes(4)), 'DES IV must be 8 bytes, got 4'],
    ['an 8-byte 3DES key', () => tdesEcbEncrypt(K8, K8), '3DES key must be 16 bytes, got 8'],
    ['3DES data that is not whole blocks (ECB encrypt)', () => tdesEcbEncrypt(K16, bytes(12)), 'DES data must be a multiple of 8 bytes, got 12'],
    ['3DES data that is not whole blocks (ECB decrypt)', () => tdesEcbDecrypt(K16, bytes(12)), 'DES data must be a multiple of 8 bytes, got 12'],
    ['3DES data that is not whole blocks (CBC encrypt)', () => tdesCbcEncrypt(K16, bytes(12)), 'DES data must be a multiple of 8 bytes, got 12'],
    ['3DES data that is not whole blocks (CBC decrypt)', () => tdesCbcDecrypt(K16, bytes(12)), 'DES data must be a multiple of 8 bytes, got 12'],
    ['a 16-byte 3DES IV (CBC encrypt)', () => tdesCbcEncrypt(K16, K8, K16), 'DES IV must be 8 bytes, got 16'],
    ['a 16-byte 3DES IV (CBC decrypt)', () => tdesCbcDecrypt(K16, K8, K16), 'DES IV must be 8 bytes, got 16'],
    // sm4.ts
    ['an 8-byte SM4 key (ECB encrypt)', () => sm4EcbEncrypt(K8, K16), 'SM4 key must be 16 bytes, got 8'],
    ['an 8-byte SM4 key (ECB decrypt)', () => sm4EcbDecrypt(K8, K16), 'SM4 key must be 16 bytes, got 8'],
    ['an 8-byte SM4 key (CBC encrypt)', () => sm4CbcEncrypt(K8, K16), 'SM4 key must be 16 bytes, got 8'],
    ['an 8-byte SM4 key (CBC decrypt)', () => sm4CbcDecrypt(K8, K16), 'SM4 key must be 16 bytes, got 8'],
    ['an 8-byte SM4 key (encryptor)', () => sm4EcbEncryptor(K8), 'SM4 key must be 16 bytes, got 8'],
    ['SM4 data that is not whole blocks (ECB encrypt)', () => sm4EcbEncrypt(K16, K8), 'SM4 data must be a multiple of 16 bytes, got 8'],
    ['SM4 data that is not whole blocks (ECB decrypt)', () => sm4EcbDecrypt(K16, K8), 'SM4 data must be a multiple of 16 bytes, got 8'],
    ['SM4 data that is not whole blocks (CBC encrypt)', () => sm4CbcEncrypt(K16, K8), 'SM4 data must be a multiple of 16 bytes, got 8'],
    ['SM4 data that is not whole blocks (CBC decrypt)', () => sm4CbcDecrypt(K16, K8), 'SM4 data must be a multiple of 16 bytes, got 8'],
    ['SM4 data that is not whole blocks (encryptor)', () => sm4EcbEncryptor(K16)(K8), 'SM4 data must be a multiple of 16 bytes, got 8'],
    ['an 8-byte SM4 IV (CBC encrypt)', () => sm4CbcEncrypt(K16, K16, K8), 'SM4 IV must be 16 bytes, got 8'],
    ['an 8-byte SM4 IV (CBC decrypt)', () => sm4CbcDecrypt(K16, K16, K8), 'SM4 IV must be 16 bytes, got 8'],
    // mac.ts
    ['a 16-byte DES MAC key', () => desCbcMac(K16, K8), 'DES MAC key must be 8 bytes, got 16'],
    ['an 8-byte retail MAC key', () => retailMac(K8, K8), 'retail MAC key must be 16 bytes, got 8'],
    ['an 8-byte 3DES MAC key', () => tdesCbcMac(K8, K8), '3DES MAC key must be 16 bytes, got 8'],
    ['an 8-byte SM4 MAC key', () => sm4CbcMac(K8, K8), 'SM4 MAC key must be 16 bytes, got 8'],
    ['a MAC of 3 bytes cut to 4', () => mac4(bytes(3)), 'a MAC must be at least 4 bytes, got 3'],
    ['padding to blocks of 0 bytes', () => padIso9797M2(K8, 0), 'block size must be an integer 1..255, got 0'],
    ['padding to blocks of 256 bytes', () => padIso9797M2(K8, 256), 'block size must be an integer 1..255, got 256'],
    ['padding to blocks of 1.5 bytes', () => padIso9797M2(K8, 1.5), 'block size must be an integer 1..255, got 1.5'],
    ['unpadding blocks of 256 bytes', () => unpadIso9797M2(bytes(256), 256), 'block size must be an integer 1..255, got 256'],
    ['unpadding data that is not whole blocks', () => unpadIso9797M2(bytes(7)), 'padded data must be a non-empty multiple of 8 bytes, got 7'],
    ['unpadding nothing', () => unpadIso9797M2(bytes(0)), 'padded data must be a non-empty multiple of 8 bytes, got 0'],
    ['an IV of 0-byte blocks', () => challengeIv(RANDOM, 0), 'block size must be an integer 1..255, got 0'],
    ['a challenge longer than a block', () => challengeIv(bytes(9)), 'challenge must be at most 8 bytes, got 9'],
    // diversify.ts
    ['a 7-byte diversification factor', () => diversificationData(bytes(7)), 'a diversification factor must be at least 8 bytes, got 7'],
    ['a 7-byte factor given to diversifyKey', () => diversifyKey(ALG_3DES, K16, bytes(7)), 'a diversification factor must be at least 8 bytes, got 7'],
    ['an 8-byte master key', () => diversifyKey(ALG_3DES, K8, bytes(10)), 'master key must be 16 bytes, got 8'],
    ['an 8-byte master key with no factor', () => diversifyKeyMultiLevel(ALG_SM4, K8, []), 'master key must be 16 bytes, got 8'],
    // epurse.ts
    ['a negative amount', () => u32be(-1), 'u32 value must be an integer 0..4294967295, got -1'],
    ['an amount of 2^32 fen', () => u32be(2 ** 32), 'u32 value must be an integer 0..4294967295, got 4294967296'],
    ['a fractional amount', () => u32be(1.5), 'u32 value must be an integer 0..4294967295, got 1.5'],
    ['a negative counter', () => u16be(-1), 'u16 value must be an integer 0..65535, got -1'],
    ['a counter of 65536', () => u16be(65_536), 'u16 value must be an integer 0..65535, got 65536'],
    ['an odd number of BCD digits', () => bcd('123'), 'BCD needs an even number of decimal digits, got "123"'],
    ['an 8-byte card key', () => loadSessionKey({ algorithm: ALG_3DES, loadKey: K8, random: RANDOM, onlineCounter: 1 }), 'card key must be 16 bytes, got 8'],
    ['a 5-byte random (load)', () => loadSessionKey({ algorithm: ALG_3DES, loadKey: K16, random: bytes(5), onlineCounter: 1 }), 'random must be 4 bytes, got 5'],
    [
      'a 5-byte random (purchase)',
      () => purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: K16, random: bytes(5), offlineCounter: 1, terminalSerial: 1 }),
      'random must be 4 bytes, got 5',
    ],
    ['a 16-byte 3DES session key', () => loadMac1({ algorithm: ALG_3DES, sessionKey: K16, oldBalance: 0, amount: 1, terminalId: TERMINAL }), '3DES session key must be 8 bytes, got 16'],
    ['an 8-byte SM4 session key', () => loadMac1({ algorithm: ALG_SM4, sessionKey: K8, oldBalance: 0, amount: 1, terminalId: TERMINAL }), 'SM4 session key must be 16 bytes, got 8'],
    ['a 5-byte terminal id', () => loadMac1({ algorithm: ALG_3DES, sessionKey: K8, oldBalance: 0, amount: 1, terminalId: bytes(5) }), 'terminal id must be 6 bytes, got 5'],
    [
      'a transaction type of 256',
      () => loadMac1({ algorithm: ALG_3DES, sessionKey: K8, oldBalance: 0, amount: 1, transactionType: 256, terminalId: TERMINAL }),
      'transaction type must be an integer 0..255, got 256',
    ],
    ['an 8-byte DTK', () => tacKey(ALG_3DES, K8), 'DTK must be 16 bytes, got 8'],
    [
      'an 8-byte DTK given to the load TAC',
      () => loadTac({ algorithm: ALG_SM4, tacKey: K8, newBalance: 1, onlineCounter: 1, amount: 1, terminalId: TERMINAL, date: '20240101', time: '120000' }),
      'DTK must be 16 bytes, got 8',
    ],
    // m1.ts
    ['an M1 value of 2^31', () => encodeValueBlock(2 ** 31, 4), 'value must be a 32-bit signed integer, got 2147483648'],
    ['an M1 value below -2^31', () => encodeValueBlock(-(2 ** 31) - 1, 4), 'value must be a 32-bit signed integer, got -2147483649'],
    ['an M1 address of 256', () => encodeValueBlock(1, 256), 'address must be an integer 0..255, got 256'],
    ['an M1 address of -1', () => encodeValueBlock(1, -1), 'address must be an integer 0..255, got -1'],
    ['a 15-byte value block to decode', () => decodeValueBlock(bytes(15)), 'value block must be 16 bytes, got 15'],
    ['a 15-byte value block to check', () => isValueBlock(bytes(15)), 'value block must be 16 bytes, got 15'],
  ];

  it.each(cases)('%s', (_name, call, message) => {
    expect(call).toThrow(RangeError);
    expect(call).toThrow(new RangeError(message));
  });
});

describe('a string where bytes belong is refused with a TypeError', () => {
  // Without the check node:crypto would accept the string and encrypt under its UTF-8 bytes.
  it.each([
    ['an 8-character DES key', () => desEcbEncrypt(notBytes('01234567'), K8), 'DES key must be a Uint8Array'],
    ['8 characters of DES data', () => desEcbEncrypt(K8, notBytes('01234567')), 'DES data must be a Uint8Array'],
  ])('%s', (_name, call, message) => {
    expect(call).toThrow(new TypeError(message));
  });
});

describe('a host date and time that are not a real YYYYMMDD and hhmmss are refused', () => {
  const badDates = ['20241301', '20240001', '20240132', '20240100', '120240101', '2024010100', '2024-1-1'];
  const badTimes = ['240000', '236000', '235960', '1235959', '23595900', '12:00'];

  it.each(badDates)('date %s', (date) => {
    const message = `date must be YYYYMMDD, got ${JSON.stringify(date)}`;
    expect(() => loadMac2With(date, '120000')).toThrow(new RangeError(message));
    expect(() => purchaseMac1With(date, '120000')).toThrow(new RangeError(message));
  });

  it.each(badTimes)('time %s', (time) => {
    const message = `time must be hhmmss, got ${JSON.stringify(time)}`;
    expect(() => loadMac2With('20240101', time)).toThrow(new RangeError(message));
    expect(() => purchaseMac1With('20240101', time)).toThrow(new RangeError(message));
  });

  it('accepts the last day of a month and the last second of a day', () => {
    expect(loadMac2With('20241231', '235959')).toHaveLength(4);
    expect(purchaseMac1With('20240131', '235959')).toHaveLength(4);
  });
});

describe('the limits of each range are accepted', () => {
  it('the largest and smallest M1 values, and an address of 255', () => {
    expect(decodeValueBlock(encodeValueBlock(0x7fff_ffff, 255))).toEqual({ value: 0x7fff_ffff, address: 255 });
    expect(decodeValueBlock(encodeValueBlock(-0x8000_0000, 0))).toEqual({ value: -0x8000_0000, address: 0 });
  });

  it('a MAC of exactly 4 bytes, blocks of 1 and of 255 bytes, a challenge of a whole block', () => {
    expect(mac4(Buffer.from('01020304', 'hex'))).toEqual(Buffer.from('01020304', 'hex'));
    expect(padIso9797M2(Buffer.from('aa', 'hex'), 1)).toEqual(Buffer.from('aa80', 'hex'));
    expect(padIso9797M2(bytes(1), 255)).toHaveLength(255);
    expect(unpadIso9797M2(padIso9797M2(bytes(3), 255), 255)).toEqual(bytes(3));
    expect(challengeIv(bytes(8, 0xab))).toEqual(bytes(8, 0xab));
  });
});

describe('padding that is not method 2 is refused', () => {
  it('a whole block of zeros after the 80 of the block before', () => {
    const data = Buffer.concat([Buffer.from('1122334455667780', 'hex'), bytes(8, 0)]);
    let refusal: unknown;
    try {
      unpadIso9797M2(data);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(CardCryptoError);
    expect(refusal).toMatchObject({ name: 'CardCryptoError', code: CardCryptoErrorCode.INVALID_PADDING, message: 'data does not end in ISO 9797-1 method 2 padding' });
  });
});

describe('refusals say what they are in logs', () => {
  it('an unsupported algorithm id', () => {
    expect(() => algorithmId(7 as AlgorithmId)).toThrow(
      expect.objectContaining({ name: 'CardCryptoError', code: CardCryptoErrorCode.UNSUPPORTED_ALGORITHM, message: 'unsupported algorithm id 7' }),
    );
  });

  it('a value block whose copies of the value disagree', () => {
    const block = encodeValueBlock(1000, 4);
    block[8] ^= 0x01;
    expect(() => decodeValueBlock(block)).toThrow(
      expect.objectContaining({ name: 'ValueBlockError', check: 'value', message: 'value block integrity check failed: value, NOT value, value disagree' }),
    );
  });

  it('a value block whose NOT address copies agree with each other but not with the address', () => {
    const block = encodeValueBlock(1000, 4);
    block[13] ^= 0x01;
    block[15] ^= 0x01;
    expect(isValueBlock(block)).toBe(false);
    expect(() => decodeValueBlock(block)).toThrow(expect.objectContaining({ name: 'ValueBlockError', check: 'address' }));
  });

  it('a value block whose last copy of NOT address disagrees', () => {
    const block = encodeValueBlock(1000, 4);
    block[15] ^= 0x01;
    expect(isValueBlock(block)).toBe(false);
    let refusal: unknown;
    try {
      decodeValueBlock(block);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(ValueBlockError);
    expect(refusal).toMatchObject({ name: 'ValueBlockError', check: 'address', message: 'value block integrity check failed: adr, NOT adr, adr, NOT adr disagree' });
  });
});
