import { describe, expect, it } from 'vitest';
import { DEFAULT_M1_PURSE_LAYOUT, creditM1Purse, debitM1Purse, formatM1Purse, m1PurseBlocks, readM1Purse, recoverM1Purse } from './m1-purse.js';
import { M1CardError, VirtualM1Card, decodeValueBlock, encodeValueBlock } from './virtual-m1-card.js';

const KEY_A = 'A0A1A2A3A4A5';
const KEY_B = 'B0B1B2B3B4B5';
const layout = DEFAULT_M1_PURSE_LAYOUT; // sector 1: block 4 the purse, block 5 its backup

function purseCard(balance: number): VirtualM1Card {
  const card = VirtualM1Card.create({ uid: 'DEADBEEF', sectorKeys: () => ({ keyA: KEY_A, keyB: KEY_B }) });
  card.authenticate(4, 'B', KEY_B);
  formatM1Purse(card, layout, balance);
  return card;
}

describe('an M1 purse: a value block and its backup in one sector', () => {
  it('the default layout puts the purse in block 4 and the backup in block 5', () => {
    expect(m1PurseBlocks(layout)).toEqual({ value: 4, backup: 5 });
  });

  it('formatting writes the balance to both blocks, addressed to the purse block', () => {
    const card = purseCard(2000);
    expect(decodeValueBlock(card.read(4))).toEqual({ value: 2000, address: 4 });
    expect(decodeValueBlock(card.read(5))).toEqual({ value: 2000, address: 4 });
  });

  it('a debit with key A lowers the purse and its backup', () => {
    const card = purseCard(2000);
    card.authenticate(4, 'A', KEY_A);
    expect(debitM1Purse(card, layout, 350)).toBe(1650);
    expect(readM1Purse(card, layout)).toEqual({ balance: 1650, source: 'value' });
    expect(decodeValueBlock(card.read(5))?.value).toBe(1650);
  });

  it('a credit needs key B', () => {
    const card = purseCard(100);
    card.authenticate(4, 'A', KEY_A);
    expect(() => creditM1Purse(card, layout, 50)).toThrow(expect.objectContaining({ code: 'ACCESS_DENIED' }));
    card.authenticate(4, 'B', KEY_B);
    expect(creditM1Purse(card, layout, 50)).toBe(150);
    expect(decodeValueBlock(card.read(5))?.value).toBe(150);
  });

  it('a debit above the balance is refused and changes nothing', () => {
    const card = purseCard(100);
    card.authenticate(4, 'A', KEY_A);
    expect(() => debitM1Purse(card, layout, 101)).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_BALANCE' }));
    expect(readM1Purse(card, layout)).toEqual({ balance: 100, source: 'value' });
  });

  it('a torn purse block is read from the backup and recovered from it', () => {
    const card = purseCard(900);
    const torn = Buffer.from(encodeValueBlock(900, 4));
    torn[8] = 0x55; // the write stopped half-way
    card.write(4, torn);
    expect(() => debitM1Purse(card, layout, 1)).toThrow(expect.objectContaining({ code: 'NOT_A_VALUE_BLOCK' }));
    expect(readM1Purse(card, layout)).toEqual({ balance: 900, source: 'backup' });
    card.authenticate(4, 'A', KEY_A);
    expect(recoverM1Purse(card, layout)).toBe(900);
    expect(decodeValueBlock(card.read(4))).toEqual({ value: 900, address: 4 });
  });

  it('a stale backup (torn after the purse was written) is brought up to the purse', () => {
    const card = purseCard(900);
    card.write(5, encodeValueBlock(1200, 4));
    expect(recoverM1Purse(card, layout)).toBe(900);
    expect(decodeValueBlock(card.read(5))?.value).toBe(900);
  });

  it('a purse with both blocks corrupt cannot be read', () => {
    const card = purseCard(900);
    card.write(4, '00'.repeat(16));
    card.write(5, '00'.repeat(16));
    expect(() => readM1Purse(card, layout)).toThrow(M1CardError);
  });

  it.each([
    [{ sector: 16, valueBlock: 0, backupBlock: 1 }],
    [{ sector: 1, valueBlock: 0, backupBlock: 0 }],
    [{ sector: 1, valueBlock: 3, backupBlock: 1 }],
    [{ sector: 0, valueBlock: 0, backupBlock: 1 }],
  ])('layout %o is refused', (bad) => {
    expect(() => m1PurseBlocks(bad)).toThrow(expect.objectContaining({ code: 'INVALID_BLOCK' }));
  });
});
