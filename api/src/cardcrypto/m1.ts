/**
 * MIFARE Classic (M1) value blocks (CARD-PROTOCOL.md §6): a signed 32-bit value stored three
 * times (value, NOT value, value; little-endian) and a one-byte address stored four times
 * (adr, NOT adr, adr, NOT adr). INCREMENT / DECREMENT / RESTORE only work on blocks in this form.
 */
import { requireLength } from './bytes.js';
import { ValueBlockError } from './cardcrypto.errors.js';

export const M1_BLOCK_SIZE = 16;

export interface ValueBlock {
  /** Signed 32-bit value (fen on a city card purse). */
  value: number;
  /** The address byte (by convention the block number, used by backup schemes). */
  address: number;
}

/** value (int32 LE) || NOT value || value || adr || NOT adr || adr || NOT adr. */
export function encodeValueBlock(value: number, address: number): Buffer {
  if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0x7fff_ffff) {
    throw new RangeError(`value must be a 32-bit signed integer, got ${String(value)}`);
  }
  if (!Number.isInteger(address) || address < 0 || address > 0xff) {
    throw new RangeError(`address must be an integer 0..255, got ${String(address)}`);
  }
  const block = Buffer.alloc(M1_BLOCK_SIZE);
  block.writeInt32LE(value, 0);
  block.writeInt32LE(~value, 4);
  block.writeInt32LE(value, 8);
  block[12] = address;
  block[13] = ~address & 0xff;
  block[14] = address;
  block[15] = ~address & 0xff;
  return block;
}

/** Which integrity rule a block breaks, or undefined if it is a well-formed value block. */
function integrityFailure(b: Uint8Array): ValueBlockError | undefined {
  for (let i = 0; i < 4; i++) {
    if (b[i] !== b[i + 8] || b[i] !== (~b[i + 4]! & 0xff)) {
      return new ValueBlockError('value', 'value block integrity check failed: value, NOT value, value disagree');
    }
  }
  if (b[12] !== b[14] || b[13] !== b[15] || b[12] !== (~b[13]! & 0xff)) {
    return new ValueBlockError('address', 'value block integrity check failed: adr, NOT adr, adr, NOT adr disagree');
  }
  return undefined;
}

/** The value and address of a 16-byte value block; a ValueBlockError if a copy disagrees. */
export function decodeValueBlock(block: Uint8Array): ValueBlock {
  requireLength('value block', block, M1_BLOCK_SIZE);
  const failure = integrityFailure(block);
  if (failure) throw failure;
  const value = new DataView(block.buffer, block.byteOffset, M1_BLOCK_SIZE).getInt32(0, true);
  return { value, address: block[12]! };
}

/** Whether a 16-byte block passes the value-block integrity check (a RangeError for other lengths). */
export function isValueBlock(block: Uint8Array): boolean {
  requireLength('value block', block, M1_BLOCK_SIZE);
  return integrityFailure(block) === undefined;
}
