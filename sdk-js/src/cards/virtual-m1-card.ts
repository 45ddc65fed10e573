/**
 * A virtual MIFARE Classic 1K (M1) card: 16 sectors × 4 blocks of 16 bytes, a 4-byte UID, a sector
 * trailer per sector (key A || access bits || key B) and value blocks (CARD-PROTOCOL.md §6). It offers
 * the operations a reader drives — AUTH (`60`/`61`), READ `30`, WRITE `A0`, DECREMENT `C0`,
 * INCREMENT `C1`, RESTORE `C2`, TRANSFER `B0` — as methods; refusals throw {@link M1CardError}.
 *
 * Permission model (simple, by key type; the access bits are stored but not interpreted):
 *  - data blocks: key A may read, decrement, restore and transfer (a decrement only takes effect
 *    through a transfer; restore + transfer is how a backup block is copied); key B may do all that
 *    and write and increment. This is the real access condition C1C2C3 = 110 ("value block").
 *  - sector trailer: key B writes it (new keys, access bits); reads show the access bits, the keys
 *    read as zeros (condition 011).
 *  - block 0 (UID, BCC, SAK, ATQA, manufacturer data) is read-only.
 * The default access bytes {@link M1_DEFAULT_ACCESS_BITS} are exactly that model encoded.
 *
 * As on the chip, INCREMENT / DECREMENT / RESTORE put their result in a transfer buffer that only
 * the next operation, a TRANSFER in the same sector, may write to a block; any other operation
 * discards it. A failed authentication drops the authentication.
 */
import { CardStateError, bytesOf, fromHex, toHex } from './card-bytes.js';

export const M1_SECTORS = 16;
export const M1_BLOCKS = 64;
export const M1_BLOCK_SIZE = 16;
/** The transport key of new cards. */
export const M1_DEFAULT_KEY = 'FFFFFFFFFFFF';
/**
 * Trailer bytes 6–9 of new sectors: `08 77 8F` encodes C1C2C3 = 110 for blocks 0–2 and 011 for the
 * trailer (the model above); `69` is the general-purpose byte.
 */
export const M1_DEFAULT_ACCESS_BITS = '08778F69';

export type M1KeyType = 'A' | 'B';

/** Why an M1 operation was refused. */
export type M1ErrorCode =
  /** The key did not authenticate to the sector. */
  | 'AUTH_FAILED'
  /** The block's sector is not the authenticated one (or nothing is authenticated). */
  | 'NOT_AUTHENTICATED'
  /** The authenticated key may not do this to this block. */
  | 'ACCESS_DENIED'
  /** The block does not hold a well-formed value block (§6), e.g. corrupted. */
  | 'NOT_A_VALUE_BLOCK'
  /** No such block, or a block this operation does not apply to. */
  | 'INVALID_BLOCK'
  /** Data of the wrong size, a bad key, inconsistent access bits. */
  | 'INVALID_DATA'
  /** TRANSFER without an INCREMENT / DECREMENT / RESTORE just before it in the same sector. */
  | 'NO_TRANSFER_VALUE'
  /** An operand or a result outside the 32-bit signed value range. */
  | 'VALUE_OUT_OF_RANGE'
  /** A purse helper ({@link ./m1-purse.js}) asked to debit more than the balance. */
  | 'INSUFFICIENT_BALANCE';

export class M1CardError extends Error {
  override readonly name = 'M1CardError';
  constructor(
    readonly code: M1ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A decoded value block. */
export interface M1Value {
  /** Signed 32-bit value. */
  value: number;
  /** The address byte (by convention the block number). */
  address: number;
}

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;

/** Value block bytes: value (int32 LE) || NOT value || value || adr || NOT adr || adr || NOT adr (§6). */
export function encodeValueBlock(value: number, address: number): Uint8Array {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) throw new M1CardError('VALUE_OUT_OF_RANGE', 'a value block holds a signed 32-bit value');
  if (!Number.isInteger(address) || address < 0 || address > 0xff) throw new M1CardError('INVALID_DATA', 'a value block address is one byte');
  const block = Buffer.alloc(M1_BLOCK_SIZE);
  block.writeInt32LE(value, 0);
  block.writeInt32LE(~value, 4);
  block.writeInt32LE(value, 8);
  block.set([address, ~address & 0xff, address, ~address & 0xff], 12);
  return Uint8Array.from(block);
}

/** The value and address of a well-formed value block, or undefined if any redundancy check fails. */
export function decodeValueBlock(block: Uint8Array): M1Value | undefined {
  if (block.length !== M1_BLOCK_SIZE) return undefined;
  const b = Buffer.from(block);
  const value = b.readInt32LE(0);
  const [a0, a1, a2, a3] = [b[12]!, b[13]!, b[14]!, b[15]!];
  const valueOk = b.readInt32LE(4) === ~value && b.readInt32LE(8) === value;
  const addressOk = a0 === a2 && a1 === a3 && a1 === (~a0 & 0xff);
  return valueOk && addressOk ? { value, address: a0 } : undefined;
}

type Operation = 'read' | 'write' | 'increment' | 'decrement' | 'restore' | 'transfer';

/** Which key type may do what, per block kind (the permission model above, as data). */
const PERMISSIONS: Readonly<Record<'manufacturer' | 'data' | 'trailer', Readonly<Record<Operation, readonly M1KeyType[]>>>> = {
  manufacturer: { read: ['A', 'B'], write: [], increment: [], decrement: [], restore: [], transfer: [] },
  data: { read: ['A', 'B'], write: ['B'], increment: ['B'], decrement: ['A', 'B'], restore: ['A', 'B'], transfer: ['A', 'B'] },
  trailer: { read: ['A', 'B'], write: ['B'], increment: [], decrement: [], restore: [], transfer: [] },
};

/** Whether trailer bytes 6–8 hold access bits with their inverted copies consistent. */
function accessBitsConsistent(trailer: Uint8Array): boolean {
  const [b6, b7, b8] = [trailer[6]!, trailer[7]!, trailer[8]!];
  const c1 = b7 >> 4;
  const c2 = b8 & 0x0f;
  const c3 = b8 >> 4;
  return (~b6 & 0x0f) === c1 && ((~b6 >> 4) & 0x0f) === c2 && (~b7 & 0x0f) === c3;
}

function sectorOf(block: number): number {
  return block >> 2;
}

function trailerOf(sector: number): number {
  return sector * 4 + 3;
}

function kindOf(block: number): 'manufacturer' | 'data' | 'trailer' {
  return block === 0 ? 'manufacturer' : block % 4 === 3 ? 'trailer' : 'data';
}

/** The card's persistent state: its 64 blocks, hex (keys included, in the trailers). */
export interface VirtualM1CardState {
  kind: 'onecard.virtual-m1-card';
  version: 1;
  blocks: string[];
}

/** Keys for one sector. */
export interface M1SectorKeys {
  /** 6 bytes, hex or bytes. */
  keyA: string | Uint8Array;
  keyB: string | Uint8Array;
}

export interface CreateM1CardOptions {
  /** 4 bytes hex. */
  uid: string;
  /**
   * Keys of each sector, e.g. derived from the UID by the issuer's scheme (unconfirmed in the
   * reference, §6, so it is the issuer's function). Default: {@link M1_DEFAULT_KEY} for both.
   */
  sectorKeys?: (sector: number, uid: Uint8Array) => M1SectorKeys;
}

function checkedBlockNumber(block: number): number {
  if (!Number.isInteger(block) || block < 0 || block >= M1_BLOCKS) throw new M1CardError('INVALID_BLOCK', `block ${block} is not on a 1K card (0–63)`);
  return block;
}

function m1Bytes(value: string | Uint8Array, what: string, length: number): Buffer {
  try {
    return bytesOf(value, what, length);
  } catch (err) {
    throw new M1CardError('INVALID_DATA', err instanceof Error ? err.message : String(err));
  }
}

/** A MIFARE Classic 1K card. */
export class VirtualM1Card {
  readonly #blocks: Buffer[];
  #auth: { sector: number; keyType: M1KeyType } | undefined;
  #transferBuffer: { sector: number; value: number; address: number } | undefined;

  private constructor(blocks: Buffer[]) {
    this.#blocks = blocks;
  }

  /** A new card: block 0 from the UID, zeroed data blocks, trailers with the sector keys. */
  static create(options: CreateM1CardOptions): VirtualM1Card {
    const uid = fromHex(options.uid, 'uid', 4);
    const bcc = uid.reduce((x, b) => x ^ b, 0);
    const manufacturer = Buffer.concat([uid, Buffer.from([bcc, 0x08, 0x04, 0x00]), Buffer.alloc(8)]);
    const blocks = Array.from({ length: M1_BLOCKS }, () => Buffer.alloc(M1_BLOCK_SIZE));
    blocks[0] = manufacturer;
    for (let sector = 0; sector < M1_SECTORS; sector++) {
      const keys = options.sectorKeys?.(sector, Buffer.from(uid)) ?? { keyA: M1_DEFAULT_KEY, keyB: M1_DEFAULT_KEY };
      blocks[trailerOf(sector)] = Buffer.concat([
        bytesOf(keys.keyA, `sector ${sector} keyA`, 6),
        fromHex(M1_DEFAULT_ACCESS_BITS, 'accessBits'),
        bytesOf(keys.keyB, `sector ${sector} keyB`, 6),
      ]);
    }
    return new VirtualM1Card(blocks);
  }

  /** A card from a saved state ({@link toJSON}); throws CardStateError if it is malformed. */
  static fromJSON(state: VirtualM1CardState): VirtualM1Card {
    if (state?.kind !== 'onecard.virtual-m1-card' || state.version !== 1) throw new CardStateError('not a saved virtual M1 card (kind/version)', 'kind');
    if (!Array.isArray(state.blocks) || state.blocks.length !== M1_BLOCKS) throw new CardStateError(`blocks must be ${M1_BLOCKS} blocks`, 'blocks');
    const blocks = state.blocks.map((b, i) => fromHex(b, `blocks[${i}]`, M1_BLOCK_SIZE));
    const b0 = blocks[0]!;
    if ((b0[0]! ^ b0[1]! ^ b0[2]! ^ b0[3]!) !== b0[4]) throw new CardStateError('block 0 has a wrong BCC for its UID', 'blocks[0]');
    for (let sector = 0; sector < M1_SECTORS; sector++) {
      if (!accessBitsConsistent(blocks[trailerOf(sector)]!)) throw new CardStateError(`sector ${sector} has inconsistent access bits`, `blocks[${trailerOf(sector)}]`);
    }
    return new VirtualM1Card(blocks);
  }

  /** The card's blocks as plain JSON (a copy). */
  toJSON(): VirtualM1CardState {
    return { kind: 'onecard.virtual-m1-card', version: 1, blocks: this.#blocks.map(toHex) };
  }

  /** The 4-byte UID, hex. */
  get uid(): string {
    return toHex(this.#blocks[0]!.subarray(0, 4));
  }

  /** AUTH `60`/`61`: opens the block's sector with key A or B. A wrong key drops any authentication. */
  authenticate(block: number, keyType: M1KeyType, key: string | Uint8Array): void {
    this.#transferBuffer = undefined;
    const sector = sectorOf(checkedBlockNumber(block));
    const candidate = m1Bytes(key, 'key', 6);
    const trailer = this.#blocks[trailerOf(sector)]!;
    const stored = keyType === 'A' ? trailer.subarray(0, 6) : trailer.subarray(10, 16);
    if ((keyType !== 'A' && keyType !== 'B') || !stored.equals(candidate)) {
      this.#auth = undefined;
      throw new M1CardError('AUTH_FAILED', `key ${keyType} does not open sector ${sector}`);
    }
    this.#auth = { sector, keyType };
  }

  /** HALT: ends the authentication. */
  halt(): void {
    this.#auth = undefined;
    this.#transferBuffer = undefined;
  }

  /** READ `30`: 16 bytes; a trailer reads with its keys masked as zeros. */
  read(block: number): Uint8Array {
    this.#transferBuffer = undefined;
    this.#allow(block, 'read');
    const data = Buffer.from(this.#blocks[block]!);
    if (kindOf(block) === 'trailer') {
      data.fill(0, 0, 6);
      data.fill(0, 10, 16);
    }
    return Uint8Array.from(data);
  }

  /** WRITE `A0`: 16 bytes; a trailer write must keep its access bits consistent. */
  write(block: number, data: string | Uint8Array): void {
    this.#transferBuffer = undefined;
    this.#allow(block, 'write');
    const bytes = m1Bytes(data, 'block data', M1_BLOCK_SIZE);
    if (kindOf(block) === 'trailer' && !accessBitsConsistent(bytes)) {
      throw new M1CardError('INVALID_DATA', 'the access bits and their inverted copy disagree (the sector would be locked)');
    }
    this.#blocks[block] = bytes;
  }

  /** INCREMENT `C1`: value + operand into the transfer buffer. */
  increment(block: number, operand: number): void {
    this.#arithmetic(block, 'increment', operand);
  }

  /** DECREMENT `C0`: value − operand into the transfer buffer. */
  decrement(block: number, operand: number): void {
    this.#arithmetic(block, 'decrement', operand);
  }

  /** RESTORE `C2`: the block's value into the transfer buffer (to TRANSFER it elsewhere). */
  restore(block: number): void {
    this.#arithmetic(block, 'restore', 0);
  }

  /** TRANSFER `B0`: writes the transfer buffer to a block of the same sector as a value block. */
  transfer(block: number): void {
    const buffered = this.#transferBuffer;
    this.#transferBuffer = undefined;
    this.#allow(block, 'transfer');
    if (!buffered || buffered.sector !== sectorOf(block)) {
      throw new M1CardError('NO_TRANSFER_VALUE', 'TRANSFER must follow INCREMENT, DECREMENT or RESTORE in the same sector');
    }
    this.#blocks[block] = Buffer.from(encodeValueBlock(buffered.value, buffered.address));
  }

  #arithmetic(block: number, operation: 'increment' | 'decrement' | 'restore', operand: number): void {
    this.#transferBuffer = undefined;
    this.#allow(block, operation);
    if (!Number.isInteger(operand) || operand < 0 || operand > INT32_MAX) {
      throw new M1CardError('VALUE_OUT_OF_RANGE', 'an operand is an integer from 0 to 2^31 − 1');
    }
    const current = decodeValueBlock(this.#blocks[block]!);
    if (!current) throw new M1CardError('NOT_A_VALUE_BLOCK', `block ${block} is not a valid value block`);
    const value = operation === 'increment' ? current.value + operand : operation === 'decrement' ? current.value - operand : current.value;
    if (value < INT32_MIN || value > INT32_MAX) throw new M1CardError('VALUE_OUT_OF_RANGE', `the result ${value} does not fit a value block`);
    this.#transferBuffer = { sector: sectorOf(block), value, address: current.address };
  }

  /** Refuses unless the block's sector is authenticated with a key allowed this operation. */
  #allow(block: number, operation: Operation): void {
    checkedBlockNumber(block);
    const sector = sectorOf(block);
    if (!this.#auth || this.#auth.sector !== sector) throw new M1CardError('NOT_AUTHENTICATED', `sector ${sector} is not authenticated`);
    if (!PERMISSIONS[kindOf(block)][operation].includes(this.#auth.keyType)) {
      throw new M1CardError('ACCESS_DENIED', `key ${this.#auth.keyType} may not ${operation} block ${block}`);
    }
  }
}
