import { describe, expect, it } from 'vitest';
import { SELECT_CITY_UNION, VECTOR_KEY, fixedRandom, hex, hostMac8, hostTdes, send, vectorCard } from './cards.test-support.js';
import { StatusWord, VirtualCpuCard, type VirtualCpuCardState } from './virtual-cpu-card.js';

/** A vector card whose saved state was edited first (counters at their limit, …). */
function savedCard(edit: (state: VirtualCpuCardState) => void): VirtualCpuCard {
  const state = vectorCard({ balance: 0x1000 }).toJSON();
  edit(state);
  return VirtualCpuCard.fromJSON(state, { random: fixedRandom('11223344') });
}

const INIT_LOAD_ED = '805000010B 01 00001000 001122334455 10';
const INIT_LOAD_EP = '805000020B 01 00001000 001122334455 10';
const INIT_PURCHASE = '805001020B 01 00001000 001122334455 0F';
const CREDIT_L1 = '805200000B 20111221 214822 3A845BF0 04';
const DEBIT_P1 = '805401000F 00000001 20120229 135100 F15CAB75 08';

interface Refusal {
  rule: string;
  card?: () => VirtualCpuCard;
  /** APDUs sent first; each must succeed. */
  setup?: string[];
  apdu: string;
  sw: number;
}

const refusals: Refusal[] = [
  { rule: 'an APDU shorter than its header is refused with 67 00', apdu: '00A404', sw: StatusWord.WRONG_LENGTH },
  { rule: 'an Lc that disagrees with the data is refused with 67 00', setup: [], apdu: '00A4040009 A0000000038698', sw: StatusWord.WRONG_LENGTH },
  { rule: 'INITIALIZE FOR LOAD with Lc 0A is refused with 67 00', setup: [SELECT_CITY_UNION], apdu: '805000020A 01 00001000 0011223344 10', sw: StatusWord.WRONG_LENGTH },
  { rule: 'INITIALIZE FOR PURCHASE with Le 10 is refused with 67 00', setup: [SELECT_CITY_UNION], apdu: '805001020B 01 00001000 001122334455 10', sw: StatusWord.WRONG_LENGTH },
  { rule: 'CREDIT FOR LOAD with Lc 0A is refused with 67 00', setup: [SELECT_CITY_UNION, INIT_LOAD_ED], apdu: '805200000A 20111221 214822 3A845B 04', sw: StatusWord.WRONG_LENGTH },
  { rule: 'DEBIT FOR PURCHASE with Lc 0B is refused with 67 00', setup: [SELECT_CITY_UNION, INIT_PURCHASE], apdu: '805401000B 00000001 20120229 135100 08', sw: StatusWord.WRONG_LENGTH },
  { rule: 'GET BALANCE with Le 08 is refused with 67 00', setup: [SELECT_CITY_UNION], apdu: '805C000208', sw: StatusWord.WRONG_LENGTH },
  { rule: 'GET BALANCE with data is refused with 67 00', setup: [SELECT_CITY_UNION], apdu: '805C00020100 04', sw: StatusWord.WRONG_LENGTH },
  { rule: 'a secure-messaging CLA is refused with 6E 00', setup: [SELECT_CITY_UNION], apdu: '845C000204', sw: StatusWord.CLA_NOT_SUPPORTED },
  { rule: 'SELECT under the proprietary CLA 80 is refused with 6E 00', apdu: '80A4040009 A00000000386980701', sw: StatusWord.CLA_NOT_SUPPORTED },
  { rule: 'an instruction the card lacks (GET DATA) is refused with 6D 00', setup: [SELECT_CITY_UNION], apdu: '80CA000000', sw: StatusWord.INS_NOT_SUPPORTED },
  { rule: 'GET BALANCE of purse 03 is refused with 6A 86', setup: [SELECT_CITY_UNION], apdu: '805C000304', sw: StatusWord.WRONG_P1P2 },
  { rule: 'the e-deposit of a card without one is refused with 6A 86', card: () => vectorCard({ eDeposit: false }), setup: [SELECT_CITY_UNION], apdu: '805C000104', sw: StatusWord.WRONG_P1P2 },
  { rule: 'INITIALIZE with P1 03 (composite purchase) is refused with 6A 86', setup: [SELECT_CITY_UNION], apdu: '805003020B 01 00001000 001122334455 0F', sw: StatusWord.WRONG_P1P2 },
  { rule: 'CREDIT FOR LOAD with P1 01 is refused with 6A 86', setup: [SELECT_CITY_UNION, INIT_LOAD_ED], apdu: '805201000B 20111221 214822 3A845BF0 04', sw: StatusWord.WRONG_P1P2 },
  { rule: 'SELECT of an unknown AID is refused with 6A 82', apdu: '00A4040008 A000000632010105', sw: StatusWord.NOT_FOUND },
  { rule: 'READ BINARY of a file the card lacks (SFI 0x16) is refused with 6A 82', setup: [SELECT_CITY_UNION], apdu: '00B0960000', sw: StatusWord.NOT_FOUND },
  { rule: 'READ BINARY of SFI 0x15 outside the application is refused with 6A 82', apdu: '00B0950000', sw: StatusWord.NOT_FOUND },
  { rule: 'READ RECORD of an empty transaction log is refused with 6A 83', setup: [SELECT_CITY_UNION], apdu: '00B201C400', sw: StatusWord.RECORD_NOT_FOUND },
  { rule: 'an e-purse command before the application is selected is refused with 69 85', apdu: '805C000204', sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'CREDIT FOR LOAD without INITIALIZE FOR LOAD is refused with 69 85', setup: [SELECT_CITY_UNION], apdu: CREDIT_L1, sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'a second CREDIT FOR LOAD is refused with 69 85', setup: [SELECT_CITY_UNION, INIT_LOAD_ED, CREDIT_L1], apdu: CREDIT_L1, sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'DEBIT FOR PURCHASE after INITIALIZE FOR LOAD is refused with 69 85', setup: [SELECT_CITY_UNION, INIT_LOAD_EP], apdu: DEBIT_P1, sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'a command between INITIALIZE and CREDIT ends the load: CREDIT is refused with 69 85', setup: [SELECT_CITY_UNION, INIT_LOAD_ED, '805C000104'], apdu: CREDIT_L1, sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'a reset (card left the field) ends the load: CREDIT is refused with 69 85', setup: [SELECT_CITY_UNION, INIT_LOAD_ED, 'RESET', SELECT_CITY_UNION], apdu: CREDIT_L1, sw: StatusWord.CONDITIONS_NOT_SATISFIED },
  { rule: 'a load over the purse maximum is refused with 69 85 (unconfirmed status word)', card: () => vectorCard({ balance: 0x1000, maxBalance: 0x1fff }), setup: [SELECT_CITY_UNION], apdu: INIT_LOAD_EP, sw: StatusWord.BALANCE_LIMIT_EXCEEDED },
  { rule: 'a load key index the card lacks is refused with 94 03', setup: [SELECT_CITY_UNION], apdu: '805000020B 02 00001000 001122334455 10', sw: StatusWord.KEY_INDEX_NOT_SUPPORTED },
  { rule: 'a purchase key index the card lacks is refused with 94 03', setup: [SELECT_CITY_UNION], apdu: '805001020B 07 00000001 001122334455 0F', sw: StatusWord.KEY_INDEX_NOT_SUPPORTED },
  { rule: 'a purchase above the balance is refused with 94 01', setup: [SELECT_CITY_UNION], apdu: '805001020B 01 00001001 001122334455 0F', sw: StatusWord.INSUFFICIENT_BALANCE },
  {
    rule: 'a load with the online counter at FFFF is refused with 94 02',
    card: () => savedCard((s) => void (s.purses.EP.onlineCounter = 0xffff)),
    setup: [SELECT_CITY_UNION],
    apdu: INIT_LOAD_EP,
    sw: StatusWord.COUNTER_EXHAUSTED,
  },
  {
    rule: 'a purchase with the offline counter at FFFF is refused with 94 02',
    card: () => savedCard((s) => void (s.purses.EP.offlineCounter = 0xffff)),
    setup: [SELECT_CITY_UNION],
    apdu: INIT_PURCHASE,
    sw: StatusWord.COUNTER_EXHAUSTED,
  },
];

describe('the CPU card refuses what a real card refuses', () => {
  it.each(refusals)('$rule', ({ card = () => vectorCard({ balance: 0x1000 }), setup = [], apdu, sw }) => {
    const c = card();
    for (const step of setup) {
      if (step === 'RESET') c.reset();
      else expect(send(c, step).sw, step).toBe('9000');
    }
    const before = c.toJSON();
    expect(send(c, apdu)).toEqual({ data: '', sw: sw.toString(16).toUpperCase() });
    expect(c.toJSON(), 'a refusal changes nothing on the card').toEqual(before);
  });

  it('the last online counter (FFFE) still takes a load, an INITIALIZE alone using none, and the card then refuses the next load with 94 02', () => {
    const c = savedCard((s) => void (s.purses.ED!.onlineCounter = 0xfffe));
    send(c, SELECT_CITY_UNION);
    expect(send(c, INIT_LOAD_ED).data.slice(8, 12)).toBe('FFFE');
    const init = send(c, INIT_LOAD_ED);
    expect(init.sw).toBe('9000');
    expect(init.data.slice(8, 12), 'an INITIALIZE left uncompleted does not use up the counter').toBe('FFFE');
    // The host's MAC2 for this load, computed apart from the card (cards.test-support.ts).
    const sessionKey = hostTdes(hex(VECTOR_KEY), hex(`${init.data.slice(16, 24)} FFFE 8000`));
    const dateTime = '20260101120000';
    const mac2 = hostMac8(sessionKey, hex(`00001000 01 001122334455 ${dateTime}`)).toString('hex');
    expect(send(c, `805200000B ${dateTime} ${mac2} 04`).sw).toBe('9000');
    expect(c.toJSON().purses.ED).toMatchObject({ balance: 0x1000, onlineCounter: 0xffff });
    const before = c.toJSON();
    expect(send(c, INIT_LOAD_ED)).toEqual({ data: '', sw: '9402' });
    expect(c.toJSON()).toEqual(before);
  });
});
