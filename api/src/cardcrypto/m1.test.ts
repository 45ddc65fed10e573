import { describe, expect, it } from 'vitest';
import { CardCryptoErrorCode, ValueBlockError } from './cardcrypto.errors.js';
import { decodeValueBlock, encodeValueBlock, isValueBlock } from './m1.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

describe('M1 value blocks: value || NOT value || value || adr || NOT adr || adr || NOT adr', () => {
  it('value 1 at address 1 is 01000000 FEFFFFFF 01000000 01 FE 01 FE (CARD-PROTOCOL.md §6)', () => {
    expect(HEX(encodeValueBlock(1, 1))).toBe('01000000FEFFFFFF0100000001FE01FE');
    expect(decodeValueBlock(hex('01000000FEFFFFFF0100000001FE01FE'))).toEqual({ value: 1, address: 1 });
    expect(isValueBlock(hex('01000000FEFFFFFF0100000001FE01FE'))).toBe(true);
  });

  it.each([
    { value: 0, address: 0, block: '00000000FFFFFFFF0000000000FF00FF' },
    { value: -1, address: 255, block: 'FFFFFFFF00000000FFFFFFFFFF00FF00' },
    { value: 0x7fffffff, address: 4, block: 'FFFFFF7F00000080FFFFFF7F04FB04FB' },
    { value: -0x80000000, address: 8, block: '00000080FFFFFF7F0000008008F708F7' },
    { value: 12345, address: 0x1d, block: '39300000C6CFFFFF393000001DE21DE2' },
  ])('value $value at address $address is stored little-endian, three times, and decodes back', ({ value, address, block }) => {
    expect(HEX(encodeValueBlock(value, address))).toBe(block);
    expect(decodeValueBlock(hex(block))).toEqual({ value, address });
  });

  const good = '01000000FEFFFFFF0100000001FE01FE';
  const corrupt = (index: number) => {
    const b = hex(good);
    b[index]! ^= 0x01;
    return b;
  };

  it.each([
    ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((index) => ({ index, check: 'value' })),
    ...[12, 13, 14, 15].map((index) => ({ index, check: 'address' })),
  ])('a flipped bit in byte $index fails the $check integrity check', ({ index, check }) => {
    const block = corrupt(index);
    expect(isValueBlock(block)).toBe(false);
    let error: unknown;
    try {
      decodeValueBlock(block);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValueBlockError);
    expect(error).toMatchObject({ code: CardCryptoErrorCode.INVALID_VALUE_BLOCK, check });
  });

  it.each([
    { rule: 'three equal value copies are not enough without NOT value', block: '01000000010000000100000001FE01FE' },
    { rule: 'address copies in the wrong order (adr, adr, NOT adr, NOT adr) are refused', block: '01000000FEFFFFFF010000000101FEFE' },
    { rule: 'an all-zero (blank) block is not a value block', block: '00000000000000000000000000000000' },
  ])('$rule', ({ block }) => {
    expect(isValueBlock(hex(block))).toBe(false);
    expect(() => decodeValueBlock(hex(block))).toThrow(ValueBlockError);
  });

  it('decodes a block that sits inside a larger buffer (a 16-byte view at an offset)', () => {
    const sector = Buffer.concat([Buffer.alloc(16, 0xaa), encodeValueBlock(-500, 9), Buffer.alloc(16)]);
    expect(decodeValueBlock(sector.subarray(16, 32))).toEqual({ value: -500, address: 9 });
  });

  it.each([
    { rule: 'a value is an int32 (too large)', call: () => encodeValueBlock(0x80000000, 1) },
    { rule: 'a value is an int32 (too small)', call: () => encodeValueBlock(-0x80000001, 1) },
    { rule: 'a value is an integer', call: () => encodeValueBlock(1.5, 1) },
    { rule: 'an address is 0..255', call: () => encodeValueBlock(1, 256) },
    { rule: 'an address is not negative', call: () => encodeValueBlock(1, -1) },
    { rule: 'a block to decode is 16 bytes', call: () => decodeValueBlock(Buffer.alloc(15)) },
    { rule: 'a block to test is 16 bytes', call: () => isValueBlock(Buffer.alloc(17)) },
  ])('bad inputs throw a RangeError: $rule', ({ call }) => {
    expect(call).toThrow(RangeError);
  });
});
