import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, VECTOR_ASN, hex, send, vectorCard } from './cards.test-support.js';
import { CITY_UNION_AID, cityCodeOf } from './virtual-cpu-card.js';

describe('selecting the application and reading its files (CARD-PROTOCOL.md §1)', () => {
  it('SELECT of the city-union AID answers its FCI with the DF name', () => {
    const { data, sw } = send(vectorCard(), SELECT_CITY_UNION);
    expect(sw).toBe('9000');
    expect(data.startsWith('6F')).toBe(true);
    expect(data).toContain(`8409${CITY_UNION_AID}`);
  });

  it('SELECT of 1PAY.SYS.DDF01 answers the PSE, whose directory (SFI 1) lists the city-union application', () => {
    const card = vectorCard();
    const pse = send(card, `00A404000E ${Buffer.from('1PAY.SYS.DDF01').toString('hex')}`);
    expect(pse.sw).toBe('9000');
    expect(pse.data).toContain('880101');
    const directory = send(card, '00B2010C00');
    expect(directory.sw).toBe('9000');
    expect(directory.data).toContain(`4F09${CITY_UNION_AID}`);
  });

  it('the legacy path 3F00 then 1001 selects the application too', () => {
    const card = vectorCard({ balance: 42 });
    expect(send(card, '00A4000002 3F00').sw).toBe('9000');
    expect(send(card, '00A4000002 1001').sw).toBe('9000');
    expect(send(card, '805C000204')).toEqual({ data: '0000002A', sw: '9000' });
  });

  it('GET BALANCE answers the 4-byte e-purse balance', () => {
    const card = vectorCard({ balance: 123456 });
    send(card, SELECT_CITY_UNION);
    expect(send(card, '805C000204')).toEqual({ data: '0001E240', sw: '9000' });
  });

  it('READ BINARY of SFI 0x15 answers issuer id (city code at bytes 2–3), app type, version, ASN, start and expiry dates', () => {
    const card = vectorCard({ appType: 0x02, appVersion: 0x03, startDate: '20250101', expiryDate: '20341231' });
    send(card, SELECT_CITY_UNION);
    const { data, sw } = send(card, '00B0950000');
    expect(sw).toBe('9000');
    const file = hex(data);
    expect(file.length).toBe(28);
    const issuerId = file.subarray(0, 8).toString('hex').toUpperCase();
    expect(issuerId).toBe('00004401FFFFFFFF');
    expect(cityCodeOf(issuerId)).toBe('4401');
    expect([file[8], file[9]]).toEqual([0x02, 0x03]);
    expect(file.subarray(10, 20).toString('hex').toUpperCase()).toBe(VECTOR_ASN);
    expect(file.subarray(20, 24).toString('hex')).toBe('20250101');
    expect(file.subarray(24, 28).toString('hex')).toBe('20341231');
  });

  it.each([
    ['an offset and Le within the file return that part', '00B0951404', '20250101', '9000'],
    ['an offset past the end is refused with 6B 00', '00B0951C00', '', '6B00'],
    ['an Le past the end gets 6C with the length the card has', '00B0951410', '', '6C08'],
  ])('READ BINARY: %s', (_, apdu, data, sw) => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    expect(send(card, apdu)).toEqual({ data, sw });
  });

  it('a reset (power cycle) forgets the selected application', () => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    card.reset();
    expect(send(card, '805C000204').sw).toBe('6985');
  });
});
