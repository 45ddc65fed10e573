import { tdesEcbEncrypt } from '../../cardcrypto/des.js';
import { decodeValueBlock, encodeValueBlock } from '../../cardcrypto/m1.js';

/**
 * MIFARE Classic (M1) cards through encrypted scripts (DESIGN.md §6): an M1 card has no
 * cryptogram of its own, so the host keeps its sector keys and sends the reader a short script
 * (authenticate, read, increment/decrement, transfer, write backup), sealed to the reader's device
 * key; the reader returns each step's result. The purse is a value block with a backup block
 * (CARD-PROTOCOL.md §6).
 */

/** Where the purse lives: the default; each card company's card profile says its own (docs/cards.md). */
export const M1_PURSE = { sector: 1, valueBlock: 4, backupBlock: 5 } as const;
export interface M1PurseLayout {
  sector: number;
  valueBlock: number;
  backupBlock: number;
}

export type M1Op =
  | { op: 'auth'; block: number; keyType: 'A' | 'B'; key: string }
  | { op: 'read'; block: number }
  | { op: 'write'; block: number; data: string }
  | { op: 'increment' | 'decrement'; block: number; value: number }
  | { op: 'transfer'; block: number }
  /** The reader runs the script on this card only (any other UID ends it before anything is written). */
  | { op: 'uid'; uid: string }
  /** The block must hold this value now, or the script ends before anything is written. */
  | { op: 'compare'; block: number; value: number };

export interface M1Result {
  ok: boolean;
  /** For a read: the 16 block bytes, hex. */
  data?: string;
  error?: string;
}

/**
 * Sector key B for a card: the left 6 bytes of 3DES-ECB(M1 master key, UID || sector || 0B || 0000).
 * The reference leaves the UID-based scheme to each card company (**unconfirmed**); this is ours.
 */
export function m1SectorKeyB(masterKey: Buffer, uid: Buffer, sector: number): Buffer {
  if (uid.length !== 4) throw new RangeError('an M1 UID is 4 bytes');
  return tdesEcbEncrypt(masterKey, Buffer.concat([uid, Buffer.from([sector, 0x0b, 0x00, 0x00])])).subarray(0, 6);
}

const hexKey = (key: Buffer) => key.toString('hex').toUpperCase();

/** Reads the purse value block and its backup. */
export function readPurseScript(keyB: Buffer, purse: M1PurseLayout = M1_PURSE): M1Op[] {
  return [
    { op: 'auth', block: purse.valueBlock, keyType: 'B', key: hexKey(keyB) },
    { op: 'read', block: purse.valueBlock },
    { op: 'read', block: purse.backupBlock },
  ];
}

/**
 * The write (issue 21): bound to the card's UID and to the value the host read, then the change,
 * the backup, and both read back. Replayed onto another card, or onto this card once its value has
 * moved, it ends at `uid` or `compare`, before anything is written; the reader signs the results.
 */
export function writePurseScript(write: { uid: string; keyB: Buffer; operation: 'increment' | 'decrement'; amount: number; oldValue: number; newValue: number; purse?: M1PurseLayout }): M1Op[] {
  const purse = write.purse ?? M1_PURSE;
  return [
    { op: 'uid', uid: write.uid },
    { op: 'auth', block: purse.valueBlock, keyType: 'B', key: hexKey(write.keyB) },
    { op: 'compare', block: purse.valueBlock, value: write.oldValue },
    { op: write.operation, block: purse.valueBlock, value: write.amount },
    { op: 'transfer', block: purse.valueBlock },
    { op: 'write', block: purse.backupBlock, data: encodeValueBlock(write.newValue, purse.valueBlock).toString('hex').toUpperCase() },
    { op: 'read', block: purse.valueBlock },
    { op: 'read', block: purse.backupBlock },
  ];
}

/** The write script's results: how many, and the last step that runs before the card is changed. */
export const WRITE_SCRIPT_STEPS = 8;
export const WRITE_SCRIPT_LAST_CHECK = 2;

export class M1AnswerError extends Error {}

/** The purse value from a read result; a broken value block, or a backup that disagrees, is refused. */
export function purseValue(value: M1Result | undefined, backup?: M1Result): number {
  if (!value?.ok || !value.data) throw new M1AnswerError(`the card refused: ${value?.error ?? 'no answer'}`);
  let decoded: { value: number };
  try {
    decoded = decodeValueBlock(Buffer.from(value.data, 'hex'));
  } catch {
    throw new M1AnswerError('the purse block fails its integrity check');
  }
  if (backup) {
    if (!backup.ok || !backup.data) throw new M1AnswerError(`the card refused: ${backup.error ?? 'no answer'}`);
    let copy: number;
    try {
      copy = decodeValueBlock(Buffer.from(backup.data, 'hex')).value;
    } catch {
      throw new M1AnswerError('the backup block fails its integrity check: an interrupted write');
    }
    if (copy !== decoded.value) throw new M1AnswerError(`the purse (${decoded.value}) and its backup (${copy}) disagree: an interrupted write`);
  }
  return decoded.value;
}

/** Every step of a script succeeded (a refused step leaves the card as the transfer left it). */
export function allOk(results: M1Result[], expected: number): void {
  if (results.length !== expected) throw new M1AnswerError(`expected ${expected} script results, got ${results.length}`);
  const failed = results.findIndex((r) => !r.ok);
  if (failed >= 0) throw new M1AnswerError(`script step ${failed} failed: ${results[failed]!.error ?? 'refused'}`);
}
