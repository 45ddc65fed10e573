/**
 * An M1 purse as city cards lay it out (CARD-PROTOCOL.md §6): a value block with the balance in fen
 * and a backup block in the same sector with a copy. A change updates the value block first, then
 * copies it to the backup (RESTORE value → TRANSFER backup), so a write torn by the card leaving the
 * field leaves one well-formed block: {@link recoverM1Purse} repairs the other from it.
 *
 * These helpers are the reader's side: they drive a {@link VirtualM1Card} (or anything with its
 * methods) whose purse sector the caller has authenticated — key A suffices to read and debit;
 * formatting and crediting need key B.
 */
import { M1CardError, decodeValueBlock, encodeValueBlock, type VirtualM1Card } from './virtual-m1-card.js';

/** Where a purse lives: a sector and two of its data blocks (0–2, relative to the sector). */
export interface M1PurseLayout {
  sector: number;
  valueBlock: number;
  backupBlock: number;
}

/** Sector 1, block 0 the purse, block 1 its backup (a per-issuer setting; sector keys vary too). */
export const DEFAULT_M1_PURSE_LAYOUT: Readonly<M1PurseLayout> = { sector: 1, valueBlock: 0, backupBlock: 1 };

/** The operations the helpers use; a VirtualM1Card has them, so would a reader driving a real card. */
export type M1PurseCard = Pick<VirtualM1Card, 'read' | 'write' | 'increment' | 'decrement' | 'restore' | 'transfer'>;

/** The absolute block numbers of a layout's value and backup blocks. */
export function m1PurseBlocks(layout: M1PurseLayout): { value: number; backup: number } {
  const { sector, valueBlock, backupBlock } = layout;
  const relative = (n: number) => Number.isInteger(n) && n >= 0 && n <= 2;
  if (!Number.isInteger(sector) || sector < 0 || sector > 15 || !relative(valueBlock) || !relative(backupBlock) || valueBlock === backupBlock) {
    throw new M1CardError('INVALID_BLOCK', 'a purse layout names a sector 0–15 and two different data blocks 0–2');
  }
  if (sector === 0 && (valueBlock === 0 || backupBlock === 0)) throw new M1CardError('INVALID_BLOCK', 'block 0 holds the UID, not a purse');
  return { value: sector * 4 + valueBlock, backup: sector * 4 + backupBlock };
}

/** Writes a new purse: both blocks hold `balance`, addressed to the value block (key B). */
export function formatM1Purse(card: M1PurseCard, layout: M1PurseLayout, balance: number): void {
  const blocks = m1PurseBlocks(layout);
  const block = encodeValueBlock(balance, blocks.value);
  card.write(blocks.value, block);
  card.write(blocks.backup, block);
}

/** A purse balance and the block it was read from. */
export interface M1PurseReading {
  balance: number;
  /** `backup` when the value block is not well-formed (a torn write): call {@link recoverM1Purse}. */
  source: 'value' | 'backup';
}

/** Reads the balance from the value block, or from the backup if the value block is corrupt. */
export function readM1Purse(card: M1PurseCard, layout: M1PurseLayout): M1PurseReading {
  const blocks = m1PurseBlocks(layout);
  const value = decodeValueBlock(card.read(blocks.value));
  if (value) return { balance: value.value, source: 'value' };
  const backup = decodeValueBlock(card.read(blocks.backup));
  if (backup) return { balance: backup.value, source: 'backup' };
  throw new M1CardError('NOT_A_VALUE_BLOCK', `neither block ${blocks.value} nor its backup ${blocks.backup} holds a valid value`);
}

/**
 * Makes both blocks agree again: a corrupt value block is restored from the backup, a corrupt or
 * stale backup from the value block. Returns the balance.
 */
export function recoverM1Purse(card: M1PurseCard, layout: M1PurseLayout): number {
  const blocks = m1PurseBlocks(layout);
  const value = decodeValueBlock(card.read(blocks.value));
  const backup = decodeValueBlock(card.read(blocks.backup));
  if (!value && !backup) throw new M1CardError('NOT_A_VALUE_BLOCK', `neither block ${blocks.value} nor its backup ${blocks.backup} holds a valid value`);
  if (!value) {
    card.restore(blocks.backup);
    card.transfer(blocks.value);
    return backup!.value;
  }
  if (!backup || backup.value !== value.value) copyToBackup(card, blocks);
  return value.value;
}

function copyToBackup(card: M1PurseCard, blocks: { value: number; backup: number }): void {
  card.restore(blocks.value);
  card.transfer(blocks.backup);
}

/** Debits `amount` fen (DECREMENT, TRANSFER, then the backup copy); returns the new balance. */
export function debitM1Purse(card: M1PurseCard, layout: M1PurseLayout, amount: number): number {
  const blocks = m1PurseBlocks(layout);
  const current = decodeValueBlock(card.read(blocks.value));
  if (!current) throw new M1CardError('NOT_A_VALUE_BLOCK', `block ${blocks.value} is corrupt: recover the purse first`);
  if (current.value < amount) throw new M1CardError('INSUFFICIENT_BALANCE', `balance ${current.value} is less than ${amount}`);
  card.decrement(blocks.value, amount);
  card.transfer(blocks.value);
  copyToBackup(card, blocks);
  return current.value - amount;
}

/** Credits `amount` fen (INCREMENT needs key B), then the backup copy; returns the new balance. */
export function creditM1Purse(card: M1PurseCard, layout: M1PurseLayout, amount: number): number {
  const blocks = m1PurseBlocks(layout);
  const current = decodeValueBlock(card.read(blocks.value));
  if (!current) throw new M1CardError('NOT_A_VALUE_BLOCK', `block ${blocks.value} is corrupt: recover the purse first`);
  card.increment(blocks.value, amount);
  card.transfer(blocks.value);
  copyToBackup(card, blocks);
  return current.value + amount;
}
