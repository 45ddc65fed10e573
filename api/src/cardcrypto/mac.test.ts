import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CardCryptoError, CardCryptoErrorCode } from './cardcrypto.errors.js';
import {
  challengeIv,
  desCbcMac,
  mac4,
  padIso9797M2,
  retailMac,
  sm4CbcMac,
  tdesCbcMac,
  unpadIso9797M2,
} from './mac.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

/** An independent CBC-MAC: node:crypto directly on hand-padded data, last block. */
function opensslCbcLastBlock(cipher: string, key: Uint8Array, padded: Uint8Array, iv: Uint8Array): Buffer {
  const c = createCipheriv(cipher, key, iv);
  c.setAutoPadding(false);
  const out = Buffer.concat([c.update(padded), c.final()]);
  return out.subarray(out.length - iv.length);
}

describe('ISO 9797-1 padding method 2', () => {
  it.each([
    { data: '', size: 8, padded: '8000000000000000' },
    { data: '01', size: 8, padded: '0180000000000000' },
    { data: '01020304050607', size: 8, padded: '0102030405060780' },
    { data: '0102030405060708', size: 8, padded: '01020304050607088000000000000000' },
    { data: '010203040506070809', size: 8, padded: '01020304050607080980000000000000' },
    { data: '', size: 16, padded: '80000000000000000000000000000000' },
    { data: '000102030405060708090A0B0C0D0E', size: 16, padded: '000102030405060708090A0B0C0D0E80' },
    {
      data: '000102030405060708090A0B0C0D0E0F',
      size: 16,
      padded: '000102030405060708090A0B0C0D0E0F80000000000000000000000000000000',
    },
  ])('pads $data to $size-byte blocks: 80 then 00s, a whole block when aligned', ({ data, size, padded }) => {
    expect(HEX(padIso9797M2(hex(data), size))).toBe(padded);
    expect(HEX(unpadIso9797M2(hex(padded), size))).toBe(data.toUpperCase());
  });

  it('pads to 8-byte blocks by default', () => {
    expect(padIso9797M2(hex('AA'))).toHaveLength(8);
  });

  it('keeps data bytes that look like padding (80 inside the data)', () => {
    expect(HEX(unpadIso9797M2(padIso9797M2(hex('8000'))))).toBe('8000');
  });

  it.each([
    { rule: 'the last block must contain the 80 marker', padded: '0102030405060708' },
    { rule: 'only 00s may follow the 80 marker', padded: '0102038000000001' },
    { rule: 'all-zero blocks are not padding', padded: '0000000000000000' },
    { rule: 'the 80 marker must be in the last block', padded: '01020380000000000000000000000000' },
  ])('unpadding refuses bad padding: $rule', ({ padded }) => {
    const call = () => unpadIso9797M2(hex(padded), 8);
    expect(call).toThrow(CardCryptoError);
    expect(call).toThrow(expect.objectContaining({ code: CardCryptoErrorCode.INVALID_PADDING }));
  });

  it.each([
    { rule: 'unpadding needs whole blocks', call: () => unpadIso9797M2(Buffer.alloc(7)) },
    { rule: 'unpadding needs at least one block', call: () => unpadIso9797M2(Buffer.alloc(0)) },
    { rule: 'a block size is a positive integer', call: () => padIso9797M2(Buffer.alloc(1), 0) },
  ])('bad lengths throw a RangeError: $rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });
});

describe('single-DES CBC-MAC (e-purse MAC with an 8-byte key)', () => {
  it('reproduces the published L1 MAC1 2988AE5A from SESLK 9B1D924E05595603', () => {
    // CARD-PROTOCOL.md §7 L1: oldBalance 0, amount 00001000, type 01, terminal 001122334455.
    const mac = desCbcMac(hex('9B1D924E05595603'), hex('00000000 00001000 01 001122334455'));
    expect(HEX(mac4(mac))).toBe('2988AE5A');
  });

  it('an IV v acts like XOR-ing v into the first block (secure messaging: challenge || 00000000)', () => {
    const key = hex('9B1D924E05595603');
    const data = hex('0011223344556677 8899');
    const iv = challengeIv(hex('A1B2C3D4'));
    expect(HEX(iv)).toBe('A1B2C3D400000000');
    const folded = Buffer.from(data);
    for (let i = 0; i < 8; i++) folded[i]! ^= iv[i]!;
    expect(desCbcMac(key, data, iv)).toEqual(desCbcMac(key, folded));
  });
});

describe('retail MAC (ISO 9797-1 algorithm 3, padding method 2)', () => {
  it.each([
    // ICAO Doc 9303 part 11, appendix D.3 and D.4 (BAC mutual authentication and secure messaging).
    {
      source: 'ICAO 9303-11 D.3 (EIFD)',
      key: '7962D9ECE03D1ACD4C76089DCE131543',
      data: '72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2',
      mac: '5F1448EEA8AD90A7',
    },
    {
      source: 'ICAO 9303-11 D.3 (EIC)',
      key: '7962D9ECE03D1ACD4C76089DCE131543',
      data: '46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F',
      mac: '2F2D235D074D7449',
    },
    {
      source: 'ICAO 9303-11 D.4 (protected SELECT)',
      key: 'F1CB1F1FB5ADF208806B89DC579DC1F8',
      data: '887022120C06C2270CA4020C800000008709016375432908C044F6',
      mac: 'BF8B92D635FF24F8',
    },
  ])('matches the published $source vector', ({ key, data, mac }) => {
    expect(HEX(retailMac(hex(key), hex(data)))).toBe(mac);
  });

  it('with K1 = K2 it equals the single-DES CBC-MAC under K1 (D then E under K cancels)', () => {
    const k = hex('0123456789ABCDEF');
    const data = hex('00112233445566778899AA');
    expect(retailMac(Buffer.concat([k, k]), data)).toEqual(desCbcMac(k, data));
  });
});

describe('3DES CBC-MAC and SM4 CBC-MAC (no published vectors with padding method 2)', () => {
  // Cross-checked against an independent computation: node:crypto on hand-padded data.
  it('3DES CBC-MAC is the last block of des-ede3-cbc (K1 K2 K1) over the method-2-padded data', () => {
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    const data = hex('0102030405060708090A');
    const padded = hex('0102030405060708 090A800000000000');
    const k1k2k1 = Buffer.concat([key, key.subarray(0, 8)]);
    expect(tdesCbcMac(key, data)).toEqual(opensslCbcLastBlock('des-ede3-cbc', k1k2k1, padded, Buffer.alloc(8)));
    const iv = hex('1122334400000000');
    expect(tdesCbcMac(key, data, iv)).toEqual(opensslCbcLastBlock('des-ede3-cbc', k1k2k1, padded, iv));
  });

  it('3DES CBC-MAC with K1 = K2 equals the single-DES CBC-MAC', () => {
    const k = hex('0123456789ABCDEF');
    expect(tdesCbcMac(Buffer.concat([k, k]), hex('ABCDEF'))).toEqual(desCbcMac(k, hex('ABCDEF')));
  });

  it('SM4 CBC-MAC is the last block of sm4-cbc over data padded to 16 with method 2, 16 bytes long', () => {
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    const data = hex('00001000 06 001122334455 20120229 135100');
    const padded = hex('00001000 06 001122334455 20120229 135100 80 00000000000000000000000000');
    const mac = sm4CbcMac(key, data);
    expect(mac).toHaveLength(16);
    expect(mac).toEqual(opensslCbcLastBlock('sm4-cbc', key, padded, Buffer.alloc(16)));
    const iv = challengeIv(hex('A1B2C3D4'), 16);
    expect(sm4CbcMac(key, data, iv)).toEqual(opensslCbcLastBlock('sm4-cbc', key, padded, iv));
  });
});

describe('mac4 and bad lengths', () => {
  it('mac4 keeps the left 4 bytes', () => {
    expect(HEX(mac4(hex('0102030405060708')))).toBe('01020304');
  });

  it.each([
    { rule: 'a single-DES MAC key is 8 bytes', call: () => desCbcMac(Buffer.alloc(16), Buffer.alloc(1)) },
    { rule: 'a retail MAC key is 16 bytes', call: () => retailMac(Buffer.alloc(8), Buffer.alloc(1)) },
    { rule: 'a 3DES MAC key is 16 bytes', call: () => tdesCbcMac(Buffer.alloc(24), Buffer.alloc(1)) },
    { rule: 'an SM4 MAC key is 16 bytes', call: () => sm4CbcMac(Buffer.alloc(8), Buffer.alloc(1)) },
    { rule: 'a DES MAC IV is 8 bytes', call: () => desCbcMac(Buffer.alloc(8), Buffer.alloc(1), Buffer.alloc(4)) },
    { rule: 'an SM4 MAC IV is 16 bytes', call: () => sm4CbcMac(Buffer.alloc(16), Buffer.alloc(1), Buffer.alloc(8)) },
    { rule: 'a challenge fits in one block', call: () => challengeIv(Buffer.alloc(9)) },
    { rule: 'mac4 needs at least 4 bytes', call: () => mac4(Buffer.alloc(3)) },
  ])('$rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });
});
