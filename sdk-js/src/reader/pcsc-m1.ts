/**
 * An M1 (MIFARE Classic) card on a contactless PC/SC reader, driven by the reader's pseudo-APDUs
 * (PC/SC Part 3 §3.2.2): the UID by GET DATA `FF CA`, the sector key loaded into the reader's
 * volatile slot by LOAD KEYS `FF 82` and used by GENERAL AUTHENTICATE `FF 86`, blocks by READ
 * BINARY `FF B0` and UPDATE BINARY `FF D6`. Part 3 has no value operations: INCREMENT/DECREMENT
 * then TRANSFER to the same block go as the ACS readers' `FF D7` (one command does both), RESTORE
 * then TRANSFER as `FF D7 … 03 <target>`. It is what the reader agent runs an M1 script on.
 */
import { splitResponse, type CardTransport } from '../cards/card-transport.js';
import type { M1Card } from './reader-agent.js';

/** The reader's key slot this driver loads sector keys into (volatile: gone when the reader is unplugged). */
const KEY_SLOT = 0x00;

/** Why the reader refused, by its status word (ACS readers' words where Part 3 is silent). */
const REFUSALS: Record<number, string> = {
  0x6300: 'AUTH_FAILED',
  0x6982: 'ACCESS_DENIED',
  0x6981: 'NOT_A_VALUE_BLOCK',
  0x6985: 'NO_TRANSFER_VALUE',
  0x6a82: 'INVALID_BLOCK',
  0x6a80: 'VALUE_OUT_OF_RANGE',
  0x6700: 'INVALID_DATA',
};

/** The reader refused a pseudo-APDU; `code` as the virtual card names it (AUTH_FAILED, ACCESS_DENIED, …) or READER_<SW>. */
export class PcscM1Error extends Error {
  override readonly name = 'PcscM1Error';
  constructor(
    readonly code: string,
    readonly sw: number,
    message: string,
  ) {
    super(message);
  }
}

const hex4 = (sw: number) => sw.toString(16).toUpperCase().padStart(4, '0');

export class PcscM1Card implements M1Card {
  /** An INCREMENT/DECREMENT/RESTORE waiting for its TRANSFER (the reader does both in one command). */
  private pending: { op: 'increment' | 'decrement' | 'restore'; block: number; value: number } | undefined;

  private constructor(
    private readonly transport: CardTransport & { reset?: () => Promise<void> },
    readonly uid: string,
  ) {}

  /** Reads the card's UID (`FF CA 00 00 00`). */
  static async open(transport: CardTransport & { reset?: () => Promise<void> }): Promise<PcscM1Card> {
    const uid = await PcscM1Card.command(transport, Uint8Array.of(0xff, 0xca, 0x00, 0x00, 0x00), 'GET DATA (UID)');
    return new PcscM1Card(transport, Buffer.from(uid).toString('hex').toUpperCase());
  }

  private static async command(transport: CardTransport, apdu: Uint8Array, what: string): Promise<Uint8Array> {
    const { data, sw } = splitResponse(await transport.transmit(apdu));
    if (sw !== 0x9000) {
      const code = REFUSALS[sw] ?? `READER_${hex4(sw)}`;
      throw new PcscM1Error(code, sw, `${what}: the reader answered ${hex4(sw)} (${code})`);
    }
    return data;
  }

  private run(apdu: Uint8Array, what: string) {
    return PcscM1Card.command(this.transport, apdu, what);
  }

  async authenticate(block: number, keyType: 'A' | 'B', key: Uint8Array): Promise<void> {
    this.pending = undefined;
    if (key.length !== 6) throw new PcscM1Error('INVALID_DATA', 0x6700, 'an M1 key is 6 bytes');
    await this.run(Uint8Array.of(0xff, 0x82, 0x00, KEY_SLOT, 0x06, ...key), 'LOAD KEYS');
    await this.run(Uint8Array.of(0xff, 0x86, 0x00, 0x00, 0x05, 0x01, 0x00, block, keyType === 'A' ? 0x60 : 0x61, KEY_SLOT), `GENERAL AUTHENTICATE block ${block}`);
  }

  async read(block: number): Promise<Uint8Array> {
    this.pending = undefined;
    return this.run(Uint8Array.of(0xff, 0xb0, 0x00, block, 0x10), `READ BINARY block ${block}`);
  }

  async write(block: number, data: Uint8Array): Promise<void> {
    this.pending = undefined;
    if (data.length !== 16) throw new PcscM1Error('INVALID_DATA', 0x6700, 'an M1 block is 16 bytes');
    await this.run(Uint8Array.of(0xff, 0xd6, 0x00, block, 0x10, ...data), `UPDATE BINARY block ${block}`);
  }

  async increment(block: number, value: number): Promise<void> {
    this.pending = { op: 'increment', block, value };
  }

  async decrement(block: number, value: number): Promise<void> {
    this.pending = { op: 'decrement', block, value };
  }

  async restore(block: number): Promise<void> {
    this.pending = { op: 'restore', block, value: 0 };
  }

  /** Sends the value operation waiting for it; its TRANSFER to another block is a RESTORE's only. */
  async transfer(block: number): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) throw new PcscM1Error('NO_TRANSFER_VALUE', 0x6985, 'TRANSFER must follow INCREMENT, DECREMENT or RESTORE');
    if (pending.op === 'restore') {
      await this.run(Uint8Array.of(0xff, 0xd7, 0x00, pending.block, 0x02, 0x03, block), `RESTORE block ${pending.block} to ${block}`);
      return;
    }
    if (pending.block !== block) throw new PcscM1Error('READER_UNSUPPORTED', 0x6a86, 'a PC/SC reader transfers an increment or decrement to its own block only');
    if (!Number.isInteger(pending.value) || pending.value < 0 || pending.value > 0x7fffffff) throw new PcscM1Error('VALUE_OUT_OF_RANGE', 0x6a80, 'an operand is an integer from 0 to 2^31 − 1');
    const operand = Buffer.alloc(4);
    operand.writeUInt32BE(pending.value);
    await this.run(Uint8Array.of(0xff, 0xd7, 0x00, block, 0x05, pending.op === 'increment' ? 0x01 : 0x02, ...operand), `${pending.op.toUpperCase()} block ${block}`);
  }

  /**
   * HALT has no pseudo-APDU: the reader resets the card (field off and on, `SCardReconnect` with
   * SCARD_RESET_CARD), so no sector stays authenticated. A transport without `reset` cannot.
   */
  async halt(): Promise<void> {
    this.pending = undefined;
    await this.transport.reset?.();
  }
}
