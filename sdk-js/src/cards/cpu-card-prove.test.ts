import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, VECTOR_DTK, hex, hostMac8, hostTacKey3des, send, vectorCard } from './cards.test-support.js';
import { VirtualCpuCard } from './virtual-cpu-card.js';

/** GET TRANSACTION PROVE (CARD-PROTOCOL.md §8): the card proves its last load or purchase with the TAC it gave then. */
describe('GET TRANSACTION PROVE `80 5A 00 <type> 02 <counter> 08`', () => {
  const loadVector = (c: VirtualCpuCard) => {
    send(c, SELECT_CITY_UNION);
    send(c, '805000010B 01 00001000 001122334455 10');
    return send(c, '805200000B 20111221 214822 3A845BF0 04');
  };

  it('after a load answers MAC2 || TAC of that load, the TAC the host computes with the card’s DTK', () => {
    const c = vectorCard();
    const credit = loadVector(c);
    const proof = send(c, '805A000102 0000 08');
    expect(proof.sw).toBe('9000');
    // MAC2 as the host sent it, then the TAC the card answered CREDIT FOR LOAD with
    expect(proof.data).toBe(`3A845BF0${credit.data}`);
    expect(proof.data.slice(8)).toBe(hostMac8(hostTacKey3des(hex(VECTOR_DTK)), hex('00001000 0000 00001000 01 001122334455 20111221 214822')).toString('hex').toUpperCase());
  });

  it('answers 94 06 for a counter it has no proof of, and before any load', () => {
    const c = vectorCard();
    send(c, SELECT_CITY_UNION);
    expect(send(c, '805A000102 0000 08').sw).toBe('9406');
    loadVector(c);
    expect(send(c, '805A000102 0001 08').sw).toBe('9406');
    // the e-purse (P2 02) has no load; the e-deposit (01) has
    expect(send(c, '805A000202 0000 08').sw).toBe('9406');
  });

  it('after a purchase answers its TAC || MAC2 as MAC2 || TAC, and keeps the load’s proof beside it', () => {
    const c = vectorCard({ balance: 0x1000 });
    loadVector(c);
    send(c, '805001020B 01 00001000 001122334455 0F');
    const debit = send(c, '805401000F 00000001 20120229 135100 F15CAB75 08');
    expect(send(c, '805A000602 0000 08')).toEqual({ data: `${debit.data.slice(8)}${debit.data.slice(0, 8)}`, sw: '9000' });
    expect(send(c, '805A000102 0000 08').sw).toBe('9000');
  });

  it('a refused CREDIT FOR LOAD leaves nothing to prove; a later load replaces the proof', () => {
    const c = vectorCard();
    send(c, SELECT_CITY_UNION);
    send(c, '805000010B 01 00001000 001122334455 10');
    expect(send(c, '805200000B 20111221 214822 3A845BF1 04').sw).toBe('9302');
    expect(send(c, '805A000102 0000 08').sw).toBe('9406');
  });

  it('the proof survives saving and restoring the card', () => {
    const c = vectorCard();
    const credit = loadVector(c);
    const again = VirtualCpuCard.fromJSON(c.toJSON());
    send(again, SELECT_CITY_UNION);
    expect(send(again, '805A000102 0000 08')).toEqual({ data: `3A845BF0${credit.data}`, sw: '9000' });
  });

  it('refuses a wrong length, an unknown type and an unselected application', () => {
    const c = vectorCard();
    loadVector(c);
    expect(send(c, '805A000103 000000 08').sw).toBe('6700');
    expect(send(c, '805A000302 0000 08').sw).toBe('6A86');
    c.reset();
    expect(send(c, '805A000102 0000 08').sw).toBe('6985');
  });
});
