import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, VECTOR_DTK, hex, hostMac8, hostTacKey3des, send, vectorCard } from './cards.test-support.js';

const compact = (s: string) => s.replace(/\s+/g, '').toUpperCase();

describe('purchase (消费) with vector P1 (CARD-PROTOCOL.md §3, §7)', () => {
  // The vector's INITIALIZE shows balance 0; MAC1 does not cover the balance, so a card holding the
  // 0x1000 it spends (offline counter 0, same random) reproduces the vector's MACs.
  const card = () => vectorCard({ balance: 0x1000 });

  it('the card accepts the vector MAC1 and returns the vector MAC2 after its TAC', () => {
    const c = card();
    send(c, SELECT_CITY_UNION);
    const init = send(c, '805001020B 01 00001000 001122334455 0F');
    // balance, offline counter 0000, overdraft 000000, key version 01, algorithm 00, random 11223344
    expect(init).toEqual({ data: compact('00001000 0000 000000 01 00 11223344'), sw: '9000' });

    const debit = send(c, '805401000F 00000001 20120229 135100 F15CAB75 08');
    expect(debit.sw).toBe('9000');
    const [tac, mac2] = [debit.data.slice(0, 8), debit.data.slice(8)];
    expect(mac2).toBe('56988A13');
    // TAC (host side): amount || type 06 || terminal || terminal serial || date || time
    expect(tac).toBe(hostMac8(hostTacKey3des(hex(VECTOR_DTK)), hex('00001000 06 001122334455 00000001 20120229 135100')).toString('hex').toUpperCase());

    expect(send(c, '805C000204')).toEqual({ data: '00000000', sw: '9000' });
    expect(c.toJSON().purses.EP).toEqual({ balance: 0, onlineCounter: 0, offlineCounter: 1 });
  });

  it('a debited purchase is written to the transaction log as record 1 (type 06), newer than the load before it', () => {
    const c = vectorCard({ balance: 0x1000 });
    send(c, SELECT_CITY_UNION);
    send(c, '805000010B 01 00001000 001122334455 10');
    send(c, '805200000B 20111221 214822 3A845BF0 04');
    send(c, '805001020B 01 00001000 001122334455 0F');
    expect(send(c, '805401000F 00000001 20120229 135100 F15CAB75 08').sw).toBe('9000');
    expect(send(c, '00B201C417').data).toBe(compact('0000 000000 00001000 06 001122334455 20120229 135100'));
    expect(send(c, '00B202C417').data).toBe(compact('0000 000000 00001000 01 001122334455 20111221 214822'));
  });

  it('a wrong MAC1 gets 93 02 and leaves the balance and counter unchanged', () => {
    const c = card();
    send(c, SELECT_CITY_UNION);
    send(c, '805001020B 01 00001000 001122334455 0F');
    const before = c.toJSON();
    expect(send(c, '805401000F 00000001 20120229 135100 F15CAB76 08')).toEqual({ data: '', sw: '9302' });
    expect(c.toJSON()).toEqual(before);
    expect(send(c, '805401000F 00000001 20120229 135100 F15CAB75 08').sw).toBe('6985');
  });

  it('MAC1 is bound to the terminal serial: another serial changes SESPK and the MAC fails', () => {
    const c = card();
    send(c, SELECT_CITY_UNION);
    send(c, '805001020B 01 00001000 001122334455 0F');
    expect(send(c, '805401000F 00000002 20120229 135100 F15CAB75 08').sw).toBe('9302');
  });

  it('a purchase above the balance is refused at INITIALIZE with 94 01', () => {
    const c = vectorCard({ balance: 0x0fff });
    send(c, SELECT_CITY_UNION);
    expect(send(c, '805001020B 01 00001000 001122334455 0F')).toEqual({ data: '', sw: '9401' });
    expect(c.toJSON().purses.EP).toEqual({ balance: 0x0fff, onlineCounter: 0, offlineCounter: 0 });
  });
});
