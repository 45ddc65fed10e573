import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, fixedRandom, hex, hostSm4, hostSm4Mac, send } from './cards.test-support.js';
import { ALGORITHM_IDS, VirtualCpuCard } from './virtual-cpu-card.js';
import { createCipheriv } from 'node:crypto';

// The host side of this file uses only Node's crypto and the helpers of cards.test-support.ts:
// SM4 diversification is written out here once more, straight from CARD-PROTOCOL.md §4.
function sm4Block(key: Buffer, block: Buffer): Buffer {
  const c = createCipheriv('sm4-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

const masterKeys = { load: '0123456789ABCDEFFEDCBA9876543210', purchase: 'FEDCBA98765432100123456789ABCDEF', tac: '000102030405060708090A0B0C0D0E0F' };
const asn = '31000000000000654321';
const D = hex(asn).subarray(2);
const notD = Buffer.from(D.map((b) => b ^ 0xff));
const dk = (mk: string) => sm4Block(hex(mk), Buffer.concat([D, notD]));
/** The unconfirmed SM4 session-key rule: the 8-byte input padded with 80 00… to 16 bytes. */
const sessionKey = (key: Buffer, input8: Buffer) => hostSm4(key, Buffer.concat([input8, hex('80 00000000000000')]));

describe('an SM4 card (algorithm id 04, unconfirmed) loads and spends with an independent host', () => {
  it('load: MAC1 checks out, the host MAC2 is accepted, the TAC is an SM4 MAC under DTK itself', () => {
    const card = VirtualCpuCard.issue({ asn, cityCode: '3100', masterKeys, keyVersion: 2, algorithm: 'SM4' }, { random: fixedRandom('0A0B0C0D') });
    send(card, SELECT_CITY_UNION);
    const init = send(card, '805000020B 01 00002710 AABBCCDDEEFF 10');
    expect(init.sw).toBe('9000');
    const r = hex(init.data);
    expect([r[6], r[7]]).toEqual([2, ALGORITHM_IDS.SM4]);
    expect(r[7]).toBe(0x04);
    const [oldBalance, counter, random, mac1] = [r.subarray(0, 4), r.subarray(4, 6), r.subarray(8, 12), r.subarray(12, 16)];

    const seslk = sessionKey(dk(masterKeys.load), Buffer.concat([random, counter, hex('8000')]));
    expect(seslk.length).toBe(16);
    expect(mac1).toEqual(hostSm4Mac(seslk, Buffer.concat([oldBalance, hex('00002710 02 AABBCCDDEEFF')])));

    const dateTime = hex('20250615 101500');
    const mac2 = hostSm4Mac(seslk, Buffer.concat([hex('00002710 02 AABBCCDDEEFF'), dateTime]));
    const credit = send(card, `805200000B ${dateTime.toString('hex')} ${mac2.toString('hex')} 04`);
    expect(credit.sw).toBe('9000');
    const tac = hostSm4Mac(dk(masterKeys.tac), Buffer.concat([hex('00002710'), counter, hex('00002710 02 AABBCCDDEEFF'), dateTime]));
    expect(hex(credit.data)).toEqual(tac);
    expect(send(card, '805C000204').data).toBe('00002710');
  });

  it('purchase: the host MAC1 is accepted, MAC2 and TAC check out; a wrong MAC1 is refused with 93 02', () => {
    const card = VirtualCpuCard.issue({ asn, cityCode: '3100', masterKeys, keyVersion: 2, algorithm: 'SM4', balance: 5000 }, { random: fixedRandom('01020304') });
    send(card, SELECT_CITY_UNION);
    const init = hex(send(card, '805001020B 01 00000BB8 AABBCCDDEEFF 0F').data);
    expect(init.readUInt32BE(0)).toBe(5000);
    expect(init[10]).toBe(0x04);
    const [counter, random] = [init.subarray(4, 6), init.subarray(11, 15)];

    const serial = hex('0000ABCD');
    const dateTime = hex('20250615 101501');
    const sespk = sessionKey(dk(masterKeys.purchase), Buffer.concat([random, counter, serial.subarray(2)]));
    const mac1 = hostSm4Mac(sespk, Buffer.concat([hex('00000BB8 06 AABBCCDDEEFF'), dateTime]));
    const bad = Buffer.from(mac1.map((b) => b ^ 1));
    expect(send(card, `805401000F ${serial.toString('hex')} ${dateTime.toString('hex')} ${bad.toString('hex')} 08`).sw).toBe('9302');

    send(card, '805001020B 01 00000BB8 AABBCCDDEEFF 0F');
    const debit = send(card, `805401000F ${serial.toString('hex')} ${dateTime.toString('hex')} ${mac1.toString('hex')} 08`);
    expect(debit.sw).toBe('9000');
    const out = hex(debit.data);
    expect(out.subarray(4)).toEqual(hostSm4Mac(sespk, hex('00000BB8')));
    expect(out.subarray(0, 4)).toEqual(hostSm4Mac(dk(masterKeys.tac), Buffer.concat([hex('00000BB8 06 AABBCCDDEEFF'), serial, dateTime])));
    expect(card.toJSON().purses.EP).toEqual({ balance: 2000, onlineCounter: 0, offlineCounter: 1 });
  });
});
