import { describe, expect, it } from 'vitest';
import { CardStateError } from './card-bytes.js';
import { hex } from './cards.test-support.js';
import { M1CardError, M1_DEFAULT_KEY, VirtualM1Card, decodeValueBlock, encodeValueBlock, type M1ErrorCode } from './virtual-m1-card.js';

const KEY_A = 'A0A1A2A3A4A5';
const KEY_B = 'B0B1B2B3B4B5';

/** A card whose sectors all have key A {@link KEY_A} and key B {@link KEY_B}. */
function card(): VirtualM1Card {
  return VirtualM1Card.create({ uid: '1A2B3C4D', sectorKeys: () => ({ keyA: KEY_A, keyB: KEY_B }) });
}

function codeOf(action: () => unknown): M1ErrorCode | undefined {
  try {
    action();
  } catch (err) {
    if (err instanceof M1CardError) return err.code;
    throw err;
  }
  return undefined;
}

describe('M1 value blocks (CARD-PROTOCOL.md §6)', () => {
  it('value 1 at address 1 is 01000000 FEFFFFFF 01000000 01 FE 01 FE', () => {
    expect(Buffer.from(encodeValueBlock(1, 1)).toString('hex').toUpperCase()).toBe('01000000FEFFFFFF0100000001FE01FE');
    expect(decodeValueBlock(hex('01000000FEFFFFFF0100000001FE01FE'))).toEqual({ value: 1, address: 1 });
  });

  it('negative values round-trip (int32 little-endian)', () => {
    expect(decodeValueBlock(encodeValueBlock(-5, 9))).toEqual({ value: -5, address: 9 });
  });

  it.each([
    ['a flipped bit in the inverted value', '01000000FEFFFFFE0100000001FE01FE'],
    ['a second value copy that differs', '01000000FEFFFFFF0200000001FE01FE'],
    ['an address whose inverse is wrong', '01000000FEFFFFFF0100000001FF01FE'],
    ['zeros', '00000000000000000000000000000000'],
  ])('%s is not a value block', (_, block) => {
    expect(decodeValueBlock(hex(block))).toBeUndefined();
  });
});

describe('M1 card: authentication and permissions', () => {
  it('the UID is in block 0 with its BCC, and block 0 reads after authentication', () => {
    const c = card();
    expect(c.uid).toBe('1A2B3C4D');
    c.authenticate(0, 'A', KEY_A);
    const b0 = Buffer.from(c.read(0));
    expect(b0.subarray(0, 5).toString('hex').toUpperCase()).toBe(`1A2B3C4D${(0x1a ^ 0x2b ^ 0x3c ^ 0x4d).toString(16).toUpperCase()}`);
  });

  it('key B writes and reads a data block', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(5, '00112233445566778899AABBCCDDEEFF');
    expect(Buffer.from(c.read(5)).toString('hex').toUpperCase()).toBe('00112233445566778899AABBCCDDEEFF');
  });

  it('a sector trailer reads with both keys masked as zeros and its access bits visible', () => {
    const c = card();
    c.authenticate(7, 'B', KEY_B);
    expect(Buffer.from(c.read(7)).toString('hex').toUpperCase()).toBe('00000000000008778F69000000000000');
  });

  it('key B can change the sector keys by writing the trailer; the old key then fails', () => {
    const c = card();
    c.authenticate(8, 'B', KEY_B);
    c.write(11, `${'C0C1C2C3C4C5'}08778F69${'D0D1D2D3D4D5'}`);
    expect(codeOf(() => c.authenticate(8, 'A', KEY_A))).toBe('AUTH_FAILED');
    c.authenticate(8, 'A', 'C0C1C2C3C4C5');
    expect(codeOf(() => c.read(8))).toBeUndefined();
  });

  it('new cards use the transport key FFFFFFFFFFFF when no sector keys are given', () => {
    const c = VirtualM1Card.create({ uid: '01020304' });
    c.authenticate(63, 'A', M1_DEFAULT_KEY);
    expect(c.read(62)).toEqual(new Uint8Array(16));
  });

  interface Refusal {
    rule: string;
    act: (c: VirtualM1Card) => void;
    code: M1ErrorCode;
  }
  const refusals: Refusal[] = [
    { rule: 'a wrong key A fails authentication', act: (c) => c.authenticate(4, 'A', 'FFFFFFFFFFFF'), code: 'AUTH_FAILED' },
    { rule: 'key B given as key A fails authentication', act: (c) => c.authenticate(4, 'A', KEY_B), code: 'AUTH_FAILED' },
    { rule: 'a failed authentication drops the previous one', act: (c) => (c.authenticate(4, 'B', KEY_B), codeOf(() => c.authenticate(4, 'A', '000000000000')), c.read(4)), code: 'NOT_AUTHENTICATED' },
    { rule: 'reading without authentication is refused', act: (c) => c.read(4), code: 'NOT_AUTHENTICATED' },
    { rule: 'reading another sector than the authenticated one is refused', act: (c) => (c.authenticate(4, 'A', KEY_A), c.read(8)), code: 'NOT_AUTHENTICATED' },
    { rule: 'key A may not write a data block', act: (c) => (c.authenticate(4, 'A', KEY_A), c.write(4, '00'.repeat(16))), code: 'ACCESS_DENIED' },
    { rule: 'key A may not increment', act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(4, encodeValueBlock(10, 4)), c.authenticate(4, 'A', KEY_A), c.increment(4, 1)), code: 'ACCESS_DENIED' },
    { rule: 'key A may not write the sector trailer', act: (c) => (c.authenticate(4, 'A', KEY_A), c.write(7, `${KEY_A}08778F69${KEY_B}`)), code: 'ACCESS_DENIED' },
    { rule: 'block 0 (manufacturer block) is read-only even for key B', act: (c) => (c.authenticate(0, 'B', KEY_B), c.write(0, '00'.repeat(16))), code: 'ACCESS_DENIED' },
    { rule: 'a trailer with inconsistent access bits is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(7, `${KEY_A}FF0781${'00'}${KEY_B}`)), code: 'INVALID_DATA' },
    { rule: 'a write of 15 bytes is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(4, '00'.repeat(15))), code: 'INVALID_DATA' },
    { rule: 'block 64 does not exist on a 1K card', act: (c) => c.authenticate(64, 'A', KEY_A), code: 'INVALID_BLOCK' },
    { rule: 'decrementing a block that is not a value block is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.decrement(4, 1)), code: 'NOT_A_VALUE_BLOCK' },
    {
      rule: 'decrementing a corrupted value block is refused',
      act: (c) => {
        c.authenticate(4, 'B', KEY_B);
        const corrupted = Buffer.from(encodeValueBlock(1000, 4));
        corrupted[4]! ^= 0x01; // one bit of the inverted copy
        c.write(4, corrupted);
        c.decrement(4, 1);
      },
      code: 'NOT_A_VALUE_BLOCK',
    },
    { rule: 'TRANSFER without a value operation before it is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.transfer(5)), code: 'NO_TRANSFER_VALUE' },
    {
      rule: 'any other operation between DECREMENT and TRANSFER discards the transfer buffer',
      act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(4, encodeValueBlock(10, 4)), c.decrement(4, 1), c.read(5), c.transfer(4)),
      code: 'NO_TRANSFER_VALUE',
    },
    { rule: 'a decrement below the 32-bit range is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(4, encodeValueBlock(-0x7fffffff, 4)), c.decrement(4, 2)), code: 'VALUE_OUT_OF_RANGE' },
    { rule: 'a negative operand is refused', act: (c) => (c.authenticate(4, 'B', KEY_B), c.write(4, encodeValueBlock(10, 4)), c.increment(4, -1)), code: 'VALUE_OUT_OF_RANGE' },
  ];

  it.each(refusals)('$rule', ({ act, code }) => {
    expect(codeOf(() => act(card()))).toBe(code);
  });
});

describe('M1 card: value operations through the transfer buffer', () => {
  it('DECREMENT changes nothing until TRANSFER writes it back', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(4, encodeValueBlock(1000, 4));
    c.decrement(4, 300);
    expect(decodeValueBlock(c.read(4))).toEqual({ value: 1000, address: 4 });
    c.decrement(4, 300);
    c.transfer(4);
    expect(decodeValueBlock(c.read(4))).toEqual({ value: 700, address: 4 });
  });

  it('key A may decrement and transfer (a debit), key B may increment (a credit)', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(4, encodeValueBlock(1000, 4));
    c.increment(4, 50);
    c.transfer(4);
    c.authenticate(4, 'A', KEY_A);
    c.decrement(4, 1050);
    c.transfer(4);
    expect(decodeValueBlock(c.read(4))).toEqual({ value: 0, address: 4 });
  });

  it('RESTORE then TRANSFER copies a value block (with its address) to another block of the sector', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(4, encodeValueBlock(777, 4));
    c.restore(4);
    c.transfer(6);
    expect(decodeValueBlock(c.read(6))).toEqual({ value: 777, address: 4 });
  });

  it('TRANSFER to another sector than the value operation is refused', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(4, encodeValueBlock(777, 4));
    c.restore(4);
    expect(codeOf(() => c.transfer(8))).toBe('NOT_AUTHENTICATED');
  });
});

describe('M1 card state', () => {
  it('serialise → JSON text → deserialise keeps blocks and keys, but not the authentication', () => {
    const c = card();
    c.authenticate(4, 'B', KEY_B);
    c.write(4, encodeValueBlock(4321, 4));
    const again = VirtualM1Card.fromJSON(JSON.parse(JSON.stringify(c)));
    expect(again.uid).toBe('1A2B3C4D');
    expect(codeOf(() => again.read(4))).toBe('NOT_AUTHENTICATED');
    again.authenticate(4, 'A', KEY_A);
    again.decrement(4, 21);
    again.transfer(4);
    expect(decodeValueBlock(again.read(4))).toEqual({ value: 4300, address: 4 });
  });

  it.each<[string, (blocks: string[]) => void]>([
    ['63 blocks', (b) => void b.pop()],
    ['a block of 15 bytes', (b) => void (b[5] = '00'.repeat(15))],
    ['a wrong BCC in block 0', (b) => void (b[0] = `1A2B3C4D00${b[0]!.slice(10)}`)],
    ['inconsistent access bits in a trailer', (b) => void (b[7] = `${KEY_A}FF078100${KEY_B}`)],
  ])('a saved state with %s is refused', (_, edit) => {
    const state = card().toJSON();
    edit(state.blocks);
    expect(() => VirtualM1Card.fromJSON(state)).toThrow(CardStateError);
  });
});
