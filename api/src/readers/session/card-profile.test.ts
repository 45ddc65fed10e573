import { describe, expect, it } from 'vitest';
import { ALG_3DES, ALG_SM4 } from '../../cardcrypto/algorithm.js';
import * as apdu from './apdu.js';
import { acceptedCipher, type CardProfile, DEFAULT_CARD_PROFILE, dfNameOf, profileForSelected, T_UNION_AID } from './card-profile.js';

/**
 * Real answers of a Beijing T-Union (交通联合) card, as replayed by the public card emulator
 * github.com/domosekai/cardemulator (app/src/main/java/com/domosekai/cardemulator/HCEService.kt,
 * card type 2 "BJ TU"): its SELECT of A000000632010105 and its public data (SFI 0x15). They carry
 * no MACs, so they prove how the host reads a T-Union card's identity, not its keys.
 */
const T_UNION_SELECT_ANSWER = '6F318408A000000632010105A5259F0801029F0C1E01011000FFFFFFFF020103105170010170907984201908062040123100009000';
const T_UNION_PUBLIC_DATA = '01011000FFFFFFFF020103105170010170907984201908062040123100009000';

const tUnion: CardProfile = { ...DEFAULT_CARD_PROFILE, id: 'p2', cardCompanyId: 'c1', product: 'T-UNION', selection: [{ kind: 'AID', aid: T_UNION_AID }], loadKeyIndex: 2, purchaseKeyIndex: 2, algorithmIds: [1] };
const own: CardProfile = { ...DEFAULT_CARD_PROFILE, id: 'p1', cardCompanyId: 'c1' };

describe('a real T-Union card’s answers, read with card profiles', () => {
  it('the SELECT answer names the application it selected (DF name, tag 84)', () => {
    expect(dfNameOf(apdu.ok(T_UNION_SELECT_ANSWER, 'SELECT'))).toBe(T_UNION_AID);
  });

  it('its public data gives the city code and the ASN as for a city-union card', () => {
    const data = apdu.parsePublicData(apdu.ok(T_UNION_PUBLIC_DATA, 'READ BINARY'));
    expect(data.cityCode).toBe('1000');
    expect(data.asn.toString('hex').toUpperCase()).toBe('03105170010170907984');
  });

  it('a card that selected the T-Union AID gets its product’s profile; any other, the card company’s own', () => {
    const aid = dfNameOf(apdu.ok(T_UNION_SELECT_ANSWER, 'SELECT'));
    expect(profileForSelected([own, tUnion], aid)).toBe(tUnion);
    expect(profileForSelected([own, tUnion], 'A00000000386980701')).toBe(own);
    expect(profileForSelected([own, tUnion], null)).toBe(own);
    expect(profileForSelected([], aid)).toBe(DEFAULT_CARD_PROFILE);
  });

  it('the same byte means what the profile says: 01 is 3DES for the T-Union product, refused by the default', () => {
    expect(acceptedCipher(tUnion, 0x01)).toBe(ALG_3DES);
    expect(acceptedCipher(DEFAULT_CARD_PROFILE, 0x01)).toBeNull();
    expect(acceptedCipher(DEFAULT_CARD_PROFILE, 0x00)).toBe(ALG_3DES);
    expect(acceptedCipher(DEFAULT_CARD_PROFILE, 0x04)).toBe(ALG_SM4);
    expect(acceptedCipher(tUnion, 0x00)).toBeNull();
  });
});

describe('status-word tolerances', () => {
  it('a tolerated warning is read as success with its data; a refusal never is', () => {
    expect(apdu.ok('01026282', 'READ BINARY', ['6282']).toString('hex')).toBe('0102');
    expect(() => apdu.ok('01026282', 'READ BINARY')).toThrow(/6282/);
    expect(() => apdu.ok('6A82', 'SELECT', ['6282'])).toThrow(/6A82/);
  });
});
