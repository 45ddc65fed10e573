import { describe, expect, it } from 'vitest';
import {
  desCbcDecrypt,
  desCbcEncrypt,
  desEcbDecrypt,
  desEcbEncrypt,
  tdesCbcDecrypt,
  tdesCbcEncrypt,
  tdesEcbDecrypt,
  tdesEcbEncrypt,
} from './des.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const NOW_IS_THE_TIME = Buffer.from('Now is the time for all ', 'ascii');

describe('single DES (des-ede with K || K)', () => {
  it.each([
    // The classic worked example (key 133457799BBCDFF1), and FIPS 81 Appendix B's ECB example.
    { source: 'classic worked example', key: '133457799BBCDFF1', plain: hex('0123456789ABCDEF'), cipher: '85E813540F0AB405' },
    {
      source: 'FIPS 81 ECB',
      key: '0123456789ABCDEF',
      plain: NOW_IS_THE_TIME,
      cipher: '3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53',
    },
  ])('ECB matches the published $source vector, both ways', ({ key, plain, cipher }) => {
    expect(HEX(desEcbEncrypt(hex(key), plain))).toBe(cipher);
    expect(desEcbDecrypt(hex(key), hex(cipher))).toEqual(Buffer.from(plain));
  });

  it('CBC matches the FIPS 81 CBC example (IV 1234567890ABCDEF), both ways', () => {
    const key = hex('0123456789ABCDEF');
    const iv = hex('1234567890ABCDEF');
    const cipher = 'E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6';
    expect(HEX(desCbcEncrypt(key, NOW_IS_THE_TIME, iv))).toBe(cipher);
    expect(desCbcDecrypt(key, hex(cipher), iv)).toEqual(NOW_IS_THE_TIME);
  });

  it('a CBC-MAC is the last CBC block: FIPS 113 example (zero-filled, zero IV) gives F1D30F68', () => {
    // FIPS 113 pads with zeros, unlike the e-purse (padding method 2), so this drives CBC directly.
    const data = Buffer.concat([hex('37363534333231204E6F77206973207468652074696D6520666F7220'), Buffer.alloc(4)]);
    expect(HEX(desCbcEncrypt(hex('0123456789ABCDEF'), data).subarray(-8, -4))).toBe('F1D30F68');
  });

  it('CBC uses a zero IV by default', () => {
    const key = hex('0123456789ABCDEF');
    expect(desCbcEncrypt(key, NOW_IS_THE_TIME)).toEqual(desCbcEncrypt(key, NOW_IS_THE_TIME, Buffer.alloc(8)));
  });

  it('empty input gives empty output', () => {
    expect(desEcbEncrypt(hex('0123456789ABCDEF'), Buffer.alloc(0))).toHaveLength(0);
  });
});

describe('two-key 3DES (des-ede with K1 || K2)', () => {
  it('ECB matches the published vector (key 0123456789ABCDEF FEDCBA9876543210, "Now is the time for all ")', () => {
    // BouncyCastle DESedeTest vector 1.
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    const cipher = 'D80A0D8B2BAE5E4E6A0094171ABCFC2775D2235A706E232C';
    expect(HEX(tdesEcbEncrypt(key, NOW_IS_THE_TIME))).toBe(cipher);
    expect(tdesEcbDecrypt(key, hex(cipher))).toEqual(NOW_IS_THE_TIME);
  });

  it('with K1 = K2 it is single DES (the FIPS 81 ECB vector again)', () => {
    const key = hex('0123456789ABCDEF0123456789ABCDEF');
    expect(HEX(tdesEcbEncrypt(key, NOW_IS_THE_TIME))).toBe('3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53');
  });

  it('CBC chains 3DES blocks: block i = 3DES(P_i XOR C_{i-1}), and decrypts back', () => {
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    const iv = hex('1234567890ABCDEF');
    const out = tdesCbcEncrypt(key, NOW_IS_THE_TIME, iv);
    let previous: Uint8Array = iv;
    for (let i = 0; i < 3; i++) {
      const block = Buffer.from(NOW_IS_THE_TIME.subarray(i * 8, i * 8 + 8).map((b, j) => b ^ previous[j]!));
      expect(out.subarray(i * 8, i * 8 + 8)).toEqual(tdesEcbEncrypt(key, block));
      previous = out.subarray(i * 8, i * 8 + 8);
    }
    expect(tdesCbcDecrypt(key, out, iv)).toEqual(NOW_IS_THE_TIME);
  });
});

describe('bad lengths throw a RangeError', () => {
  const k8 = Buffer.alloc(8);
  const k16 = Buffer.alloc(16);
  const block = Buffer.alloc(8);
  it.each([
    { rule: 'a DES key is 8 bytes', call: () => desEcbEncrypt(k16, block) },
    { rule: 'a 3DES key is 16 bytes', call: () => tdesEcbEncrypt(k8, block) },
    { rule: 'a 3DES key is not 24 bytes', call: () => tdesCbcEncrypt(Buffer.alloc(24), block) },
    { rule: 'DES ECB data is whole blocks', call: () => desEcbEncrypt(k8, Buffer.alloc(7)) },
    { rule: 'DES ECB decrypt data is whole blocks', call: () => desEcbDecrypt(k8, Buffer.alloc(9)) },
    { rule: '3DES CBC data is whole blocks', call: () => tdesCbcEncrypt(k16, Buffer.alloc(12)) },
    { rule: '3DES CBC decrypt data is whole blocks', call: () => tdesCbcDecrypt(k16, Buffer.alloc(1)) },
    { rule: 'a DES IV is 8 bytes', call: () => desCbcEncrypt(k8, block, Buffer.alloc(16)) },
    { rule: 'a 3DES IV is 8 bytes', call: () => tdesCbcDecrypt(k16, block, Buffer.alloc(4)) },
  ])('$rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });
});
