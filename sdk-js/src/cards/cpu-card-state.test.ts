import { describe, expect, it } from 'vitest';
import { CardStateError } from './card-bytes.js';
import { SELECT_CITY_UNION, fixedRandom, hex, hostDiversify, send, vectorCard } from './cards.test-support.js';
import { VirtualCpuCard, type VirtualCpuCardState } from './virtual-cpu-card.js';

const random = fixedRandom('11223344');

describe('a CPU card is kept as plain JSON', () => {
  it('serialise → JSON text → deserialise → the card continues where it left off', () => {
    const card = vectorCard({ balance: 0x1000 });
    send(card, SELECT_CITY_UNION);
    send(card, '805000010B 01 00001000 001122334455 10');
    expect(send(card, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('9000');

    const saved = JSON.parse(JSON.stringify(card)) as VirtualCpuCardState;
    const again = VirtualCpuCard.fromJSON(saved, { random });
    send(again, SELECT_CITY_UNION);
    expect(send(again, '805C000104')).toEqual({ data: '00001000', sw: '9000' });
    expect(send(again, '00B201C400').data.slice(18, 20)).toBe('01');
    // the next load runs on online counter 0001
    expect(send(again, '805000010B 01 00000001 001122334455 10').data.slice(8, 12)).toBe('0001');
    // and the P1 purchase still goes through on the restored e-purse
    send(again, '805001020B 01 00001000 001122334455 0F');
    expect(send(again, '805401000F 00000001 20120229 135100 F15CAB75 08').data.slice(8)).toBe('56988A13');
    expect(again.toJSON().purses).toEqual({
      ED: { balance: 0x1000, onlineCounter: 1, offlineCounter: 0 },
      EP: { balance: 0, onlineCounter: 0, offlineCounter: 1 },
    });
  });

  it('a transaction in progress lives in RAM: it is not saved, so CREDIT on the restored card is refused', () => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    send(card, '805000010B 01 00001000 001122334455 10');
    const again = VirtualCpuCard.fromJSON(card.toJSON(), { random });
    send(again, SELECT_CITY_UNION);
    expect(send(again, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('6985');
  });

  it('an issued card stores only its keys diversified by the ASN, never the master keys', () => {
    const masterKeys = { load: '0123456789ABCDEFFEDCBA9876543210', purchase: '00112233445566778899AABBCCDDEEFF', tac: 'A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8' };
    for (const algorithm of ['3DES', 'SM4'] as const) {
      const asn = '44010000000000000077';
      const state = VirtualCpuCard.issue({ asn, cityCode: '4401', masterKeys, keyVersion: 1, algorithm }).toJSON();
      const text = JSON.stringify(state);
      for (const mk of Object.values(masterKeys)) expect(text).not.toContain(mk);
      expect(state.keys.load).toEqual([{ index: 1, version: 1, key: hostDiversify(algorithm, hex(masterKeys.load), hex(asn)).toString('hex').toUpperCase() }]);
      expect(state.keys.purchase[0]!.key).toBe(hostDiversify(algorithm, hex(masterKeys.purchase), hex(asn)).toString('hex').toUpperCase());
      expect(state.keys.tac).toBe(hostDiversify(algorithm, hex(masterKeys.tac), hex(asn)).toString('hex').toUpperCase());
    }
  });

  it('the transaction log is cyclic: the newest record is 1 and the oldest falls off', () => {
    const card = vectorCard({ logCapacity: 3 });
    send(card, SELECT_CITY_UNION);
    // a full log of three older records (counters 0001–0003, newest first), then one more load
    const state = card.toJSON();
    state.log.records = ['03', '02', '01'].map((n) => `00${n}000000000000010200112233445520250101120000`);
    const restored = VirtualCpuCard.fromJSON(state, { random });
    send(restored, SELECT_CITY_UNION);
    send(restored, '805000010B 01 00001000 001122334455 10');
    // counter 0, so vector L1's MAC2 applies
    expect(send(restored, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('9000');
    expect(send(restored, '00B201C400').data.slice(0, 4)).toBe('0000');
    expect(send(restored, '00B202C400').data.slice(0, 4)).toBe('0003');
    expect(send(restored, '00B203C400').data.slice(0, 4)).toBe('0002');
    expect(send(restored, '00B204C400').sw).toBe('6A83');
  });

  it.each<[string, (s: VirtualCpuCardState) => void, string]>([
    ['another kind of state', (s) => void ((s as { kind: string }).kind = 'onecard.virtual-m1-card'), 'kind'],
    ['an ASN of 9 bytes', (s) => void (s.asn = '440100000000000000'), 'asn'],
    ['a key of 8 bytes', (s) => void (s.keys.load[0]!.key = '1122334455667788'), 'keys.load[0].key'],
    ['an unknown algorithm', (s) => void ((s as { algorithm: string }).algorithm = 'AES'), 'algorithm'],
    ['a counter beyond FFFF', (s) => void (s.purses.EP.onlineCounter = 0x10000), 'purses.EP.onlineCounter'],
    ['a balance above the maximum', (s) => void (s.purses.EP.balance = s.maxBalance + 1), 'purses.EP.balance'],
    ['a log record of 22 bytes', (s) => void (s.log.records = ['00'.repeat(22)]), 'log.records[0]'],
    ['a date that is not YYYYMMDD', (s) => void (s.expiryDate = '2034-12-31'), 'expiryDate'],
  ])('a saved state with %s is refused, naming the field', (_, edit, field) => {
    const state = vectorCard().toJSON();
    edit(state);
    expect(() => VirtualCpuCard.fromJSON(state)).toThrow(CardStateError);
    try {
      VirtualCpuCard.fromJSON(state);
    } catch (err) {
      expect((err as CardStateError).field).toBe(field);
    }
  });

  it('issuing refuses an issuer id that does not carry the city code at bytes 2–3', () => {
    expect(() => vectorCard({ cityCode: '4401', issuerId: '0000310000000000' })).toThrow(CardStateError);
  });
});
