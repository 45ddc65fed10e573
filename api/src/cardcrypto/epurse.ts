/**
 * PBOC / CJ/T 166 electronic purse cryptography (CARD-PROTOCOL.md §2 load 圈存, §3 purchase 消费):
 * session keys, MAC1, MAC2 and TAC, for 3DES cards and (with our documented choices) SM4 cards.
 *
 * Everything the card and host feed in comes in as an argument: keys, the card's random, counters,
 * the host's date and time. Amounts and balances are fen, 0..2^32-1, written 4-byte big-endian.
 *
 * 3DES (ALG_3DES), as the reference states and vectors L1 / P1 confirm:
 *   SESLK = 3DES-ECB(DLK, random || onlineCounter || 8000)                         8 bytes
 *   SESPK = 3DES-ECB(DPK, random || offlineCounter || terminalSerial[2..4])        8 bytes
 *   MAC   = left 4 bytes of single-DES CBC-MAC(session key), padding method 2, zero IV
 *   TAC   = left 4 bytes of single-DES CBC-MAC(DTK_left XOR DTK_right)
 *
 * SM4 (ALG_SM4) — **unconfirmed**, our choices (docs/cardcrypto.md):
 *   session key = SM4-ECB(DK, the same 8-byte input padded to 16 with method 2)   16 bytes
 *   MAC         = left 4 bytes of SM4 CBC-MAC(session key), padding method 2 to 16, zero IV
 *   TAC         = left 4 bytes of SM4 CBC-MAC(DTK), the whole 16-byte DTK as the key
 */
import { timingSafeEqual } from 'node:crypto';
import { ALG_3DES, ALG_SM4, algorithmId, type AlgorithmId } from './algorithm.js';
import { requireLength, xorBytes } from './bytes.js';
import { tdesEcbEncrypt } from './des.js';
import { desCbcMac, desCbcMacs, mac4, padIso9797M2, sm4CbcMac, sm4CbcMacs } from './mac.js';
import { SM4_BLOCK_SIZE, sm4EcbEncrypt } from './sm4.js';

// ---------------------------------------------------------------------------------------------
// Encoders

function requireUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer 0..${max}, got ${String(value)}`);
  }
}

/** 4-byte big-endian unsigned (amounts, balances, terminal transaction serial). */
export function u32be(value: number): Buffer {
  requireUint('u32 value', value, 0xffff_ffff);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/** 2-byte big-endian unsigned (online and offline counters). */
export function u16be(value: number): Buffer {
  requireUint('u16 value', value, 0xffff);
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

/** Packed BCD: two decimal digits per byte, most significant first ("20111221" → 20 11 12 21). */
export function bcd(digits: string): Buffer {
  if (!/^(\d\d)*$/.test(digits)) {
    throw new RangeError(`BCD needs an even number of decimal digits, got ${JSON.stringify(digits)}`);
  }
  return Buffer.from(digits, 'hex');
}

/** Date `YYYYMMDD` → 4 BCD bytes. Checks the shape and ranges, not the calendar. */
function bcdDate(date: string): Buffer {
  const m = /^(\d{4})(\d\d)(\d\d)$/.exec(date);
  if (!m || +m[2]! < 1 || +m[2]! > 12 || +m[3]! < 1 || +m[3]! > 31) {
    throw new RangeError(`date must be YYYYMMDD, got ${JSON.stringify(date)}`);
  }
  return bcd(date);
}

/** Time `hhmmss` → 3 BCD bytes. */
function bcdTime(time: string): Buffer {
  const m = /^(\d\d)(\d\d)(\d\d)$/.exec(time);
  if (!m || +m[1]! > 23 || +m[2]! > 59 || +m[3]! > 59) {
    throw new RangeError(`time must be hhmmss, got ${JSON.stringify(time)}`);
  }
  return bcd(time);
}

function terminal(terminalId: Uint8Array): Uint8Array {
  requireLength('terminal id', terminalId, 6);
  return terminalId;
}

function transactionTypeByte(type: number): Buffer {
  requireUint('transaction type', type, 0xff);
  return Buffer.of(type);
}

// ---------------------------------------------------------------------------------------------
// Constants

/** Transaction types (CARD-PROTOCOL.md §1); the type byte is part of every MAC and TAC. */
export const TransactionType = {
  EDEPOSIT_LOAD: 0x01,
  EPURSE_LOAD: 0x02,
  UNLOAD: 0x03,
  EDEPOSIT_PURCHASE: 0x05,
  EPURSE_PURCHASE: 0x06,
  COMPOSITE_PURCHASE: 0x09,
} as const;
export type TransactionType = (typeof TransactionType)[keyof typeof TransactionType];

// ---------------------------------------------------------------------------------------------
// The three shapes every formula below reduces to. A key store that keeps card keys in an HSM
// computes the same three there, over the same session inputs and messages (built below).

/** Session key = the card key enciphering the 8-byte session input (`loadSessionInput` / `purchaseSessionInput`). */
export function sessionKeyFrom(algorithm: AlgorithmId, cardKey: Uint8Array, input: Buffer): Buffer {
  requireLength('card key', cardKey, 16);
  switch (algorithmId(algorithm)) {
    case ALG_3DES:
      return tdesEcbEncrypt(cardKey, input);
    case ALG_SM4:
      // Unconfirmed: the 8-byte 3DES input, padded to one SM4 block with method 2.
      return sm4EcbEncrypt(cardKey, padIso9797M2(input, SM4_BLOCK_SIZE));
  }
}

/** MAC1 / MAC2 under a session key over a message (`loadMac1Message`, …): 4 bytes. */
export function sessionMac(algorithm: AlgorithmId, sessionKey: Uint8Array, data: Buffer): Buffer {
  switch (algorithmId(algorithm)) {
    case ALG_3DES:
      requireLength('3DES session key', sessionKey, 8);
      return mac4(desCbcMac(sessionKey, data));
    case ALG_SM4:
      requireLength('SM4 session key', sessionKey, 16);
      return mac4(sm4CbcMac(sessionKey, data));
  }
}

/**
 * The key the TAC is computed with: DTK_left XOR DTK_right (8 bytes, single DES) for 3DES; for SM4
 * (unconfirmed, our choice) the 16-byte DTK itself, since SM4 takes a 16-byte key as it is.
 */
export function tacKey(algorithm: AlgorithmId, dtk: Uint8Array): Buffer {
  requireLength('DTK', dtk, 16);
  switch (algorithmId(algorithm)) {
    case ALG_3DES:
      return xorBytes(dtk.subarray(0, 8), dtk.subarray(8, 16));
    case ALG_SM4:
      return Buffer.from(dtk);
  }
}

/** The TAC under the card's DTK over a message (`loadTacMessage`, `purchaseTacMessage`): 4 bytes. */
export function tacOver(algorithm: AlgorithmId, dtk: Uint8Array, data: Buffer): Buffer {
  const key = tacKey(algorithm, dtk);
  return algorithm === ALG_3DES ? mac4(desCbcMac(key, data)) : mac4(sm4CbcMac(key, data));
}

// ---------------------------------------------------------------------------------------------
// Load (圈存): INITIALIZE FOR LOAD → MAC1; CREDIT FOR LOAD ← MAC2, → TAC

export interface LoadSessionKeyInput {
  algorithm: AlgorithmId;
  /** DLK: the card's load key (diversified by its ASN), 16 bytes. */
  loadKey: Uint8Array;
  /** The card's 4-byte random from INITIALIZE FOR LOAD. */
  random: Uint8Array;
  /** Online transaction counter from INITIALIZE FOR LOAD (before the card increments it). */
  onlineCounter: number;
}

/** SESLK = 3DES-ECB(DLK, random || onlineCounter || 8000). 8 bytes (16 for SM4). */
export function loadSessionKey(input: LoadSessionKeyInput): Buffer {
  return sessionKeyFrom(input.algorithm, input.loadKey, loadSessionInput(input));
}

/** What SESLK enciphers: random || onlineCounter || 8000 (8 bytes). */
export function loadSessionInput(input: Pick<LoadSessionKeyInput, 'random' | 'onlineCounter'>): Buffer {
  requireLength('random', input.random, 4);
  return Buffer.concat([input.random, u16be(input.onlineCounter), Buffer.of(0x80, 0x00)]);
}

export interface LoadMac1Input {
  algorithm: AlgorithmId;
  sessionKey: Uint8Array;
  oldBalance: number;
  amount: number;
  /** Defaults to 02 (e-purse load); 01 for an e-deposit load (INITIALIZE with P2 01). */
  transactionType?: number;
  terminalId: Uint8Array;
}

/** MAC1 = MAC(SESLK; oldBalance || amount || type || terminal). The card computes it; the host checks it. */
export function loadMac1(input: LoadMac1Input): Buffer {
  return sessionMac(input.algorithm, input.sessionKey, loadMac1Message(input));
}

/** What MAC1 of a load is computed over. */
export function loadMac1Message(input: Omit<LoadMac1Input, 'algorithm' | 'sessionKey'>): Buffer {
  return Buffer.concat([
    u32be(input.oldBalance),
    u32be(input.amount),
    transactionTypeByte(input.transactionType ?? TransactionType.EPURSE_LOAD),
    terminal(input.terminalId),
  ]);
}

export interface LoadMac2Input {
  algorithm: AlgorithmId;
  sessionKey: Uint8Array;
  amount: number;
  /** Defaults to 02 (e-purse load). */
  transactionType?: number;
  terminalId: Uint8Array;
  /** Host date `YYYYMMDD`, sent in CREDIT FOR LOAD. */
  date: string;
  /** Host time `hhmmss`, sent in CREDIT FOR LOAD. */
  time: string;
}

/** MAC2 = MAC(SESLK; amount || type || terminal || date || time). The host issues it. */
export function loadMac2(input: LoadMac2Input): Buffer {
  return sessionMac(input.algorithm, input.sessionKey, loadMac2Message(input));
}

/** What MAC2 of a load is computed over. */
export function loadMac2Message(input: Omit<LoadMac2Input, 'algorithm' | 'sessionKey'>): Buffer {
  return Buffer.concat([
    u32be(input.amount),
    transactionTypeByte(input.transactionType ?? TransactionType.EPURSE_LOAD),
    terminal(input.terminalId),
    bcdDate(input.date),
    bcdTime(input.time),
  ]);
}

export interface LoadTacInput {
  algorithm: AlgorithmId;
  /** DTK: the card's TAC key (diversified by its ASN), 16 bytes. */
  tacKey: Uint8Array;
  /** Balance after the load (old balance + amount). */
  newBalance: number;
  /** The online counter as INITIALIZE FOR LOAD returned it (before the card increments it). */
  onlineCounter: number;
  amount: number;
  /** Defaults to 02 (e-purse load). */
  transactionType?: number;
  terminalId: Uint8Array;
  date: string;
  time: string;
}

/** TAC = MAC(DTK_L XOR DTK_R; newBalance || onlineCounter || amount || type || terminal || date || time). */
export function loadTac(input: LoadTacInput): Buffer {
  return tacOver(input.algorithm, input.tacKey, loadTacMessage(input));
}

/** What the TAC of a load is computed over. */
export function loadTacMessage(input: Omit<LoadTacInput, 'algorithm' | 'tacKey'>): Buffer {
  return Buffer.concat([
    u32be(input.newBalance),
    u16be(input.onlineCounter),
    u32be(input.amount),
    transactionTypeByte(input.transactionType ?? TransactionType.EPURSE_LOAD),
    terminal(input.terminalId),
    bcdDate(input.date),
    bcdTime(input.time),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Purchase (消费): INITIALIZE FOR PURCHASE; DEBIT FOR PURCHASE ← MAC1, → TAC, MAC2

export interface PurchaseSessionKeyInput {
  algorithm: AlgorithmId;
  /** DPK: the card's purchase key (diversified by its ASN), 16 bytes. */
  purchaseKey: Uint8Array;
  /** The card's 4-byte random from INITIALIZE FOR PURCHASE. */
  random: Uint8Array;
  /** Offline transaction counter from INITIALIZE FOR PURCHASE. */
  offlineCounter: number;
  /** Terminal transaction serial (4 bytes on the wire); its last 2 bytes enter the key. */
  terminalSerial: number;
}

/** SESPK = 3DES-ECB(DPK, random || offlineCounter || last 2 bytes of the terminal serial). */
export function purchaseSessionKey(input: PurchaseSessionKeyInput): Buffer {
  return sessionKeyFrom(input.algorithm, input.purchaseKey, purchaseSessionInput(input));
}

/** What SESPK enciphers: random || offlineCounter || last 2 bytes of the terminal serial (8 bytes). */
export function purchaseSessionInput(input: Pick<PurchaseSessionKeyInput, 'random' | 'offlineCounter' | 'terminalSerial'>): Buffer {
  requireLength('random', input.random, 4);
  return Buffer.concat([input.random, u16be(input.offlineCounter), u32be(input.terminalSerial).subarray(2, 4)]);
}

export interface PurchaseMac1Input {
  algorithm: AlgorithmId;
  sessionKey: Uint8Array;
  amount: number;
  /** Defaults to 06 (e-purse purchase). */
  transactionType?: number;
  terminalId: Uint8Array;
  date: string;
  time: string;
}

/** MAC1 = MAC(SESPK; amount || type || terminal || date || time). The PSAM (here: the host) computes it. */
export function purchaseMac1(input: PurchaseMac1Input): Buffer {
  return sessionMac(input.algorithm, input.sessionKey, purchaseMac1Message(input));
}

/** What MAC1 of a purchase is computed over. */
export function purchaseMac1Message(input: Omit<PurchaseMac1Input, 'algorithm' | 'sessionKey'>): Buffer {
  return Buffer.concat([
    u32be(input.amount),
    transactionTypeByte(input.transactionType ?? TransactionType.EPURSE_PURCHASE),
    terminal(input.terminalId),
    bcdDate(input.date),
    bcdTime(input.time),
  ]);
}

export interface PurchaseMac2Input {
  algorithm: AlgorithmId;
  sessionKey: Uint8Array;
  amount: number;
}

/** MAC2 = MAC(SESPK; amount). The card returns it; the PSAM / host checks it. */
export function purchaseMac2(input: PurchaseMac2Input): Buffer {
  return sessionMac(input.algorithm, input.sessionKey, purchaseMac2Message(input));
}

/** What MAC2 of a purchase is computed over: the amount. */
export function purchaseMac2Message(input: Pick<PurchaseMac2Input, 'amount'>): Buffer {
  return u32be(input.amount);
}

export interface PurchaseTacInput {
  algorithm: AlgorithmId;
  /** DTK, 16 bytes. */
  tacKey: Uint8Array;
  amount: number;
  /** Defaults to 06 (e-purse purchase). */
  transactionType?: number;
  terminalId: Uint8Array;
  terminalSerial: number;
  date: string;
  time: string;
}

/** TAC = MAC(DTK_L XOR DTK_R; amount || type || terminal || terminalSerial || date || time). */
export function purchaseTac(input: PurchaseTacInput): Buffer {
  return tacOver(input.algorithm, input.tacKey, purchaseTacMessage(input));
}

/**
 * The TACs of several purchases by one card under its DTK: purchaseTac of each, from one cipher
 * object for the card instead of one per TAC (issue 23: an offline batch brings a card's rides).
 */
export function purchaseTacs(algorithm: AlgorithmId, dtk: Uint8Array, purchases: readonly Omit<PurchaseTacInput, 'algorithm' | 'tacKey'>[]): Buffer[] {
  const key = tacKey(algorithm, dtk);
  try {
    const messages = purchases.map((p) => purchaseTacMessage(p));
    return (algorithm === ALG_3DES ? desCbcMacs(key, messages) : sm4CbcMacs(key, messages)).map(mac4);
  } finally {
    key.fill(0);
  }
}

/** What the TAC of a purchase is computed over. */
export function purchaseTacMessage(input: Omit<PurchaseTacInput, 'algorithm' | 'tacKey'>): Buffer {
  return Buffer.concat([
    u32be(input.amount),
    transactionTypeByte(input.transactionType ?? TransactionType.EPURSE_PURCHASE),
    terminal(input.terminalId),
    u32be(input.terminalSerial),
    bcdDate(input.date),
    bcdTime(input.time),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Checking

/**
 * Constant-time comparison of a MAC the other side sent with the one computed here. Different
 * lengths (not secret) and empty MACs compare unequal.
 */
export function verifyMac(expected: Uint8Array, actual: Uint8Array): boolean {
  if (expected.length === 0 || expected.length !== actual.length) return false;
  return timingSafeEqual(expected, actual);
}
