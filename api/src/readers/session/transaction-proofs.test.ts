import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VirtualCpuCard } from '../../../../sdk-js/src/cards/virtual-cpu-card.js';
import { ALG_3DES, ALG_SM4, type AlgorithmId } from '../../cardcrypto/algorithm.js';
import { loadMac2, loadSessionKey, loadTac, purchaseMac1, purchaseMac2, purchaseSessionKey, purchaseTac, TransactionType } from '../../cardcrypto/epurse.js';
import * as apdu from './apdu.js';

/**
 * GET TRANSACTION PROVE as the host sends and reads it (apdu.ts), cross-checked against the virtual
 * card (sdk-js): the card's proof of a load or a purchase is the TAC the host's own pure functions
 * (cardcrypto/epurse.ts) compute for it, under both algorithms, for random keys, amounts, counters,
 * terminals, dates and times.
 */
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const transmit = (card: VirtualCpuCard, command: Buffer) => {
  const answer = Buffer.from(card.transmit(command));
  return { data: answer.subarray(0, -2), sw: hex(answer.subarray(-2)) };
};
const bcdDigits = (n: number, width: number) => String(n).padStart(width, '0');
const randomDateTime = () => ({
  date: `20${bcdDigits(randomInt(20, 40), 2)}${bcdDigits(randomInt(1, 13), 2)}${bcdDigits(randomInt(1, 29), 2)}`,
  time: `${bcdDigits(randomInt(0, 24), 2)}${bcdDigits(randomInt(0, 60), 2)}${bcdDigits(randomInt(0, 60), 2)}`,
});

describe('GET TRANSACTION PROVE on the wire', () => {
  it('is 80 5A 00 <type> 02 <counter> 08, and its answer is MAC2 || TAC', () => {
    expect(hex(apdu.getTransactionProve(0x02, 0x0102))).toBe('805A000202010208');
    expect(hex(apdu.getTransactionProve(0x06, 0))).toBe('805A000602000008');
    const { mac2, tac } = apdu.parseTransactionProve(Buffer.from('3A845BF011223344', 'hex'));
    expect([hex(mac2), hex(tac)]).toEqual(['3A845BF0', '11223344']);
    expect(() => apdu.parseTransactionProve(Buffer.alloc(4))).toThrow(apdu.CardAnswerError);
  });
});

describe.each([
  ['3DES', ALG_3DES],
  ['SM4', ALG_SM4],
] as const)('the card’s proof is the host’s TAC (%s, random cross-checks)', (name, algorithm: AlgorithmId) => {
  const newCard = () => {
    const keys = { load: randomBytes(16), purchase: randomBytes(16), tac: randomBytes(16) };
    const card = VirtualCpuCard.withKeys({
      asn: hex(randomBytes(10)),
      cityCode: '4401',
      algorithm: name,
      balance: randomInt(0, 1_000_000),
      keys: { load: [{ index: 1, version: 1, key: hex(keys.load) }], purchase: [{ index: 1, version: 1, key: hex(keys.purchase) }], tac: hex(keys.tac) },
    });
    transmit(card, apdu.selectApplication());
    return { card, keys };
  };

  it('loads: MAC2 is the host’s, the TAC is loadTac of the load (200 cards)', () => {
    for (let i = 0; i < 200; i++) {
      const { card, keys } = newCard();
      let proved = -1;
      for (let n = randomInt(1, 4); n > 0; n--) {
        const amount = randomInt(1, 100_000);
        const terminalId = randomBytes(6);
        const initialized = transmit(card, apdu.initializeForLoad(1, amount, terminalId));
        expect(initialized.sw).toBe('9000');
        const init = apdu.parseInitializeForLoad(initialized.data);
        const { date, time } = randomDateTime();
        const sessionKey = loadSessionKey({ algorithm, loadKey: keys.load, random: init.random, onlineCounter: init.onlineCounter });
        const mac2 = loadMac2({ algorithm, sessionKey, amount, terminalId, date, time });
        expect(transmit(card, apdu.creditForLoad(date, time, mac2)).sw).toBe('9000');
        const proof = transmit(card, apdu.getTransactionProve(TransactionType.EPURSE_LOAD, init.onlineCounter));
        expect(proof.sw).toBe('9000');
        const { mac2: provedMac2, tac } = apdu.parseTransactionProve(proof.data);
        expect(hex(provedMac2)).toBe(hex(mac2));
        expect(hex(tac)).toBe(hex(loadTac({ algorithm, tacKey: keys.tac, newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId, date, time })));
        proved = init.onlineCounter;
      }
      // Only the last load is kept: an earlier counter is 94 06.
      if (proved > 0) expect(transmit(card, apdu.getTransactionProve(TransactionType.EPURSE_LOAD, proved - 1)).sw).toBe(apdu.SW_PROOF_NOT_AVAILABLE);
    }
  });

  it('purchases: MAC2 is purchaseMac2, the TAC is purchaseTac of the purchase (200 cards)', () => {
    for (let i = 0; i < 200; i++) {
      const { card, keys } = newCard();
      const amount = randomInt(1, 1_000);
      const terminalId = randomBytes(6);
      const answer = transmit(card, apdu.initializeForPurchase(1, amount, terminalId));
      if (answer.sw === apdu.SW_INSUFFICIENT_BALANCE) continue;
      const init = apdu.parseInitializeForPurchase(answer.data);
      const terminalSerial = randomInt(1, 0xffffffff);
      const { date, time } = randomDateTime();
      const sessionKey = purchaseSessionKey({ algorithm, purchaseKey: keys.purchase, random: init.random, offlineCounter: init.offlineCounter, terminalSerial });
      const debit = transmit(card, apdu.debitForPurchase(terminalSerial, date, time, purchaseMac1({ algorithm, sessionKey, amount, terminalId, date, time })));
      expect(debit.sw).toBe('9000');
      const proof = transmit(card, apdu.getTransactionProve(TransactionType.EPURSE_PURCHASE, init.offlineCounter));
      const { mac2, tac } = apdu.parseTransactionProve(proof.data);
      expect(hex(mac2)).toBe(hex(purchaseMac2({ algorithm, sessionKey, amount })));
      expect(hex(tac)).toBe(hex(purchaseTac({ algorithm, tacKey: keys.tac, amount, terminalId, terminalSerial, date, time })));
    }
  });
});
