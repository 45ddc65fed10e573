import { describe, expect, it } from 'vitest';
import { ALGORITHM_IDS, desCbcMac, isoPad, purseCipher, retailMac, sm4CbcMac, sm4Encrypt } from './card-crypto.js';
import { hex, hostDiversify, hostRetailMac, hostSm4Mac } from './cards.test-support.js';

const DLK = hex('11223344556677888877665544332211');
const cipher = purseCipher('3DES');

describe("the card's own crypto reproduces the reference vectors (CARD-PROTOCOL.md §7)", () => {
  it('L1 load: SESLK, MAC1 and MAC2', () => {
    const seslk = cipher.sessionKey(DLK, hex('11223344 0000 8000'));
    expect(seslk.toString('hex').toUpperCase()).toBe('9B1D924E05595603');
    // L1 initialises with P2 01 (e-deposit), so its transaction type is 01.
    expect(cipher.mac(seslk, hex('00000000 00001000 01 001122334455')).toString('hex').toUpperCase()).toBe('2988AE5A');
    expect(cipher.mac(seslk, hex('00001000 01 001122334455 20111221 214822')).toString('hex').toUpperCase()).toBe('3A845BF0');
  });

  it('P1 purchase: SESPK, MAC1 and MAC2', () => {
    const sespk = cipher.sessionKey(DLK, hex('11223344 0000 0001'));
    expect(sespk.toString('hex').toUpperCase()).toBe('003238ABC57659DD');
    expect(cipher.mac(sespk, hex('00001000 06 001122334455 20120229 135100')).toString('hex').toUpperCase()).toBe('F15CAB75');
    expect(cipher.mac(sespk, hex('00001000')).toString('hex').toUpperCase()).toBe('56988A13');
  });

  it('SM4 block vector', () => {
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    expect(sm4Encrypt(key, key).toString('hex').toUpperCase()).toBe('681EDF34D206965E86B3E94F536E4246');
  });
});

describe("the card's MACs agree with an independent host implementation", () => {
  const cases = [0, 1, 7, 8, 9, 16, 23, 40].map((n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff)));

  it.each(cases.map((data) => [data.length, data]))('retail MAC with a 16-byte key, %i bytes of data', (_, data) => {
    expect(retailMac(DLK, data)).toEqual(hostRetailMac(DLK, data));
    expect(cipher.mac(DLK, data)).toEqual(hostRetailMac(DLK, data));
  });

  it.each(cases.map((data) => [data.length, data]))('SM4 CBC-MAC, %i bytes of data', (_, data) => {
    expect(sm4CbcMac(DLK, data)).toEqual(hostSm4Mac(DLK, data));
  });

  it('the 3DES MAC of an 8-byte key is the single-DES CBC-MAC', () => {
    const key = hex('9B1D924E05595603');
    expect(cipher.mac(key, hex('0102'))).toEqual(desCbcMac(key, hex('0102')));
  });
});

describe('padding and diversification', () => {
  it('ISO/IEC 9797-1 method 2 adds a whole block when the data is already aligned', () => {
    expect(isoPad(hex('0102030405060708'), 8).toString('hex')).toBe('01020304050607088000000000000000');
    expect(isoPad(hex('01'), 8).toString('hex')).toBe('0180000000000000');
    expect(isoPad(hex('11223344 0000 8000'), 16).toString('hex')).toBe('11223344000080008000000000000000');
  });

  it.each(['3DES', 'SM4'] as const)('%s: DK from the master key and the ASN\'s rightmost 8 bytes', (algorithm) => {
    const mk = hex('00112233445566778899AABBCCDDEEFF');
    const asn = hex('44010000000000012345');
    expect(purseCipher(algorithm).diversify(mk, asn)).toEqual(hostDiversify(algorithm, mk, asn));
  });

  it('algorithm ids: 3DES is 00, SM4 04 (the unconfirmed one, a named constant)', () => {
    expect(ALGORITHM_IDS).toEqual({ '3DES': 0x00, SM4: 0x04 });
  });
});
