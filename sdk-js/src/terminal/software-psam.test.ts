import { describe, expect, it } from 'vitest';
import { purseCipher } from '../cards/card-crypto.js';
import { purchaseMac1Data, purchaseSessionInput } from './software-psam.js';

describe('the software PSAM’s purchase MACs (CARD-PROTOCOL.md §7, vector P1)', () => {
  const dpk = Buffer.from('11223344556677888877665544332211', 'hex');
  const cipher = purseCipher('3DES');
  const sespk = cipher.sessionKey(dpk, purchaseSessionInput(Buffer.from('11223344', 'hex'), 0, 1));

  it('SESPK from random, offline counter and the terminal serial’s last two bytes', () => {
    expect(sespk.toString('hex').toUpperCase()).toBe('003238ABC57659DD');
  });

  it('MAC1 over amount, type 06, terminal, date and time', () => {
    const mac1 = cipher.mac(sespk, purchaseMac1Data(0x1000, Buffer.from('001122334455', 'hex'), '20120229', '135100'));
    expect(mac1.toString('hex').toUpperCase()).toBe('F15CAB75');
  });

  it('MAC2 over the amount is what the card answers', () => {
    expect(cipher.mac(sespk, Buffer.from('00001000', 'hex')).toString('hex').toUpperCase()).toBe('56988A13');
  });

  it('a terminal serial past 65535 enters the session key by its last two bytes', () => {
    expect(purchaseSessionInput(Buffer.from('11223344', 'hex'), 7, 0x0001_0002).toString('hex')).toBe('1122334400070002');
  });

});
