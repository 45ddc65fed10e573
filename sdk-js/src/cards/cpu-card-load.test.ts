import { describe, expect, it } from 'vitest';
import {
  SELECT_CITY_UNION,
  VECTOR_DTK,
  fixedRandom,
  hex,
  hostDiversify,
  hostMac8,
  hostTacKey3des,
  hostTdes,
  send,
  vectorCard,
} from './cards.test-support.js';
import { VirtualCpuCard } from './virtual-cpu-card.js';

const compact = (s: string) => s.replace(/\s+/g, '').toUpperCase();

describe('load (圈存) with vector L1 (CARD-PROTOCOL.md §2, §7)', () => {
  it('INITIALIZE FOR LOAD answers the vector, and CREDIT with the vector MAC2 credits the card', () => {
    const card = vectorCard();
    expect(send(card, SELECT_CITY_UNION).sw).toBe('9000');

    const init = send(card, '805000010B 01 00001000 001122334455 10');
    // old balance 0, counter 0, key version 02, algorithm 00, random 11223344, MAC1 2988AE5A
    expect(init).toEqual({ data: compact('00000000 0000 02 00 11223344 2988AE5A'), sw: '9000' });

    const credit = send(card, '805200000B 20111221 214822 3A845BF0 04');
    expect(credit.sw).toBe('9000');
    // TAC (host side): new balance || counter before the load || amount || type 01 || terminal || date || time
    const tacKey = hostTacKey3des(hex(VECTOR_DTK));
    expect(credit.data).toBe(hostMac8(tacKey, hex('00001000 0000 00001000 01 001122334455 20111221 214822')).toString('hex').toUpperCase());

    expect(send(card, '805C000104')).toEqual({ data: '00001000', sw: '9000' });
    expect(card.toJSON().purses).toEqual({
      ED: { balance: 0x1000, onlineCounter: 1, offlineCounter: 0 },
      EP: { balance: 0, onlineCounter: 0, offlineCounter: 0 },
    });
  });

  it('a credited load is written to the transaction log as record 1 (type 01 for the e-deposit)', () => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    send(card, '805000010B 01 00001000 001122334455 10');
    send(card, '805200000B 20111221 214822 3A845BF0 04');
    // counter (2) overdraft limit (3) amount (4) type (1) terminal (6) date (4) time (3)
    expect(send(card, '00B201C400')).toEqual({ data: compact('0000 000000 00001000 01 001122334455 20111221 214822'), sw: '9000' });
    expect(send(card, '00B202C400').sw).toBe('6A83');
  });

  it('a wrong MAC2 gets 93 02, changes nothing, and ends the transaction', () => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    send(card, '805000010B 01 00001000 001122334455 10');
    const before = card.toJSON();
    expect(send(card, '805200000B 20111221 214822 3A845BF1 04').sw).toBe('9302');
    expect(card.toJSON()).toEqual(before);
    // The right MAC2 is too late now: the card reset its transaction state.
    expect(send(card, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('6985');
    expect(card.toJSON()).toEqual(before);
  });

  it('a MAC2 replayed after a good credit fails: the card moved on to the next online counter', () => {
    const card = vectorCard();
    send(card, SELECT_CITY_UNION);
    send(card, '805000010B 01 00001000 001122334455 10');
    expect(send(card, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('9000');
    // straight away: no load is initialised any more
    expect(send(card, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('6985');
    // after a new INITIALIZE (same random, counter now 0001): the old MAC2 no longer matches
    const init = send(card, '805000010B 01 00001000 001122334455 10');
    expect(init.data.slice(0, 12)).toBe(compact('00001000 0001'));
    expect(send(card, '805200000B 20111221 214822 3A845BF0 04').sw).toBe('9302');
    expect(card.toJSON().purses.ED).toEqual({ balance: 0x1000, onlineCounter: 1, offlineCounter: 0 });
  });
});

describe('an e-purse load between the card and an independent host', () => {
  const masterKeys = { load: '0123456789ABCDEFFEDCBA9876543210', purchase: '00112233445566778899AABBCCDDEEFF', tac: 'A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8' };
  const asn = '44010000000000000077';

  it('the host diversifies the master load key by the ASN, checks MAC1, issues MAC2 and checks the TAC', () => {
    const card = VirtualCpuCard.issue({ asn, cityCode: '4401', masterKeys, keyVersion: 3, algorithm: '3DES', balance: 500 }, { random: fixedRandom('CAFEF00D') });
    send(card, SELECT_CITY_UNION);
    const init = send(card, '805000020B 01 00002710 112233445566 10');
    expect(init.sw).toBe('9000');
    const r = hex(init.data);
    const [oldBalance, counter, keyVersion, algorithm, random, mac1] = [r.subarray(0, 4), r.subarray(4, 6), r[6], r[7], r.subarray(8, 12), r.subarray(12, 16)];
    expect([oldBalance.readUInt32BE(0), counter.readUInt16BE(0), keyVersion, algorithm]).toEqual([500, 0, 3, 0x00]);

    const dlk = hostDiversify('3DES', hex(masterKeys.load), hex(asn));
    const seslk = hostTdes(dlk, Buffer.concat([random, counter, hex('8000')]));
    expect(mac1).toEqual(hostMac8(seslk, Buffer.concat([oldBalance, hex('00002710 02 112233445566')])));

    const dateTime = hex('20250301 083000');
    const mac2 = hostMac8(seslk, Buffer.concat([hex('00002710 02 112233445566'), dateTime]));
    const credit = send(card, `805200000B ${dateTime.toString('hex')} ${mac2.toString('hex')} 04`);
    expect(credit.sw).toBe('9000');
    const dtk = hostDiversify('3DES', hex(masterKeys.tac), hex(asn));
    const newBalance = hex((500 + 10000).toString(16).padStart(8, '0'));
    expect(hex(credit.data)).toEqual(hostMac8(hostTacKey3des(dtk), Buffer.concat([newBalance, counter, hex('00002710 02 112233445566'), dateTime])));

    expect(send(card, '805C000204')).toEqual({ data: newBalance.toString('hex').toUpperCase(), sw: '9000' });
    expect(send(card, '00B201C400').data).toBe(compact(`0000 000000 00002710 02 112233445566 ${dateTime.toString('hex')}`));
  });
});
