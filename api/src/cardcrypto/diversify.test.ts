import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ALG_3DES, ALG_SM4, type AlgorithmId } from './algorithm.js';
import { CardCryptoError, CardCryptoErrorCode } from './cardcrypto.errors.js';
import { diversificationData, diversifyKey, diversifyKeyMultiLevel, diversifyKeys } from './diversify.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const MK = hex('0123456789ABCDEFFEDCBA9876543210');

/** Sets each byte's low bit for odd parity, as EMV does to a derived key (our cards do not). */
function oddParity(key: Uint8Array): Buffer {
  return Buffer.from(key.map((b) => {
    let ones = 0;
    for (let i = 1; i < 8; i++) ones += (b >> i) & 1;
    return (b & 0xfe) | (ones % 2 === 0 ? 1 : 0);
  }));
}

describe('3DES diversification: DK = 3DES(MK, D) || 3DES(MK, NOT D)', () => {
  // The same construction as EMV's ICC master key derivation, option A (EMV Book 2, A1.4.1), whose
  // published vectors (pyemv's documentation) differ from ours only by EMV's parity adjustment.
  it.each([
    { pan: '99012345678901234', psn: '45', d: '1234567890123445', icc: '67F8292358083E5EA7AB7FDA58D53B6B' },
    { pan: '12345678901234567', psn: '01', d: '4567890123456701', icc: '73AD54688CEF2934B0979857E3C719F1' },
  ])('matches the published EMV option A vector for PAN $pan PSN $psn, after parity', ({ d, icc }) => {
    expect(HEX(oddParity(diversifyKey(ALG_3DES, MK, hex(d))))).toBe(icc);
  });

  it('D is the rightmost 8 bytes of the 10-byte ASN', () => {
    const asn = hex('0310 1234567890123445');
    expect(HEX(diversificationData(asn))).toBe('1234567890123445');
    expect(diversifyKey(ALG_3DES, MK, asn)).toEqual(diversifyKey(ALG_3DES, MK, hex('1234567890123445')));
  });
});

describe('SM4 diversification: DK = SM4-ECB(MK, D || NOT D)', () => {
  it('equals an independent computation (node:crypto sm4-ecb on D || NOT D); no published vector', () => {
    const c = createCipheriv('sm4-ecb', MK, null);
    c.setAutoPadding(false);
    const expected = Buffer.concat([c.update(hex('1234567890123445 EDCBA9876FEDCBBA')), c.final()]);
    const dk = diversifyKey(ALG_SM4, MK, hex('0310 1234567890123445'));
    expect(dk).toHaveLength(16);
    expect(dk).toEqual(expected);
  });
});

describe('many cards at once (an offline batch): diversifyKeys', () => {
  const asns = ['0310 1234567890123445', '0310 0000000000000001', '0310 FFFFFFFFFFFFFFFF', '5810 0000000000ABCDEF', '0310 1234567890123445'].map(hex);

  it.each([
    { name: '3DES', algorithm: ALG_3DES as AlgorithmId },
    { name: 'SM4', algorithm: ALG_SM4 as AlgorithmId },
  ])('$name: each card’s key is the one diversifyKey gives it, in order, a repeated ASN included', ({ algorithm }) => {
    expect(diversifyKeys(algorithm, MK, asns)).toEqual(asns.map((asn) => diversifyKey(algorithm, MK, asn)));
  });

  it('no cards, no keys; a short master key or factor is refused as for one card', () => {
    expect(diversifyKeys(ALG_3DES, MK, [])).toEqual([]);
    expect(() => diversifyKeys(ALG_3DES, MK.subarray(0, 8), asns)).toThrow(RangeError);
    expect(() => diversifyKeys(ALG_3DES, MK, [hex('0102')])).toThrow(RangeError);
  });
});

describe('multi-level diversification', () => {
  const city = hex('4100000000000000');
  const asn = hex('0310 1234567890123445');

  it.each([ALG_3DES, ALG_SM4] as AlgorithmId[])('applies the factors in the order given (algorithm %i)', (alg) => {
    const twoLevels = diversifyKeyMultiLevel(alg, MK, [city, asn]);
    expect(twoLevels).toEqual(diversifyKey(alg, diversifyKey(alg, MK, city), asn));
    // The order of levels is unconfirmed and it matters: the caller chooses it.
    expect(twoLevels).not.toEqual(diversifyKeyMultiLevel(alg, MK, [asn, city]));
  });

  it('no factors leaves the master key (a copy)', () => {
    const key = diversifyKeyMultiLevel(ALG_3DES, MK, []);
    expect(key).toEqual(MK);
    expect(key).not.toBe(MK);
  });
});

describe('refusals', () => {
  it.each([
    { rule: 'a factor has at least 8 bytes', call: () => diversifyKey(ALG_3DES, MK, hex('01020304050607')) },
    { rule: 'a master key is 16 bytes', call: () => diversifyKey(ALG_SM4, MK.subarray(0, 8), hex('0102030405060708')) },
    { rule: 'a multi-level master key is 16 bytes', call: () => diversifyKeyMultiLevel(ALG_3DES, Buffer.alloc(24), []) },
  ])('bad lengths throw a RangeError: $rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });

  it('an unknown algorithm id is refused with UNSUPPORTED_ALGORITHM', () => {
    const call = () => diversifyKey(0x01 as AlgorithmId, MK, hex('0102030405060708'));
    expect(call).toThrow(CardCryptoError);
    expect(call).toThrow(expect.objectContaining({ code: CardCryptoErrorCode.UNSUPPORTED_ALGORITHM }));
  });
});
