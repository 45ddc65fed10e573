/**
 * A contactless PC/SC reader in front of a MIFARE Classic (M1) card: M1 cards have no APDUs, so
 * PC/SC readers answer "pseudo-APDUs" (class `FF`) and speak the card's own protocol themselves
 * (PC/SC Part 3 §3.2.2: GET DATA `FF CA`, LOAD KEYS `FF 82`, GENERAL AUTHENTICATE `FF 86`,
 * READ BINARY `FF B0`, UPDATE BINARY `FF D6`; the value operations, which Part 3 leaves out, as
 * the widespread ACS readers do them: `FF D7`). This is that firmware around a {@link VirtualM1Card},
 * so the SDK's PC/SC M1 driver (`reader/pcsc-m1.ts`) can be run through pcscd and vpcd.
 */
import { M1CardError, type M1ErrorCode, type VirtualM1Card } from './virtual-m1-card.js';
import type { ApduCard } from './t0-card.js';

/** The ATR a PC/SC reader builds for a MIFARE Classic 1K (PC/SC Part 3 §3.1.3.2.3: RID A000000306, standard 03, card name 0001). */
export const M1_1K_ATR = Uint8Array.of(0x3b, 0x8f, 0x80, 0x01, 0x80, 0x4f, 0x0c, 0xa0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x6a);

/** The status word a reader gives for each way the card refuses (as ACS readers do, where Part 3 is silent). */
export const M1_STATUS: Record<M1ErrorCode, number> = {
  AUTH_FAILED: 0x6300,
  NOT_AUTHENTICATED: 0x6982,
  ACCESS_DENIED: 0x6982,
  NOT_A_VALUE_BLOCK: 0x6981,
  INVALID_BLOCK: 0x6a82,
  INVALID_DATA: 0x6700,
  NO_TRANSFER_VALUE: 0x6985,
  VALUE_OUT_OF_RANGE: 0x6a80,
  INSUFFICIENT_BALANCE: 0x6a80,
};

const sw = (word: number, data: Uint8Array = new Uint8Array()) => Uint8Array.of(...data, word >> 8, word & 0xff);

export class VirtualM1Reader implements ApduCard {
  /** The reader's volatile key slots (LOAD KEYS): keys are loaded into the reader, then named by slot. */
  private readonly keys = new Map<number, Uint8Array>();

  constructor(readonly card: VirtualM1Card) {}

  transmit(apdu: Uint8Array): Uint8Array {
    if (apdu[0] !== 0xff || apdu.length < 5) return sw(0x6e00);
    const [, ins, p1, p2, lc] = apdu as unknown as [number, number, number, number, number];
    const data = apdu.subarray(5, 5 + lc);
    try {
      switch (ins) {
        case 0xca: // GET DATA: P1 00 the UID
          return p1 === 0x00 ? sw(0x9000, Buffer.from(this.card.uid, 'hex')) : sw(0x6a81);
        case 0x82: // LOAD KEYS: P1 key structure (00: volatile), P2 slot, 6-byte key
          if (lc !== 6 || p2 > 1) return sw(0x6700);
          this.keys.set(p2, Uint8Array.from(data));
          return sw(0x9000);
        case 0x86: {
          // GENERAL AUTHENTICATE: 01 00 <block> <60 key A | 61 key B> <slot>
          if (lc !== 5 || data[0] !== 0x01) return sw(0x6700);
          const key = this.keys.get(data[4]!);
          if (!key) return sw(0x6986);
          this.card.authenticate(data[2]!, data[3] === 0x60 ? 'A' : 'B', key);
          return sw(0x9000);
        }
        case 0xb0: // READ BINARY: P2 block, Le 16
          return sw(0x9000, this.card.read(p2));
        case 0xd6: // UPDATE BINARY: P2 block, 16 bytes
          if (lc !== 16) return sw(0x6700);
          this.card.write(p2, data);
          return sw(0x9000);
        case 0xd7: // value block operation: 01 increment / 02 decrement <value BE> on P2, or 03 <target>: restore P2 to target
          if (lc === 5 && (data[0] === 0x01 || data[0] === 0x02)) {
            const value = Buffer.from(data.subarray(1, 5)).readUInt32BE(0);
            if (data[0] === 0x01) this.card.increment(p2, value);
            else this.card.decrement(p2, value);
            this.card.transfer(p2);
            return sw(0x9000);
          }
          if (lc === 2 && data[0] === 0x03) {
            this.card.restore(p2);
            this.card.transfer(data[1]!);
            return sw(0x9000);
          }
          return sw(0x6a86);
        default:
          return sw(0x6d00);
      }
    } catch (err) {
      if (err instanceof M1CardError) return sw(M1_STATUS[err.code]);
      throw err;
    }
  }

  /** The field is off (card taken out, reader reset): the card forgets its authentication. */
  powerCycle(): void {
    this.card.halt();
  }
}
